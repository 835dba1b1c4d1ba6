"""The core's second thread: stop requests, SysTick and the watchdog.

Theory of operation: whoever wants a running core to take an interrupt (a device raising a
line, SysTick, the watchdog) marks ``_stop_pending`` and notifies; only this thread then
calls ``emu_stop``. It waits until no device access is in flight and none ended in the last
:data:`IO_QUIET` seconds, so the stop lands between instructions rather than right after an
access (unicorn would restart that instruction and repeat the access), takes the bus lock so
no access can start meanwhile, and repeats the stop every :data:`STOP_RETRY` seconds until the
core thread acknowledges it (a stop made just before ``emu_start`` begins is lost). It sleeps
on the core's condition variable when there is nothing to time.
"""

from __future__ import annotations

import time

from .base import CoreBase
from .nvic import NMI, SYSTICK

STOP_RETRY = 0.001
IO_QUIET = 0.0002
MASKED_POLL = 0.001  # how often a core with a masked pending exception is looked at


class Ticker(CoreBase):
    """The ticker thread of :class:`~platforms.emu.core.CortexM`."""

    def _tick(self) -> None:
        while True:
            with self._cv:
                if self._finished:
                    return
                waits = self._timers(time.monotonic())
                if self._in_emu and self._masked_pending and not self._stop_pending:
                    # Code the unmask hooks do not cover may lower the mask: look again soon.
                    self._cv.wait(MASKED_POLL)
                    self._stop_pending = self._in_emu and self._masked_pending
                    continue
                if not self._wants_stop():
                    self._cv.wait(min(waits) if waits else None)
                    continue
                quiet = time.monotonic() - self._io_end
                if self._io_busy or quiet < IO_QUIET:
                    self._cv.wait(IO_QUIET)
                    continue
            with self.bus.lock, self._cv:
                if self._wants_stop() and not self._io_busy:
                    self._stop_flag = True
                    self.stats.stops += 1
                    self.uc.emu_stop()
            time.sleep(STOP_RETRY)  # then check whether it was acknowledged

    def _wants_stop(self) -> bool:
        return self._in_emu and (self._stop_pending or not self._alive)

    def _timers(self, now: float) -> list[float]:
        """Pend SysTick and the watchdog's NMI when due; returns the waits until the next."""
        waits: list[float] = []
        if not self._alive:
            return waits
        deadline = self.systick.deadline()
        if deadline is not None and deadline <= now and self.systick.expired():
            self.state.pend(SYSTICK)
            self._wake()
            deadline = self.systick.deadline()
        if deadline is not None:
            waits.append(max(deadline - now, 0.0))
        if self._sleeping or self._watchdog_stage >= 2:
            return waits
        limits = self.limits
        budget = limits.watchdog + (limits.halt_after if self._watchdog_stage else 0.0)
        due = self._busy_since + budget - now
        if due <= 0:
            self._watchdog_stage += 1
            if self._watchdog_stage == 1:
                self.state.pend(NMI)
            self._stop_pending = True
            self._cv.notify_all()
            due = limits.halt_after
        waits.append(due)
        return waits
