"""The device half of a split vring (the rpmsg remote), in pure Python: the reference
implementation of the C twin's ``VringDevice`` (see :mod:`transports.virtio.vring`)."""

from __future__ import annotations

from ..errors import RemoteProtocolError
from .constants import (
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_USED_F_NO_NOTIFY,
)
from .messages import DeviceMessages
from .ring_half import _CHAINED, _DESC_SIZE, _USED_ELEM_SIZE, _anywhere, _Half
from .ring_layout import VRING_DESC, VRING_USED_ELEM, RegionCheck, VringLayout


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
