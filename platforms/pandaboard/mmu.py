"""Programming an OMAP L2 MMU (IPU / DSP) with locked TLB entries.

Theory of operation (OMAP4 TRM "MMU", Linux ``drivers/iommu/omap-iommu.[ch]``): the remote
core's accesses go through its L2 MMU, which translates device addresses to physical ones. We
do not build a page table: the host's mappings are few and large, so each one is cut into 16
MiB / 1 MiB sections and 64 KiB / 4 KiB pages (largest first, where both addresses are
aligned) and loaded as *locked* TLB entries, as ``load_iotlb_entry`` does: select the entry with
``MMU_LOCK`` (BASE = entries protected from replacement, VICTIM = entry to write), write
``MMU_CAM`` (virtual tag, valid, preserved, size) and ``MMU_RAM`` (physical address, little
endian, element size, mixed), then ``MMU_LD_TLB``. Finally ``MMU_CNTL.MMU_EN`` is set without
the table walker, so any unmapped access is a fault instead of a walk of garbage.

:func:`plan_entries` is pure (mappings in, entries out) so tests can check it without
hardware; :class:`MmuProgrammer` performs the register writes on a ``RegisterWindow``.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from platforms.pandaboard.hw import RegisterWindow


@attrs.frozen
class MmuRegisters:
    """Register offsets and fields (``omap-iommu.h``)."""

    revision: int = 0x00
    sysconfig: int = 0x10
    irqstatus: int = 0x18
    irqenable: int = 0x1C
    cntl: int = 0x44
    fault_ad: int = 0x48
    ttb: int = 0x4C
    lock: int = 0x50
    ld_tlb: int = 0x54
    cam: int = 0x58
    ram: int = 0x5C
    gflush: int = 0x60
    flush_entry: int = 0x64
    read_cam: int = 0x68
    read_ram: int = 0x6C
    # MMU_CNTL
    cntl_mmu_en: int = 1 << 1
    cntl_twl_en: int = 1 << 2
    # MMU_LOCK: BASE bits 14:10, VICTIM bits 8:4
    lock_base_shift: int = 10
    lock_vict_shift: int = 4
    lock_field_mask: int = 0x1F
    # MMU_CAM: VATAG | P (bit 3) | V (bit 2) | PGSZ (bits 1:0)
    cam_p: int = 1 << 3
    cam_v: int = 1 << 2
    cam_pgsz_mask: int = 0x3
    # MMU_RAM: PHYS | ENDIAN (bit 9, 0 = little) | ELSZ (bits 8:7, 3 = none) | MIXED (bit 6)
    ram_endian_big: int = 1 << 9
    ram_elsz_shift: int = 7
    ram_elsz_none: int = 0x3 << 7
    ram_mixed: int = 1 << 6
    # MMU_IRQSTATUS / IRQENABLE
    irq_tlbmiss: int = 1 << 0
    irq_translationfault: int = 1 << 1
    irq_emumiss: int = 1 << 2
    irq_tablewalkfault: int = 1 << 3
    irq_multihitfault: int = 1 << 4


MMU = MmuRegisters()

#: Page sizes the MMU knows, largest first, with their CAM PGSZ code (``MMU_CAM_PGSZ_*``).
PAGE_SIZES: tuple[tuple[int, int], ...] = (
    (16 << 20, 0x3),
    (1 << 20, 0x0),
    (64 << 10, 0x1),
    (4 << 10, 0x2),
)
PGSZ_TO_SIZE = {code: size for size, code in PAGE_SIZES}


class MmuError(RuntimeError):
    """The mappings cannot be expressed in the MMU's locked TLB entries."""


@attrs.frozen
class TlbEntry:
    """One translation: ``size`` bytes at ``da`` reach ``pa``."""

    da: int
    pa: int
    size: int

    def cam(self) -> int:
        code = {s: c for s, c in PAGE_SIZES}[self.size]
        return (self.da & ~(self.size - 1) & 0xFFFF_F000) | MMU.cam_v | MMU.cam_p | code

    def ram(self) -> int:
        # Little endian, no element-size conversion, page-size (not mixed) attributes: what
        # omap_remoteproc's shared memory wants (``MMU_RAM_ELSZ_NONE`` as rproc sets it).
        return (self.pa & ~(self.size - 1) & 0xFFFF_F000) | MMU.ram_elsz_none


def _merge(mappings: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Round each ``(da, pa, size)`` out to 4 KiB and join neighbours with the same
    translation, so a vring crossing pages is one run."""
    page = 4 << 10
    runs: list[tuple[int, int, int]] = []
    for da, pa, size in sorted(mappings):
        if (da - pa) % page:
            raise MmuError(f"da {da:#x} and pa {pa:#x} differ within a 4 KiB page")
        start = da & ~(page - 1)
        end = -(-(da + size) // page) * page
        pstart = pa - (da - start)
        if runs:
            rda, rpa, rsize = runs[-1]
            if start <= rda + rsize:
                if rpa - rda != pstart - start:
                    raise MmuError(f"da {da:#x} overlaps another mapping with a different pa")
                runs[-1] = (rda, rpa, max(rsize, end - rda))
                continue
        runs.append((start, pstart, end - start))
    return runs


def plan_entries(mappings: Iterable[tuple[int, int, int]], limit: int) -> list[TlbEntry]:
    """Cover every ``(da, pa, size)`` with the fewest aligned sections and pages.

    Raises:
        MmuError: more than ``limit`` entries would be needed, or mappings conflict.
    """
    entries: list[TlbEntry] = []
    for da, pa, size in _merge(mappings):
        off = 0
        while off < size:
            for page, _code in PAGE_SIZES:
                if (da + off) % page == 0 and (pa + off) % page == 0 and size - off >= page:
                    entries.append(TlbEntry(da + off, pa + off, page))
                    off += page
                    break
    if len(entries) > limit:
        raise MmuError(
            f"the mappings need {len(entries)} TLB entries, the MMU locks at most {limit}: "
            "align carveouts to 1 MiB so sections can be used"
        )
    return entries


class MmuProgrammer:
    """Writes locked TLB entries into one MMU.

    Entries are owned by a key (a core): :meth:`load` appends a core's entries after the ones
    already locked, :meth:`unload_last` drops the most recently loaded core's entries (IPU core
    1 stops before core 0, which shares the MMU).
    """

    def __init__(self, regs: RegisterWindow, tlb_entries: int) -> None:
        self.regs = regs
        self.tlb_entries = tlb_entries
        self.owners: list[tuple[str, int]] = []  # (owner, number of entries), in lock order

    @property
    def locked(self) -> int:
        return sum(n for _owner, n in self.owners)

    def _set_lock(self, base: int, victim: int) -> None:
        self.regs.write32(
            MMU.lock,
            (base & MMU.lock_field_mask) << MMU.lock_base_shift
            | (victim & MMU.lock_field_mask) << MMU.lock_vict_shift,
        )

    def reset(self) -> None:
        """Forget all entries (the MMU was held in reset: its TLB is empty)."""
        self.owners.clear()

    def enable(self) -> None:
        """Flush the TLB, no table walker, enable translation and fault interrupts."""
        self.regs.write32(MMU.gflush, 1)
        self._set_lock(0, 0)
        self.regs.write32(
            MMU.irqenable,
            MMU.irq_tlbmiss | MMU.irq_translationfault | MMU.irq_multihitfault,
        )
        self.regs.write32(MMU.cntl, MMU.cntl_mmu_en)

    def load(self, owner: str, entries: list[TlbEntry]) -> None:
        base = self.locked
        if base + len(entries) > self.tlb_entries:
            raise MmuError(
                f"{owner}: {len(entries)} TLB entries do not fit after the {base} locked ones "
                f"(the MMU has {self.tlb_entries})"
            )
        for i, entry in enumerate(entries, start=base):
            self._set_lock(i, i)
            self.regs.write32(MMU.cam, entry.cam())
            self.regs.write32(MMU.ram, entry.ram())
            self.regs.write32(MMU.ld_tlb, 1)
        self.owners.append((owner, len(entries)))
        total = self.locked
        self._set_lock(total, total)

    def unload_last(self, owner: str) -> None:
        if not self.owners or self.owners[-1][0] != owner:
            return
        _owner, count = self.owners.pop()
        base = self.locked
        for i in range(base, base + count):
            self._set_lock(i, i)
            self.regs.write32(MMU.cam, 0)  # V clear: the entry no longer translates
            self.regs.write32(MMU.ram, 0)
            self.regs.write32(MMU.ld_tlb, 1)
        self._set_lock(base, base)
