"""What the kernel-in-the-loop tests share: a kernel booted against an aioamp remote, the guest
programs (kernel_guest/, run by this virtualenv's Python inside the guest through hostfs), and
aioamp's echo service.

Each test listens on a fresh socket, boots a fresh kernel against it (platforms.uml) and runs an
aioamp remote bus on the vhost-user backend. The kernel fixture (tests/conftest.py) skips them,
saying how to build the kernel (``make kernel``), when build/uml/linux is missing.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from platforms.uml import UmlKernel, find_module, insmod_command
from rpmsg import BusClosedError, Endpoint, RpmsgBus
from transports.backends.vhost_user.server import VhostUserBackend, listen_vhost_user

GUEST_DIR = Path(__file__).resolve().parent / "kernel_guest"
#: At most this long for one test's boot (a boot takes about a second).
BOOT_DEADLINE = 50


def guest_program(script: str, *args: object) -> str:
    """A guest shell line running ``kernel_guest/script`` with this interpreter."""
    return shlex.join([sys.executable, str(GUEST_DIR / script), *map(str, args)])


def sample_then(guest: str, kernel: Path) -> str:
    """A guest shell line loading the kernel's rpmsg_client_sample module, then running
    ``guest``."""
    return f"{insmod_command(find_module('rpmsg_client_sample', kernel))} && {guest}"


async def echo(
    ep: Endpoint, *, hold_after: int | None = None, record: list[bytes] | None = None
) -> int:
    """aioamp's echo service: every message back to its sender until the bus closes; with
    ``hold_after``, stop answering after that many (the peer's next message then waits,
    unanswered); ``record`` collects the payloads. Returns the echoes sent."""
    echoed = 0
    try:
        async for msg in ep:
            if record is not None:
                record.append(msg.payload)
            if hold_after is not None and echoed >= hold_after:
                continue
            await ep.send_to(msg.src, msg.payload)
            echoed += 1
    except BusClosedError:
        pass
    return echoed


@asynccontextmanager
async def kernel_remote(
    kernel: Path, tmp_path: Path, guest: str
) -> AsyncIterator[tuple[VhostUserBackend, UmlKernel, RpmsgBus]]:
    """An aioamp remote bus on a vhost-user backend, and a kernel booted against it running the
    guest shell line ``guest`` (at most a minute in all)."""
    sock = tmp_path / "rpmsg.sock"
    backend = listen_vhost_user(sock)
    with anyio.fail_after(BOOT_DEADLINE + 10):
        async with (
            backend,
            UmlKernel(guest, kernel=kernel, devices=[sock], timeout=BOOT_DEADLINE) as uml,
            RpmsgBus(backend, name="remote", ready_timeout=30) as bus,
        ):
            yield backend, uml, bus
