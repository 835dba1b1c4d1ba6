"""Batches over loopback, in both roles: ``try_send_many``/``send_many`` put many messages on
the ring with one notification of the peer, ``recv_batch`` takes what has arrived. A
SharedLayout(num=8) pool gives each side 8 tx buffers, so a ring-full is 8 messages."""

from __future__ import annotations

from array import array

import anyio
import pytest
from conftest import ROLES, WrappedEnd, loop_turns

from rpmsg import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RpmsgBus,
)
from transports import SharedLayout, loopback_pair

SMALL = SharedLayout(num=8)


def _ends(host: RpmsgBus, remote: RpmsgBus, sender_role: str) -> tuple[RpmsgBus, RpmsgBus]:
    return (host, remote) if sender_role == "host" else (remote, host)


@pytest.mark.parametrize("sender_role", ROLES)
async def test_a_batch_costs_one_kick_where_single_sends_cost_one_each(sender_role) -> None:
    """The sender's end cannot tell whether its last kick was consumed (``WrappedEnd``: the
    base ``kick_pending``, as an eventfd), so single sends kick each time; a batch once."""
    host_t, remote_t = loopback_pair(SMALL)
    if sender_role == "host":
        host_end, remote_end = WrappedEnd(host_t), remote_t
    else:
        host_end, remote_end = host_t, WrappedEnd(remote_t)
    async with (
        RpmsgBus(host_end, name="host") as host,
        RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote,
    ):
        tx_bus, rx_bus = _ends(host, remote, sender_role)
        sink = rx_bus.create_endpoint()
        src = tx_bus.create_endpoint()
        await loop_turns(10)  # the receiver idles: it asks for every notification
        kicks = tx_bus.statistics().kicks_sent
        for i in range(4):
            src.try_send_to(sink.addr, b"single %d" % i)  # no loop turn in between
        singles = tx_bus.statistics().kicks_sent - kicks
        for i in range(4):
            assert (await sink.recv(timeout=2)).payload == b"single %d" % i
        await loop_turns(10)
        kicks = tx_bus.statistics().kicks_sent
        assert src.try_send_many([b"batch %d" % i for i in range(4)], dst=sink.addr) == 4
        batch = tx_bus.statistics().kicks_sent - kicks
        assert (singles, batch) == (4, 1)
        got = await sink.recv_batch(10, timeout=2)
        assert [m.payload for m in got] == [b"batch %d" % i for i in range(4)]
        assert {(m.src, m.dst) for m in got} == {(src.addr, sink.addr)}
        assert src.statistics().tx_messages == 8


@pytest.mark.parametrize("sender_role", ROLES)
async def test_try_send_many_stops_at_a_full_ring_and_says_how_far(bus_pair, sender_role) -> None:
    async with bus_pair(SMALL) as (host, remote, _, _):
        tx_bus, rx_bus = _ends(host, remote, sender_role)
        sink = rx_bus.create_endpoint()
        src = tx_bus.create_endpoint()
        payloads = [i.to_bytes(2, "little") for i in range(12)]
        assert src.try_send_many(payloads, dst=sink.addr) == 8  # the tx buffers of a side
        assert src.try_send_many(payloads[8:], dst=sink.addr) == 0  # none free: no raise
        assert [m.payload for m in await sink.recv_batch(100, timeout=2)] == payloads[:8]
        await loop_turns(10)  # the buffers go back
        assert src.try_send_many(payloads[8:], dst=sink.addr) == 4
        assert [m.payload for m in await sink.recv_batch(100, timeout=2)] == payloads[8:]


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ([b"ok", b"x" * 497], PayloadTooLargeError),  # the last is over the MTU of 496
        ([b"ok", 7], InvalidPayloadError),
        (b"one payload", InvalidPayloadError),
        (42, InvalidPayloadError),
    ],
)
async def test_a_bad_batch_sends_nothing(bus_pair, batch, error) -> None:
    async with bus_pair() as (host, remote, _, _):
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        before = host.statistics()
        with pytest.raises(error):
            src.try_send_many(batch, dst=sink.addr)
        with pytest.raises(error):
            await src.send_many(batch, dst=sink.addr)
        after = host.statistics()
        assert (after.tx_messages, after.kicks_sent) == (before.tx_messages, before.kicks_sent)
        assert src.statistics().tx_messages == 0
        await loop_turns(10)
        assert sink.try_recv() is None


async def test_send_many_waits_for_buffers_and_loses_nothing(bus_pair) -> None:
    """More than a ring-full: the batch goes out a ring-full per notification, waiting for
    the receiver to give buffers back in between; payloads of any buffer type, in order."""
    async with bus_pair(SMALL) as (host, remote, _, _):
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        n = 50
        payloads = [array("H", [i, i]) for i in range(n)]  # 4 bytes each
        got: list[bytes] = []

        async def consume() -> None:
            while len(got) < n:
                got.extend(m.payload for m in await sink.recv_batch(3, timeout=5))

        kicks = host.statistics().kicks_sent
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await src.send_many(payloads, dst=sink.addr, timeout=5)
        assert got == [p.tobytes() for p in payloads]
        assert host.statistics().kicks_sent - kicks <= n // 2


async def test_send_many_goes_to_the_default_destination(bus_pair) -> None:
    async with bus_pair() as (host, remote, _, _):
        service = await remote.create_service("batch-svc")
        channel = await host.wait_for_service("batch-svc", timeout=5)
        await channel.endpoint.send_many([b"a", b"b"])
        assert channel.endpoint.try_send_many([b"c"]) == 1
        assert [m.payload for m in await service.recv_batch(3, timeout=2)] == [b"a", b"b", b"c"]


async def test_recv_batch_waits_for_one_then_takes_what_is_there(bus_pair) -> None:
    async with bus_pair() as (host, remote, _, _):
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        async with anyio.create_task_group() as tg:
            result: list[bytes] = []

            async def receive() -> None:
                result.extend(m.payload for m in await sink.recv_batch(2, timeout=5))

            tg.start_soon(receive)
            await loop_turns(10)
            assert result == []  # nothing yet: it waits
            src.try_send_many([b"1", b"2", b"3"], dst=sink.addr)
        assert result == [b"1", b"2"]  # up to the limit; the third stays queued
        assert [m.payload for m in await sink.recv_batch(5, timeout=2)] == [b"3"]
        for bad, error in [(0, InvalidArgumentError), (1.0, ArgumentTypeError)]:
            with pytest.raises(error, match="limit"):
                await sink.recv_batch(bad)  # type: ignore[arg-type]
