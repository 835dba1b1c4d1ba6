"""Host side of the ``linux:`` backend's kernel tests: a UML guest running the project's Python,
whose kernel's rpmsg remote is an aioamp bus on a vhost-user backend of this process."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from platforms.uml import KernelRun, UmlKernel
from rpmsg import BusClosedError, Endpoint, RpmsgBus
from transports.backends.vhost_user.server import listen_vhost_user

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GUEST = HERE / "guest_linux_bus.py"
#: The printed marker of guest scripts.
_GUEST_LINE = re.compile(r"^guest: (.*)$")


def guest_argv(scenario: str) -> list[str]:
    """The guest command running one scenario of guest_linux_bus.py."""
    return [sys.executable, str(GUEST), scenario]


def guest_lines(run: KernelRun) -> list[str]:
    """What the guest script printed (``guest: ...`` lines, without the prefix)."""
    return [m.group(1) for line in run.lines if (m := _GUEST_LINE.match(line))]


@asynccontextmanager
async def guest_with_remote(
    kernel: Path, tmp_path: Path, command: str | Sequence[str], *, timeout: float = 90
) -> AsyncIterator[tuple[UmlKernel, RpmsgBus]]:
    """A kernel booted against an aioamp remote bus (the remote of its virtio rpmsg device),
    running ``command``; both torn down on exit (a hang guard of ``timeout`` s over all)."""
    sock = tmp_path / "rpmsg.sock"
    backend = listen_vhost_user(sock)
    with anyio.fail_after(timeout + 10):
        async with (
            backend,
            UmlKernel(command, kernel=kernel, devices=[sock], timeout=timeout) as uml,
            RpmsgBus(backend, name="remote", ready_timeout=30) as bus,
        ):
            yield uml, bus


class Served:
    """What a remote service saw: each payload, in order."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []


async def serve_until_halt(uml: UmlKernel, bus: RpmsgBus, name: str) -> tuple[KernelRun, Served]:
    """Announce ``name`` on the remote and echo on it until the guest halts."""
    served = Served()
    ep = await bus.create_service(name)
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, ep, served)
        run = await uml.wait()
    return run, served


async def serve(ep: Endpoint, served: Served, reply: bool = True) -> None:
    """Answer every message to its sender with its own payload until the kernel goes away."""
    try:
        async for msg in ep:
            served.payloads.append(msg.payload)
            if reply:
                await ep.send_to(msg.src, msg.payload)
    except BusClosedError:
        pass
