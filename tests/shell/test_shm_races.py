"""A peer's death discovered by a kick (EPIPE) rather than by the reader must still close
the bus at once: nothing may keep "succeeding" into the rings of a dead link."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import anyio
import pytest

from rpmsg import BusClosedError, EndpointClosedError, RpmsgBus
from transports.backends.shm.transport import ShmTransport, open_shm
from transports.errors import TransportClosedError

pytestmark = pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs POSIX shm")


@pytest.mark.parametrize("survivor_role", ["host", "remote"])
async def test_death_found_by_a_kick_closes_the_bus(tmp_path: Path, survivor_role: str) -> None:
    name = f"aioamp-race-{os.getpid()}-{survivor_role}"
    sock = tmp_path / "bell.sock"
    peer_role = "remote" if survivor_role == "host" else "host"
    ends: dict[str, ShmTransport] = {}

    async def opener(role: str, listen: bool) -> None:
        ends[role] = await open_shm(name, role=role, listen=listen, socket_path=sock)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        tg.start_soon(opener, "host", True)
        await anyio.sleep(0.05)
        tg.start_soon(opener, "remote", False)
    survivor, peer = ends[survivor_role], ends[peer_role]
    async with (
        RpmsgBus(ends["host"], name="host") as host,
        RpmsgBus(ends["remote"], name="remote", ready_timeout=5) as remote,
    ):
        bus = host if survivor_role == "host" else remote
        other = remote if survivor_role == "host" else host
        service = await other.create_service("svc")
        channel = await bus.wait_for_service("svc", timeout=5)
        await channel.send(b"warm-up")
        assert (await service.recv(timeout=5)).payload == b"warm-up"
        # The peer "dies": its end of the socket goes away without its bus noticing first.
        peer.doorbell.sock.close()
        # Our very next kick finds the broken pipe (no event-loop turn in between).
        with contextlib.suppress(BusClosedError):
            channel.endpoint.try_send(b"into the void")
        assert bus.closed, "a kick that found the peer gone must close the bus"
        with pytest.raises(EndpointClosedError):  # not RpmsgTimeoutError: no waiting
            await channel.recv(timeout=5)
        with pytest.raises(BusClosedError):
            await channel.send(b"late")
    await survivor.aclose()
    await peer.aclose()
    assert not (Path("/dev/shm") / name).exists()


async def test_wait_notification_path_without_a_handler(tmp_path: Path) -> None:
    """The task path (used where handler mode is unavailable): kicks are counted, the peer
    closing fails the wait, and a kick that finds the peer gone wakes a pending wait."""
    name = f"aioamp-wait-{os.getpid()}"
    sock = tmp_path / "bell.sock"
    ends: dict[str, ShmTransport] = {}

    async def opener(role: str, listen: bool) -> None:
        ends[role] = await open_shm(name, role=role, listen=listen, socket_path=sock)  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        tg.start_soon(opener, "host", True)
        await anyio.sleep(0.05)
        tg.start_soon(opener, "remote", False)
    host, remote = ends["host"], ends["remote"]
    for _ in range(3):
        remote.kick(0)
    with anyio.fail_after(5):
        assert await host.wait_notification() == 3
    assert host.stats.notifications_received == 3

    # A wait pending while our own kick discovers that the peer is gone.
    results: list[BaseException] = []

    async def waiter() -> None:
        try:
            await host.wait_notification()
        except TransportClosedError as exc:
            results.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            remote.doorbell.sock.close()  # the peer dies without a word
            host.kick(1)  # EPIPE or reset: the link is broken
            if not host.closed:  # the reader may see EOF first instead
                await anyio.sleep(0.5)
    assert host.closed and len(results) == 1
    with pytest.raises(TransportClosedError):
        await host.wait_notification()
    await host.aclose()
    await remote.aclose()
    assert not (Path("/dev/shm") / name).exists()
