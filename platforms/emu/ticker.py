"""The core's second thread: stop requests, SysTick and the watchdog.

Theory of operation: whoever wants a running core to take an interrupt (a device raising a
line, SysTick, the watchdog) marks ``_stop_pending`` and notifies. A core that touches a
device register stops by itself at its next access (before it, so nothing is repeated); this
thread stops the others with ``emu_stop``, which must not land right after an access:
unicorn checks for a stop when a device callback returns and then restarts the instruction,
repeating the access. The core thread can be descheduled between the callback's end and that
check (when it hands the GIL over, say), so a wall-clock quiet time is not enough: the ticker
stops a core only after the core *thread* has used :data:`CPU_QUIET` seconds of CPU time with
no device access since the ticker first looked (its CPU clock, ``pthread_getcpuclockid``): a
thread that used that much CPU is long past the check. It takes the bus lock (no access can
start meanwhile), and repeats the stop every :data:`STOP_RETRY` seconds until the core thread
acknowledges it (a stop made just before ``emu_start`` begins is lost). It sleeps on the
core's condition variable when there is nothing to time.
"""

from __future__ import annotations

import time

from .base import CoreBase
from .nvic import NMI, SYSTICK

STOP_RETRY = 0.001
CPU_QUIET = 0.002
#: Where threads have no CPU clock: wall-clock quiet time instead (a weaker guarantee).
WALL_QUIET = 0.05
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
                if self._alive and not self._quiet():
                    self._cv.wait(STOP_RETRY)
                    continue
            with self.bus.lock, self._cv:
                if self._wants_stop() and (not self._alive or self._quiet()):
                    self._stop_flag = True
                    self.stats.stops += 1
                    self.uc.emu_stop()
            time.sleep(STOP_RETRY)  # then check whether it was acknowledged

    def _quiet(self) -> bool:
        """Whether the core thread ran :data:`CPU_QUIET` of CPU (or, without a thread CPU
        clock, :data:`WALL_QUIET` of time) with no device access since first looked at."""
        if self._io_busy:
            self._quiet_since = None
            return False
        clock = self._cpu_clock
        now = time.clock_gettime(clock) if clock is not None else time.monotonic()
        seen = self._quiet_since
        if seen is None or seen[0] != self._io_seq:
            self._quiet_since = (self._io_seq, now)
            return False
        return now - seen[1] >= (CPU_QUIET if clock is not None else WALL_QUIET)

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
        if self._watchdog_stage == 1 and not self._watchdog_nmi:
            return waits  # the halt countdown starts when the core takes the NMI
        limits = self.limits
        budget = limits.halt_after if self._watchdog_stage else limits.watchdog
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
