"""A hostile peer: one end of a link with no bus on it, writing the shared rings by hand.

It packs the kernel's structures itself (include/uapi/linux/virtio_ring.h,
drivers/rpmsg/virtio_rpmsg_bus.c) at the offsets of the legacy vring layout
(:class:`transports.virtio.VringLayout`), in the transport's own ``memory`` at the vrings its
``vdev`` entry names, and kicks through the transport: it can write anything, exactly as a
buggy or malicious peer on any backend could. Nothing here trusts or reuses the ring code
under test.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conftest import WrappedEnd

from rpmsg import RpmsgBus
from transports import Transport
from transports.virtio import (
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_RPMSG_F_NS,
    VringLayout,
)

from .links import TransportLink
from .support import WAIT

U16 = struct.Struct("<H")
#: struct vring_desc { le64 addr; le32 len; le16 flags; le16 next; }
DESC = struct.Struct("<QIHH")
#: struct vring_used_elem { le32 id; le32 len; }
USED_ELEM = struct.Struct("<II")
#: struct rpmsg_hdr { le32 src; le32 dst; le32 reserved; le16 len; le16 flags; }
HDR = struct.Struct("<IIIHH")
#: struct rpmsg_ns_msg { char name[32]; le32 addr; le32 flags; }
NS_MSG = struct.Struct("<32sII")
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
#: The hostile peer's own rpmsg address.
PEER_ADDR = 0x401


class RawRing:
    """One split vring of ``transport``'s vdev, field by field, nothing validated."""

    def __init__(self, transport: Transport, index: int) -> None:
        info = transport.vdev.vring(index)
        self.num = info.num
        self.da = info.da
        self.layout = VringLayout(info.num, info.align)
        self.mem = transport.memory.view(info.da, self.layout.size)

    def desc(self, i: int) -> tuple[int, int, int, int]:
        """``(addr, len, flags, next)`` of descriptor ``i``."""
        return DESC.unpack_from(self.mem, self.layout.desc + DESC.size * i)

    def set_desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        DESC.pack_into(self.mem, self.layout.desc + DESC.size * i, addr, length, flags, nxt)

    def _u16(self, off: int) -> int:
        value: int = U16.unpack_from(self.mem, off)[0]
        return value

    @property
    def avail_idx(self) -> int:
        return self._u16(self.layout.avail + 2)

    @avail_idx.setter
    def avail_idx(self, value: int) -> None:
        U16.pack_into(self.mem, self.layout.avail + 2, value & 0xFFFF)

    def avail_entry(self, k: int) -> int:
        return self._u16(self.layout.avail_ring + 2 * (k % self.num))

    def set_avail_entry(self, k: int, head: int) -> None:
        U16.pack_into(self.mem, self.layout.avail_ring + 2 * (k % self.num), head)

    def post(self, head: int) -> None:
        """Offer descriptor ``head`` in the next avail slot."""
        self.set_avail_entry(self.avail_idx, head)
        self.avail_idx += 1

    @property
    def used_idx(self) -> int:
        return self._u16(self.layout.used + 2)

    @used_idx.setter
    def used_idx(self, value: int) -> None:
        U16.pack_into(self.mem, self.layout.used + 2, value & 0xFFFF)

    def used_elem(self, k: int) -> tuple[int, int]:
        return USED_ELEM.unpack_from(
            self.mem, self.layout.used_ring + USED_ELEM.size * (k % self.num)
        )

    def set_used_elem(self, k: int, head: int, length: int) -> None:
        off = self.layout.used_ring + USED_ELEM.size * (k % self.num)
        USED_ELEM.pack_into(self.mem, off, head, length)

    @property
    def used_area(self) -> tuple[int, int]:
        """``[start, end)`` device addresses of the used ring (device-written)."""
        return self.da + self.layout.used, self.da + self.layout.size


def write_msg(
    transport: Transport,
    addr: int,
    src: int,
    dst: int,
    payload: bytes,
    hdr_len: int | None = None,
) -> int:
    """An rpmsg header (claiming ``hdr_len`` payload bytes, default the real length) and the
    payload at device address ``addr``; returns the bytes written."""
    n = HDR.size + len(payload)
    view = transport.memory.view(addr, n)
    HDR.pack_into(view, 0, src, dst, 0, len(payload) if hdr_len is None else hdr_len, 0)
    view[HDR.size :] = payload
    return n


def ns_msg(name: bytes, addr: int, flags: int) -> bytes:
    """A name-service message with any name bytes, address and flags."""
    return NS_MSG.pack(name, addr, flags)


def memory_span(transport: Transport) -> tuple[int, int]:
    """The lowest and one past the highest device address of shared memory."""
    regions = list(transport.memory)
    return min(r.da for r in regions), max(r.end for r in regions)


Snapshot = list[tuple[int, bytes]]


def snapshot(transport: Transport) -> Snapshot:
    return [(r.da, bytes(r.mem)) for r in transport.memory]


def changed_outside(before: Snapshot, after: Snapshot, allowed: list[tuple[int, int]]) -> list[int]:
    """Device addresses whose byte changed outside the ``allowed`` ``[start, end)`` ranges
    (the first 16; empty: the peer wrote only where it may)."""
    changed: list[int] = []
    for (da, old), (_, new) in zip(before, after, strict=True):
        if old == new:
            continue
        a, b = bytearray(old), bytearray(new)
        for start, end in allowed:
            lo, hi = max(start - da, 0), min(end - da, len(a))
            if lo < hi:
                a[lo:hi] = b[lo:hi] = bytes(hi - lo)
        changed += [da + i for i in range(len(a)) if a[i] != b[i]][:16]
    return changed


class RawRemote:
    """The remote's side of vq 0 (remote -> host) by hand, against a host bus: it takes the
    host's empty rx buffers and gives them back holding whatever it likes."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.ring = RawRing(transport, 0)
        self.buffer_size = transport.buffer_size
        self.taken = 0  # next avail slot to take
        self.used = 0  # next used slot to fill

    def take(self) -> tuple[int, int]:
        """The next buffer the host posted: ``(head, addr)``."""
        assert self.ring.avail_idx != self.taken & 0xFFFF, "the host posted nothing"
        head = self.ring.avail_entry(self.taken)
        self.taken += 1
        addr, length, flags, _ = self.ring.desc(head)
        assert (length, flags) == (self.buffer_size, F_WRITE)
        return head, addr

    def give(self, head: int, length: int) -> None:
        self.ring.set_used_elem(self.used, head, length)
        self.used += 1
        self.ring.used_idx = self.used

    def send(
        self,
        dst: int,
        payload: bytes,
        *,
        hdr_len: int | None = None,
        used_len: int | None = None,
    ) -> None:
        head, addr = self.take()
        n = write_msg(self.transport, addr, PEER_ADDR, dst, payload, hdr_len)
        self.give(head, n if used_len is None else used_len)

    @property
    def posted(self) -> int:
        """How many rx buffers the host has on offer right now."""
        return (self.ring.avail_idx - self.taken) & 0xFFFF

    def never_posted(self) -> int | None:
        """A descriptor id the host has not posted (None: every id is on offer)."""
        offered = {self.ring.avail_entry(k) for k in range(self.taken, self.ring.avail_idx)}
        return min(set(range(self.ring.num)) - offered, default=None)

    def kick(self) -> None:
        self.transport.kick(0)


class RawHost:
    """The host's side by hand, against a remote bus. It starts the remote as a real driver
    does (Linux's rpmsg_probe): negotiates in the vdev entry, posts a receive buffer on vq 0
    (pool buffer 0, where a host's buffers start), sets DRIVER_OK and kicks vq 0. That is what
    every backend's remote starts on: a shared vdev entry shows the status, a vhost-user
    backend (whose frontend has no status byte to share) takes the kick after enabling both
    vrings as DRIVER_OK, and a remote that knows no pool derives its buffer window from that
    first buffer. Once the remote runs, :meth:`take_back_primer` empties vq 0 again; after that
    the raw host posts whatever descriptors it likes on both rings. ``primer=False``: nothing
    is posted before DRIVER_OK (a host that leaves a pool-less remote no window)."""

    def __init__(self, transport: Transport, *, primer: bool = True) -> None:
        assert transport.pool is not None
        self.transport = transport
        self.pool = transport.pool
        self.buffer_size = transport.buffer_size
        self.to_remote = RawRing(transport, 1)  # vq 1: host -> remote
        self.from_remote = RawRing(transport, 0)  # vq 0: remote -> host
        vdev = transport.vdev
        vdev.gfeatures = vdev.dfeatures & (1 << VIRTIO_RPMSG_F_NS)
        if primer:
            self.from_remote.set_desc(0, self.buf(0), self.buffer_size, F_WRITE)
            self.from_remote.post(0)
        vdev.status = (
            VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK
        )
        transport.kick(0)

    def take_back_primer(self) -> None:
        """Withdraw the receive buffer the remote started on (it has not used it: it sent
        nothing), so vq 0 is as new."""
        ring = self.from_remote
        assert ring.used_idx == 0, "the remote used the primer"
        ring.avail_idx = 0
        ring.set_avail_entry(0, 0)
        ring.set_desc(0, 0, 0)

    def buf(self, i: int) -> int:
        """Device address of the pool's ``i``-th buffer."""
        return self.pool.da + i * self.buffer_size

    def post_msg(self, head: int, dst: int, payload: bytes) -> int:
        """A message in pool buffer ``head``, offered on vq 1 with descriptor ``head``;
        returns its length."""
        n = write_msg(self.transport, self.buf(head), PEER_ADDR, dst, payload)
        self.to_remote.set_desc(head, self.buf(head), n)
        self.to_remote.post(head)
        return n

    def kick(self) -> None:
        self.transport.kick(1)


@asynccontextmanager
async def hostile_remote(link: TransportLink) -> AsyncIterator[tuple[RpmsgBus, RawRemote]]:
    """A host bus on one end of a fresh link; the other end is a :class:`RawRemote`."""
    async with link.transports() as ends, RpmsgBus(ends.host, name="host") as host:
        yield host, RawRemote(ends.remote)


@asynccontextmanager
async def hostile_host(
    link: TransportLink, *, pool: bool = True, rx_first: bool = True
) -> AsyncIterator[tuple[RpmsgBus, RawHost]]:
    """A remote bus on one end of a fresh link, started by a :class:`RawHost` on the other.

    The raw host posts pool buffer 0 on vq 0 before DRIVER_OK, as Linux posts its rx buffers,
    unless ``rx_first`` is False. With ``pool`` (the default) it takes that buffer back once
    the remote runs, so each test starts from empty rings. ``pool=False``: the remote's end
    hides the buffer pool (as a firmware's transport knows none, like a vhost-user backend),
    so the remote derives its buffer window from that first buffer, which stays posted.
    """
    async with link.transports() as ends:
        raw = RawHost(ends.host, primer=rx_first)
        end: Transport = ends.remote if pool else WrappedEnd(ends.remote, pool=None)
        async with RpmsgBus(end, name="remote", ready_timeout=WAIT) as remote:
            if pool and rx_first:
                raw.take_back_primer()
            yield remote, raw
