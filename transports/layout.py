"""The standard shared-memory layout of one rpmsg vdev: table, two vrings, buffer pool.

Theory of operation: a transport that owns its memory (loopback, shm) lays it out like
OpenAMP's Linux machine port: a resource table with one VDEV entry at offset 0, vring 0 and
vring 1 each at an ``align`` boundary, then the host's buffer pool. Device addresses are
``base_da + offset``. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import attrs

from .vdev import VIRTIO_RPMSG_F_NS, VringInfo, build_single_vdev_table, single_vdev_table_size
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
    """

    num: int = 256
    align: int = 4096
    buffer_size: int = 512
    buffer_count: int = attrs.field()
    base_da: int = 0
    dfeatures: int = 1 << VIRTIO_RPMSG_F_NS

    @buffer_count.default
    def _buffer_count_default(self) -> int:
        return default_buffer_count(self.num)

    def __attrs_post_init__(self) -> None:
        VringLayout(self.num, self.align)  # validates num and align
        if self.buffer_size < 32 or self.buffer_count < 2 or self.buffer_count % 2:
            raise ValueError("need an even buffer_count >= 2 and buffer_size >= 32")

    @property
    def vring_layout(self) -> VringLayout:
        return VringLayout(self.num, self.align)

    @property
    def table_size(self) -> int:
        return single_vdev_table_size(2)

    @property
    def vring_offsets(self) -> tuple[int, int]:
        size = self.vring_layout.size
        first = align_up(self.table_size, self.align)
        return first, align_up(first + size, self.align)

    @property
    def pool_offset(self) -> int:
        return align_up(self.vring_offsets[1] + self.vring_layout.size, 64)

    @property
    def pool_size(self) -> int:
        return self.buffer_count * self.buffer_size

    @property
    def total_size(self) -> int:
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
