"""``aioamp fw inspect`` and ``aioamp fw build-sample``, run in-process through ``cli.main``."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aioamp.cli import main
from platforms.sim.images import build_sample_image
from remoteproc.elfwriter import build_firmware
from remoteproc.firmware import load_firmware
from remoteproc.rsc_table import FW_RSC_ADDR_ANY

ANY = FW_RSC_ADDR_ANY


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["fw", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def inspect_json(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, Any]]:
    status, out, _ = run(capsys, "inspect", str(path), "--json")
    return status, json.loads(out)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.elf"
    path.write_bytes(build_sample_image())
    return path


def malformed_table() -> bytes:
    """Three entries: a zero-length carveout, an offset outside the table, a good trace."""
    header = struct.pack("<IIII", 1, 3, 0, 0) + struct.pack("<III", 0x1C, 0xFFFF, 0x54)
    carveout = struct.pack("<IIIIII32s", 0, 0x0, ANY, 0, 0, 0, b"bad")
    trace = struct.pack("<IIII32s", 2, 0x20000, 0x1000, 0, b"trace0")
    return header + carveout + trace


# -- build-sample ---------------------------------------------------------------------------------


def test_build_sample_writes_the_image(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "fw.elf"
    status, out, _ = run(capsys, "build-sample", str(out_path), "--program", "echo")
    assert status == 0
    assert "wrote" in out
    assert out_path.read_bytes() == build_sample_image("echo")
    image = load_firmware(out_path.read_bytes())
    assert (image.entry, image.elf_class, image.machine, image.program) == (
        0x1000,
        32,
        "EM_ARM",
        "echo",
    )
    assert image.resource_table is not None and image.resource_table.addr == 0x8000
    text = image.segment_containing(0x0)
    assert text is not None and text.contains(0x8000 - 1) and not text.contains(0x8000)


# -- inspect --------------------------------------------------------------------------------------


def test_inspect_sample_json(capsys: pytest.CaptureFixture[str], sample: Path) -> None:
    status, doc = inspect_json(capsys, sample)
    assert status == 0
    assert doc["file"] == str(sample)
    assert (doc["entry"], doc["elf_class"], doc["machine"]) == (0x1000, 32, "EM_ARM")
    assert doc["program"] == "rpmsg-client-sample"
    assert doc["valid"] is True and doc["findings"] == []
    assert [
        {k: s[k] for k in ("index", "paddr", "vaddr", "filesz", "memsz", "flags")}
        for s in doc["segments"]
    ] == [
        {"index": 0, "paddr": 0x0, "vaddr": 0x0, "filesz": 0x2000, "memsz": 0x8000, "flags": 5},
        {"index": 1, "paddr": 0x8000, "vaddr": 0x8000, "filesz": 0x104, "memsz": 0x104, "flags": 6},
        {"index": 2, "paddr": 0x21000, "vaddr": 0x21000, "filesz": 0x100, "memsz": 0x1000,
         "flags": 5},
    ]  # fmt: skip
    rsc = doc["resource_table"]
    assert (rsc["addr"], rsc["size"], rsc["ver"], rsc["num"]) == (0x8000, 0x104, 1, 4)
    text, data, trace, vdev = rsc["entries"]
    assert {k: text[k] for k in ("index", "type", "da", "pa", "len", "flags", "name")} == {
        "index": 0, "type": "carveout", "da": 0, "pa": ANY, "len": 0x10000, "flags": 0,
        "name": "text",
    }  # fmt: skip
    assert (data["type"], data["da"], data["pa"], data["len"], data["name"]) == (
        "carveout", 0x20000, ANY, 0x10000, "data",
    )  # fmt: skip
    assert {k: trace[k] for k in ("index", "type", "da", "len", "name")} == {
        "index": 2, "type": "trace", "da": 0x20000, "len": 0x1000, "name": "trace0",
    }  # fmt: skip
    assert {
        k: vdev[k]
        for k in ("index", "type", "id", "notifyid", "dfeatures", "gfeatures", "config_len")
    } == {
        "index": 3, "type": "vdev", "id": 7, "notifyid": ANY, "dfeatures": 1, "gfeatures": 0,
        "config_len": 0,
    }  # fmt: skip
    assert vdev["status"] == 0
    ring = {"da": ANY, "align": 0x1000, "num": 256, "notifyid": ANY, "pa": 0}
    assert vdev["vrings"] == [ring, ring]


def test_inspect_sample_text(capsys: pytest.CaptureFixture[str], sample: Path) -> None:
    status, out, err = run(capsys, "inspect", str(sample))
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert "entry:    0x00001000" in lines
    assert "program:  rpmsg-client-sample" in lines
    assert "format:   ELF32, machine EM_ARM" in lines
    segs = lines.index("segments:")
    assert lines[segs + 1].split() == ["index", "paddr", "vaddr", "filesz", "memsz", "flags"]
    assert lines[segs + 2].split() == [
        "0", "0x00000000", "0x00000000", "0x00002000", "0x00008000", "R", "E", "(0x5)",
    ]  # fmt: skip
    assert "resource table: addr 0x00008000, size 0x104, ver 1, num 4 (4 decoded)" in lines
    assert any(
        line.split()[:3] == ["0", "0x0020", "carveout"]
        and 'da 0x00000000  pa 0xffffffff  len 0x00010000  flags 0x0  name "text"' in line
        for line in lines
    )
    assert any('trace     da 0x00020000  len 0x00001000  name "trace0"' in line for line in lines)
    assert any(
        "vdev      id 7  notifyid 0xffffffff  dfeatures 0x00000001" in line for line in lines
    )
    assert any("config_len 0  status 0x00  num_of_vrings 2" in line for line in lines)
    vrings = [line.split() for line in lines if "0x1000  256" in line]
    assert vrings == [
        [str(j), "0xffffffff", "0x1000", "256", "0xffffffff", "0x00000000"] for j in (0, 1)
    ]
    # Aligned: every row of the entry table starts its "type" column at the same place.
    head = next(line for line in lines if line.strip().startswith("index  offset  type"))
    rows = [line for line in lines if " carveout " in line or " trace " in line or " vdev " in line]
    assert {line.index(line.split()[2]) for line in rows} == {head.index("type")}
    assert lines[-2:] == ["findings: none", "valid"]


def test_inspect_image_without_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "plain.elf"
    path.write_bytes(build_firmware(0x100, [(0x0, bytes(0x200))]))
    status, out, err = run(capsys, "inspect", str(path))
    assert status == 0 and err == ""
    assert "no resource table (no vdevs)" in out.splitlines()
    assert "program:  -" in out.splitlines()
    status, doc = inspect_json(capsys, path)
    assert status == 0
    assert doc["resource_table"] is None and doc["program"] is None
    assert doc["valid"] is True and doc["findings"] == []


def test_inspect_malformed_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.elf"
    path.write_bytes(
        build_firmware(
            0x0, [(0x0, bytes(0x100))], resource_table=malformed_table(), rsc_addr=0x8000
        )
    )
    expected = [
        {"index": 0, "offset": 0x28, "reason": "zero-length carveout"},
        {"index": 1, "offset": 0x14, "reason": "offset 0xffff is outside the 132-byte table"},
    ]
    status, doc = inspect_json(capsys, path)
    assert status == 1
    assert doc["valid"] is False
    assert doc["findings"] == expected
    rsc = doc["resource_table"]
    assert (rsc["ver"], rsc["num"]) == (1, 3)  # the header's num; entry 1 does not decode
    assert [(e["index"], e["type"], e["name"]) for e in rsc["entries"]] == [
        (0, "carveout", "bad"),
        (2, "trace", "trace0"),
    ]

    status, out, err = run(capsys, "inspect", str(path))
    assert status == 1
    lines = out.splitlines()
    assert "findings (2):" in lines
    start = lines.index("findings (2):")
    assert lines[start + 1].split() == ["index", "offset", "reason"]
    assert lines[start + 2].split() == ["0", "0x0028", "zero-length", "carveout"]
    assert lines[start + 3].split()[:2] == ["1", "0x0014"]
    assert lines[start + 3].endswith("offset 0xffff is outside the 132-byte table")
    assert lines[-1] == "INVALID (2 findings)"
    assert any(line.split()[:3] == ["2", "0x0054", "trace"] for line in lines)
    assert "zero-length carveout" in err and "entry 0" in err and "(and 1 more)" in err


def test_inspect_garbage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"this is not an ELF file at all")
    for extra in ((), ("--json",)):
        status, out, err = run(capsys, "inspect", str(path), *extra)
        assert status == 1
        assert out == ""
        assert "not an ELF image" in err and str(path) in err


def test_inspect_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nope.elf"
    status, out, err = run(capsys, "inspect", str(path))
    assert status == 2
    assert out == ""
    assert f"{path}: no such file" in err


def test_inspect_host_gcc_executable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / "rsc.c"
    src.write_text(
        '__attribute__((section(".resource_table"), used))\n'
        "const unsigned int rsc[4] = {1, 0, 0, 0};\n"
        "int main(void) { return (int)rsc[1]; }\n"
    )
    exe = tmp_path / "rsc"
    proc = subprocess.run([gcc, "-o", str(exe), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"gcc cannot build a host executable: {proc.stderr.strip()[:200]}")
    status, doc = inspect_json(capsys, exe)
    assert status == 0
    rsc = doc["resource_table"]
    assert rsc is not None
    assert (rsc["ver"], rsc["num"], rsc["entries"]) == (1, 0, [])
    assert doc["valid"] is True
    assert doc["segments"]


def test_console_script(sample: Path) -> None:
    script = Path(sys.executable).parent / "aioamp"
    if not script.exists():
        pytest.skip("the aioamp console script is not installed next to this interpreter")
    proc = subprocess.run(
        [str(script), "fw", "inspect", str(sample), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["valid"] is True
    assert [e["type"] for e in doc["resource_table"]["entries"]] == [
        "carveout",
        "carveout",
        "trace",
        "vdev",
    ]
