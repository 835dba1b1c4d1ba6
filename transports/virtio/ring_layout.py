"""The byte layout of a legacy split vring, and the two wire structures inside it.

``vring_init()`` of include/uapi/linux/virtio_ring.h in Python: where the descriptor table,
the avail ring and the used ring of ``num`` entries aligned to ``align`` lie (virtio 1.x spec,
2.7 "Split Virtqueues", legacy interface). Pure: struct and attrs only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs

from .constants import ENDIAN, MAX_VRING_NUM

#: struct vring_desc { __virtio64 addr; __virtio32 len; __virtio16 flags; __virtio16 next; }
VRING_DESC = struct.Struct(ENDIAN + "QIHH")
#: struct vring_used_elem { __virtio32 id; __virtio32 len; }
VRING_USED_ELEM = struct.Struct(ENDIAN + "II")


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
    addr: int = VRING_DESC.unpack_from(mem, VRING_DESC.size * head)[0]
    return addr
