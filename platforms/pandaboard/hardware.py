"""The registers and resources the OMAP4 processors share: PRCM clocks and resets, the MMUs.

Theory of operation: :class:`SharedHardware` is the part of
:class:`~platforms.pandaboard.driver.PandaBoard` that touches the PRCM and programs the L2
MMUs: single 32-bit register accesses through 4 KiB windows of the physical bus, clock
domains enabled by their first user and let idle by their last, resets asserted and released
with the RSTST handshake of ``omap4_prminst_deassert_hardreset`` (clear RSTST, deassert, poll
RSTST with a timeout, sleeping between polls).
"""

from __future__ import annotations

import collections
import math

import anyio

from platforms.pandaboard.hw import PhysicalBus, RegisterWindow
from remoteproc.errors import BootError

from .config import ClockConfig, ResetConfig
from .mmu import MmuProgrammer

PAGE = 0x1000


class SharedHardware:
    """Register access, clocks, resets and MMU programmers over ``bus``."""

    def __init__(self, bus: PhysicalBus) -> None:
        self.bus = bus
        self._pages: dict[int, RegisterWindow] = {}
        self._mmus: dict[int, MmuProgrammer] = {}
        self._clock_users: dict[int, set[str]] = collections.defaultdict(set)
        self._mmu_users: dict[int, set[str]] = collections.defaultdict(set)

    # -- register access -------------------------------------------------------------------------
    def _reg(self, pa: int) -> tuple[RegisterWindow, int]:
        page = pa & ~(PAGE - 1)
        window = self._pages.get(page)
        if window is None:
            window = self._pages[page] = self.bus.map(page, PAGE)
        return window, pa - page

    def read32(self, pa: int) -> int:
        window, off = self._reg(pa)
        return window.read32(off)

    def write32(self, pa: int, value: int) -> None:
        window, off = self._reg(pa)
        window.write32(off, value)

    def mmu(self, base: int, tlb_entries: int) -> MmuProgrammer:
        if base not in self._mmus:
            self._mmus[base] = MmuProgrammer(self.bus.map(base, PAGE), tlb_entries)
        return self._mmus[base]

    # -- shared resources ------------------------------------------------------------------------
    def clock_on(self, clock: ClockConfig, user: str) -> None:
        users = self._clock_users[clock.clkctrl]
        if not users:
            st = self.read32(clock.clkstctrl) & ~clock.clktrctrl_mask
            self.write32(clock.clkstctrl, st | clock.clktrctrl_sw_wkup)
            ctl = self.read32(clock.clkctrl) & ~clock.modulemode_mask
            self.write32(clock.clkctrl, ctl | clock.modulemode_hw_auto)
        users.add(user)

    def clock_off(self, clock: ClockConfig, user: str) -> None:
        users = self._clock_users[clock.clkctrl]
        users.discard(user)
        if not users:
            ctl = self.read32(clock.clkctrl) & ~clock.modulemode_mask
            self.write32(clock.clkctrl, ctl | clock.modulemode_disabled)
            st = self.read32(clock.clkstctrl) & ~clock.clktrctrl_mask
            self.write32(clock.clkstctrl, st | clock.clktrctrl_hw_auto)

    def assert_reset(self, reset: ResetConfig, bit: int) -> None:
        self.write32(reset.rstctrl, self.read32(reset.rstctrl) | 1 << bit)

    def in_reset(self, reset: ResetConfig, bit: int) -> bool:
        return bool(self.read32(reset.rstctrl) & 1 << bit)

    async def deassert_reset(self, reset: ResetConfig, bit: int, what: str) -> None:
        """``omap4_prminst_deassert_hardreset``: clear RSTST, deassert, wait for RSTST."""
        mask = 1 << bit
        ctrl = self.read32(reset.rstctrl)
        if not ctrl & mask:
            raise BootError(f"{what}: reset line {bit} is already released")
        self.write32(reset.rstst, mask)  # write 1 to clear the old status
        self.write32(reset.rstctrl, ctrl & ~mask)
        # Counted polls, as Linux's omap_test_timeout() counts udelay(1) iterations: a stalled
        # event loop (a loaded machine) cannot make the wait end before the hardware was read
        # that many times, and it always ends on a read, never on a sleep that overslept.
        for _ in range(max(1, math.ceil(reset.timeout / reset.poll_interval))):
            if self.read32(reset.rstst) & mask:
                return
            await anyio.sleep(reset.poll_interval)
        if self.read32(reset.rstst) & mask:
            return
        self.assert_reset(reset, bit)
        raise BootError(f"{what}: reset did not complete within {reset.timeout * 1000:.0f} ms")
