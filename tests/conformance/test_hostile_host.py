"""A remote bus against a hostile host (tests/conformance/rawpeer.py) on every backend.

On its receive ring (vq 1): each bad avail entry, descriptor, buffer address, length or
name-service message is counted under its reason, the remote writes nothing but vq 1's used
ring, hands back what it can and still receives a valid message afterwards. On its send ring
(vq 0): a buffer it may not write is refused (NoBufferError, counted) and handed back
untouched, and a valid buffer offered next is used.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rpmsg import NS_ADDR, NoBufferError, NsFlags

from .links import TransportLink
from .rawpeer import (
    F_INDIRECT,
    F_NEXT,
    F_WRITE,
    HDR,
    PEER_ADDR,
    RawHost,
    RawRing,
    changed_outside,
    hostile_host,
    memory_span,
    ns_msg,
    snapshot,
    write_msg,
)
from .support import NO_DROPS, WAIT, WaitUntil

Corrupt = Callable[[RawHost], None]
#: The descriptor (and pool buffer) of the valid message after a corruption.
VALID = 3


def _offer(addr: Callable[[RawHost], int], length: int = 32, flags: int = 0) -> Corrupt:
    """Offer one descriptor (id 0) at ``addr(raw)`` on vq 1."""

    def corrupt(raw: RawHost) -> None:
        raw.to_remote.set_desc(0, addr(raw), length, flags)
        raw.to_remote.post(0)

    return corrupt


def _message(
    payload: bytes, desc_len: int, *, dst: int = 1024, hdr_len: int | None = None
) -> Corrupt:
    """A message in pool buffer 0 offered with a descriptor of ``desc_len`` bytes."""

    def corrupt(raw: RawHost) -> None:
        write_msg(raw.transport, raw.buf(0), PEER_ADDR, dst, payload, hdr_len)
        raw.to_remote.set_desc(0, raw.buf(0), desc_len)
        raw.to_remote.post(0)

    return corrupt


def _head_eq_num(raw: RawHost) -> None:
    raw.to_remote.set_avail_entry(0, raw.to_remote.num)
    raw.to_remote.avail_idx = 1


def _chain_loop(raw: RawHost) -> None:
    raw.to_remote.set_desc(0, raw.buf(0), 32, F_NEXT, 1)
    raw.to_remote.set_desc(1, raw.buf(1), 32, F_NEXT, 0)
    raw.to_remote.post(0)


def _mem_start(raw: RawHost) -> int:
    return memory_span(raw.transport)[0]  # the resource table


def _mem_end(raw: RawHost) -> int:
    return memory_span(raw.transport)[1]


NS_BAD_FLAGS = ns_msg(b"svc", PEER_ADDR, 2)
NS_SHORT = ns_msg(b"svc", PEER_ADDR, NsFlags.CREATE)[:39]
REMOTE_RX_CASES: list[tuple[str, Corrupt, str, tuple[int, int] | None, int]] = [
    # (id, corruption, drop reason, used entry handed back or None, rx_messages in the end)
    ("avail-head-eq-num", _head_eq_num, "ring_error", None, 1),
    ("desc-loop-0-1-0", _chain_loop, "ring_error", (0, 0), 1),
    ("addr-at-own-vring", _offer(lambda raw: raw.to_remote.da), "ring_error", (0, 0), 1),
    ("addr-at-rsc-table", _offer(_mem_start), "ring_error", (0, 0), 1),
    (
        "addr-at-other-used-ring",
        _offer(lambda raw: raw.from_remote.used_area[0]),
        "ring_error",
        (0, 0),
        1,
    ),
    ("addr-straddles-pool-end", _offer(lambda raw: raw.pool.end - 16), "ring_error", (0, 0), 1),
    ("addr-straddles-memory-end", _offer(lambda raw: _mem_end(raw) - 16), "ring_error", (0, 0), 1),
    ("addr-past-memory", _offer(_mem_end), "ring_error", (0, 0), 1),
    ("addr-64-bit", _offer(lambda raw: 1 << 40), "ring_error", (0, 0), 1),
    ("len-huge", _offer(lambda raw: raw.pool.da, 0xFFFFFFFF), "ring_error", (0, 0), 1),
    ("indirect", _offer(lambda raw: raw.pool.da, 16, F_INDIRECT), "ring_error", (0, 0), 1),
    ("desc-len-15", _message(b"", 15), "short_buffer", (0, 15), 1),
    ("hdr-len-over-desc", _message(b"abcd", 20, hdr_len=200), "bad_length", (0, 20), 1),
    ("ns-bad-flags", _message(NS_BAD_FLAGS, 56, dst=NS_ADDR), "bad_ns", (0, 56), 2),
    ("ns-len-39", _message(NS_SHORT, 55, dst=NS_ADDR), "bad_ns", (0, 55), 2),
]


def assert_only_used_ring_written(raw: RawHost, before: list[tuple[int, bytes]]) -> None:
    """The remote wrote nothing but vq 1's used ring: not the table, the other ring, the pool."""
    assert changed_outside(before, snapshot(raw.transport), [raw.to_remote.used_area]) == []


@pytest.mark.parametrize(
    ("corrupt", "reason", "given_back", "rx_messages"),
    [pytest.param(*case[1:], id=case[0]) for case in REMOTE_RX_CASES],
)
async def test_remote_survives_a_hostile_host_on_its_rx_ring(
    link: TransportLink,
    wait_until: WaitUntil,
    corrupt: Corrupt,
    reason: str,
    given_back: tuple[int, int] | None,
    rx_messages: int,
) -> None:
    async with hostile_host(link) as (remote, raw):
        ep = remote.create_endpoint()
        ring = raw.to_remote
        corrupt(raw)
        before = snapshot(raw.transport)
        raw.kick()
        await wait_until(lambda: remote.statistics().drops[reason] == 1, timeout=WAIT)
        assert_only_used_ring_written(raw, before)
        if given_back is None:
            assert ring.used_idx == 0
        else:
            assert (ring.used_idx, ring.used_elem(0)) == (1, given_back)

        n = raw.post_msg(VALID, ep.addr, b"still serving")
        before = snapshot(raw.transport)
        raw.kick()
        msg = await ep.recv(timeout=WAIT)
        assert (msg.src, msg.dst, msg.payload) == (PEER_ADDR, ep.addr, b"still serving")
        assert_only_used_ring_written(raw, before)
        assert ring.used_elem(ring.used_idx - 1) == (VALID, n)
        stats = remote.statistics()
        assert (stats.drops, stats.rx_messages) == ({**NO_DROPS, reason: 1}, rx_messages)
        assert stats.channels == 0 and not remote.closed


@pytest.mark.parametrize(
    "jump",
    [pytest.param(lambda num: num + 1, id="num+1"), pytest.param(lambda num: 0x8000, id="0x8000")],
)
async def test_remote_survives_an_avail_index_jump(
    link: TransportLink, wait_until: WaitUntil, jump: Callable[[int], int]
) -> None:
    async with hostile_host(link) as (remote, raw):
        ep = remote.create_endpoint()
        ring = raw.to_remote
        ring.avail_idx = jump(ring.num)
        before = snapshot(raw.transport)
        raw.kick()
        await wait_until(lambda: remote.statistics().drops["ring_error"] == 1, timeout=WAIT)
        assert_only_used_ring_written(raw, before)
        assert ring.used_idx == 0

        ring.avail_idx = 0  # the host comes back to its senses
        n = raw.post_msg(0, ep.addr, b"still serving")
        raw.kick()
        assert (await ep.recv(timeout=WAIT)).payload == b"still serving"
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, n))
        assert remote.statistics().drops == {**NO_DROPS, "ring_error": 1}
        assert not remote.closed


Place = Callable[[RawHost], int]
REMOTE_TX_CASES: list[tuple[str, Place, int, int, str]] = [
    # (id, address, length and flags of the one buffer the host offers on vq 0, drop reason)
    ("writable-at-own-vring", lambda raw: raw.from_remote.da, 0, F_WRITE, "ring_error"),
    ("writable-at-other-vring", lambda raw: raw.to_remote.da, 0, F_WRITE, "ring_error"),
    ("writable-at-rsc-table", _mem_start, 0, F_WRITE, "ring_error"),
    ("writable-straddles-pool-end", lambda raw: raw.pool.end - 64, 0, F_WRITE, "ring_error"),
    ("writable-straddles-memory-end", lambda raw: _mem_end(raw) - 64, 0, F_WRITE, "ring_error"),
    ("read-only", lambda raw: raw.pool.da, 0, 0, "short_buffer"),
    ("too-small", lambda raw: raw.pool.da, 16 + 6, F_WRITE, "short_buffer"),
]


@pytest.mark.parametrize(
    ("addr", "length", "flags", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in REMOTE_TX_CASES],
)
async def test_remote_never_writes_outside_a_valid_host_buffer(
    link: TransportLink, addr: Place, length: int, flags: int, reason: str
) -> None:
    """``length`` 0 stands for a whole buffer."""
    async with hostile_host(link) as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ring.set_desc(0, addr(raw), length or raw.buffer_size, flags)
        ring.post(0)
        before = snapshot(raw.transport)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"7bytes!")
        assert changed_outside(before, snapshot(raw.transport), [ring.used_area]) == []
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, 0))  # refused, handed back empty
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}
        assert remote.statistics().tx_messages == 0

        good = raw.buf(2)
        ring.set_desc(2, good, raw.buffer_size, F_WRITE)
        ring.post(2)
        before = snapshot(raw.transport)
        ep.try_send_to(0x400, b"7bytes!")
        written = [ring.used_area, (good, good + 23)]
        assert changed_outside(before, snapshot(raw.transport), written) == []
        message = raw.transport.memory.view(good, 23).tobytes()
        assert message == HDR.pack(ep.addr, 0x400, 0, 7, 0) + b"7bytes!"
        assert (ring.used_idx, ring.used_elem(1)) == (2, (2, 23))
        assert remote.statistics().tx_messages == 1


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda ring: ring.set_avail_entry(0, ring.num), id="head-eq-num"),
        pytest.param(lambda ring: setattr(ring, "avail_idx", ring.num + 1), id="jump"),
    ],
)
async def test_remote_tx_ring_index_corruption(
    link: TransportLink, corrupt: Callable[[RawRing], None]
) -> None:
    async with hostile_host(link) as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ring.avail_idx = 1
        corrupt(ring)
        before = snapshot(raw.transport)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"x")
        assert changed_outside(before, snapshot(raw.transport), [ring.used_area]) == []
        assert ring.used_idx == 0
        assert remote.statistics().drops == {**NO_DROPS, "ring_error": 1}
        assert not remote.closed
