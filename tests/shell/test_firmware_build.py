"""The committed firmware images (firmware/*.elf) are what their sources build to, byte for
byte, and ``aioamp fw inspect`` shows the IPU image's resource table as the C source writes it.

Without arm-none-eabi-gcc (Debian: ``apt-get install gcc-arm-none-eabi``) the rebuild skips,
except where ``AIOAMP_REQUIRE_EMU`` is set (.ci/run), where it fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from emu_support import FIRMWARE, REQUIRED

from aioamp.cli import main
from platforms.emu.images import IMAGES

COMPILER = "arm-none-eabi-gcc"


def test_rebuilding_the_firmware_gives_the_committed_images_byte_for_byte(tmp_path: Path) -> None:
    if shutil.which(COMPILER) is None:
        if REQUIRED:
            pytest.fail(f"{COMPILER} is required here (AIOAMP_REQUIRE_EMU) but not installed")
        pytest.skip(f"{COMPILER} not installed (apt-get install gcc-arm-none-eabi)")
    tree = tmp_path / "firmware"  # another directory: the build must not depend on where
    shutil.copytree(FIRMWARE, tree, ignore=shutil.ignore_patterns("*.elf"))
    subprocess.run(["make", "-s", "-C", str(tree)], check=True, capture_output=True)
    for image in IMAGES.values():
        built, committed = (tree / image).read_bytes(), (FIRMWARE / image).read_bytes()
        assert built == committed, f"{image}: rebuilt image differs (run `make firmware`)"


def test_fw_inspect_shows_the_ipu_table_as_the_source_writes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["fw", "inspect", str(FIRMWARE / IMAGES["omap4"]), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["resource_table"]
    assert (table["ver"], table["num"]) == (1, 5)
    vdev, text, data, trace, l4 = table["entries"]
    assert (vdev["type"], vdev["id"], vdev["dfeatures"], vdev["num_of_vrings"]) == ("vdev", 7, 1, 2)
    assert [(v["align"], v["num"]) for v in vdev["vrings"]] == [(4096, 256)] * 2
    carveouts = [(e["type"], e["da"], e["len"], e["name"]) for e in (text, data)]
    assert carveouts == [
        ("carveout", 0x0000_0000, 0x10_0000, "IPU_MEM_TEXT"),
        ("carveout", 0x8000_0000, 0x10_0000, "IPU_MEM_DATA"),
    ]
    assert (trace["type"], trace["len"], trace["name"]) == ("trace", 4096, "trace:sysm3")
    assert (l4["type"], l4["da"], l4["pa"], l4["len"]) == (
        "devmem",
        0xAA00_0000,
        0x4A00_0000,
        0x100_0000,
    )
    assert l4["name"] == "IPU_PERIPHERAL_L4CFG"
