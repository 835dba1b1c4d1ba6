"""Firmware is read only from regular files of bounded size: ``aioamp fw inspect`` (and
``load_firmware_file``, which every firmware path goes through) refuses a FIFO, a device or an
oversized file with one line and exit status 2, without reading it; ``fw build-sample``
refuses program names the simulator could not register (``check_program_name``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioamp.cli import main
from platforms.runtime import FirmwareContext
from platforms.sim import register_program, unregister_program
from platforms.sim.images import build_sample_image
from remoteproc.errors import RemoteprocError
from remoteproc.firmware import MAX_FIRMWARE_SIZE, load_firmware_file


def inspect(path: str | Path) -> subprocess.CompletedProcess[str]:
    """In a subprocess with a deadline: on a FIFO the old code blocked forever."""
    return subprocess.run(
        [sys.executable, "-m", "aioamp", "fw", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def refused(result: subprocess.CompletedProcess[str], path: str | Path, reason: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"aioamp fw inspect: error: {path}: {reason}\n"


def test_dev_zero_is_refused_unread() -> None:
    refused(inspect("/dev/zero"), "/dev/zero", "not a regular file (a character device)")


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fw.fifo"
    os.mkfifo(fifo)
    refused(inspect(fifo), fifo, "not a regular file (a FIFO)")


def test_directory_is_refused(tmp_path: Path) -> None:
    refused(inspect(tmp_path), tmp_path, "not a regular file (a directory)")


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.elf"
    with open(big, "wb") as f:
        f.write(build_sample_image())
        f.truncate(MAX_FIRMWARE_SIZE + 1)  # sparse: no disk used
    result = inspect(big)
    refused(result, big, "over 67108864 bytes (64 MiB), the limit for firmware images")


def test_file_at_the_cap_is_read(tmp_path: Path) -> None:
    image = tmp_path / "padded.elf"
    with open(image, "wb") as f:
        f.write(build_sample_image())
        f.truncate(MAX_FIRMWARE_SIZE)
    assert load_firmware_file(image).program == "rpmsg-client-sample"


@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_library_loader_refuses_with_a_typed_error(tmp_path: Path, path: str) -> None:
    if path == "fifo":
        path = str(tmp_path / "fw.fifo")
        os.mkfifo(path)
    with pytest.raises(RemoteprocError) as info:
        load_firmware_file(path)
    assert isinstance(info.value, OSError)  # an unreadable path, not a malformed image
    assert type(info.value).__name__ == "FirmwareFileError"
    assert "not a regular file" in str(info.value)


def test_inspect_help_documents_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fw", "inspect", "--help"])
    assert "at most 64 MiB" in " ".join(capsys.readouterr().out.split())


# -- build-sample --program -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("program", "reason"),
    [
        ("p" * 64, "is 64 bytes; names are 1..63 bytes"),
        ("", "is 0 bytes; names are 1..63 bytes"),
        ("caf\u00e9", "has '\u00e9': names are visible ASCII"),
        ("a\0b", "has '\\x00': names are visible ASCII"),
    ],
)
def test_build_sample_refuses_names_the_simulator_refuses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, program: str, reason: str
) -> None:
    out = tmp_path / "fw.elf"
    assert main(["fw", "build-sample", str(out), "--program", program]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aioamp fw build-sample: error: cannot build the sample: ")
    assert reason in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


def test_build_sample_takes_the_longest_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "fw.elf"
    assert main(["fw", "build-sample", str(out), "--program", "p" * 63]) == 0
    assert load_firmware_file(out).program == "p" * 63

    async def program(ctx: FirmwareContext) -> None:
        return None

    register_program("p" * 63, program)  # what the image names, the registry takes
    unregister_program("p" * 63)
