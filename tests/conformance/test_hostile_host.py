"""A remote bus against a hostile host (tests/conformance/rawpeer.py) on every backend.

On its receive ring (vq 1): each bad avail entry, descriptor, buffer address, length or
name-service message is counted under its reason, the remote writes nothing but vq 1's used
ring, hands back what it can and still receives a valid message afterwards. On its send ring
(vq 0): a buffer it may not write is refused (NoBufferError, counted) and handed back
untouched, and a valid buffer offered next is used.

A remote whose transport knows no buffer pool (a firmware's) derives its buffer window from the
first buffer the host posted on vq 0 before DRIVER_OK, up to the end of that buffer's memory
region, and must refuse the same buffers with it (``derived-window`` variants). The window may
run past the pool (up to the end of the region): buffers straddling the pool's end are then
inside it, so those cases only run with the pool.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
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

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

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


#: Cases whose buffer lies inside a derived window (module doc): run with the pool only.
WINDOW_ENDS_WITH_MEMORY = {"addr-straddles-pool-end", "writable-straddles-pool-end"}


@pytest.mark.parametrize(
    ("corrupt", "reason", "given_back", "rx_messages", "pool"),
    [
        pytest.param(*case[1:], pool, id=f"{case[0]}-{'pool' if pool else 'derived-window'}")
        for pool in (True, False)
        for case in REMOTE_RX_CASES
        if pool or case[0] not in WINDOW_ENDS_WITH_MEMORY
    ],
)
async def test_remote_survives_a_hostile_host_on_its_rx_ring(
    link: TransportLink,
    wait_until: WaitUntil,
    corrupt: Corrupt,
    reason: str,
    given_back: tuple[int, int] | None,
    rx_messages: int,
    pool: bool,
) -> None:
    """Without a pool too (regression: the remote then took any buffer inside shared memory,
    the vrings and the resource table included)."""
    async with hostile_host(link, pool=pool) as (remote, raw):
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
        await anyio.sleep(0.02)  # no spinning, no recount without a new notification
        assert remote.statistics().drops == {**NO_DROPS, "ring_error": 1}
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


WINDOW_CASES = [
    case
    for case in REMOTE_TX_CASES
    if case[4] == "ring_error" and case[0] not in WINDOW_ENDS_WITH_MEMORY
]


@pytest.mark.parametrize(
    ("addr", "length", "flags", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in WINDOW_CASES],
)
async def test_a_remote_without_a_pool_sends_only_into_its_derived_window(
    link: TransportLink, addr: Place, length: int, flags: int, reason: str
) -> None:
    """The window runs from the first buffer the host posted on vq 0 before DRIVER_OK to the
    end of its memory region: buffers there are used (the pool's last one too), anything else
    is a counted ring error and is handed back untouched."""
    async with hostile_host(link, pool=False) as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ep.try_send_to(0x400, b"first")  # into the buffer posted before DRIVER_OK
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, HDR.size + 5))
        assert raw.transport.memory.view(raw.buf(0) + HDR.size, 5).tobytes() == b"first"
        ring.set_desc(1, addr(raw), length or raw.buffer_size, flags)
        ring.post(1)
        before = snapshot(raw.transport)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"7bytes!")
        assert changed_outside(before, snapshot(raw.transport), [ring.used_area]) == []
        assert (ring.used_idx, ring.used_elem(1)) == (2, (1, 0))
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}
        last = raw.buf(raw.pool.size // raw.buffer_size - 1)  # inside the window
        ring.set_desc(2, last, raw.buffer_size, F_WRITE)
        ring.post(2)
        ep.try_send_to(0x400, b"last")
        assert (ring.used_idx, ring.used_elem(2)) == (3, (2, HDR.size + 4))
        assert remote.statistics().tx_messages == 2


async def test_a_remote_without_a_pool_whose_host_posted_nothing_has_no_window(
    link: TransportLink, wait_until: WaitUntil
) -> None:
    """A host that set DRIVER_OK before posting any buffer on vq 0 leaves no window to derive:
    every buffer it offers, either way, is then a counted ring error, never used."""
    async with hostile_host(link, pool=False, rx_first=False) as (remote, raw):
        last_error = remote.statistics().last_ring_error
        assert last_error is not None and "no buffer window" in last_error
        ep = remote.create_endpoint()
        raw.from_remote.set_desc(0, raw.buf(0), raw.buffer_size, F_WRITE)
        raw.from_remote.post(0)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"x")
        raw.post_msg(1, ep.addr, b"not taken")
        raw.kick()
        await wait_until(lambda: remote.statistics().drops["ring_error"] == 2, timeout=WAIT)
        assert ep.try_recv() is None and remote.statistics().rx_messages == 0
