"""A register-level model of an OMAP L2 MMU (locked TLB entries, no table walker).

Theory of operation: the registers of :class:`~platforms.pandaboard.mmu.MmuRegisters`.
``MMU_LD_TLB`` copies ``MMU_CAM`` / ``MMU_RAM`` into the entry ``MMU_LOCK.VICTIM`` selects;
``MMU_GFLUSH`` drops every entry not marked preserved. With ``MMU_CNTL.MMU_EN`` set,
:meth:`MmuModel.translate` finds the valid entry covering a device address; a miss latches
TLBMISS in ``MMU_IRQSTATUS``, records the address in ``MMU_FAULT_AD`` and raises
:class:`MmuFault`. The MMU's interrupt line (to the host, the ``mmu_ipu`` UIO device) is
asserted while ``MMU_IRQSTATUS & MMU_IRQENABLE`` is not zero; listeners hear every change.
Touching the registers while the MMU is held in reset or unclocked is a :class:`ModelError`
(a bus fault on hardware). The MMU reset clears everything.
"""

from __future__ import annotations

from collections.abc import Callable

from ..mmu import MMU, PGSZ_TO_SIZE
from .bus import ModelError


class MmuFault(Exception):
    """A device address the MMU cannot translate."""

    def __init__(self, da: int) -> None:
        super().__init__(f"MMU fault at da {da:#010x}")
        self.da = da


class MmuModel:
    """One L2 MMU instance."""

    def __init__(
        self, name: str, tlb_entries: int = 32, accessible: Callable[[], bool] | None = None
    ) -> None:
        self.name = name
        self.tlb_entries = tlb_entries
        self.accessible = accessible or (lambda: True)
        self.faults: list[int] = []
        self.line = False
        self._listeners: list[Callable[[bool], None]] = []
        self.reset()

    def listen(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(level)`` when the MMU's interrupt line changes."""
        self._listeners.append(listener)

    def _update_line(self) -> None:
        level = bool(self.regs[MMU.irqstatus] & self.regs[MMU.irqenable])
        if level != self.line:
            self.line = level
            for listener in list(self._listeners):
                listener(level)

    def reset(self) -> None:
        self.regs = {
            MMU.revision: 0x20,
            MMU.sysconfig: 0,
            MMU.irqstatus: 0,
            MMU.irqenable: 0,
            MMU.cntl: 0,
            MMU.fault_ad: 0,
            MMU.ttb: 0,
            MMU.lock: 0,
            MMU.cam: 0,
            MMU.ram: 0,
        }
        self.tlb: list[tuple[int, int] | None] = [None] * self.tlb_entries
        self._update_line()

    # -- registers -------------------------------------------------------------------------------
    def _check(self, offset: int) -> None:
        if not self.accessible():
            raise ModelError(f"{self.name}: register {offset:#x} accessed in reset / unclocked")

    def _victim(self) -> int:
        return (self.regs[MMU.lock] >> MMU.lock_vict_shift) & MMU.lock_field_mask

    def read32(self, offset: int) -> int:
        self._check(offset)
        if offset in (MMU.read_cam, MMU.read_ram):
            entry = self.tlb[self._victim() % self.tlb_entries]
            if entry is None:
                return 0
            return entry[0] if offset == MMU.read_cam else entry[1]
        if offset in (MMU.ld_tlb, MMU.gflush, MMU.flush_entry):
            return 0
        if offset not in self.regs:
            raise ModelError(f"{self.name}: no register at {offset:#x}")
        return self.regs[offset]

    def write32(self, offset: int, value: int) -> None:
        self._check(offset)
        if offset == MMU.ld_tlb:
            if value & 1:
                cam, ram = self.regs[MMU.cam], self.regs[MMU.ram]
                victim = self._victim()
                if victim >= self.tlb_entries:
                    raise ModelError(f"{self.name}: TLB victim {victim} out of range")
                self.tlb[victim] = (cam, ram) if cam & MMU.cam_v else None
        elif offset == MMU.gflush:
            if value & 1:
                self.tlb = [e if e is not None and e[0] & MMU.cam_p else None for e in self.tlb]
        elif offset == MMU.flush_entry:
            pass
        elif offset == MMU.irqstatus:
            self.regs[offset] &= ~value  # write 1 to clear
        elif offset in self.regs and offset != MMU.revision:
            self.regs[offset] = value
        else:
            raise ModelError(f"{self.name}: no writable register at {offset:#x}")
        self._update_line()

    # -- translation -----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.regs[MMU.cntl] & MMU.cntl_mmu_en)

    @property
    def locked(self) -> int:
        return (self.regs[MMU.lock] >> MMU.lock_base_shift) & MMU.lock_field_mask

    def entries(self) -> list[tuple[int, int, int]]:
        """Valid ``(da, pa, size)`` entries, by device address."""
        out = []
        for entry in self.tlb:
            if entry is None:
                continue
            cam, ram = entry
            size = PGSZ_TO_SIZE[cam & MMU.cam_pgsz_mask]
            mask = ~(size - 1) & 0xFFFF_FFFF
            out.append((cam & mask, ram & mask, size))
        return sorted(out)

    def lookup(self, da: int) -> tuple[int, int, int] | None:
        """The valid ``(da, pa, size)`` entry covering ``da`` (no fault on a miss)."""
        if self.enabled:
            for entry in self.entries():
                if entry[0] <= da < entry[0] + entry[2]:
                    return entry
        return None

    def miss(self, da: int) -> None:
        """A master's access to ``da`` found no entry: latch TLBMISS and MMU_FAULT_AD."""
        self.regs[MMU.irqstatus] |= MMU.irq_tlbmiss
        self.regs[MMU.fault_ad] = da
        self.faults.append(da)
        self._update_line()

    def translate(self, da: int) -> int:
        entry = self.lookup(da)
        if entry is not None:
            return entry[1] + (da - entry[0])
        self.miss(da)
        raise MmuFault(da)

    def runs(self) -> list[tuple[int, int, int]]:
        """Entries merged into contiguous ``(da, pa, size)`` runs (for the core's memory)."""
        runs: list[tuple[int, int, int]] = []
        for da, pa, size in self.entries() if self.enabled else []:
            if runs:
                rda, rpa, rsize = runs[-1]
                if rda + rsize == da and rpa + rsize == pa:
                    runs[-1] = (rda, rpa, rsize + size)
                    continue
            runs.append((da, pa, size))
        return runs
