"""``aioamp capture``: running a command inside a capture, installing the dissector, and the
usage errors (exit status 2, nothing written)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import rpmsg.tap
from aioamp.cli import main
from rpmsg.capture import DISSECTOR_NAME, dissector_source
from rpmsg.capture.pcapng import EPB_TYPE, IDB_TYPE, SHB_TYPE


def block_types(path: Path) -> list[int]:
    data = path.read_bytes()
    kinds, offset = [], 0
    while offset < len(data):
        kind, total = struct.unpack_from("<II", data, offset)
        kinds.append(kind)
        offset += total
    assert offset == len(data)
    return kinds


def test_a_command_runs_inside_the_capture_and_every_bus_it_opens_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "loop.pcapng"
    argv = ["capture", "-o", str(out), "--linktype", "150", "--", "demo", "--loopback"]
    assert main([*argv, "--count", "2", "--quiet"]) == 0
    assert rpmsg.tap._ACTIVE == []  # the process-wide capture ended with the command
    kinds = block_types(out)
    # Both loopback buses run here: an interface each; 2 NS + 2 x 2 messages on each bus.
    assert kinds == [SHB_TYPE, IDB_TYPE, IDB_TYPE] + [EPB_TYPE] * 12
    assert struct.unpack_from("<H", out.read_bytes(), block_len(out, 0) + 8) == (150,)
    captured = capsys.readouterr()
    assert "client sample (loopback): 2/2 echoes" in captured.out
    assert captured.err == f"aioamp capture: 12 messages of 2 buses written to {out}\n"


def block_len(path: Path, offset: int) -> int:
    return int(struct.unpack_from("<I", path.read_bytes(), offset + 4)[0])


def test_the_command_exit_status_is_the_capture_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.pcapng"
    status = main(["capture", "-o", str(out), "--", "fw", "inspect", str(tmp_path / "missing")])
    assert status == 2  # fw inspect's own status for a missing file
    assert block_types(out) == [SHB_TYPE]  # no bus was opened: a valid, empty capture
    assert "0 messages of 0 buses" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--", "demo"], "-o FILE is required"),
        (["-o", "{out}"], "no command to run"),
        (["-o", "{out}", "--"], "no command to run"),
        (["-o", "{out}", "--dir", "x", "--", "demo"], "--dir goes with --install-dissector"),
        (["--install-dissector", "--", "demo"], "takes neither -o nor a command"),
        (["--install-dissector", "-o", "{out}"], "takes neither -o nor a command"),
        (["-o", "{out}", "--", "capture", "-o", "x", "--", "demo"], "cannot capture itself"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "t.pcapng"
    assert main(["capture", *(a.replace("{out}", str(out)) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aioamp capture: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv", [["--", "nosuch"], ["--", "demo", "--count", "0"], ["--linktype", "146", "--", "demo"]]
)
def test_a_bad_inner_command_is_a_usage_error_before_any_file(
    tmp_path: Path, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["capture", "-o", str(tmp_path / "t.pcapng"), *argv])
    assert exc.value.code == 2
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-dir" / "t.pcapng"
    assert main(["capture", "-o", str(out), "--", "demo", "--loopback", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aioamp capture: cannot write {out}: ") and err.count("\n") == 1


def test_install_dissector_writes_the_shipped_dissector_into_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plugins"
    for _ in range(2):  # a second install replaces the first
        assert main(["capture", "--install-dissector", "--dir", str(target)]) == 0
    installed = target / DISSECTOR_NAME
    assert installed.read_bytes() == dissector_source()
    assert dissector_source().startswith(b"-- aioamp-rpmsg.lua")
    assert sorted(p.name for p in target.iterdir()) == [DISSECTOR_NAME]  # no temporary left
    assert (
        capsys.readouterr().out.splitlines()
        == [f"installed the Wireshark dissector: {installed}"] * 2
    )


def test_install_dissector_defaults_to_wiresharks_personal_plugins_folder(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "aioamp", "capture", "--install-dissector"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    installed = tmp_path / ".local" / "lib" / "wireshark" / "plugins" / DISSECTOR_NAME
    assert installed.read_bytes() == dissector_source()


def test_install_dissector_where_it_cannot_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["capture", "--install-dissector", "--dir", str(blocker)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aioamp capture: cannot install the dissector: ")
    assert err.count("\n") == 1
