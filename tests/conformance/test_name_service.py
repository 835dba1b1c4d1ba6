"""Name service over every backend, announced by either side: drivers are probed whenever they
register, wait_for_service waits or times out, DESTROY ends a driver's iteration, several
announcements keep their order, and two sides announcing one name bind to each other
(OpenAMP)."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from rpmsg import Channel, Endpoint, EndpointClosedError, RpmsgTimeoutError
from transports import Role

from .links import TransportLink
from .support import NO_DROPS, ROLES, WAIT, WaitUntil, other

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

ANNOUNCER = pytest.mark.parametrize("announcer", ROLES, ids=lambda r: f"{r}-announces")
DRIVER_FIRST = pytest.mark.parametrize(
    "driver_first", [True, False], ids=["driver-first", "announcement-first"]
)


@ANNOUNCER
@DRIVER_FIRST
async def test_a_driver_is_probed_whether_it_registers_before_or_after_the_announcement(
    link: TransportLink, announcer: Role, driver_first: bool
) -> None:
    done = anyio.Event()

    async def probe(channel: Channel) -> None:
        channels.append(channel)
        await channel.send(b"hello")
        replies.append((await channel.recv(timeout=WAIT)).payload)
        done.set()

    channels: list[Channel] = []
    replies: list[bytes] = []
    async with link.buses() as buses:
        announcing, probing = buses[announcer], buses[other(announcer)]
        if driver_first:
            driver = probing.register_driver("svc", probe)
        service = await announcing.create_service("svc")
        assert service.announced
        if not driver_first:
            await probing.wait_for_service("svc", timeout=WAIT)  # the channel exists first
            assert channels == []
            driver = probing.register_driver("svc", probe)
        msg = await service.recv(timeout=WAIT)
        assert msg.payload == b"hello"
        await service.send_to(msg.src, b"welcome")
        with anyio.fail_after(WAIT):
            await done.wait()
        [channel] = channels
        assert (channel.name, channel.dst, channel.src, replies) == (
            "svc",
            service.addr,
            msg.src,
            [b"welcome"],
        )
        assert driver.channels == [channel] and channel.driver is driver
        stats = probing.statistics()
        assert (stats.channels, stats.driver_errors) == (1, 0)


@ANNOUNCER
async def test_wait_for_service_before_and_after_the_announcement_and_its_deadline(
    link: TransportLink, announcer: Role
) -> None:
    early: list[Channel] = []

    async def wait_early(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        early.append(await waiting.wait_for_service("svc", timeout=WAIT))

    async with link.buses() as buses:
        announcing, waiting = buses[announcer], buses[other(announcer)]
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                await tg.start(wait_early)  # waiting before anything was announced
            assert early == []
            service = await announcing.create_service("svc")
        late = await waiting.wait_for_service("svc", timeout=0)  # announced: no waiting
        assert (late.name, late.dst) == ("svc", service.addr)
        assert early[0] is early[1] is late  # one channel, whoever asks and when
        start = anyio.current_time()
        with pytest.raises(RpmsgTimeoutError):
            await waiting.wait_for_service("nobody", timeout=0.05)
        assert anyio.current_time() - start >= 0.04  # not early (a busy machine is only later)


@ANNOUNCER
async def test_ns_destroy_ends_the_drivers_iteration(
    link: TransportLink, announcer: Role, wait_until: WaitUntil
) -> None:
    received: list[bytes] = []
    removed: list[Channel] = []
    ended = anyio.Event()

    async def probe(channel: Channel) -> None:
        async for msg in channel:
            received.append(msg.payload)
        ended.set()

    async with link.buses() as buses:
        announcing, probing = buses[announcer], buses[other(announcer)]
        driver = probing.register_driver("svc", probe, remove=removed.append)
        service = await announcing.create_service("svc")
        channel = await probing.wait_for_service("svc", timeout=WAIT)
        await service.send_to(channel.src, b"one")
        await wait_until(lambda: received == [b"one"], timeout=WAIT)
        endpoints = probing.statistics().endpoints

        await service.aclose()  # NS DESTROY
        with anyio.fail_after(WAIT):
            await ended.wait()
        assert removed == [channel] and channel.removed and driver.channels == []
        stats = probing.statistics()
        assert (stats.channels, stats.endpoints, stats.driver_errors) == (0, endpoints - 1, 0)
        assert channel.endpoint.closed
        with pytest.raises(EndpointClosedError):
            await channel.send(b"gone")
        with pytest.raises(RpmsgTimeoutError):  # the channel is gone, not merely closed
            await probing.wait_for_service("svc", timeout=0)
        assert probing.statistics().drops == NO_DROPS


NAMES = [f"svc-{i}" for i in range(6)]


@ANNOUNCER
@DRIVER_FIRST
async def test_several_announcements_are_probed_in_their_order(
    link: TransportLink, announcer: Role, driver_first: bool, wait_until: WaitUntil
) -> None:
    order: list[tuple[str, int]] = []

    async def probe(channel: Channel) -> None:
        order.append((channel.name, channel.dst))

    async with link.buses() as buses:
        announcing, probing = buses[announcer], buses[other(announcer)]
        if driver_first:
            probing.register_driver(NAMES, probe)
        services = [await announcing.create_service(name) for name in NAMES]
        await probing.wait_for_service(NAMES[-1], timeout=WAIT)
        if not driver_first:
            probing.register_driver(NAMES, probe)
        await wait_until(lambda: len(order) == len(NAMES), timeout=WAIT)
        assert order == [(name, ep.addr) for name, ep in zip(NAMES, services, strict=True)]


@pytest.mark.parametrize("first", [*ROLES, None], ids=["host-first", "remote-first", "together"])
async def test_both_sides_announce_one_name_and_are_bound_to_each_other(
    link: TransportLink, first: Role | None, wait_until: WaitUntil
) -> None:
    """OpenAMP's binding: each side announces the same service; each side's endpoint then
    sends to the other's, whichever announcement arrived first (or both at once)."""
    name = "rpmsg-openamp-demo-channel"
    eps: dict[Role, Endpoint] = {}

    async def announce(role: Role) -> None:
        eps[role] = await buses[role].create_service(name)

    async with link.buses() as buses:
        if first is None:
            async with anyio.create_task_group() as tg:
                for role in ROLES:
                    tg.start_soon(announce, role)
        else:
            await announce(first)
            await buses[other(first)].wait_for_service(name, timeout=WAIT)
            await announce(other(first))
        await wait_until(
            lambda: all(eps[role].dst == eps[other(role)].addr for role in ROLES), timeout=WAIT
        )
        for role in ROLES:
            await eps[role].send(role.encode())
        for role in ROLES:
            msg = await eps[role].recv(timeout=WAIT)
            assert (msg.src, msg.payload) == (eps[other(role)].addr, other(role).encode())
        for bus in buses:
            assert (bus.statistics().channels, bus.statistics().drops) == (1, NO_DROPS)
