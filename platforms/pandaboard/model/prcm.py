"""A register-level model of the PRCM registers the driver touches, and the DSP boot register.

Theory of operation: clock domain registers hold CLKTRCTRL; module registers hold MODULEMODE
and report IDLEST functional only while the module is enabled in an awake domain. Reset
registers start with every line asserted; deasserting a line whose module clock runs sets its
RSTST bit after ``rstst_delay_reads`` polls (the reset takes a while to complete; a stopped
clock never completes it, as on hardware), RSTST is write-1-to-clear. Every reset change is
recorded in :attr:`PrcmModel.resets` and told to listeners (the MMU and core models).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import BoardConfig, ClockConfig, ResetConfig
from .bus import ModelBus, ModelError

ResetListener = Callable[[int, int, bool], None]  # (rstctrl pa, bit, in_reset)


class _Page:
    def __init__(self, prcm: PrcmModel, base: int) -> None:
        self._prcm, self._base = prcm, base

    def read32(self, offset: int) -> int:
        return self._prcm.read(self._base + offset)

    def write32(self, offset: int, value: int) -> None:
        self._prcm.write(self._base + offset, value)


class PrcmModel:
    """CM1/CM2 clock registers, PRM reset registers and CONTROL_DSP_BOOTADDR."""

    def __init__(self, config: BoardConfig, *, rstst_delay_reads: int = 2) -> None:
        self.rstst_delay_reads = rstst_delay_reads
        self.clocks: dict[int, ClockConfig] = {}
        self.resets: list[tuple[int, int, bool]] = []  # (rstctrl pa, bit, in_reset) history
        self.stuck: set[tuple[int, int]] = set()  # (rstctrl, bit) whose reset never completes
        self._regs: dict[int, int] = {}
        self._reset_cfg: dict[int, ResetConfig] = {}
        self._rstst_owner: dict[int, ResetConfig] = {}
        self._pending: dict[tuple[int, int], int] = {}  # (rstst pa, bit) -> reads to go
        self._listeners: list[ResetListener] = []
        for proc in config.processors:
            clk, rst = proc.clock, proc.reset
            if clk.clkctrl not in self.clocks:
                self.clocks[clk.clkctrl] = clk
                self._regs[clk.clkstctrl] = clk.clktrctrl_hw_auto
                self._regs[clk.clkctrl] = clk.idlest_disabled << clk.idlest_shift
            if rst.rstctrl not in self._reset_cfg:
                self._reset_cfg[rst.rstctrl] = rst
                self._rstst_owner[rst.rstst] = rst
                bits = [*rst.core_bits, rst.mmu_bit]
                self._regs[rst.rstctrl] = sum(1 << b for b in bits)
                self._regs[rst.rstst] = 0
            if proc.bootaddr_reg is not None:
                self._regs[proc.bootaddr_reg] = 0
        self._clock_of = {p.reset.rstctrl: p.clock for p in config.processors}

    def attach(self, bus: ModelBus) -> None:
        """Serve every 4 KiB page that holds one of our registers."""
        for page in sorted({pa & ~0xFFF for pa in self._regs}):
            bus.add_device(page, 0x1000, _Page(self, page), f"prcm@{page:#x}")

    def listen(self, listener: ResetListener) -> None:
        self._listeners.append(listener)

    def module_enabled(self, clock: ClockConfig) -> bool:
        awake = self._regs[clock.clkstctrl] & clock.clktrctrl_mask in (
            clock.clktrctrl_sw_wkup,
            clock.clktrctrl_hw_auto,
        )
        mode = self._regs[clock.clkctrl] & clock.modulemode_mask
        return awake and mode != clock.modulemode_disabled

    def in_reset(self, rstctrl: int, bit: int) -> bool:
        return bool(self._regs[rstctrl] & 1 << bit)

    def value(self, pa: int) -> int:
        return self._regs[pa]

    def read(self, pa: int) -> int:
        if pa not in self._regs:
            raise ModelError(f"prcm: no modelled register at {pa:#x}")
        if pa in self.clocks:
            clk = self.clocks[pa]
            idlest = clk.idlest_functional if self.module_enabled(clk) else clk.idlest_disabled
            mode = self._regs[pa] & clk.modulemode_mask
            return mode | idlest << clk.idlest_shift
        if pa in self._rstst_owner:
            for (rstst, bit), left in list(self._pending.items()):
                if rstst == pa:
                    if left <= 1:
                        del self._pending[(rstst, bit)]
                        self._regs[pa] |= 1 << bit
                    else:
                        self._pending[(rstst, bit)] = left - 1
        return self._regs[pa]

    def write(self, pa: int, value: int) -> None:
        if pa not in self._regs:
            raise ModelError(f"prcm: no modelled register at {pa:#x}")
        if pa in self._rstst_owner:
            self._regs[pa] &= ~value  # write 1 to clear
            return
        if pa in self._reset_cfg:
            rst = self._reset_cfg[pa]
            old = self._regs[pa]
            self._regs[pa] = value
            for bit in range(32):
                mask = 1 << bit
                if (old ^ value) & mask:
                    held = bool(value & mask)
                    self.resets.append((pa, bit, held))
                    if held:
                        self._pending.pop((rst.rstst, bit), None)
                    elif self.module_enabled(self._clock_of[pa]) and (pa, bit) not in self.stuck:
                        self._pending[(rst.rstst, bit)] = self.rstst_delay_reads
                    for listener in list(self._listeners):
                        listener(pa, bit, held)
            return
        self._regs[pa] = value
