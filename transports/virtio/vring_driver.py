"""The driver half of a split vring (the rpmsg host), in pure Python: the reference
implementation of the C twin's ``VringDriver`` (see :mod:`transports.virtio.vring`)."""

from __future__ import annotations

from ..errors import RemoteProtocolError, RingFullError
from .constants import (
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_F_WRITE,
    VRING_USED_F_NO_NOTIFY,
)
from .messages import DriverMessages
from .ring_half import _DESC_SIZE, _USED_ELEM_SIZE, _Half
from .ring_layout import VRING_DESC, VRING_USED_ELEM, VringLayout


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
