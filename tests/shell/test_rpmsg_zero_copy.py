"""Zero-copy send and receive over loopback, both roles, both vring implementations: buffers
stay out of the ring while lent, misuse raises typed errors and changes nothing, a view that
outlives its buffer keeps the buffer out of the ring, and what an endpoint or a bus still has
out when it closes is returned (or invalidated) and counted. SharedLayout(num=8): each side has
8 tx buffers, and each receiver may hold 4 (half its receive buffers)."""

from __future__ import annotations

import functools
import gc
import logging
import tracemalloc
from collections.abc import Callable

import anyio
import pytest
from conftest import ROLES

from rpmsg import (
    ArgumentTypeError,
    BufferInUseError,
    BufferReleasedError,
    BusClosedError,
    Endpoint,
    EndpointClosedError,
    InvalidArgumentError,
    Message,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgBus,
    ZeroCopyEndpoint,
)
from transports import SharedLayout, loopback_pair

pytestmark = [pytest.mark.usefixtures("vring_impl"), pytest.mark.trio]
SMALL = SharedLayout(num=8)
WAIT = 5


async def wait_until_true(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not predicate():
            await anyio.sleep(0.001)


def _ends(host: RpmsgBus, remote: RpmsgBus, role: str) -> tuple[RpmsgBus, RpmsgBus]:
    return (host, remote) if role == "host" else (remote, host)


def _fill(src: Endpoint) -> int:
    """Send 1-byte messages without yielding until no buffer is free: how many went."""
    sent = 0
    while True:
        try:
            src.try_send(b"x")
        except NoBufferError:
            return sent
        sent += 1


async def _pair(role: str):  # type: ignore[no-untyped-def]
    host_t, remote_t = loopback_pair(SMALL)
    return RpmsgBus(host_t, name="host"), RpmsgBus(remote_t, name="remote", ready_timeout=WAIT)


@pytest.mark.parametrize("sender_role", ROLES)
@pytest.mark.parametrize("size", [0, 1, 495, 496])
async def test_borrowed_send_is_byte_exact(sender_role: str, size: int) -> None:
    host_b, remote_b = await _pair(sender_role)
    async with host_b as host, remote_b as remote:
        tx_bus, rx_bus = _ends(host, remote, sender_role)
        sink = rx_bus.create_endpoint()
        src = tx_bus.create_endpoint(dst=sink.addr)
        data = bytes((i * 3 + size) & 0xFF for i in range(size))
        buf = src.try_borrow_tx()
        assert buf.data.nbytes == src.mtu == 496
        buf.data[:size] = data
        buf.send(size)
        msg = await sink.recv(timeout=WAIT)
        assert (msg.src, msg.dst, msg.payload) == (src.addr, sink.addr, data)
        stats = src.statistics()
        assert (stats.tx_messages, stats.tx_bytes, stats.borrowed, stats.borrowed_total) == (
            1,
            size,
            0,
            1,
        )


@pytest.mark.parametrize("receiver_role", ROLES)
async def test_a_held_buffer_is_given_back_only_on_release(receiver_role: str) -> None:
    """While the receiver holds k buffers, the sender finds only 8 - k to send into."""
    host_b, remote_b = await _pair(receiver_role)
    async with host_b as host, remote_b as remote:
        rx_bus, tx_bus = _ends(host, remote, receiver_role)
        sink = rx_bus.create_endpoint(zero_copy=True)
        src = tx_bus.create_endpoint(dst=sink.addr)
        for i in range(3):
            await src.send(b"held %d" % i)
        held = [await sink.recv(timeout=WAIT) for _ in range(3)]
        assert [bytes(m.payload) for m in held] == [b"held 0", b"held 1", b"held 2"]
        await wait_until_true(lambda: src.statistics().tx_messages == 3)
        await anyio.sleep(0.01)  # every given-back buffer reached the sender
        assert _fill(src) == 8 - 3
        assert (rx_bus.statistics().held, sink.statistics().held) == (3, 3)
        # The fill's messages: the bound (4) lets one more be held, the rest are copies.
        others = [await sink.recv(timeout=WAIT) for _ in range(5)]
        assert rx_bus.statistics().hold_fallbacks == 4
        for m in others:
            m.release()
        held[0].release()
        await anyio.sleep(0.01)
        assert _fill(src) == 8 - 2  # exactly the released one came back on top
        stats = rx_bus.statistics()
        assert (stats.held, stats.held_total) == (2, 4)
        for m in held[1:]:
            m.release()
        assert rx_bus.statistics().held == 0


@pytest.mark.parametrize("role", ROLES)
async def test_send_misuse_raises_typed_errors_and_changes_nothing(role: str) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        tx_bus, rx_bus = _ends(host, remote, role)
        sink = rx_bus.create_endpoint()
        src = tx_bus.create_endpoint(dst=sink.addr)
        buf = src.try_borrow_tx()
        buf.data[:2] = b"ok"
        for bad, error in (
            (497, PayloadTooLargeError),
            (-1, InvalidArgumentError),
            (1.0, ArgumentTypeError),
            (True, ArgumentTypeError),
        ):
            with pytest.raises(error):
                buf.send(bad)  # type: ignore[arg-type]
        assert tx_bus.statistics().tx_messages == 0
        view = buf.data
        buf.send(2)
        assert (await sink.recv(timeout=WAIT)).payload == b"ok"
        with pytest.raises(BufferReleasedError):
            buf.send(2)  # send after send
        with pytest.raises(BufferReleasedError):
            buf.data  # noqa: B018
        with pytest.raises(ValueError, match="released"):
            view[0] = 1  # the old view can no longer write into a buffer the peer owns
        with pytest.raises(BufferReleasedError):
            buf.release()
        assert tx_bus.statistics().tx_messages == 1
        assert tx_bus.statistics().borrowed == 0


@pytest.mark.parametrize("role", ROLES)
async def test_a_slice_kept_past_send_stops_the_send_and_quarantines_the_buffer(
    role: str,
) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        tx_bus, rx_bus = _ends(host, remote, role)
        sink = rx_bus.create_endpoint()
        src = tx_bus.create_endpoint(dst=sink.addr)
        buf = src.try_borrow_tx()
        part = buf.data[:4]
        with pytest.raises(BufferInUseError):
            buf.send(4)
        part[:4] = b"safe"  # still our private buffer: it never went to the ring
        stats = tx_bus.statistics()
        assert (stats.tx_messages, stats.quarantined, stats.borrowed) == (0, 1, 0)
        assert _fill(src) == 7  # the quarantined buffer is out of the ring
        assert len([await sink.recv(timeout=WAIT) for _ in range(7)]) == 7
        del part
        gc.collect()
        await anyio.sleep(0.01)
        src.try_borrow_tx().release()  # the next lend sweeps the quarantine
        assert tx_bus.statistics().quarantined == 0
        await anyio.sleep(0.01)
        assert _fill(src) == 8


@pytest.mark.parametrize("role", ROLES)
async def test_held_misuse_and_a_view_kept_past_release(role: str) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        rx_bus, tx_bus = _ends(host, remote, role)
        sink = rx_bus.create_endpoint(zero_copy=True)
        src = tx_bus.create_endpoint(dst=sink.addr)
        await src.send(b"abcdef")
        msg = await sink.recv(timeout=WAIT)
        view = msg.payload
        with pytest.raises(TypeError):
            view[0] = 1  # read-only  # type: ignore[index]
        part = view[1:3]
        with pytest.raises(BufferInUseError):
            msg.release()
        assert bytes(part) == b"bc"  # still valid: the buffer never went back
        with pytest.raises(ValueError, match="released"):
            bytes(view)
        with pytest.raises(BufferReleasedError):
            msg.payload  # noqa: B018
        with pytest.raises(BufferReleasedError):
            msg.release()  # double release
        assert rx_bus.statistics().quarantined == 1
        await anyio.sleep(0.01)
        assert _fill(src) == 7
        del part
        gc.collect()
        for _ in range(7):
            (await sink.recv(timeout=WAIT)).release()  # each release sweeps
        stats = rx_bus.statistics()
        assert (stats.quarantined, stats.quarantined_total, stats.held) == (0, 1, 0)
        await anyio.sleep(0.01)
        assert _fill(src) == 8


@pytest.mark.parametrize("role", ROLES)
async def test_buffers_out_at_endpoint_close_are_returned_and_reported(
    role: str, caplog: pytest.LogCaptureFixture
) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        bus, peer = _ends(host, remote, role)
        ep = bus.create_endpoint(zero_copy=True)
        src = peer.create_endpoint(dst=ep.addr)
        await src.send(b"held")
        msg = await ep.recv(timeout=WAIT)
        await src.send(b"queued")  # never received: given back without a report
        await wait_until_true(lambda: ep.statistics().queued == 1)
        buf = ep.try_borrow_tx()
        assert (ep.statistics().borrowed, ep.statistics().held) == (1, 2)  # held: queued too
        with caplog.at_level(logging.WARNING, logger="aioamp.rpmsg"):
            await ep.aclose()
        assert [r.message.count("still out") for r in caplog.records] == [1, 1]
        assert (ep.statistics().leaks, bus.statistics().leaks) == (2, 2)
        stats = bus.statistics()
        assert (stats.held, stats.borrowed) == (0, 0)
        with pytest.raises(BufferReleasedError):
            msg.payload  # noqa: B018
        with pytest.raises(EndpointClosedError):
            buf.send(1)
        await anyio.sleep(0.01)
        assert _fill(bus.create_endpoint(dst=src.addr)) == 8  # every buffer came back
        assert _fill(src) == 8


@pytest.mark.parametrize("role", ROLES)
async def test_bus_close_invalidates_what_is_out(role: str) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        bus, peer = _ends(host, remote, role)
        ep = bus.create_endpoint(zero_copy=True)
        await peer.create_endpoint(dst=ep.addr).send(b"held")
        msg = await ep.recv(timeout=WAIT)
        buf = ep.try_borrow_tx()
        data, payload = buf.data, msg.payload
        await bus.aclose()
        with pytest.raises(ValueError, match="released"):
            data[0] = 1
        with pytest.raises(ValueError, match="released"):
            bytes(payload)
        with pytest.raises(BusClosedError):
            buf.send(1)
        with pytest.raises(BufferReleasedError):
            msg.payload  # noqa: B018
        for loan in (buf, msg):  # already returned, reported, when the endpoint closed
            with pytest.raises(BufferReleasedError, match="the bus closed"):
                loan.release()
        assert ep.statistics().leaks == 2
        assert bus.statistics().borrowed == bus.statistics().held == 0


async def test_a_host_reset_invalidates_the_remotes_loans() -> None:
    """Nothing is written to the rings of a host that reset the device."""
    host_b, remote_b = await _pair("remote")
    async with host_b as host, remote_b as remote:
        ep = remote.create_endpoint(zero_copy=True)
        await host.create_endpoint(dst=ep.addr).send(b"held")
        msg = await ep.recv(timeout=WAIT)
        buf = ep.try_borrow_tx()
        host.reset_peer()
        await wait_until_true(lambda: remote.rings.resets == 1)
        with pytest.raises(BufferReleasedError, match="reset"):
            buf.send(1)
        with pytest.raises(BufferReleasedError, match="reset"):
            msg.payload  # noqa: B018
        msg.release()  # nothing goes to the rings
        buf.release()
        assert remote.statistics().tx_messages == 0


async def test_the_remote_keeps_a_returned_buffer_instead_of_an_empty_message() -> None:
    """OpenAMP's rpmsg_virtio_release_tx_buffer: a borrowed buffer returned unsent stays with
    the remote for its next send; the host never sees a zero-length message for it."""
    host_b, remote_b = await _pair("remote")
    async with host_b as host, remote_b as remote:
        sink = host.create_endpoint()
        src = remote.create_endpoint(dst=sink.addr)
        with src.try_borrow_tx():
            pass
        await anyio.sleep(0.01)
        assert host.statistics().rx_messages == 0
        assert remote.statistics().borrowed == 0
        assert _fill(src) == 8  # the kept one and the 7 still on the ring
        got = [await sink.recv(timeout=WAIT) for _ in range(8)]
        assert {m.payload for m in got} == {b"x"}
        assert host.statistics().drops["short_buffer"] == 0


@pytest.mark.parametrize("role", ROLES)
async def test_borrow_waits_for_a_buffer_in_turn(role: str) -> None:
    host_b, remote_b = await _pair(role)
    async with host_b as host, remote_b as remote:
        tx_bus, rx_bus = _ends(host, remote, role)
        sink = rx_bus.create_endpoint(maxsize=1)  # BLOCK: the ring fills up
        src = tx_bus.create_endpoint(dst=sink.addr)
        await sink_full(src)
        with pytest.raises(NoBufferError):
            src.try_borrow_tx()
        with pytest.raises(Exception, match="no tx buffer freed"):
            await src.borrow_tx(timeout=0.01)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sink.recv, WAIT)
            buf = await src.borrow_tx(timeout=WAIT)
        buf.data[:1] = b"y"
        buf.send(1)
        assert tx_bus.statistics().send_waits == 2


async def sink_full(src: Endpoint) -> None:
    while True:
        try:
            src.try_send(b"x")
        except NoBufferError:
            return
        await anyio.sleep(0)


async def test_zero_copy_endpoints_refuse_callbacks_and_non_bools() -> None:
    host_b, remote_b = await _pair("host")
    async with host_b as host, remote_b:
        bound = host.statistics().endpoints
        with pytest.raises(InvalidArgumentError):
            host.create_endpoint(zero_copy=True, callback=lambda ep, msg: None)
        with pytest.raises(ArgumentTypeError):
            host.create_endpoint(zero_copy=1)  # type: ignore[arg-type]
        assert host.statistics().endpoints == bound
        assert isinstance(host.create_endpoint(zero_copy=True), ZeroCopyEndpoint)


@pytest.mark.asyncio_only
async def test_held_receive_allocates_no_payload_bytes() -> None:
    """tracemalloc (as benchmarks/inproc.py): messages kept alive allocate 496-byte payloads
    when copied, and nothing of that size when held."""
    host_b, remote_b = await _pair("host")
    async with host_b as host, remote_b as remote:
        copied = host.create_endpoint()
        held = host.create_endpoint(zero_copy=True)
        src = remote.create_endpoint()
        big = bytes(range(248)) * 2

        async def live_blocks(sink: Endpoint) -> int:
            tracemalloc.start(1)
            try:
                before = tracemalloc.take_snapshot()
                for _ in range(4):
                    await src.send_to(sink.addr, big)
                kept = [await sink.recv(timeout=WAIT) for _ in range(4)]
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            # Counted block by block: compiled code (mypyc) has no Python frames, so its
            # blocks share a traceback with small ones and a per-site average would hide them.
            grown = sum(t.size >= 496 for t in after.traces) - sum(
                t.size >= 496 for t in before.traces
            )
            for m in kept:
                if not isinstance(m, Message):
                    m.release()
            return grown

        assert await live_blocks(copied) >= 4  # the check sees copies
        assert await live_blocks(held) == 0


@pytest.mark.parametrize("receiver_role", ROLES)
async def test_a_release_notifies_a_sender_waiting_for_a_buffer(receiver_role: str) -> None:
    """Every buffer held: the next send waits; the release gives one back and notifies the
    peer (which asked for it while its sender waits), so the send completes."""
    host_b, remote_b = await _pair(receiver_role)
    async with host_b as host, remote_b as remote:
        rx_bus, tx_bus = _ends(host, remote, receiver_role)
        rx_bus.rings.loans.max_held = 8
        sink = rx_bus.create_endpoint(zero_copy=True)
        src = tx_bus.create_endpoint(dst=sink.addr)
        held = []
        for i in range(8):
            await src.send(b"%d" % i)
            held.append(await sink.recv(timeout=WAIT))
        assert rx_bus.statistics().held == 8
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(src.send, b"waits", timeout=WAIT))
            await wait_until_true(lambda: tx_bus.statistics().send_waits == 1)
            kicks = rx_bus.statistics().kicks_sent
            held.pop(0).release()
        assert rx_bus.statistics().kicks_sent == kicks + 1
        with await sink.recv(timeout=WAIT) as msg:
            assert bytes(msg.payload) == b"waits"
        for m in held:
            m.release()


@pytest.mark.parametrize("overflow", ["drop-newest", "drop-oldest"])
@pytest.mark.parametrize("receiver_role", ROLES)
async def test_a_dropped_held_message_gives_its_buffer_back(
    receiver_role: str, overflow: str
) -> None:
    host_b, remote_b = await _pair(receiver_role)
    async with host_b as host, remote_b as remote:
        rx_bus, tx_bus = _ends(host, remote, receiver_role)
        sink = rx_bus.create_endpoint(zero_copy=True, maxsize=1, overflow=overflow)  # type: ignore[arg-type]
        src = tx_bus.create_endpoint(dst=sink.addr)
        for i in range(3):
            await src.send(b"%d" % i)
        await wait_until_true(lambda: sink.statistics().queue_drops == 2)
        assert (rx_bus.statistics().held, sink.statistics().held) == (1, 1)
        await anyio.sleep(0.01)
        assert _fill(src) == 8 - 1  # only the queued one is still out
        with sink.try_recv() as msg:  # type: ignore[union-attr]
            assert bytes(msg.payload) == (b"0" if overflow == "drop-newest" else b"2")
