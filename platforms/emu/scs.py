"""The System Control Space (0xE000E000): NVIC, SysTick and the System Control Block.

Theory of operation (ARMv7-M ARM B3.2-B3.4): the firmware configures its exceptions through
these registers, so the core maps this 4 KiB page as MMIO served by :class:`Scs`. Registers
are kept in :class:`~platforms.emu.nvic.ExceptionState` (enables, pendings, priorities) or
here (VTOR, CCR, the fault status registers). Writes that may make an exception takeable
(enable, pend, priority, PRIGROUP) call ``changed()`` so the core re-evaluates before the next
instruction. SysTick counts wall-clock time at a nominal core clock: the emulator counts no
cycles, so its period is ``(RVR + 1) / clock_hz`` seconds of real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .nvic import (
    BUSFAULT,
    IRQ0,
    MEMMANAGE,
    NMI,
    PENDSV,
    SVCALL,
    SYSTICK,
    USAGEFAULT,
    ExceptionState,
)

SCS_BASE = 0xE000_E000
SCS_SIZE = 0x1000
#: CPUID of the models (ARMv7-M ARM B3.2.3; r2p1 M3 as on OMAP4's Ducati, r0p1 M4).
CPUID = {"cortex-m3": 0x412F_C231, "cortex-m4": 0x410F_C241}
AIRCR_VECTKEY = 0x05FA
CCR_STKALIGN = 1 << 9
# CFSR bits (MMFSR 7:0, BFSR 15:8, UFSR 31:16) and HFSR bits.
CFSR_IBUSERR = 1 << 8
CFSR_PRECISERR = 1 << 9
CFSR_STKERR = 1 << 12
CFSR_BFARVALID = 1 << 15
CFSR_UNDEFINSTR = 1 << 16
CFSR_INVPC = 1 << 18
HFSR_FORCED = 1 << 30
HFSR_DEBUGEVT = 1 << 31
# SHCSR active / pended bits by exception.
_SHCSR_ACTIVE = {MEMMANAGE: 1 << 0, BUSFAULT: 1 << 1, USAGEFAULT: 1 << 3, SVCALL: 1 << 7}
_SHCSR_ACTIVE.update({PENDSV: 1 << 10, SYSTICK: 1 << 11})
_SHCSR_PENDED = {USAGEFAULT: 1 << 12, MEMMANAGE: 1 << 13, BUSFAULT: 1 << 14, SVCALL: 1 << 15}
_SHCSR_ENABLES = 0x7 << 16


class SysTick:
    """The 24-bit SysTick timer, counted against the wall clock."""

    def __init__(self, clock_hz: float, now: Callable[[], float] = time.monotonic) -> None:
        self.clock_hz = clock_hz
        self._now = now
        self.csr = 0  # ENABLE bit 0, TICKINT bit 1, CLKSOURCE bit 2 (COUNTFLAG computed)
        self.rvr = 0
        self._start = 0.0
        self._wraps_seen = 0  # wraps already reported (COUNTFLAG) or pended
        self._wraps_read = 0

    @property
    def running(self) -> bool:
        return bool(self.csr & 1) and self.rvr > 0

    def _wraps(self, now: float) -> tuple[int, int]:
        cycles = int((now - self._start) * self.clock_hz)
        return divmod(cycles, self.rvr + 1)

    def read(self, offset: int) -> int:
        now = self._now()
        if offset == 0x10:
            flag = 0
            if self.running:
                wraps, _ = self._wraps(now)
                flag = int(wraps > self._wraps_read)
                self._wraps_read = wraps
            return self.csr | 1 << 2 | flag << 16
        if offset == 0x14:
            return self.rvr
        if offset == 0x18:
            return self.rvr - self._wraps(now)[1] if self.running else 0
        return 0x4000_0000  # CALIB: NOREF, no TENMS value

    def write(self, offset: int, value: int) -> None:
        if offset == 0x10:
            was = self.running
            self.csr = value & 0x3
            if self.running and not was:
                self._restart()
        elif offset == 0x14:
            self.rvr = value & 0xFF_FFFF
        elif offset == 0x18:
            self._restart()  # any write clears the counter (and COUNTFLAG)

    def _restart(self) -> None:
        self._start = self._now()
        self._wraps_seen = self._wraps_read = 0

    def deadline(self) -> float | None:
        """When the next wrap that raises the interrupt happens (monotonic seconds)."""
        if not (self.running and self.csr & 2):
            return None
        return self._start + (self._wraps_seen + 1) * (self.rvr + 1) / self.clock_hz

    def expired(self) -> bool:
        """Whether the counter wrapped since the last call (the interrupt is due); wraps
        missed while the host was busy collapse into one, as a pending bit does."""
        if not (self.running and self.csr & 2):
            return False
        wraps, _ = self._wraps(self._now())
        if wraps > self._wraps_seen:
            self._wraps_seen = wraps
            return True
        return False


class Scs:
    """The SCS page as MMIO (offsets from :data:`SCS_BASE`)."""

    def __init__(
        self,
        state: ExceptionState,
        systick: SysTick,
        changed: Callable[[], None],
        model: str = "cortex-m3",
    ) -> None:
        self.state = state
        self.systick = systick
        self.changed = changed
        self.cpuid = CPUID[model]
        self.vtor = 0
        self.aircr = 0
        self.scr = 0
        self.ccr = CCR_STKALIGN
        self.cfsr = 0
        self.hfsr = 0
        self.mmfar = 0
        self.bfar = 0
        self.reset_requests = 0  # AIRCR.SYSRESETREQ writes (counted; the host decides)

    # -- helpers ---------------------------------------------------------------------------------
    def _bits(self, base: int, offset: int, test: Callable[[int], bool]) -> int:
        first = IRQ0 + 32 * ((offset - base) // 4)
        return sum(
            1 << i for i in range(32) if first + i < IRQ0 + self.state.irqs and test(first + i)
        )

    def _each(self, base: int, offset: int, value: int) -> list[int]:
        first = IRQ0 + 32 * ((offset - base) // 4)
        return [
            first + i for i in range(32) if value >> i & 1 and first + i < IRQ0 + self.state.irqs
        ]

    def _icsr(self) -> int:
        st = self.state
        pending = st.next_exception(256) or 0
        value = st.current | pending << 12
        if len(st.active) <= 1:
            value |= 1 << 11  # RETTOBASE
        if any(n >= IRQ0 for n in st.pending):
            value |= 1 << 22
        value |= (SYSTICK in st.pending) << 26 | (PENDSV in st.pending) << 28
        return value | (NMI in st.pending) << 31

    def _shcsr(self) -> int:
        st = self.state
        value = st.shcsr_enable
        value |= sum(bit for n, bit in _SHCSR_ACTIVE.items() if n in st.active)
        return value | sum(bit for n, bit in _SHCSR_PENDED.items() if n in st.pending)

    # -- registers -------------------------------------------------------------------------------
    def read32(self, off: int) -> int:
        st = self.state
        if 0x10 <= off < 0x20:
            return self.systick.read(off)
        if 0x100 <= off < 0x140:
            return self._bits(0x100, off, st.enabled)
        if 0x180 <= off < 0x1C0:
            return self._bits(0x180, off, st.enabled)
        if 0x200 <= off < 0x240:
            return self._bits(0x200, off, st.pending.__contains__)
        if 0x280 <= off < 0x2C0:
            return self._bits(0x280, off, st.pending.__contains__)
        if 0x300 <= off < 0x340:
            return self._bits(0x300, off, st.active.__contains__)
        if 0x400 <= off < 0x400 + st.irqs:
            first = IRQ0 + off - 0x400
            return sum(st.priority[first + i] << 8 * i for i in range(4))
        if 0xD18 <= off < 0xD24:
            first = 4 + off - 0xD18
            return sum(st.priority[first + i] << 8 * i for i in range(4))
        if off == 0x004:
            return st.irqs // 32 - 1  # ICTR
        simple = {
            0xD00: self.cpuid,
            0xD08: self.vtor,
            0xD10: self.scr,
            0xD14: self.ccr,
            0xD28: self.cfsr,
            0xD2C: self.hfsr,
            0xD34: self.mmfar,
            0xD38: self.bfar,
        }
        if off in simple:
            return simple[off]
        if off == 0xD04:
            return self._icsr()
        if off == 0xD0C:
            return 0xFA05 << 16 | st.prigroup << 8  # VECTKEYSTAT reads 0xFA05
        if off == 0xD24:
            return self._shcsr()
        return 0  # reserved and unimplemented registers read as zero

    def write32(self, off: int, value: int) -> None:
        st = self.state
        if 0x10 <= off < 0x20:
            self.systick.write(off, value)
        elif 0x100 <= off < 0x140:
            for n in self._each(0x100, off, value):
                st.irq_enabled |= 1 << (n - IRQ0)
        elif 0x180 <= off < 0x1C0:
            for n in self._each(0x180, off, value):
                st.irq_enabled &= ~(1 << (n - IRQ0))
        elif 0x200 <= off < 0x240:
            for n in self._each(0x200, off, value):
                st.pend(n)
        elif 0x280 <= off < 0x2C0:
            for n in self._each(0x280, off, value):
                st.unpend(n)
        elif 0x400 <= off < 0x400 + st.irqs:
            for i in range(4):
                st.set_priority(IRQ0 + off - 0x400 + i, value >> 8 * i & 0xFF)
        elif 0xD18 <= off < 0xD24:
            for i in range(4):
                st.set_priority(4 + off - 0xD18 + i, value >> 8 * i & 0xFF)
        elif off == 0xD04:
            self._write_icsr(value)
        elif off == 0xD08:
            self.vtor = value & 0xFFFF_FF80
        elif off == 0xD0C:
            if value >> 16 == AIRCR_VECTKEY:
                st.prigroup = value >> 8 & 0x7
                self.reset_requests += bool(value & 1 << 2)
        elif off == 0xD10:
            self.scr = value & 0x16
        elif off == 0xD14:
            self.ccr = value & 0x31B | CCR_STKALIGN
        elif off == 0xD24:
            st.shcsr_enable = value & _SHCSR_ENABLES
        elif off == 0xD28:
            self.cfsr &= ~value  # write one to clear
        elif off == 0xD2C:
            self.hfsr &= ~value
        elif off == 0xF00:
            if value & 0x1FF < st.irqs:
                st.pend(IRQ0 + (value & 0x1FF))  # STIR
        else:
            return
        self.changed()

    def _write_icsr(self, value: int) -> None:
        st = self.state
        for bit, n, pend in (
            (31, NMI, True),
            (28, PENDSV, True),
            (27, PENDSV, False),
            (26, SYSTICK, True),
            (25, SYSTICK, False),
        ):
            if value >> bit & 1:
                if pend:
                    st.pend(n)
                else:
                    st.unpend(n)

    # -- sub-word access ---------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        word = self.read32(offset & ~3)
        return word >> 8 * (offset & 3) & ((1 << 8 * size) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 4:
            self.write32(offset, value)
            return
        # Byte and halfword writes exist for the priority registers; elsewhere the word is
        # rebuilt from what reads back (w1c / set registers read back their state).
        shift = 8 * (offset & 3)
        mask = ((1 << 8 * size) - 1) << shift
        word = self.read32(offset & ~3)
        self.write32(offset & ~3, word & ~mask | (value << shift) & mask)
