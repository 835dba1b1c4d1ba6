"""A peer's death discovered by a kick (EPIPE) rather than by the reader must still close
the bus at once: nothing may keep "succeeding" into the rings of a dead link."""

from __future__ import annotations

import contextlib

import anyio
import pytest
from conftest import ROLES, other
from peers import SHM_DIR, Link

from rpmsg import BusClosedError, EndpointClosedError, RpmsgBus
from transports import Role
from transports.errors import TransportClosedError

from .conftest import open_shm_pair

pytestmark = [pytest.mark.trio, pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs POSIX shm")]


@pytest.mark.parametrize("survivor_role", ["host", "remote"])
async def test_death_found_by_a_kick_closes_the_bus(link: Link, survivor_role: Role) -> None:
    name, sock = link.new()
    ends = dict(zip(ROLES, await open_shm_pair(name, sock), strict=True))
    survivor, peer = ends[survivor_role], ends[other(survivor_role)]
    async with (
        RpmsgBus(ends["host"], name="host") as host,
        RpmsgBus(ends["remote"], name="remote", ready_timeout=5) as remote,
    ):
        bus, peer_bus = (host, remote) if survivor_role == "host" else (remote, host)
        service = await peer_bus.create_service("svc")
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
    assert not (SHM_DIR / name).exists()


async def test_wait_notification_path_without_a_handler(link: Link) -> None:
    """The task path (used where handler mode is unavailable): kicks are counted, the peer
    closing fails the wait, and a kick that finds the peer gone wakes a pending wait."""
    name, sock = link.new()
    host, remote = await open_shm_pair(name, sock)
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
    assert not (SHM_DIR / name).exists()
