"""Careless callers of the public rpmsg API: each mistake raises a typed error and changes
nothing. An endpoint is bound to its bus and dies with its address (a closed one never sends
again, and nothing meant for it reaches the next owner of its address); one transport end
has one bus; addresses, service names, timeouts and queue settings are checked where they
enter.
"""

from __future__ import annotations

import enum
import gc
import math
from typing import Any

import anyio
import pytest

import transports.errors
from rpmsg import (
    ADDR_ANY,
    AddressTypeError,
    ArgumentTypeError,
    BusClosedError,
    EndpointClosedError,
    ForeignEndpointError,
    InvalidAddressError,
    InvalidArgumentError,
    InvalidServiceNameError,
    NoBufferError,
    Overflow,
    RpmsgBus,
    RpmsgError,
    RpmsgTimeoutError,
    TransportInUseError,
)
from rpmsg.rings import Rings
from transports import SharedLayout, loopback_pair

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

SMALL = SharedLayout(num=8)
DIRECTIONS = pytest.mark.parametrize("sender_role", ["host", "remote"])


def every_send(ep: Any, dst: int, data: Any = b"x") -> list[tuple[str, Any]]:
    """Each send form, as (name, zero-argument callable returning an awaitable or None)."""
    return [
        ("send", lambda: ep.send(data)),
        ("send_to", lambda: ep.send_to(dst, data)),
        ("send_offchannel", lambda: ep.send_offchannel(ep.addr, dst, data)),
        ("try_send", lambda: ep.try_send(data)),
        ("try_send_to", lambda: ep.try_send_to(dst, data)),
        ("try_send_offchannel", lambda: ep.try_send_offchannel(ep.addr, dst, data)),
    ]


async def call(fn: Any) -> None:
    result = fn()
    if result is not None:
        await result


# -- item 4: an endpoint belongs to its bus, a transport end to one bus ---------------------------


async def test_a_second_bus_on_one_transport_end_is_refused(bus_pair) -> None:
    """Regression: a second RpmsgBus on a driven end was accepted, and the two drained each
    other's rings. The claim ends when the first bus closes (or is dropped unclosed)."""
    async with bus_pair() as (host, remote, host_t, remote_t):
        for transport, owner in ((host_t, "host"), (remote_t, "remote")):
            with pytest.raises(TransportInUseError, match=f"driven by bus '{owner}'"):
                RpmsgBus(transport)
        rx = remote.create_endpoint()
        tx = host.create_endpoint(dst=rx.addr)
        await tx.send(b"still one bus each")
        assert (await rx.recv(timeout=5)).payload == b"still one bus each"
    RpmsgBus(host_t, name="after close")  # the end is free again
    unclosed = RpmsgBus(remote_t)
    del unclosed
    gc.collect()
    RpmsgBus(remote_t)  # a bus dropped without aclose frees its end too


def test_the_claim_lives_on_the_transport_end() -> None:
    """Any user of a transport end claims it there (not only a bus); a stale token releases
    nothing, so a dropped bus's late finalizer cannot free its successor's claim."""
    host_t, _remote_t = loopback_pair()
    first = host_t.claim("a test")
    with pytest.raises(TransportInUseError, match="already driven by a test"):
        RpmsgBus(host_t)
    with pytest.raises(transports.errors.TransportInUseError):
        host_t.claim("another test")
    host_t.release(first)
    second = host_t.claim("the second")
    host_t.release(first)  # stale
    with pytest.raises(transports.errors.TransportInUseError, match="by the second"):
        host_t.claim("a third")
    host_t.release(second)
    RpmsgBus(host_t)


async def test_a_bus_whose_start_failed_frees_its_end() -> None:
    """Also a regression: the start's error came wrapped in an ExceptionGroup."""
    _host_t, remote_t = loopback_pair()
    with pytest.raises(RpmsgTimeoutError):
        async with RpmsgBus(remote_t, ready_timeout=0.01):
            pass  # the host never sets DRIVER_OK
    RpmsgBus(remote_t)


class BodyError(Exception):
    """Raised by the body of ``async with`` in the tests below."""


async def test_the_bodys_own_exception_comes_out_alone() -> None:
    """Regression (found by the Linux backend's work): an exception raised by the body of
    ``async with RpmsgBus(...)`` came out wrapped in an ExceptionGroup by the bus's task
    group. It must come out as itself, with the bus closed, in either role."""
    host_t, remote_t = loopback_pair()
    async with RpmsgBus(host_t, name="host") as host:
        with pytest.raises(BodyError) as info:
            async with RpmsgBus(remote_t, name="remote") as remote:
                raise BodyError("the remote's body")
        assert type(info.value) is BodyError and remote.closed
    with pytest.raises(BodyError) as info:
        async with RpmsgBus(loopback_pair()[0], name="host") as host:
            raise BodyError("the host's body")
    assert type(info.value) is BodyError and host.closed
    assert not isinstance(info.value.__context__, BaseExceptionGroup)


async def test_destroy_endpoint_refuses_another_buss_endpoint(bus_pair) -> None:
    """Regression: host.destroy_endpoint(remote's endpoint) closed it (still bound there)."""
    async with bus_pair() as (host, remote, _ht, _rt):
        theirs = remote.create_endpoint()
        tx = host.create_endpoint(dst=theirs.addr)
        with pytest.raises(ForeignEndpointError):
            await host.destroy_endpoint(theirs)
        with pytest.raises(ForeignEndpointError):
            await host.announce(theirs, "stolen")
        assert not theirs.closed and remote.endpoint(theirs.addr) is theirs
        assert theirs.name is None and host.statistics().tx_messages == 0
        await tx.send(b"still open")
        assert (await theirs.recv(timeout=5)).payload == b"still open"


@DIRECTIONS
async def test_a_closed_endpoint_never_sends_and_its_address_is_not_its_own(
    bus_pair, sender_role: str
) -> None:
    """Regression: a destroyed endpoint could still send from its address, which the next
    create_endpoint() hands out again, so the replies reached the new owner."""
    async with bus_pair() as (host, remote, _ht, _rt):
        sender, receiver = (host, remote) if sender_role == "host" else (remote, host)
        rx = receiver.create_endpoint()
        old = sender.create_endpoint(dst=rx.addr)
        await old.aclose()
        new = sender.create_endpoint()
        assert new.addr == old.addr
        before = sender.statistics()
        for name, send in every_send(old, rx.addr):
            with pytest.raises(EndpointClosedError, match=f"endpoint {old.addr} closed"):
                await call(send)
            assert sender.statistics() == before, name
        with pytest.raises(EndpointClosedError):
            await sender.announce(old, "ghost")
        await old.aclose()  # destroying it again does nothing
        assert sender.endpoint(new.addr) is new and not new.closed
        await anyio.sleep(0.01)
        assert rx.try_recv() is None


async def test_an_endpoint_of_a_closed_bus_raises_bus_closed(bus_pair) -> None:
    async with bus_pair() as (host, _remote, _ht, _rt):
        ep = host.create_endpoint(dst=1024)
        await host.aclose()
        for _name, send in every_send(ep, 1024):
            with pytest.raises(BusClosedError):
                await call(send)


async def test_a_send_waiting_for_a_buffer_fails_when_its_endpoint_is_destroyed(
    bus_pair,
) -> None:
    """Regression: a send blocked on a full ring kept waiting after its endpoint was
    destroyed, then sent from the address the next endpoint had been given."""
    async with bus_pair(SMALL) as (host, remote, _ht, _rt):
        rx = remote.create_endpoint(maxsize=1)  # BLOCK: the remote stops draining when full
        tx = host.create_endpoint(dst=rx.addr)
        sent = 0
        with anyio.fail_after(5):
            while True:
                try:
                    tx.try_send(b"%d" % sent)
                except NoBufferError:
                    break
                sent += 1
                await anyio.sleep(0)
        outcome: list[BaseException] = []

        async def blocked() -> None:
            try:
                await tx.send(b"late", timeout=10)
            except RpmsgError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked)
            with anyio.fail_after(5):
                while tx.statistics().send_waits == 0:
                    await anyio.sleep(0.001)
            await host.destroy_endpoint(tx)
            new = host.create_endpoint(dst=rx.addr)
            assert new.addr == tx.addr
            with anyio.fail_after(5):
                while not outcome:
                    await anyio.sleep(0.001)
            assert isinstance(outcome[0], EndpointClosedError)
            got = [(await rx.recv(timeout=5)).payload for _ in range(sent)]
            await new.send(b"sync", timeout=5)
            got.append((await rx.recv(timeout=5)).payload)
        assert got == [b"%d" % i for i in range(sent)] + [b"sync"]


async def test_a_message_stalled_for_a_destroyed_endpoint_never_reaches_the_next_owner(
    bus_pair, wait_until
) -> None:
    """Regression: the message a BLOCK stall held for an endpoint was dispatched, once the
    endpoint was destroyed, to the new endpoint that had taken its address meanwhile."""
    async with bus_pair() as (host, remote, _ht, _rt):
        full = remote.create_endpoint(maxsize=1)
        tx = host.create_endpoint(dst=full.addr)
        await tx.send(b"queued")
        await tx.send(b"stalled")
        await wait_until(lambda: full.statistics().queue_stalls == 1)
        await remote.destroy_endpoint(full)
        heir = remote.create_endpoint()
        assert heir.addr == full.addr
        await tx.send(b"for the heir")
        assert (await heir.recv(timeout=5)).payload == b"for the heir"
        assert remote.statistics().drops["unknown_dst"] == 1
        assert full.try_recv() is not None  # what was queued before the close stays readable


# -- item 5: arguments checked where they enter ---------------------------------------------------


class Port(enum.IntEnum):
    ECHO = 0x400


BAD_ADDRESSES = [
    (1.5, AddressTypeError),
    ("1024", AddressTypeError),
    (None, AddressTypeError),
    (True, AddressTypeError),
    (-1, InvalidAddressError),
    (ADDR_ANY, InvalidAddressError),
    (2**32, InvalidAddressError),
    (2**70, InvalidAddressError),
]


@DIRECTIONS
@pytest.mark.parametrize(("bad", "error"), BAD_ADDRESSES)
async def test_a_bad_address_is_a_typed_error_and_sends_nothing(
    bus_pair, sender_role: str, bad: Any, error: type[Exception]
) -> None:
    """Regression: send_to(1.5, ...) leaked struct.error (and could cost a buffer)."""
    async with bus_pair() as (host, remote, _ht, _rt):
        sender, receiver = (host, remote) if sender_role == "host" else (remote, host)
        rx = receiver.create_endpoint()
        tx = sender.create_endpoint(dst=rx.addr)
        before = sender.statistics()
        forms = [
            lambda: tx.send_to(bad, b"x"),
            lambda: tx.send_offchannel(bad, rx.addr, b"x"),
            lambda: tx.send_offchannel(tx.addr, bad, b"x"),
            lambda: tx.try_send_to(bad, b"x"),
            lambda: tx.try_send_offchannel(bad, rx.addr, b"x"),
            lambda: tx.try_send_offchannel(tx.addr, bad, b"x"),
        ]
        for send in forms:
            with pytest.raises(error):
                await call(send)
        assert sender.statistics() == before
        if error is AddressTypeError:
            assert issubclass(error, TypeError) and issubclass(error, InvalidAddressError)
        await tx.send_to(rx.addr, b"fine")
        assert (await rx.recv(timeout=5)).payload == b"fine"


@pytest.mark.parametrize(("bad", "error"), [b for b in BAD_ADDRESSES if b[0] != ADDR_ANY])
async def test_create_endpoint_refuses_a_bad_address_and_binds_nothing(
    bus_pair, bad: Any, error: type[Exception]
) -> None:
    """Regression: create_endpoint(1.5) bound the address 1.5. (ADDR_ANY is valid for both:
    "pick one" and "no default destination".)"""
    async with bus_pair() as (host, _remote, _ht, _rt):
        endpoints = host.statistics().endpoints
        with pytest.raises(error):
            host.create_endpoint(bad)
        with pytest.raises(error):
            host.create_endpoint(dst=bad)
        assert host.statistics().endpoints == endpoints
        assert host.create_endpoint().addr == 1024


async def test_an_int_subclass_address_is_accepted_as_a_plain_int(bus_pair) -> None:
    async with bus_pair() as (host, remote, _ht, _rt):
        rx = remote.create_endpoint(Port.ECHO)
        assert type(rx.addr) is int and rx.addr == 0x400
        tx = host.create_endpoint(dst=Port.ECHO)
        assert type(tx.dst) is int
        await tx.send_to(Port.ECHO, b"enum")
        msg = await rx.recv(timeout=5)
        assert (msg.dst, msg.payload) == (0x400, b"enum")


BAD_NAMES = [
    ("\u00e9cho", InvalidServiceNameError),
    ("", InvalidServiceNameError),
    ("x" * 32, InvalidServiceNameError),
    ("a\0b", InvalidServiceNameError),
    (b"echo", ArgumentTypeError),
    (None, ArgumentTypeError),
]


@pytest.mark.parametrize(("bad", "error"), BAD_NAMES)
async def test_a_bad_service_name_says_what_the_name_field_allows(
    bus_pair, bad: Any, error: type[Exception]
) -> None:
    """Regression: a non-ASCII name raised a bare UnicodeEncodeError."""
    async with bus_pair() as (host, remote, _ht, _rt):
        ep = remote.create_endpoint()
        before = (remote.statistics(), host.statistics())
        rule = "1 to 31 ASCII characters" if error is InvalidServiceNameError else r"\(?a str"
        if bad is not None:  # None means "the endpoint's own name" to announce
            with pytest.raises(error, match=rule):
                await remote.announce(ep, bad)
            with pytest.raises(error, match=rule):
                remote.create_endpoint(name=bad)
        with pytest.raises(error, match=rule):
            await remote.create_service(bad)
        with pytest.raises(error, match=rule):
            host.register_driver(bad, lambda channel: anyio.sleep(0))
        with pytest.raises(error, match=rule):
            await host.wait_for_service(bad, timeout=1)
        assert ep.name is None and not ep.announced
        assert (remote.statistics(), host.statistics()) == before


async def test_a_31_character_name_is_announced_and_found(bus_pair) -> None:
    async with bus_pair() as (host, remote, _ht, _rt):
        name = "n" * 31
        service = await remote.create_service(name)
        channel = await host.wait_for_service(name, timeout=5)
        await channel.send(b"hi")
        assert (await service.recv(timeout=5)).payload == b"hi"


BAD_TIMEOUTS = [
    (math.nan, InvalidArgumentError),
    (-1, InvalidArgumentError),
    (-math.inf, InvalidArgumentError),
    ("1", ArgumentTypeError),
    (True, ArgumentTypeError),
]


@pytest.mark.parametrize(("bad", "error"), BAD_TIMEOUTS)
async def test_a_bad_timeout_is_a_typed_error(bus_pair, bad: Any, error: type[Exception]) -> None:
    async with bus_pair() as (host, remote, _ht, _rt):
        rx = remote.create_endpoint()
        tx = host.create_endpoint(dst=rx.addr)
        before = host.statistics()
        calls = [
            lambda: rx.recv(timeout=bad),
            lambda: tx.send(b"x", timeout=bad),
            lambda: tx.send_to(rx.addr, b"x", timeout=bad),
            lambda: tx.send_offchannel(tx.addr, rx.addr, b"x", timeout=bad),
            lambda: host.wait_for_service("echo", timeout=bad),
        ]
        for fn in calls:
            with pytest.raises(error, match="timeout must be"):
                await call(fn)
        with pytest.raises(error, match="send_timeout must be"):
            host.send_timeout = bad
        with pytest.raises(error, match="ready_timeout must be"):
            remote.ready_timeout = bad
        assert host.send_timeout == 15.0 and host.statistics() == before
    host_t2, _remote_t2 = loopback_pair()
    with pytest.raises(error, match="send_timeout must be"):
        RpmsgBus(host_t2, send_timeout=bad)
    RpmsgBus(host_t2)  # the refused bus claimed nothing


async def test_timeouts_zero_and_inf_are_valid(bus_pair) -> None:
    async with bus_pair() as (host, remote, _ht, _rt):
        rx = remote.create_endpoint()
        with pytest.raises(RpmsgTimeoutError):
            await rx.recv(timeout=0)
        tx = host.create_endpoint(dst=rx.addr)
        await tx.send(b"x", timeout=math.inf)
        assert (await rx.recv(timeout=math.inf)).payload == b"x"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"maxsize": 0}, InvalidArgumentError),
        ({"maxsize": -5}, InvalidArgumentError),
        ({"maxsize": 1.5}, ArgumentTypeError),
        ({"maxsize": "8"}, ArgumentTypeError),
        ({"maxsize": True}, ArgumentTypeError),
        ({"overflow": "bogus"}, InvalidArgumentError),
        ({"overflow": None}, InvalidArgumentError),
        ({"callback": 5}, ArgumentTypeError),
    ],
)
async def test_bad_queue_settings_are_refused_before_binding(
    bus_pair, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Regression: overflow="bogus" was taken and acted as DROP_OLDEST; maxsize=0 raised a
    bare ValueError."""
    async with bus_pair() as (host, _remote, _ht, _rt):
        endpoints = host.statistics().endpoints
        with pytest.raises(error):
            host.create_endpoint(**kwargs)
        with pytest.raises(error):
            await host.create_service("svc", **kwargs)
        assert host.statistics().endpoints == endpoints
        assert host.create_endpoint().addr == 1024


async def test_a_refused_create_service_leaves_the_peers_channel_alone(bus_pair) -> None:
    """Regression: create_service(name, maxsize=0) first took over (unbound) the endpoint of
    the peer's unused channel of that name, then raised."""
    async with bus_pair() as (host, remote, _ht, _rt):
        await host.create_service("svc")
        channel = await remote.wait_for_service("svc", timeout=5)
        for bad in ({"maxsize": 0}, {"overflow": "bogus"}, {"callback": 5}):
            with pytest.raises(RpmsgError):
                await remote.create_service("svc", **bad)
        assert remote.find_channel("svc") is channel and not channel.removed
        assert remote.endpoint(channel.src) is channel.endpoint


async def test_overflow_by_its_value(bus_pair) -> None:
    async with bus_pair() as (host, _remote, _ht, _rt):
        assert host.create_endpoint(overflow="drop-newest").overflow is Overflow.DROP_NEWEST


# -- the engine on its own (defence in depth) -----------------------------------------------------


@pytest.mark.usefixtures("vring_impl")
@DIRECTIONS
async def test_an_engine_send_the_header_refuses_gives_its_buffer_back(
    bus_pair, sender_role: str
) -> None:
    """Below the bus's checks, an argument the header cannot hold raises before a buffer is
    used, or gives the claimed one back: repeated refusals never exhaust the ring."""
    async with bus_pair(SMALL) as (host, remote, host_t, _rt):
        sender, receiver = (host, remote) if sender_role == "host" else (remote, host)
        rx = receiver.create_endpoint()
        engine: Rings = sender.rings
        memory = bytes(host_t.link.buffer)
        for _ in range(3 * 8):
            with pytest.raises(Exception) as info:
                engine.try_send(1.5, rx.addr, b"x")  # type: ignore[arg-type]
            assert not isinstance(info.value, RpmsgError)  # a caller bug below the API
        assert bytes(host_t.link.buffer) == memory
        tx = sender.create_endpoint(dst=rx.addr)
        for i in range(3 * 8):
            tx.try_send(b"%d" % i)
            assert (await rx.recv(timeout=5)).payload == b"%d" % i
