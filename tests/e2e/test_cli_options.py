"""Bad command-line values are usage errors (exit 2, a message, no traceback) found before
anything runs, and a closed stdout pipe ends a command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioamp.cli import main

URL = "shm://cli-options-never-opened"


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``aioamp ARGV`` in-process; it must exit 2; its stderr."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ["echo", "ping"])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("nan", "'nan' is not a finite number of seconds >= 0"),
        ("inf", "'inf' is not a finite number of seconds >= 0"),
        ("-1", "'-1' is not a finite number of seconds >= 0"),
        ("soon", "'soon' is not a number of seconds"),
    ],
)
def test_timeout_must_be_finite_and_not_negative(
    capsys: pytest.CaptureFixture[str], command: str, value: str, reason: str
) -> None:
    err = usage_error(capsys, command, "--transport", URL, "--role", "host", "--timeout", value)
    assert f"argument --timeout: {reason}" in err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["ping", "--count", "0"], "argument --count: 0 is less than 1"),
        (["ping", "--count", "x"], "argument --count: 'x' is not an integer"),
        (["ping", "--size", "16", "3"], "argument --size: 3 is less than 4"),
        (["echo", "--count", "-1"], "argument --count: -1 is less than 0"),
    ],
)
def test_counts_and_sizes_are_checked(
    capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    err = usage_error(capsys, *argv, "--transport", URL, "--role", "host")
    assert reason in err


def test_demo_count_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert "argument --count: 0 is less than 1" in usage_error(capsys, "demo", "--count", "0")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (URL + "?bogus=1", "unknown option 'bogus' (known: align, buffer_size, buffers,"),
        (URL + "?num=64&num=64", "option 'num' is given twice"),
        (URL + "?num=100", "vring num 100 is not a power of two"),
        ("openamp:?bogus=1", "unknown option 'bogus' (known: listen, shm, socket, timeout)"),
        ("loop://x?listen=1", "unknown option 'listen'"),
        ("nope://x", "unknown transport scheme 'nope'"),
    ],
)
@pytest.mark.parametrize("command", ["echo", "ping"])
def test_transport_url_is_checked_before_connecting(
    capsys: pytest.CaptureFixture[str], command: str, url: str, reason: str
) -> None:
    err = usage_error(capsys, command, "--transport", url, "--role", "remote")
    assert "argument --transport: " in err and reason in err
    assert not Path("/dev/shm/cli-options-never-opened").exists()


# -- a closed stdout pipe -------------------------------------------------------------------------
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["fw", "build-sample", "{tmp}/fw.elf"],
        ["demo", "--loopback", "--count", "3"],
        ["demo", "--count", "3"],
    ],
    ids=["help", "fw", "demo-loopback", "demo-sim"],
)
def test_closed_stdout_pipe_ends_quietly(tmp_path: Path, argv: list[str], buffered: bool) -> None:
    """``aioamp ... | head``: the reader is gone. Block-buffered stdout (the default into a
    pipe) meets it at the final flush, unbuffered at the first print; neither may print a
    traceback or 'Exception ignored'."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "aioamp", *(a.format(tmp=tmp_path) for a in argv)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 0


def test_the_emulated_demo_without_unicorn_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: without the emu extra the demo died with an ExceptionGroup traceback (the
    import failed inside the demo's task group); now one line, exit 1, naming the extra."""
    monkeypatch.setitem(sys.modules, "unicorn", None)  # as if not installed
    assert main(["demo", "--platform", "pandaboard-emu", "-q"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().endswith("pip install 'aioamp[emu]' (make test installs it)")
    assert err.startswith("aioamp demo: error: pandaboard-emu runs the firmware on unicorn")
