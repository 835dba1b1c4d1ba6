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
import pytest
from peers import Link, payload

from rpmsg import BusClosedError, Endpoint, EndpointClosedError, Overflow, RpmsgBus
from transports import Role, TransportClosedError, open_transport

from .links import TransportLink
from .support import ROLES, WAIT, WaitUntil, capacity, other

SURVIVOR = pytest.mark.parametrize("survivor", ROLES, ids=lambda r: f"{r}-survives")


async def pending_ops_fail(
    bus: RpmsgBus,
    in_flight: int,
    service: Endpoint,
    sink: Endpoint,
    end_peer: Callable[[], Awaitable[None]],
    wait_until: WaitUntil,
    channel_error: type[EndpointClosedError] = BusClosedError,
) -> None:
    """With a receive pending on ``service`` and a send to the peer's never-read ``sink``
    (1-message queue, on a channel) waiting for a buffer (``in_flight`` of them filled),
    ``end_peer()`` fails both, and later operations: the channel's with ``channel_error``,
    everything else with BusClosedError."""
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


@SURVIVOR
async def test_the_peer_end_closed_fails_pending_operations(
    link: TransportLink, survivor: Role, wait_until: WaitUntil
) -> None:
    async with link.buses() as buses:
        bus, peer = buses[survivor], buses[other(survivor)]
        await peer.create_service("sink", maxsize=1, overflow=Overflow.BLOCK)
        sink = (await bus.wait_for_service("sink", timeout=WAIT)).endpoint
        service = bus.create_endpoint()
        n = capacity(buses.host.transport)
        reset = survivor == "remote" and link.backend.host_close_resets
        error = EndpointClosedError if reset else BusClosedError
        await pending_ops_fail(bus, n, service, sink, peer.transport.aclose, wait_until, error)


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
