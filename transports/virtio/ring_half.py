"""What both halves of a split vring share: the ring memory as u16 words, and offsets.

The reference implementation's common base (see :mod:`transports.virtio.vring`): the driver
half lives in :mod:`.vring_driver`, the device half in :mod:`.vring_device`.
"""

from __future__ import annotations

import sys

from .constants import (
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
)
from .ring_layout import VRING_DESC, VRING_USED_ELEM, VringLayout

_DESC_SIZE = VRING_DESC.size
_USED_ELEM_SIZE = VRING_USED_ELEM.size
_CHAINED = VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT

# Ring indices and flags are accessed through a native-order u16 memoryview (single aligned
# stores, see _Half); that equals the little-endian wire order only on little-endian hosts.
if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
    raise ImportError("aioamp's vrings require a little-endian host")


def _anywhere(_addr: int, _length: int) -> bool:
    return True


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
