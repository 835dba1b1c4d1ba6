"""The virtio split virtqueue (legacy layout) over a memoryview.

Theory of operation: a vring is three arrays in shared memory (virtio 1.x spec, 2.7 "Split
Virtqueues"; Linux include/uapi/linux/virtio_ring.h):

* the descriptor table, written by the driver: ``num`` x ``struct vring_desc``;
* the avail ring, written by the driver: ``{u16 flags; u16 idx; u16 ring[num]; u16 used_event}``;
* the used ring, written by the device, starting at the next ``align`` boundary:
  ``{u16 flags; u16 idx; struct vring_used_elem ring[num]; u16 avail_event}``.

The *driver* half (:class:`VringDriver`, the rpmsg host) posts buffers: it fills a descriptor,
puts its id in the next avail slot and bumps ``avail.idx``. The *device* half
(:class:`VringDevice`, the rpmsg remote) takes them in order, and gives them back through the
used ring with the number of bytes written. Indices are free-running u16 counters that wrap; the
slot is ``idx % num``.

Each half keeps its own shadow state (its own index, the addresses it posted) and treats
everything the other half wrote as untrusted: a descriptor id ``>= num``, an index that moved by
more than ``num``, a chain that loops or is longer than ``num``, a buffer outside the allowed
region, or a used length larger than the buffer raise :class:`RemoteProtocolError`. The error
says whether the bad entry was consumed, so the caller can count it and carry on.

Pure: no I/O, no event loop; only struct over memoryviews.

Per-message methods: ``add_message`` / ``get_message`` (driver) and ``take_message`` /
``put_message`` (device) do one rpmsg side's whole work per message; they come from
:mod:`transports.virtio.messages`, the one module here that knows the rpmsg header.

Accelerator: :class:`PyVringDriver` and :class:`PyVringDevice` below are the reference
implementation. Their per-call cost (about a microsecond for each post, take, give or get_used)
dominated the rpmsg message path, so the optional C extension ``transports._vring_accel`` (built by
``pip install`` when a compiler is available) provides drop-in equivalents: same signatures, return
values, exceptions, messages and state changes, per-message methods included, checked against these
classes by tests/unit/test_vring_accel.py. The public names :data:`VringDriver` and
:data:`VringDevice` are the C classes when the extension imports and the pure classes otherwise;
:data:`ACCELERATED` says which. Set the environment variable ``AIOAMP_PURE_PYTHON`` to a non-empty
value other than ``0`` (before this module is first imported) to force the pure classes: the
extension then refuses to import.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

import attrs

from ..errors import RemoteProtocolError, RingFullError
from .constants import (
    ENDIAN,
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    VRING_USED_F_NO_NOTIFY,
)
from .messages import DeviceMessages, DriverMessages

__all__ = [  # the ring flags, defined in .constants, are part of this module's API too
    "ACCELERATED",
    "MAX_VRING_NUM",
    "VRING_AVAIL_F_NO_INTERRUPT",
    "VRING_DESC",
    "VRING_DESC_F_INDIRECT",
    "VRING_DESC_F_NEXT",
    "VRING_DESC_F_WRITE",
    "VRING_USED_ELEM",
    "VRING_USED_F_NO_NOTIFY",
    "PyVringDevice",
    "PyVringDriver",
    "RegionCheck",
    "VringDevice",
    "VringDriver",
    "VringLayout",
    "first_posted",
    "vring_size",
]

#: struct vring_desc { __virtio64 addr; __virtio32 len; __virtio16 flags; __virtio16 next; }
VRING_DESC = struct.Struct(ENDIAN + "QIHH")
#: struct vring_used_elem { __virtio32 id; __virtio32 len; }
VRING_USED_ELEM = struct.Struct(ENDIAN + "II")
_DESC_SIZE = VRING_DESC.size
_USED_ELEM_SIZE = VRING_USED_ELEM.size


MAX_VRING_NUM = 32768
_CHAINED = VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT

# Ring indices and flags are accessed through a native-order u16 memoryview (single aligned
# stores, see _Half); that equals the little-endian wire order only on little-endian hosts.
if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
    raise ImportError("aioamp's vrings require a little-endian host")


def _is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def vring_size(num: int, align: int) -> int:
    """Bytes taken by a legacy vring, exactly as the kernel's ``vring_size()``."""
    return VringLayout(num, align).size


@attrs.frozen
class VringLayout:
    """Byte offsets of a legacy split vring of ``num`` entries aligned to ``align``.

    Mirrors ``vring_init()``: descriptors at 0, avail right after them, used at the next
    ``align`` boundary after ``avail.ring[num]`` and ``used_event``.
    """

    num: int
    align: int

    def __attrs_post_init__(self) -> None:
        if not _is_pow2(self.num) or self.num > MAX_VRING_NUM:
            raise ValueError(f"vring num {self.num} is not a power of two <= {MAX_VRING_NUM}")
        if not _is_pow2(self.align):
            raise ValueError(f"vring align {self.align} is not a power of two")

    @property
    def desc(self) -> int:
        return 0

    @property
    def avail(self) -> int:
        return VRING_DESC.size * self.num

    @property
    def avail_ring(self) -> int:
        return self.avail + 4

    @property
    def used_event(self) -> int:
        return self.avail_ring + 2 * self.num

    @property
    def used(self) -> int:
        end_of_avail = self.avail + 2 * (3 + self.num)
        return (end_of_avail + self.align - 1) & ~(self.align - 1)

    @property
    def used_ring(self) -> int:
        return self.used + 4

    @property
    def avail_event(self) -> int:
        return self.used_ring + VRING_USED_ELEM.size * self.num

    @property
    def size(self) -> int:
        return self.avail_event + 2


RegionCheck = Callable[[int, int], bool]


def _anywhere(_addr: int, _length: int) -> bool:
    return True


_U16 = struct.Struct(ENDIAN + "H")


def first_posted(mem: memoryview, layout: VringLayout) -> int | None:
    """The device address of the buffer a driver published in the first avail slot of a fresh
    ring (indices from 0), or None when it published none or the entry is invalid (an index
    moved by more than ``num``, a descriptor id ``>= num``). Read only: a device learns from
    it where the driver's buffers lie before it takes any."""
    (avail_idx,) = _U16.unpack_from(mem, layout.avail + 2)
    (head,) = _U16.unpack_from(mem, layout.avail_ring)
    if not 0 < avail_idx <= layout.num or head >= layout.num:
        return None
    addr: int = VRING_DESC.unpack_from(mem, _DESC_SIZE * head)[0]
    return addr


class _Half:
    # Hot paths index ``_m16`` (u16 words) directly with the word offsets below instead of
    # calling small helpers: a Python call per index access was a measurable share of a
    # message's cost (benchmarks/README.md).
    __slots__ = (
        "_avail_flags",
        "_avail_idx",
        "_avail_ring",
        "_m16",
        "_mask",
        "_mem",
        "_used_flags",
        "_used_idx",
        "_used_ring",
        "_w_avail_flags",
        "_w_avail_idx",
        "_w_avail_ring",
        "_w_used_flags",
        "_w_used_idx",
        "layout",
        "num",
    )

    def __init__(self, mem: memoryview, layout: VringLayout) -> None:
        if mem.nbytes < layout.size:
            raise ValueError(f"vring memory of {mem.nbytes} bytes < layout size {layout.size}")
        self._mem = mem
        # Indices and flags change under the peer's feet: access them as single aligned u16
        # loads and stores. struct.pack_into zeroes its target before writing, so a peer
        # reading concurrently could see a transient 0 (e.g. avail.idx jumping to 0).
        self._m16 = mem[: layout.size].cast("B").cast("H")
        self.layout = layout
        self.num = layout.num
        self._mask = layout.num - 1  # num is a power of two: idx % num == idx & mask
        self._avail_flags = layout.avail
        self._avail_idx = layout.avail + 2
        self._avail_ring = layout.avail_ring
        self._used_flags = layout.used
        self._used_idx = layout.used + 2
        self._used_ring = layout.used_ring
        # The same offsets in u16 words (every one of them is even).
        self._w_avail_flags = layout.avail >> 1
        self._w_avail_idx = self._w_avail_flags + 1
        self._w_avail_ring = layout.avail_ring >> 1
        self._w_used_flags = layout.used >> 1
        self._w_used_idx = self._w_used_flags + 1

    def _read16(self, off: int) -> int:
        value: int = self._m16[off >> 1]
        return value

    def _write16(self, off: int, value: int) -> None:
        self._m16[off >> 1] = value


class PyVringDriver(_Half, DriverMessages):
    """The driver side: posts buffers on the avail ring, reclaims them from the used ring.

    Args:
        mem: the vring's memory (at least ``layout.size`` bytes).
        layout: its geometry.
        reset: zero the ring first (a new session never trusts stale contents).
        start_index: initial value of both free-running indices (used by tests to cross the
            u16 wrap quickly; a fresh ring starts at 0).
    """

    __slots__ = ("_addr", "_free", "_in_flight", "_last_used", "_len", "_next_avail", "_write")

    def __init__(
        self,
        mem: memoryview,
        layout: VringLayout,
        *,
        reset: bool = True,
        start_index: int = 0,
    ) -> None:
        super().__init__(mem, layout)
        num = layout.num
        if reset:
            mem[: layout.size] = bytes(layout.size)
            self._write16(self._avail_idx, start_index & 0xFFFF)
            self._write16(self._used_idx, start_index & 0xFFFF)
        self._next_avail = start_index & 0xFFFF
        self._last_used = start_index & 0xFFFF
        # Free descriptor ids as a stack: id 0 is handed out first, reclaimed ids are reused
        # first (the kernel's free-list order).
        self._free = list(range(num - 1, -1, -1))
        self._in_flight = bytearray(num)
        self._addr = [0] * num
        self._len = [0] * num
        self._write = bytearray(num)

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_in_flight(self) -> int:
        return self.num - len(self._free)

    def post(self, addr: int, length: int, *, writable: bool) -> int:
        """Make one buffer available to the device; returns its descriptor id.

        Raises:
            RingFullError: every descriptor is in flight.
        """
        free = self._free
        if not free:
            raise RingFullError(f"all {self.num} descriptors are in flight")
        head = free.pop()
        VRING_DESC.pack_into(
            self._mem, _DESC_SIZE * head, addr, length, VRING_DESC_F_WRITE if writable else 0, 0
        )
        self._addr[head] = addr
        self._len[head] = length
        self._write[head] = writable
        self._in_flight[head] = 1
        idx = self._next_avail
        m16 = self._m16
        m16[self._w_avail_ring + (idx & self._mask)] = head
        idx = (idx + 1) & 0xFFFF
        self._next_avail = idx
        # Publish the index last: the device must see the slot before it sees the new idx.
        m16[self._w_avail_idx] = idx
        return head

    def has_used(self) -> bool:
        return bool(self._m16[self._w_used_idx] != self._last_used)

    def get_used(self) -> tuple[int, int, int] | None:
        """Reclaim the next used buffer: ``(id, addr, used_len)``, or None if none is pending.

        The address and length come from our own shadow copy, never from shared memory.

        Raises:
            RemoteProtocolError: the used index jumped (``consumed=False``: the entry is left in
                place), or the entry names a descriptor that is out of range, not in flight, or
                claims more bytes than the buffer holds (``consumed=True``).
        """
        used_idx: int = self._m16[self._w_used_idx]
        last = self._last_used
        if used_idx == last:
            return None
        pending = (used_idx - last) & 0xFFFF
        if pending > self.num:
            raise RemoteProtocolError(
                f"used.idx moved from {last} to {used_idx}: {pending} entries > num {self.num}"
            )
        head, used_len = VRING_USED_ELEM.unpack_from(
            self._mem, self._used_ring + _USED_ELEM_SIZE * (last & self._mask)
        )
        self._last_used = (last + 1) & 0xFFFF
        if head >= self.num:
            raise RemoteProtocolError(
                f"used entry {last} names descriptor {head} >= num {self.num}", consumed=True
            )
        if not self._in_flight[head]:
            raise RemoteProtocolError(
                f"used entry {last} returns descriptor {head}, which is not in flight",
                consumed=True,
            )
        self._in_flight[head] = 0
        self._free.append(head)
        if self._write[head] and used_len > self._len[head]:
            raise RemoteProtocolError(
                f"used entry {last}: device wrote {used_len} bytes into the "
                f"{self._len[head]}-byte buffer of descriptor {head}",
                head=head,
                consumed=True,
            )
        return head, self._addr[head], used_len

    def buffer_of(self, head: int) -> tuple[int, int]:
        """``(addr, len)`` last posted with descriptor ``head`` (from the shadow copy)."""
        return self._addr[head], self._len[head]

    def kick_needed(self) -> bool:
        """Whether the device asked to be notified of new buffers (legacy, no EVENT_IDX)."""
        return not self._m16[self._w_used_flags] & VRING_USED_F_NO_NOTIFY

    def set_interrupts(self, enabled: bool) -> None:
        """Ask the device to (not) interrupt us when it returns buffers."""
        self._m16[self._w_avail_flags] = 0 if enabled else VRING_AVAIL_F_NO_INTERRUPT


class PyVringDevice(_Half, DeviceMessages):
    """The device side: takes buffers from the avail ring, gives them back on the used ring.

    Args:
        mem: the vring's memory, as laid out by the driver.
        layout: its geometry.
        region_check: ``(addr, length) -> bool``, whether a buffer the driver posted lies where
            buffers may live; a descriptor failing it is refused, never dereferenced.
        start_index: the indices' starting value (0 for a freshly reset ring).
    """

    __slots__ = ("_check", "_last_avail", "_next_used", "_taken")

    def __init__(
        self,
        mem: memoryview,
        layout: VringLayout,
        *,
        region_check: RegionCheck = _anywhere,
        start_index: int = 0,
    ) -> None:
        super().__init__(mem, layout)
        self._check = region_check
        self._last_avail = start_index & 0xFFFF
        self._next_used = start_index & 0xFFFF
        self._taken = bytearray(layout.num)

    def has_avail(self) -> bool:
        return bool(self._m16[self._w_avail_idx] != self._last_avail)

    def _walk(
        self, head: int, segments: list[tuple[int, int, int]] | None, check: RegionCheck
    ) -> tuple[int, int, int]:
        """Validate the chain starting at ``head``; returns the head descriptor's fields."""
        mem = self._mem
        num = self.num
        first: tuple[int, int, int] | None = None
        i = head
        for _ in range(num):
            addr, length, flags, nxt = VRING_DESC.unpack_from(mem, VRING_DESC.size * i)
            if flags & VRING_DESC_F_INDIRECT:
                raise RemoteProtocolError(
                    f"descriptor {i}: indirect descriptors are not negotiated", head=head
                )
            if not check(addr, length):
                raise RemoteProtocolError(
                    f"descriptor {i}: buffer [{addr:#x}, +{length:#x}) is outside the "
                    "buffer region",
                    head=head,
                )
            if first is None:
                first = (addr, length, flags)
            if segments is not None:
                segments.append((addr, length, flags))
            if not flags & VRING_DESC_F_NEXT:
                return first
            if nxt >= num:
                raise RemoteProtocolError(f"descriptor {i}: next {nxt} >= num {num}", head=head)
            i = nxt
        raise RemoteProtocolError(
            f"descriptor chain from {head} loops or is longer than num {num}", head=head
        )

    def _next_head(self) -> int | None:
        m16 = self._m16
        avail_idx: int = m16[self._w_avail_idx]
        last = self._last_avail
        if avail_idx == last:
            return None
        pending = (avail_idx - last) & 0xFFFF
        if pending > self.num:
            raise RemoteProtocolError(
                f"avail.idx moved from {last} to {avail_idx}: {pending} entries > num {self.num}"
            )
        head: int = m16[self._w_avail_ring + (last & self._mask)]
        self._last_avail = (last + 1) & 0xFFFF
        if head >= self.num:
            raise RemoteProtocolError(
                f"avail entry {last} names descriptor {head} >= num {self.num}", consumed=True
            )
        if self._taken[head]:
            raise RemoteProtocolError(
                f"avail entry {last} offers descriptor {head}, which is already taken",
                consumed=True,
            )
        self._taken[head] = 1
        return head

    def take(self) -> tuple[int, int, int, int] | None:
        """Take the next available buffer: ``(head, addr, len, flags)`` of its first
        descriptor, after validating the whole chain; None if the ring is empty.

        Raises:
            RemoteProtocolError: see the class docstring. When ``head`` is set on the error
                the descriptor was taken and must be given back (with length 0) by the caller.
        """
        return self._take(self._check)

    def _take(self, check: RegionCheck) -> tuple[int, int, int, int] | None:
        head = self._next_head()
        if head is None:
            return None
        # Fast path: a single direct descriptor inside the allowed region (every rpmsg
        # buffer). Anything else goes through the full validating walk.
        addr, length, flags, _next = VRING_DESC.unpack_from(self._mem, _DESC_SIZE * head)
        if not flags & _CHAINED and check(addr, length):
            return head, addr, length, flags
        try:
            addr, length, flags = self._walk(head, None, check)
        except RemoteProtocolError as exc:
            exc.consumed = True
            raise
        return head, addr, length, flags

    def take_chain(self) -> tuple[int, list[tuple[int, int, int]]] | None:
        """Like :meth:`take`, but returns every ``(addr, len, flags)`` of the chain."""
        head = self._next_head()
        if head is None:
            return None
        segments: list[tuple[int, int, int]] = []
        try:
            self._walk(head, segments, self._check)
        except RemoteProtocolError as exc:
            exc.consumed = True
            raise
        return head, segments

    def give(self, head: int, length: int) -> None:
        """Return descriptor chain ``head`` to the driver, ``length`` bytes written."""
        if not 0 <= head < self.num or not self._taken[head]:
            raise ValueError(f"descriptor {head} was not taken from this ring")
        self._taken[head] = 0
        idx = self._next_used
        VRING_USED_ELEM.pack_into(
            self._mem, self._used_ring + _USED_ELEM_SIZE * (idx & self._mask), head, length
        )
        idx = (idx + 1) & 0xFFFF
        self._next_used = idx
        self._m16[self._w_used_idx] = idx

    @property
    def num_taken(self) -> int:
        return sum(self._taken)

    def interrupt_needed(self) -> bool:
        """Whether the driver asked to be interrupted when buffers come back."""
        return not self._m16[self._w_avail_flags] & VRING_AVAIL_F_NO_INTERRUPT

    def set_notifications(self, enabled: bool) -> None:
        """Ask the driver to (not) kick us when it adds buffers."""
        self._m16[self._w_used_flags] = 0 if enabled else VRING_USED_F_NO_NOTIFY


# The optional C extension (no compiler at install time: not built). It reads
# AIOAMP_PURE_PYTHON itself and refuses to import when that asks for the pure classes.
_accel: ModuleType | None
try:
    from .. import _vring_accel as _accel
except ImportError:
    _accel = None
#: Whether :data:`VringDriver` and :data:`VringDevice` are the C accelerator's classes.
ACCELERATED: bool = _accel is not None

if TYPE_CHECKING:
    # Statically the public names are the pure classes: the C classes have the very same
    # interface (transports/_vring_accel.pyi; tests/test_vring_accel.py compares signatures).
    VringDriver = PyVringDriver
    VringDevice = PyVringDevice
elif _accel is not None:
    VringDriver = _accel.VringDriver
    VringDevice = _accel.VringDevice
else:
    VringDriver = PyVringDriver
    VringDevice = PyVringDevice
