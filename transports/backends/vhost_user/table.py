"""A frontend's memory table, and where its vrings lie in it. Pure.

Theory of operation: a vhost-user frontend describes its memory as regions, each known by two
addresses: its *guest* address (what the virtio driver puts in descriptors: Linux's physical
addresses) and its *user* address (the frontend process's virtual address, which SET_VRING_ADDR
uses). :class:`MemoryTable` checks a SET_MEM_TABLE's regions (no overflow, no overlap in either
space) and translates user ranges to guest ranges, refusing a range that no single region holds.

:func:`place_vring` checks SET_VRING_ADDR: aioamp's split rings (pure and C) assume the legacy
contiguous layout of ``vring_init()``: descriptors, the avail ring right after them, the used
ring at the next ``align`` boundary. Linux's ``vring_create_virtqueue`` allocates exactly that
(UML: ``align`` 4096); any other placement of the three addresses is refused, naming them.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ...virtio.vring import VringLayout
from .protocol import MemoryRegion, VhostUserProtocolError, VringAddr

_U32_END = 1 << 32
_U64_END = 1 << 64
_OFF_T_END = 1 << 63


@attrs.frozen
class Span:
    """One region of the table, without its fd."""

    guest_addr: int
    size: int
    user_addr: int


@attrs.frozen
class MemoryTable:
    """The regions of the last SET_MEM_TABLE (empty before the first)."""

    spans: tuple[Span, ...] = ()

    @classmethod
    def check(cls, regions: Sequence[MemoryRegion]) -> MemoryTable:
        """The table of ``regions``, checked.

        Raises:
            VhostUserProtocolError: an empty region, one whose addresses or mmap offset
                overflow, or two that overlap in guest or user addresses.
        """
        spans: list[Span] = []
        for i, reg in enumerate(regions):
            if reg.size == 0:
                raise VhostUserProtocolError(f"SET_MEM_TABLE: region {i} is empty")
            for name, start, end in (
                ("guest address", reg.guest_addr, _U64_END),
                ("user address", reg.user_addr, _U64_END),
                ("mmap offset", reg.mmap_offset, _OFF_T_END),
            ):
                if start + reg.size > end:
                    raise VhostUserProtocolError(
                        f"SET_MEM_TABLE: region {i}: {name} {start:#x} + size {reg.size:#x} "
                        "overflows"
                    )
            span = Span(reg.guest_addr, reg.size, reg.user_addr)
            for j, other in enumerate(spans):
                for what, a, b in (
                    ("guest", span.guest_addr, other.guest_addr),
                    ("user", span.user_addr, other.user_addr),
                ):
                    if a < b + other.size and b < a + span.size:
                        raise VhostUserProtocolError(
                            f"SET_MEM_TABLE: regions {j} and {i} overlap in {what} addresses"
                        )
            spans.append(span)
        return cls(tuple(spans))

    def user_to_guest(self, user_addr: int, length: int) -> int | None:
        """The guest address of the user range ``[user_addr, +length)``, if one region holds
        all of it."""
        for span in self.spans:
            if span.user_addr <= user_addr and user_addr + length <= span.user_addr + span.size:
                return span.guest_addr + (user_addr - span.user_addr)
        return None


@attrs.frozen
class VringPlace:
    """Where a vring lies: its guest address and the alignment of its legacy layout."""

    da: int
    align: int


def place_vring(table: MemoryTable, r: VringAddr, num: int) -> VringPlace:
    """Translate and check SET_VRING_ADDR for a vring of ``num`` entries.

    Raises:
        VhostUserProtocolError: no size or table yet, dirty logging asked for, not the legacy
            layout, not inside one region, or beyond the vdev entry's 32-bit address.
    """
    where = f"SET_VRING_ADDR: vring {r.index}"
    if num == 0:
        raise VhostUserProtocolError(f"{where} before SET_VRING_NUM")
    if r.flags:
        raise VhostUserProtocolError(f"{where}: flags {r.flags:#x} (dirty logging) unsupported")
    names = f"desc {r.desc:#x}, avail {r.avail:#x}, used {r.used:#x}"
    align = legacy_align(num, r.desc, r.avail, r.used)
    if align is None:
        raise VhostUserProtocolError(
            f"{where}: {names} are not one legacy vring of {num} entries (avail at desc + "
            f"{16 * num:#x}, used at the next power-of-two boundary after the avail ring)"
        )
    if not table.spans:
        raise VhostUserProtocolError(f"{where} before SET_MEM_TABLE")
    size = VringLayout(num, align).size
    guest = table.user_to_guest(r.desc, size)
    if guest is None:
        raise VhostUserProtocolError(
            f"{where}: {names}: the {size:#x}-byte ring is not inside one memory region"
        )
    if guest + size > _U32_END:
        raise VhostUserProtocolError(
            f"{where}: the ring's guest address {guest:#x} is beyond 4 GiB (the vdev entry's "
            "32-bit da)"
        )
    return VringPlace(guest, align)


def legacy_align(num: int, desc: int, avail: int, used: int) -> int | None:
    """The alignment that places ``avail`` and ``used`` where the legacy layout of ``num``
    entries at ``desc`` has them (``vring_init()``), or None. The smallest such power of two
    from 4 (the used ring's alignment) is returned: any other gives the same layout."""
    if desc % 16 or avail != desc + 16 * num or used < avail:
        return None
    offset = used - desc
    align = 4
    while align <= _U32_END:
        if VringLayout(num, align).used == offset:
            return align
        align <<= 1
    return None
