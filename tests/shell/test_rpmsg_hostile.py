"""A real RpmsgBus against a hostile peer that writes raw bytes straight into shared memory.

The peer here is not our VringDevice / VringDriver: it packs the kernel's structures by hand
(include/uapi/linux/virtio_ring.h, include/linux/rpmsg/...) at the offsets of the legacy vring
layout, so it can write anything, then kicks through the other loopback end. For every kind of
corruption the bus must count it (exact reason and value), keep its listener alive, keep serving
a valid message afterwards, recycle buffers it can identify, and never write outside the areas
a peer in its role may write.

Layout SharedLayout(num=8, buffer_count=8): the host carves 8 buffers of 512 bytes from the pool,
posts 4 (descriptor ids 0..3) writable on vq 0 and keeps 4 for sending on vq 1, so ids 4..7 of
vq 0 are never in flight.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from conftest import WrappedEnd

from rpmsg import NoBufferError, NsFlags, RpmsgBus
from rpmsg.wire import pack_ns
from transports import LoopbackTransport, SharedLayout, Transport, VringLayout, loopback_pair

# Every test here runs with the pure vring classes and with the C accelerator's (conftest).
pytestmark = pytest.mark.usefixtures("vring_impl")

U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
DESC = struct.Struct("<QIHH")  # struct vring_desc { le64 addr; le32 len; le16 flags; le16 next; }
USED_ELEM = struct.Struct("<II")  # struct vring_used_elem { le32 id; le32 len; }
HDR = struct.Struct("<IIIHH")  # struct rpmsg_hdr { src; dst; reserved; len; flags; }
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4

LAYOUT = SharedLayout(num=8, buffer_count=8)
NUM = 8
BUF = 512
HOST_RX_POSTED = 4
# resource_table {ver, num, reserved[2], offset[1]} = 20 bytes, then fw_rsc_hdr.type (4), then
# fw_rsc_vdev {id 24, notifyid 28, dfeatures 32, gfeatures 36, config_len 40, status 44, ...}
GFEATURES_OFF = 36
STATUS_OFF = 44
ACK_DRIVER_DRIVER_OK = 0x01 | 0x02 | 0x04
NO_DROPS = {
    "ring_error": 0,
    "short_buffer": 0,
    "bad_length": 0,
    "unknown_dst": 0,
    "queue_full": 0,
    "bad_ns": 0,
    "callback_error": 0,
}
assert LAYOUT.base_da == 0  # device addresses below are offsets into the link's bytearray


class RawRing:
    """Field access to one legacy split vring in a bytearray, nothing validated."""

    def __init__(self, mem: bytearray, offset: int, layout: VringLayout) -> None:
        self.mem = mem
        self.off = offset
        self.lay = layout

    def set_desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        DESC.pack_into(self.mem, self.off + self.lay.desc + DESC.size * i, addr, length, flags, nxt)

    def desc(self, i: int) -> tuple[int, int, int, int]:
        return DESC.unpack_from(self.mem, self.off + self.lay.desc + DESC.size * i)

    @property
    def avail_idx(self) -> int:
        return U16.unpack_from(self.mem, self.off + self.lay.avail + 2)[0]

    @avail_idx.setter
    def avail_idx(self, value: int) -> None:
        U16.pack_into(self.mem, self.off + self.lay.avail + 2, value & 0xFFFF)

    def avail_entry(self, k: int) -> int:
        return U16.unpack_from(self.mem, self.off + self.lay.avail_ring + 2 * (k % NUM))[0]

    def set_avail_entry(self, k: int, head: int) -> None:
        U16.pack_into(self.mem, self.off + self.lay.avail_ring + 2 * (k % NUM), head)

    @property
    def used_idx(self) -> int:
        return U16.unpack_from(self.mem, self.off + self.lay.used + 2)[0]

    @used_idx.setter
    def used_idx(self, value: int) -> None:
        U16.pack_into(self.mem, self.off + self.lay.used + 2, value & 0xFFFF)

    def used_elem(self, k: int) -> tuple[int, int]:
        return USED_ELEM.unpack_from(self.mem, self.off + self.lay.used_ring + 8 * (k % NUM))

    def set_used_elem(self, k: int, head: int, length: int) -> None:
        USED_ELEM.pack_into(self.mem, self.off + self.lay.used_ring + 8 * (k % NUM), head, length)

    @property
    def used_area(self) -> tuple[int, int]:
        """``[start, end)`` of the used ring (flags, idx, ring, avail_event): device-written."""
        return self.off + self.lay.used, self.off + self.lay.size


def untouched(before: bytes, after: bytes, allowed: list[tuple[int, int]]) -> list[int]:
    """Offsets that changed outside the ``allowed`` ranges (empty: the bus behaved)."""
    return [
        i
        for i in range(len(before))
        if before[i] != after[i] and not any(a <= i < b for a, b in allowed)
    ]


def write_msg(mem: bytearray, addr: int, src: int, dst: int, payload: bytes, hdr_len=None) -> int:
    length = len(payload) if hdr_len is None else hdr_len
    HDR.pack_into(mem, addr, src, dst, 0, length, 0)
    mem[addr + 16 : addr + 16 + len(payload)] = payload
    return 16 + len(payload)


# -- a hostile remote against a host bus --------------------------------------------------------


class RawRemote:
    """The device side of vq 0 (remote -> host), by hand."""

    def __init__(self, link_buffer: bytearray, transport: LoopbackTransport) -> None:
        self.mem = link_buffer
        self.ring = RawRing(link_buffer, LAYOUT.vring_offsets[0], LAYOUT.vring_layout)
        self.transport = transport
        self.taken = 0  # next avail slot to take
        self.used = 0  # next used slot to fill

    def take(self) -> tuple[int, int]:
        assert self.ring.avail_idx != self.taken & 0xFFFF, "the host posted nothing"
        head = self.ring.avail_entry(self.taken)
        self.taken += 1
        addr, length, flags, _ = self.ring.desc(head)
        assert (length, flags) == (BUF, F_WRITE)
        return head, addr

    def give(self, head: int, length: int) -> None:
        self.ring.set_used_elem(self.used, head, length)
        self.used += 1
        self.ring.used_idx = self.used

    def send(self, src: int, dst: int, payload: bytes, *, hdr_len=None, used_len=None) -> None:
        head, addr = self.take()
        n = write_msg(self.mem, addr, src, dst, payload, hdr_len)
        self.give(head, n if used_len is None else used_len)

    def kick(self) -> None:
        self.transport.kick(0)


@asynccontextmanager
async def hostile_remote() -> AsyncIterator[tuple[RpmsgBus, RawRemote]]:
    host_t, remote_t = loopback_pair(LAYOUT)
    async with RpmsgBus(host_t, name="host") as host:
        yield host, RawRemote(host_t.link.buffer, remote_t)


def ns_raw(name: bytes, addr: int, flags: int) -> bytes:
    return name.ljust(32, b"\0") + U32.pack(addr) + U32.pack(flags)


def _send(payload: bytes, *, dst: int = 1024, **kw: int) -> Callable[[RawRemote], None]:
    return lambda raw: raw.send(0x401, dst, payload, **kw)


def _give(head: int) -> Callable[[RawRemote], None]:
    return lambda raw: raw.give(head, 16)


NS_SVC = pack_ns("svc", 0x401, NsFlags.CREATE)
HOST_CASES: list[tuple[str, Callable[[RawRemote], None], str, int]] = [
    # (id, corruption, drop reason, host rx_messages afterwards including the valid one)
    ("used-id-eq-num", _give(NUM), "ring_error", 1),
    ("used-id-huge", _give(0xFFFFFFFF), "ring_error", 1),
    ("used-id-not-in-flight", _give(5), "ring_error", 1),
    ("used-len-over-buffer", _send(b"x", used_len=BUF + 1), "ring_error", 1),
    ("used-len-huge", _send(b"x", used_len=0xFFFFFFFF), "ring_error", 1),
    ("hdr-len-over-used-len", _send(b"abcd", hdr_len=5), "bad_length", 1),
    ("hdr-len-over-buffer", _send(b"", hdr_len=497, used_len=BUF), "bad_length", 1),
    ("hdr-len-max", _send(b"", hdr_len=0xFFFF, used_len=BUF), "bad_length", 1),
    ("used-len-15", _send(b"", used_len=15), "short_buffer", 1),
    ("used-len-0", _send(b"", used_len=0), "short_buffer", 1),
    ("ns-len-39", _send(NS_SVC[:39], dst=53), "bad_ns", 2),
    ("ns-len-41", _send(NS_SVC + b"\0", dst=53), "bad_ns", 2),
    ("ns-empty-name", _send(ns_raw(b"", 0x401, 0), dst=53), "bad_ns", 2),
    ("ns-non-ascii", _send(ns_raw(b"sv\xc3\xa9", 0x401, 0), dst=53), "bad_ns", 2),
    ("ns-bad-flags", _send(ns_raw(b"svc", 0x401, 2), dst=53), "bad_ns", 2),
    ("ns-addr-any", _send(ns_raw(b"svc", 0xFFFFFFFF, 0), dst=53), "bad_ns", 2),
]


@pytest.mark.parametrize(
    ("corrupt", "reason", "rx_messages"),
    [pytest.param(*case[1:], id=case[0]) for case in HOST_CASES],
)
async def test_host_survives_hostile_remote(wait_until, corrupt, reason, rx_messages) -> None:
    async with hostile_remote() as (host, raw):
        ep = host.create_endpoint()
        corrupt(raw)
        raw.kick()
        await wait_until(lambda: host.statistics().drops[reason] == 1)

        raw.send(0x401, ep.addr, b"still serving")
        raw.kick()
        msg = await ep.recv(timeout=2)
        assert (msg.src, msg.dst, msg.payload) == (0x401, 1024, b"still serving")
        stats = host.statistics()
        assert stats.drops == {**NO_DROPS, reason: 1}
        assert stats.rx_messages == rx_messages
        assert (stats.last_ring_error is not None) == (reason == "ring_error")
        assert stats.channels == 0 and not host.closed
        # Every buffer the host could identify went back on the ring: 4 still posted.
        assert (raw.ring.avail_idx - raw.taken) & 0xFFFF == HOST_RX_POSTED
        # ... and sending still works (the listener and the tx path are healthy).
        await ep.send_to(0x401, b"reply", timeout=1)


@pytest.mark.parametrize("jump", [NUM + 1, 100, 0xFFFF])
async def test_host_survives_used_idx_jump(wait_until, jump) -> None:
    async with hostile_remote() as (host, raw):
        ep = host.create_endpoint()
        raw.ring.used_idx = raw.used + jump  # claims more entries than the ring has
        raw.kick()
        await wait_until(lambda: host.statistics().drops["ring_error"] == 1)
        await anyio.sleep(0.02)  # no spinning, no recount without a new notification
        assert host.statistics().drops == {**NO_DROPS, "ring_error": 1}

        raw.ring.used_idx = raw.used  # the peer comes back to its senses
        raw.send(0x401, ep.addr, b"still serving")
        raw.kick()
        assert (await ep.recv(timeout=2)).payload == b"still serving"
        assert host.statistics().drops == {**NO_DROPS, "ring_error": 1}
        assert host.statistics().rx_messages == 1
        assert (raw.ring.avail_idx - raw.taken) & 0xFFFF == HOST_RX_POSTED


# -- a hostile host against a remote bus --------------------------------------------------------


class RawHost:
    """The driver side, by hand: negotiates in the vdev entry, posts on both rings."""

    def __init__(self, link_buffer: bytearray, transport: LoopbackTransport) -> None:
        self.mem = link_buffer
        v0, v1 = LAYOUT.vring_offsets
        self.to_remote = RawRing(link_buffer, v1, LAYOUT.vring_layout)  # vq 1
        self.from_remote = RawRing(link_buffer, v0, LAYOUT.vring_layout)  # vq 0
        self.transport = transport
        U32.pack_into(link_buffer, GFEATURES_OFF, 1)  # VIRTIO_RPMSG_F_NS accepted
        link_buffer[STATUS_OFF] = ACK_DRIVER_DRIVER_OK

    @staticmethod
    def buf(i: int) -> int:
        return LAYOUT.pool_offset + i * BUF

    @staticmethod
    def post(ring: RawRing, head: int) -> None:
        ring.set_avail_entry(ring.avail_idx, head)
        ring.avail_idx += 1

    def post_msg(self, head: int, src: int, dst: int, payload: bytes) -> int:
        n = write_msg(self.mem, self.buf(head), src, dst, payload)
        self.to_remote.set_desc(head, self.buf(head), n)
        self.post(self.to_remote, head)
        return n

    def kick(self) -> None:
        self.transport.kick(1)


@asynccontextmanager
async def hostile_host(
    *, pool: bool = True, rx_first: bool = True
) -> AsyncIterator[tuple[RpmsgBus, RawHost]]:
    """A remote bus against a raw host. ``pool=False``: the remote's transport knows no pool;
    the raw host then posts one rx buffer (pool buffer 0, on vq 0) before the remote starts,
    as Linux posts its rx buffers before DRIVER_OK, unless ``rx_first`` is False."""
    host_t, remote_t = loopback_pair(LAYOUT)
    raw = RawHost(host_t.link.buffer, host_t)
    assert (remote_t.vdev.status, remote_t.vdev.gfeatures) == (7, 1)  # hand offsets are right
    end: Transport = remote_t
    if not pool:
        end = WrappedEnd(remote_t, pool=None)  # as the simulated firmware's: no pool known
        if rx_first:
            raw.from_remote.set_desc(0, raw.buf(0), BUF, F_WRITE)
            raw.post(raw.from_remote, 0)
    async with RpmsgBus(end, name="remote", ready_timeout=2) as remote:
        yield remote, raw


def _chain_loop(raw: RawHost) -> None:
    raw.to_remote.set_desc(0, raw.buf(0), 32, F_NEXT, 1)
    raw.to_remote.set_desc(1, raw.buf(1), 32, F_NEXT, 0)
    raw.post(raw.to_remote, 0)


def _bad_addr(addr: int, length: int = 32) -> Callable[[RawHost], None]:
    def corrupt(raw: RawHost) -> None:
        raw.to_remote.set_desc(0, addr, length)
        raw.post(raw.to_remote, 0)

    return corrupt


def _bad_head(raw: RawHost) -> None:
    raw.to_remote.set_avail_entry(0, NUM)
    raw.to_remote.avail_idx = 1


def _short_desc(raw: RawHost) -> None:
    write_msg(raw.mem, raw.buf(0), 0x401, 1024, b"")
    raw.to_remote.set_desc(0, raw.buf(0), 15)
    raw.post(raw.to_remote, 0)


def _hdr_len_over_desc(raw: RawHost) -> None:
    write_msg(raw.mem, raw.buf(0), 0x401, 1024, b"abcd", hdr_len=200)
    raw.to_remote.set_desc(0, raw.buf(0), 20)
    raw.post(raw.to_remote, 0)


def _indirect(raw: RawHost) -> None:
    raw.to_remote.set_desc(0, raw.buf(0), 16, F_INDIRECT)
    raw.post(raw.to_remote, 0)


V0, V1 = LAYOUT.vring_offsets
POOL_END = LAYOUT.pool_offset + LAYOUT.pool_size
REMOTE_RX_CASES: list[tuple[str, Callable[[RawHost], None], str, tuple[int, int] | None]] = [
    # (id, corruption, drop reason, used entry the remote must give back or None)
    ("avail-head-eq-num", _bad_head, "ring_error", None),
    ("desc-loop-0-1-0", _chain_loop, "ring_error", (0, 0)),
    ("addr-at-own-vring", _bad_addr(V1), "ring_error", (0, 0)),
    ("addr-at-rsc-table", _bad_addr(0), "ring_error", (0, 0)),
    ("addr-at-other-used-ring", _bad_addr(V0 + LAYOUT.vring_layout.used), "ring_error", (0, 0)),
    ("addr-straddles-pool-end", _bad_addr(POOL_END - 16), "ring_error", (0, 0)),
    ("addr-straddles-memory-end", _bad_addr(LAYOUT.total_size - 16), "ring_error", (0, 0)),
    ("addr-past-memory", _bad_addr(LAYOUT.total_size), "ring_error", (0, 0)),
    ("addr-64-bit", _bad_addr(1 << 40), "ring_error", (0, 0)),
    ("len-huge", _bad_addr(LAYOUT.pool_offset, 0xFFFFFFFF), "ring_error", (0, 0)),
    ("indirect", _indirect, "ring_error", (0, 0)),
    ("desc-len-15", _short_desc, "short_buffer", (0, 15)),
    ("hdr-len-over-desc", _hdr_len_over_desc, "bad_length", (0, 20)),
]


# A derived window ends with the memory region of the first rx buffer, not with the pool: the
# padding after the pool (up to the 4 KiB-aligned end of the link) is inside it.
WINDOW_ENDS_WITH_MEMORY = {"addr-straddles-pool-end", "writable-desc-straddles-pool-end"}


@pytest.mark.parametrize(
    ("corrupt", "reason", "given_back", "pool"),
    [
        pytest.param(*case[1:], pool, id=f"{case[0]}-{'pool' if pool else 'derived-window'}")
        for pool in (True, False)
        for case in REMOTE_RX_CASES
        if pool or case[0] not in WINDOW_ENDS_WITH_MEMORY
    ],
)
async def test_remote_survives_hostile_host_on_its_rx_ring(
    wait_until, corrupt, reason, given_back, pool
) -> None:
    """Also without a pool from the transport: the window the remote derives from the first
    rx buffer refuses the same buffers (regression: the remote then took any buffer inside
    shared memory, the vrings and the resource table included)."""
    async with hostile_host(pool=pool) as (remote, raw):
        ep = remote.create_endpoint()
        ring = raw.to_remote
        corrupt(raw)
        before = bytes(raw.mem)
        raw.kick()
        await wait_until(lambda: remote.statistics().drops[reason] == 1)
        # The remote wrote nothing but vq 1's used ring: not the table, the other ring, the pool.
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        if given_back is None:
            assert ring.used_idx == 0
        else:
            assert (ring.used_idx, ring.used_elem(0)) == (1, given_back)

        n = raw.post_msg(3, 0x401, ep.addr, b"still serving")
        before = bytes(raw.mem)
        raw.kick()
        msg = await ep.recv(timeout=2)
        assert (msg.src, msg.dst, msg.payload) == (0x401, 1024, b"still serving")
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        used = ring.used_idx
        assert ring.used_elem(used - 1) == (3, n)
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}
        assert remote.statistics().rx_messages == 1
        assert not remote.closed


@pytest.mark.parametrize("jump", [NUM + 1, 0x8000])
async def test_remote_survives_avail_idx_jump(wait_until, jump) -> None:
    async with hostile_host() as (remote, raw):
        ep = remote.create_endpoint()
        ring = raw.to_remote
        ring.avail_idx = jump
        before = bytes(raw.mem)
        raw.kick()
        await wait_until(lambda: remote.statistics().drops["ring_error"] == 1)
        await anyio.sleep(0.02)  # no spinning, no recount without a new notification
        assert remote.statistics().drops == {**NO_DROPS, "ring_error": 1}
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        assert ring.used_idx == 0

        ring.avail_idx = 0  # the host comes back to its senses
        n = raw.post_msg(0, 0x401, ep.addr, b"still serving")
        raw.kick()
        assert (await ep.recv(timeout=2)).payload == b"still serving"
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, n))
        assert remote.statistics().drops == {**NO_DROPS, "ring_error": 1}


REMOTE_TX_CASES: list[tuple[str, int, int, int, str]] = [
    # (id, addr, len, flags of the one buffer the host offers on vq 0, drop reason)
    ("writable-desc-at-own-vring", V0, BUF, F_WRITE, "ring_error"),
    ("writable-desc-at-other-vring", V1, BUF, F_WRITE, "ring_error"),
    ("writable-desc-at-rsc-table", 0, BUF, F_WRITE, "ring_error"),
    ("writable-desc-straddles-pool-end", POOL_END - 64, BUF, F_WRITE, "ring_error"),
    ("writable-desc-straddles-memory-end", LAYOUT.total_size - 64, BUF, F_WRITE, "ring_error"),
    ("read-only-desc", LAYOUT.pool_offset, BUF, 0, "short_buffer"),
    ("desc-too-small", LAYOUT.pool_offset, 16 + 6, F_WRITE, "short_buffer"),
]


@pytest.mark.parametrize(
    ("addr", "length", "flags", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in REMOTE_TX_CASES],
)
async def test_remote_never_writes_outside_a_valid_host_buffer(addr, length, flags, reason) -> None:
    async with hostile_host() as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ring.set_desc(0, addr, length, flags)
        raw.post(ring, 0)
        before = bytes(raw.mem)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"7bytes!")
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, 0))  # refused, handed back empty
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}
        assert remote.statistics().tx_messages == 0

        good = raw.buf(2)
        ring.set_desc(2, good, BUF, F_WRITE)
        raw.post(ring, 2)
        before = bytes(raw.mem)
        ep.try_send_to(0x400, b"7bytes!")
        assert untouched(before, bytes(raw.mem), [ring.used_area, (good, good + 23)]) == []
        assert (
            bytes(raw.mem[good : good + 23])
            == bytes.fromhex("00040000 00040000 00000000 0700 0000") + b"7bytes!"
        )
        assert (ring.used_idx, ring.used_elem(1)) == (2, (2, 23))
        assert remote.statistics().tx_messages == 1


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        pytest.param(lambda ring: ring.set_avail_entry(0, NUM), "ring_error", id="head-eq-num"),
        pytest.param(lambda ring: setattr(ring, "avail_idx", NUM + 1), "ring_error", id="jump"),
    ],
)
async def test_remote_tx_ring_index_corruption(corrupt, reason) -> None:
    async with hostile_host() as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ring.avail_idx = 1
        corrupt(ring)
        before = bytes(raw.mem)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"x")
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        assert ring.used_idx == 0
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}


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
    addr, length, flags, reason
) -> None:
    """The window runs from the first rx buffer the host posted before DRIVER_OK to the end of
    its memory region: buffers there are used, anything else is a counted ring error and is
    handed back untouched."""
    async with hostile_host(pool=False) as (remote, raw):
        ring = raw.from_remote
        ep = remote.create_endpoint()
        ep.try_send_to(0x400, b"first")  # into the buffer posted before DRIVER_OK
        assert (ring.used_idx, ring.used_elem(0)) == (1, (0, 21))
        assert bytes(raw.mem[raw.buf(0) + 16 : raw.buf(0) + 21]) == b"first"
        ring.set_desc(1, addr, length, flags)
        raw.post(ring, 1)
        before = bytes(raw.mem)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"7bytes!")
        assert untouched(before, bytes(raw.mem), [ring.used_area]) == []
        assert (ring.used_idx, ring.used_elem(1)) == (2, (1, 0))
        assert remote.statistics().drops == {**NO_DROPS, reason: 1}
        last = raw.buf(HOST_RX_POSTED * 2 - 1)  # the pool's last buffer: inside the window
        ring.set_desc(2, last, BUF, F_WRITE)
        raw.post(ring, 2)
        ep.try_send_to(0x400, b"last")
        assert (ring.used_idx, ring.used_elem(2)) == (3, (2, 20))
        assert remote.statistics().tx_messages == 2


async def test_a_remote_without_a_pool_whose_host_posted_nothing_has_no_window(
    wait_until,
) -> None:
    """A host that set DRIVER_OK before posting any rx buffer leaves no window to derive:
    every buffer it offers is then a counted ring error, never used."""
    async with hostile_host(pool=False, rx_first=False) as (remote, raw):
        assert remote.statistics().last_ring_error is not None
        assert "no buffer window" in remote.statistics().last_ring_error
        ep = remote.create_endpoint()
        raw.from_remote.set_desc(0, raw.buf(0), BUF, F_WRITE)
        raw.post(raw.from_remote, 0)
        with pytest.raises(NoBufferError):
            ep.try_send_to(0x400, b"x")
        raw.post_msg(1, 0x401, ep.addr, b"not taken")
        raw.kick()
        await wait_until(lambda: remote.statistics().drops["ring_error"] == 2)
        assert ep.try_recv() is None and remote.statistics().rx_messages == 0
