"""The real Linux kernel as the rpmsg host of an aioamp remote: User-Mode Linux drives aioamp's
``vhost-user:`` backend through its ``virtio_uml`` and ``virtio_rpmsg_bus``.

Each test listens on a fresh socket, boots a fresh kernel against it (platforms.uml) and runs
an aioamp remote bus on the backend. Marked ``kernel``: skipped, saying how to build the kernel
(``make kernel``), when build/uml/linux is missing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from conftest import VringImpl

from platforms.uml import UmlKernel, find_module, insmod_command
from rpmsg import BusClosedError, Endpoint, RpmsgBus
from transports.backends.vhost_user.server import VhostUserBackend, listen_vhost_user

pytestmark = pytest.mark.kernel

SAMPLE = "rpmsg-client-sample"
#: The sample's device: channel rpmsg-client-sample, its endpoint 1024 ("-1": no source).
SAMPLE_DEV = r"rpmsg_client_sample virtio0\.rpmsg-client-sample\.-1\.1024: "


def wait_for_console(pattern: str) -> str:
    """A guest shell line: wait (up to 20 s) until the kernel log holds ``pattern``."""
    return (
        f"for i in $(seq 2000); do dmesg | grep -q {pattern!r} && exit 0; sleep 0.01; done; "
        "echo 'guest: timed out'; exit 1"
    )


async def echo(ep: Endpoint, *, hold_after: int | None = None) -> int:
    """Echo every message to its sender until the bus closes; with ``hold_after``, stop
    answering after that many (the kernel's next message then waits, unanswered)."""
    echoed = 0
    try:
        async for msg in ep:
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
    """An aioamp remote bus on a vhost-user backend, and a kernel booted against it running
    ``guest`` after loading the client sample (at most a minute in all)."""
    sock = tmp_path / "rpmsg.sock"
    module = find_module("rpmsg_client_sample", kernel)
    backend = listen_vhost_user(sock)
    with anyio.fail_after(60):
        async with (
            backend,
            UmlKernel(
                f"{insmod_command(module)} && {guest}", kernel=kernel, devices=[sock], timeout=50
            ) as uml,
            RpmsgBus(backend, name="remote", ready_timeout=30) as bus,
        ):
            yield backend, uml, bus


@pytest.mark.usefixtures("vring_impl")
async def test_the_kernels_client_sample_talks_to_an_aioamp_remote(
    kernel: Path, tmp_path: Path, vring_impl: VringImpl
) -> None:
    """aioamp announces rpmsg-client-sample; the kernel creates the channel, the sample module
    probes it and exchanges its 100 messages with aioamp's echo, then the kernel halts."""
    async with kernel_remote(kernel, tmp_path, wait_for_console("goodbye!")) as (backend, uml, bus):
        ep = await bus.create_service(SAMPLE)
        echoed = await echo(ep)
        stats = bus.statistics()
        run = await uml.wait()
    run.check()
    lines = run.lines
    console = "\n".join(lines)
    assert "virtio_rpmsg_bus virtio0: rpmsg host is online" in console
    assert f"virtio_rpmsg_bus virtio0: creating channel {SAMPLE} addr 0x400" in console
    assert re.search(SAMPLE_DEV + r"new channel: 0x400 -> 0x400!", console)
    incoming = [int(m.group(1)) for m in re.finditer(SAMPLE_DEV + r"incoming msg (\d+)", console)]
    assert incoming == list(range(1, 101))
    assert re.search(SAMPLE_DEV + r"goodbye!", console)
    # aioamp: 100 messages in, 100 echoes + the announcement out, nothing dropped.
    assert echoed == 100
    assert (stats.rx_messages, stats.tx_messages) == (100, 101)
    assert sum(stats.drops.values()) == 0
    # The kernel halted in order: it disabled its vrings before hanging up.
    assert backend.closed and backend.peer_closed
    assert backend.close_reason.endswith("the frontend disconnected")
    handshake = backend.statistics().requests
    assert handshake["SET_BACKEND_REQ_FD"] == 1 and handshake["SET_MEM_TABLE"] == 1
    assert handshake["SET_VRING_ENABLE"] == 4  # enable both at probe, disable both at halt


@pytest.mark.parametrize("end", ["halt", "kill"])
async def test_the_kernel_going_away_mid_traffic_ends_the_bus(
    kernel: Path, tmp_path: Path, end: str
) -> None:
    """aioamp answers 10 of the sample's messages and holds the 11th: the kernel goes away
    (halts, or is killed) with a message unanswered. The bus ends, saying the frontend
    disconnected; nothing hangs. A halt is orderly (peer_closed), a kill is not."""
    wait = wait_for_console("incoming msg 10 ") if end == "halt" else "sleep 30"
    async with kernel_remote(kernel, tmp_path, wait) as (backend, uml, bus):
        ep = await bus.create_service(SAMPLE)
        async with anyio.create_task_group() as tg:
            if end == "kill":

                async def kill_at_the_11th() -> None:
                    while ep.rx_messages < 11:
                        await anyio.sleep(0.01)
                    uml.kill()

                tg.start_soon(kill_at_the_11th)
            echoed = await echo(ep, hold_after=10)
        stats = bus.statistics()
        await uml.wait_for_line(SAMPLE_DEV + "incoming msg 10 ", timeout=5)
    assert isinstance(backend, VhostUserBackend)
    assert echoed == 10 and stats.rx_messages == 11 and stats.tx_messages == 11
    assert backend.close_reason.endswith("the frontend disconnected")
    assert bus.closed
    assert backend.peer_closed == (end == "halt")
