"""``aioamp ping/echo --transport linux:`` on a machine without the kernel's rpmsg: every
mistake is a usage error (exit 2) before anything is opened, and a missing control device a
one-line error (exit 3: no peer). The kernel tests (tests/e2e/test_linux_cli.py) run the
sessions."""

from __future__ import annotations

import pytest

from aioamp.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "size", "mtu"), [("linux:", "497", 496), ("linux:?mtu=64", "65", 64)]
)
def test_a_size_over_the_mtu_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], url: str, size: str, mtu: int
) -> None:
    status, err = run(capsys, "ping", "--transport", url, "--role", "host", "--size", size)
    assert status == 2
    assert f"--size {size} exceeds the MTU of {mtu} (the linux: URL's mtu" in err


@pytest.mark.parametrize("command", ["ping", "echo"])
def test_the_kernel_is_always_the_host(capsys: pytest.CaptureFixture[str], command: str) -> None:
    status, err = run(capsys, command, "--transport", "linux:", "--role", "remote")
    assert status == 2
    assert "the kernel is always the rpmsg host: use --role host" in err


@pytest.mark.parametrize(
    ("url", "message"),
    [("linux:?speed=9", "unknown option 'speed'"), ("linux:/dev/tty0", "control device")],
)
def test_bad_linux_urls_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    status, err = run(capsys, "echo", "--transport", url, "--role", "host")
    assert status == 2 and message in err


def test_no_control_device_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    status, err = run(
        capsys, "ping", "--transport", "linux:/dev/rpmsg_ctrl99", "--role", "host",
        "--timeout", "0",
    )  # fmt: skip
    assert status == 3  # no peer to talk to, as when no shm:// peer comes within --timeout
    *said, last = err.splitlines()
    assert said == ["waiting for a peer on linux:/dev/rpmsg_ctrl99, up to 0 s ..."]
    assert last.startswith("aioamp ping: error: ")
    assert "no rpmsg control device (rpmsg_ctrl99)" in last
    assert "Traceback" not in err
