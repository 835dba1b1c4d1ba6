"""``aioamp ping`` and ``aioamp echo`` with ``--transport linux:`` in a UML guest, against the
same commands on the host as the kernel's vhost-user remote: the CLI on both sides.

Marked ``kernel``: skipped, saying how to build the kernel, when build/uml/linux is missing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from platforms.uml import EXPECTED_WARNINGS, UmlKernel, kernel_faults

from .linux_guest import ROOT

pytestmark = pytest.mark.kernel

SERVICE = "aioamp-cli"
AIOAMP = [sys.executable, "-m", "aioamp"]


@pytest.fixture
def host_cli() -> Iterator[list[subprocess.Popen[str]]]:
    """Host-side aioamp processes; any still running at the end is killed (by pid)."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def start_remote(
    procs: list[subprocess.Popen[str]], sock: Path, *args: str
) -> subprocess.Popen[str]:
    """``aioamp ARGS --transport vhost-user:SOCK --role remote``, listening when this returns."""
    proc = subprocess.Popen(
        [*AIOAMP, *args, "--transport", f"vhost-user:{sock}", "--role", "remote"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    procs.append(proc)
    deadline = time.monotonic() + 30  # a hang guard for a slow process start
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc


#: The host's echo ends at the ping's NS DESTROY, which may be before the guest halts: its
#: vhost-user backend then hangs up under a running kernel, and UML's virtio_uml warns when
#: a vring's call pipe reads end of file (vu_interrupt: "read returned 0"). A UML quirk of a
#: backend leaving first, not an rpmsg fault.
BACKEND_LEFT_FIRST = "arch/um/drivers/virtio_uml.c"


async def run_guest(kernel: Path, sock: Path, *args: str) -> list[str]:
    command = [*AIOAMP, *args, "--transport", "linux:", "--role", "host"]
    async with UmlKernel(command, kernel=kernel, devices=[sock], timeout=90) as uml:
        run = await uml.wait()
    assert run.command_status == 0, run.lines[-40:]
    assert kernel_faults(run.lines, (*EXPECTED_WARNINGS, BACKEND_LEFT_FIRST)) == []
    return list(run.lines)


async def test_ping_in_the_guest_against_echo_on_the_host(
    kernel: Path, tmp_path: Path, host_cli: list[subprocess.Popen[str]]
) -> None:
    """The guest's ping announces its service (RPMSG_CREATE_DEV_IOCTL), talks through the
    host echo's channel, and its NS DESTROY ends the echo (exit 0)."""
    sock = tmp_path / "rpmsg.sock"
    echo = start_remote(host_cli, sock, "echo", "--service", SERVICE)
    lines = await run_guest(kernel, sock, "ping", "--service", SERVICE, "--count", "50",
                            "--size", "16", "496")  # fmt: skip
    assert "all echoes matched" in lines
    assert any(line.startswith(" 496 B x 50: 50 matched") for line in lines), lines[-20:]
    out, err = echo.communicate(timeout=30)
    assert echo.returncode == 0, err
    assert out.splitlines()[-1] == "echoed 100 messages"


async def test_echo_in_the_guest_against_ping_on_the_host(
    kernel: Path, tmp_path: Path, host_cli: list[subprocess.Popen[str]]
) -> None:
    """The guest's echo receives on its service and answers through the host ping's channel
    (the kernel does not say a message's source); the ping's NS DESTROY removes that channel,
    which ends the echo, unless the ping's exit (its vhost-user backend hanging up, which
    removes the kernel's whole rpmsg device) gets there first: an orderly end either way."""
    sock = tmp_path / "rpmsg.sock"
    ping = start_remote(
        host_cli, sock, "ping", "--service", SERVICE, "--count", "50", "--size", "16", "496"
    )
    async with anyio.create_task_group() as tg:
        result: list[list[str]] = []

        async def guest() -> None:
            result.append(await run_guest(kernel, sock, "echo", "--service", SERVICE))

        tg.start_soon(guest)
    out, err = ping.communicate(timeout=30)
    assert ping.returncode == 0, err
    assert "all echoes matched" in out
    assert any(line.startswith("echoed 100 messages") for line in result[0]), result[0][-20:]
