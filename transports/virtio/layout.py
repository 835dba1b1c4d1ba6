"""The standard shared-memory layout of one rpmsg vdev: table, two vrings, buffer pool.

Theory of operation: a transport that owns its memory (loopback, shm) lays it out like
OpenAMP's Linux machine port: a resource table with one VDEV entry at offset 0, vring 0 and
vring 1 each at an ``align`` boundary, then the host's buffer pool. Device addresses are
``base_da + offset``. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import itertools

import attrs

from .constants import VIRTIO_RPMSG_F_NS
from .vdev import VringInfo, build_single_vdev_table, single_vdev_table_size
from .vring import VringLayout


def align_up(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1)


def default_buffer_count(num: int) -> int:
    """Linux virtio_rpmsg_bus: ``min(MAX_RPMSG_NUM_BUFS=512, 2 x vring num)``."""
    return min(512, 2 * num)


@attrs.frozen
class SharedLayout:
    """Offsets of a single-vdev shared memory region.

    Attributes:
        num: entries per vring (power of two).
        align: vring alignment (power of two).
        buffer_size: bytes per rpmsg buffer (512 in Linux and OpenAMP).
        buffer_count: pool size; defaults to ``min(512, 2 * num)``.
        base_da: device address of offset 0.
        dfeatures: device features the table offers (VIRTIO_RPMSG_F_NS by default).
        vring_at: explicit offsets of vring 0 and vring 1 (None: right after the table, each
            at the next ``align`` boundary).
        pool_at: explicit offset of the buffer pool (None: after vring 1).
        size: explicit total size (None: just large enough, rounded to 4 KiB).
    """

    num: int = 256
    align: int = 4096
    buffer_size: int = 512
    buffer_count: int = attrs.field()
    base_da: int = 0
    dfeatures: int = 1 << VIRTIO_RPMSG_F_NS
    vring_at: tuple[int, int] | None = None
    pool_at: int | None = None
    size: int | None = None

    @buffer_count.default
    def _buffer_count_default(self) -> int:
        return default_buffer_count(self.num)

    def __attrs_post_init__(self) -> None:
        VringLayout(self.num, self.align)  # validates num and align
        if self.buffer_size < 32 or self.buffer_count < 2 or self.buffer_count % 2:
            raise ValueError("need an even buffer_count >= 2 and buffer_size >= 32")
        spans = sorted(
            [
                (0, self.table_size, "resource table"),
                (self.vring_offsets[0], self.vring_layout.size, "vring 0"),
                (self.vring_offsets[1], self.vring_layout.size, "vring 1"),
                (self.pool_offset, self.pool_size, "buffer pool"),
            ]
        )
        for (a, alen, aname), (b, _blen, bname) in itertools.pairwise(spans):
            if a + alen > b:
                raise ValueError(f"{aname} at {a:#x} overlaps {bname} at {b:#x}")
        last, last_len, last_name = spans[-1]
        if last + last_len > self.total_size:
            raise ValueError(f"{last_name} ends past the {self.total_size:#x}-byte region")

    @property
    def vring_layout(self) -> VringLayout:
        return VringLayout(self.num, self.align)

    @property
    def table_size(self) -> int:
        return single_vdev_table_size(2)

    @property
    def vring_offsets(self) -> tuple[int, int]:
        if self.vring_at is not None:
            return self.vring_at
        size = self.vring_layout.size
        first = align_up(self.table_size, self.align)
        return first, align_up(first + size, self.align)

    @property
    def pool_offset(self) -> int:
        if self.pool_at is not None:
            return self.pool_at
        return align_up(self.vring_offsets[1] + self.vring_layout.size, 64)

    @property
    def pool_size(self) -> int:
        return self.buffer_count * self.buffer_size

    @property
    def used_size(self) -> int:
        """Bytes up to the end of the last area (the table, a vring or the pool), without the
        padding that rounds :attr:`total_size`."""
        ends = [o + self.vring_layout.size for o in self.vring_offsets]
        return max(self.table_size, *ends, self.pool_offset + self.pool_size)

    @property
    def total_size(self) -> int:
        if self.size is not None:
            return self.size
        return align_up(self.pool_offset + self.pool_size, 4096)

    def vrings(self) -> list[VringInfo]:
        """The two vring descriptors of the table, notify ids 1 and 2 (vdev itself is 0)."""
        v0, v1 = self.vring_offsets
        return [
            VringInfo(da=self.base_da + v0, align=self.align, num=self.num, notifyid=1),
            VringInfo(da=self.base_da + v1, align=self.align, num=self.num, notifyid=2),
        ]

    def table(self) -> bytes:
        """A fresh resource table: status 0, gfeatures 0, as before any negotiation."""
        return build_single_vdev_table(self.vrings(), dfeatures=self.dfeatures)


#: OpenAMP's Linux machine port (openamp-system-reference, examples/legacy_apps,
#: system/linux/machine/generic: platform_info.c, rsc_table.c): a 0x80000-byte object with the
#: 88-byte table at 0, vrings of 256 at 0x4000 and 0x8000, rx buffers from 0x10000 and tx
#: buffers from 0x30000, 0x200 bytes each.
OPENAMP_LAYOUT = SharedLayout(
    num=256,
    align=0x1000,
    buffer_size=0x200,
    buffer_count=512,
    vring_at=(0x4000, 0x8000),
    pool_at=0x10000,
    size=0x80000,
)
