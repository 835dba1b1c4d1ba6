"""The tap on a bus (rpmsg.tap): every message each way, through every send and receive path,
with ``capture=`` on the Python API and with the process-wide capture ``aioamp capture`` uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from rpmsg import (
    Direction,
    MemoryCapture,
    NsFlags,
    Overflow,
    RpmsgBus,
    TapRecord,
    capturing,
    open_bus,
)
from rpmsg.tap import LinkInfo, RecordSink
from rpmsg.wire import pack_ns
from transports import loopback_pair

pytestmark = pytest.mark.usefixtures("vring_impl")


def view(records: list[TapRecord], bus: str) -> list[tuple[str, int, int, bytes]]:
    return [(r.direction.name, r.src, r.dst, r.payload) for r in records if r.link.bus == bus]


async def test_every_message_each_way_is_recorded_by_both_ends(
    bus_pair: Callable[..., Any],
) -> None:
    cap = MemoryCapture()
    async with bus_pair(capture=cap) as (host, remote, _h, _r):
        assert [(link.bus, link.role, link.backend) for link in cap.links] == [
            ("host", "host", "vring"),
            ("remote", "remote", "vring"),
        ]
        service = await remote.create_service("echo")
        channel = await host.wait_for_service("echo", timeout=5)
        payloads = [b"", b"\x00\xff", bytes(range(256)), b"x" * host.mtu]
        for payload in payloads:
            await channel.send(payload)
            msg = await service.recv(timeout=5)
            await service.send_to(msg.src, msg.payload[::-1])
            assert (await channel.recv(timeout=5)).payload == payload[::-1]
        await service.aclose()  # NS DESTROY
        with anyio.fail_after(5):
            while host.find_channel("echo") is not None:
                await anyio.sleep(0.001)
        host_stats, remote_stats = host.statistics(), remote.statistics()
    a, b = channel.src, service.addr
    create = (b, 53, pack_ns("echo", b, NsFlags.CREATE))
    destroy = (b, 53, pack_ns("echo", b, NsFlags.DESTROY))
    exchange = [step for p in payloads for step in (("TX", a, b, p), ("RX", b, a, p[::-1]))]
    assert view(cap.records, "host") == [("RX", *create), *exchange, ("RX", *destroy)]
    flipped = [({"TX": "RX", "RX": "TX"}[d], s, t, p) for d, s, t, p in exchange]
    assert view(cap.records, "remote") == [("TX", *create), *flipped, ("TX", *destroy)]
    # The records agree with the counters: nothing sent or received escaped the tap.
    for bus, stats in (("host", host_stats), ("remote", remote_stats)):
        sent = [r for r in cap.records if r.link.bus == bus and r.direction is Direction.TX]
        got = [r for r in cap.records if r.link.bus == bus and r.direction is Direction.RX]
        assert (len(sent), sum(r.length for r in sent)) == (stats.tx_messages, stats.tx_bytes)
        assert (len(got), sum(r.length for r in got)) == (stats.rx_messages, stats.rx_bytes)
    stamps = [r.timestamp_ns for r in cap.records]
    assert stamps == sorted(stamps)
    ns = [r.ns for r in cap.records if r.ns is not None]
    assert [(e.name, e.addr, e.flags) for e in ns] == [("echo", b, 0)] * 2 + [("echo", b, 1)] * 2


async def test_waiting_and_non_waiting_sends_are_each_recorded_once(
    bus_pair: Callable[..., Any],
) -> None:
    """A full BLOCK endpoint stalls the remote's receiving, so the host's sends run out of
    buffers and wait: every path (send_now, try_send, the waiting send, off-channel) records
    each message once, and the stalled message is recorded once, when it left the ring."""
    cap = MemoryCapture()
    async with bus_pair(capture=cap) as (host, remote, _h, _r):
        sink = remote.create_endpoint(maxsize=1, overflow=Overflow.BLOCK)
        ep = host.create_endpoint()
        ep.try_send_to(sink.addr, b"try")
        await ep.send_offchannel(ep.addr + 1, sink.addr, b"off")
        count = 400  # more than the host's tx buffers
        async with anyio.create_task_group() as tg:

            async def sender() -> None:
                for i in range(count):
                    await ep.send_to(sink.addr, i.to_bytes(2, "little"), timeout=10)

            tg.start_soon(sender)
            got = [(await sink.recv(timeout=10)).payload for _ in range(count + 2)]
        assert host.statistics().send_waits > 0  # the waiting path was taken
        stats = remote.statistics()
    expected = [b"try", b"off", *(i.to_bytes(2, "little") for i in range(count))]
    assert got == expected
    assert [p for d, _s, _d, p in view(cap.records, "host") if d == "TX"] == expected
    assert [p for d, _s, _d, p in view(cap.records, "remote") if d == "RX"] == expected
    assert stats.rx_messages == len(expected)


async def test_a_message_nobody_receives_is_still_recorded(bus_pair: Callable[..., Any]) -> None:
    cap = MemoryCapture()
    async with bus_pair(capture=cap) as (host, remote, _h, _r):
        ep = host.create_endpoint()
        await ep.send_to(4321, b"nobody")
        with anyio.fail_after(5):
            while remote.statistics().drops["unknown_dst"] == 0:
                await anyio.sleep(0.001)
    assert ("RX", ep.addr, 4321, b"nobody") in view(cap.records, "remote")


async def test_the_process_wide_capture_records_the_buses_made_while_it_is_active() -> None:
    mine, everything = MemoryCapture(), MemoryCapture()
    before_h, _before_r = loopback_pair(name="before")
    early = RpmsgBus(before_h, name="early")
    with capturing(everything):
        async with (
            open_bus("loop://tapped", role="host", name="h", capture=mine) as h,
            open_bus("loop://tapped", role="remote", name="r", ready_timeout=5) as r,
        ):
            svc = await r.create_service("svc")
            channel = await h.wait_for_service("svc", timeout=5)
            await channel.send(b"hello")
            assert (await svc.recv(timeout=5)).payload == b"hello"
    async with unrecorded_pair() as later_host:
        assert later_host.tap is None  # no capture: the bus pays nothing
    assert early.tap is None
    assert [(link.bus, link.transport) for link in everything.links] == [
        ("h", "loop://tapped"),
        ("r", "loop://tapped"),
    ]
    assert [link.bus for link in mine.links] == ["h"]
    assert view(mine.records, "h") == view(everything.records, "h")
    assert ("TX", channel.src, channel.dst, b"hello") in view(everything.records, "h")
    assert ("RX", channel.src, channel.dst, b"hello") in view(everything.records, "r")


@asynccontextmanager
async def unrecorded_pair() -> AsyncIterator[RpmsgBus]:
    h, r = loopback_pair(name="later")
    async with RpmsgBus(h, name="later-h") as host, RpmsgBus(r, ready_timeout=5):
        yield host


class Exploding:
    """A capture whose sink raises on every record."""

    def open_link(self, link: LinkInfo) -> RecordSink:
        def sink(record: TapRecord) -> None:
            raise RuntimeError("disk on fire")

        return sink


async def test_a_sink_that_raises_is_counted_and_the_bus_carries_on(
    bus_pair: Callable[..., Any],
) -> None:
    cap = MemoryCapture()
    with capturing(cap):
        async with bus_pair(capture=Exploding()) as (host, remote, _h, _r):
            svc = await remote.create_service("svc")
            channel = await host.wait_for_service("svc", timeout=5)
            for i in range(5):
                await channel.send(bytes([i]))
                assert (await svc.recv(timeout=5)).payload == bytes([i])
            host_stats, remote_stats = host.statistics(), remote.statistics()
    assert host_stats.capture_errors == 6  # the NS CREATE received, 5 sent
    assert remote_stats.capture_errors == 6
    assert len(cap.records) == 12  # the other capture of the same buses missed nothing


async def test_reannouncements_to_a_new_host_are_recorded(
    wait_until: Callable[..., Awaitable[None]],
) -> None:
    """After a host reset the remote announces its services again straight from the rings,
    outside the endpoints' send paths: the tap sees those too."""
    cap = MemoryCapture()
    host_t, remote_t = loopback_pair(name="reannounce")
    async with anyio.create_task_group() as tg:
        first = RpmsgBus(host_t, name="first")
        await first.start(tg)
        async with RpmsgBus(remote_t, name="remote", ready_timeout=5, capture=cap) as remote:
            await remote.create_service("svc")
            await first.wait_for_service("svc", timeout=5)
            first.reset_peer()
            await first.aclose()
            await wait_until(lambda: remote.rings.resets == 1)  # the remote saw status 0
            async with RpmsgBus(host_t, name="second") as second:
                await second.wait_for_service("svc", timeout=5)
    creates = [r for r in cap.records if r.ns is not None and r.ns.flags == NsFlags.CREATE]
    assert [(r.direction, r.ns.name if r.ns else None) for r in creates] == [
        (Direction.TX, "svc"),
        (Direction.TX, "svc"),
    ]
