"""The peer goes away, on every backend: its end of the link closed (in this process) or its
process killed with SIGKILL (backends whose ends can live in two processes). A receive and a
send pending at that moment, and every later operation, fail with EndpointClosedError: with
BusClosedError (its subclass) caused by the transport's TransportClosedError, except where the
host reset the device before it went (Backend.host_close_resets): there the remote removed the
host's channels first, and what was pending on a channel failed with plain
EndpointClosedError, as after an NS DESTROY."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest
from conftest import within_loop_turns
from peers import Link, payload

from rpmsg import BusClosedError, Endpoint, EndpointClosedError, Overflow, RpmsgBus
from transports import Role, TransportClosedError, open_transport

from .links import TransportLink
from .support import ROLES, WAIT, WaitUntil, capacity, other

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

SURVIVOR = pytest.mark.parametrize("survivor", ROLES, ids=lambda r: f"{r}-survives")


async def pending_ops_fail(
    bus: RpmsgBus,
    in_flight: int,
    service: Endpoint,
    sink: Endpoint,
    end_peer: Callable[[], Awaitable[None]],
    wait_until: WaitUntil,
    channel_error: type[EndpointClosedError] = BusClosedError,
    *,
    turns: int | None = None,
) -> None:
    """With a receive pending on ``service`` and a send to the peer's never-read ``sink``
    (1-message queue, on a channel) waiting for a buffer (``in_flight`` of them filled),
    ``end_peer()`` fails both, and later operations: the channel's with ``channel_error``,
    everything else with BusClosedError; given ``turns``, both fail within that many
    event-loop turns after ``end_peer()`` returns (no timer or poll in between)."""
    full = in_flight + 2  # the ring's buffers, the queued and the held message
    sent = 0
    waits_when_full: list[int] = []
    errors: dict[str, BaseException] = {}

    async def flood() -> None:
        nonlocal sent
        while True:
            await sink.send(payload(sent), timeout=None)
            sent += 1
            if sent == full:
                waits_when_full.append(sink.statistics().send_waits)

    async def record(key: str, op: Callable[[], Awaitable[object]]) -> None:
        try:
            await op()
        except Exception as exc:
            errors[key] = exc

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(record, "recv", lambda: service.recv(timeout=None))
            tg.start_soon(record, "send", flood)
            await wait_until(
                lambda: (
                    bool(waits_when_full) and sink.statistics().send_waits == waits_when_full[0] + 1
                ),
                timeout=WAIT,
            )
            assert errors == {} and sent == full
            await end_peer()
            if turns is not None:
                await within_loop_turns(lambda: len(errors) == 2, turns)
    assert set(errors) == {"recv", "send"}
    for key, exc in errors.items():
        expected = channel_error if key == "send" else BusClosedError
        assert type(exc) is expected, (key, exc)
        if expected is BusClosedError:
            assert isinstance(exc.__cause__, TransportClosedError), (key, exc.__cause__)
    assert bus.closed
    with pytest.raises(BusClosedError):
        await service.send_to(sink.dst, b"late")
    with pytest.raises(channel_error):
        sink.try_send(b"late")
    with pytest.raises(BusClosedError):
        await service.recv(timeout=WAIT)
    with pytest.raises(BusClosedError):
        async for _ in service:
            pass
    with pytest.raises(BusClosedError):
        bus.create_endpoint()


@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])
@SURVIVOR
async def test_the_peer_end_closed_fails_pending_operations(
    link: TransportLink, survivor: Role, wait_until: WaitUntil
) -> None:
    """Promptly: within 20 event-loop turns of the close, on asyncio and on uvloop."""
    async with link.buses() as buses:
        bus, peer = buses[survivor], buses[other(survivor)]
        await peer.create_service("sink", maxsize=1, overflow=Overflow.BLOCK)
        sink = (await bus.wait_for_service("sink", timeout=WAIT)).endpoint
        service = bus.create_endpoint()
        n = capacity(buses.host.transport)
        reset = survivor == "remote" and link.backend.host_close_resets
        error = EndpointClosedError if reset else BusClosedError
        await pending_ops_fail(
            bus, n, service, sink, peer.transport.aclose, wait_until, error, turns=20
        )


@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])
@pytest.mark.parametrize("closer", ROLES, ids=lambda r: f"{r}-closes")
async def test_closing_its_own_transport_closes_the_bus_promptly(
    link: TransportLink, closer: Role
) -> None:
    """A bus whose own transport is closed under it (``transport.aclose()`` while it runs)
    closes too, within 20 event-loop turns: its pending receive fails with BusClosedError.
    (shm://, openamp: and vhost-user: used to drop the bus's notification handler before
    closing, so that close never reached the bus, which stayed open, its receive waiting.)"""
    async with link.buses() as buses:
        bus = buses[closer]
        ep = bus.create_endpoint()
        errors: list[BaseException] = []

        async def reader(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            task_status.started()
            try:
                await ep.recv(timeout=WAIT)
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            await tg.start(reader)
            await bus.transport.aclose()
            await within_loop_turns(lambda: bool(errors))
        assert isinstance(errors[0], BusClosedError) and bus.closed


SERVICE = "conformance-echo"


@SURVIVOR
async def test_a_killed_peer_process_fails_pending_operations(
    process_link: TransportLink, env: Link, survivor: Role, wait_until: WaitUntil
) -> None:
    """The peer is a tests/peers.py process that echoes SERVICE and never reads its ``sink``;
    this process serves the link, so it also removes the shared object once the peer died."""
    peer_role = other(survivor)
    urls = process_link.urls(server=survivor)
    peer = env.spawn(urls[peer_role], peer_role, "echo", "--service", SERVICE, "--sink", "sink")
    transport = await open_transport(urls[survivor], role=survivor)
    async with transport, RpmsgBus(transport, name=survivor, ready_timeout=WAIT) as bus:
        service = await bus.create_service(SERVICE)
        echo = await bus.wait_for_service(SERVICE, timeout=WAIT)
        await service.send_to(echo.dst, b"ping")
        assert (await service.recv(timeout=WAIT)).payload == b"ping"
        sink = (await bus.wait_for_service("sink", timeout=WAIT)).endpoint

        async def kill() -> None:
            peer.kill()

        await pending_ops_fail(bus, capacity(transport), service, sink, kill, wait_until)
    assert peer.proc.returncode == -signal.SIGKILL
