"""Adaptive busy polling of a receive ring, as Linux's NAPI busy-poll and KVM's halt polling do.

Theory of operation: on a shared-memory link a wake-up from sleep costs more than the message
(on small VMs tens of microseconds: the event loop's ``epoll_wait`` blocks, the vCPU halts, the
peer's kick has to wake it). When a message is likely to come soon (we just sent one and wait
for its reply, or messages keep arriving) it is cheaper to look at the ring for a few
microseconds before sleeping: the peer's next message is then picked up without a wake-up, and,
since our notifications stay suppressed while we look, without a kick either.

:class:`BusyPoll` decides how long to look, never longer than the *budget* (``busy_poll=`` in
microseconds, 0: never). The current *window* adapts to what the looks found, like haltpoll
(Linux ``drivers/cpuidle/governors/haltpoll.c``):

* a look that found a message keeps its window (unless it lost the CPU: below);
* after a look that found nothing we sleep; the notification that ends the sleep tells how
  long a look would have had to be. Within one budget: a longer look would have caught it,
  the window doubles (from :data:`MIN_WINDOW_NS`), up to the budget. Later: looking was
  in vain, the window halves, and below :data:`MIN_WINDOW_NS` it becomes 0 (no look), so a
  peer whose messages come rarely soon spends nothing on polling, and a silent one never
  looks at all (looks follow messages only).
* a window of 0 is not for ever: every :data:`PROBE_EVERY`-th sleep without a look, one look
  of the whole budget probes. Two peers both at 0 wake each other with a full wake-up each
  way, so each one's wake-ups come later than a budget after it slept, and the rule above
  alone never grows their windows again: measured runs stayed at the unpolled round trip
  (~86 us instead of ~6 us) until the end. A probe that catches a message restores the whole
  budget (the peer answers within it); one that finds nothing sets 0 again at once.

Each look is one synchronous spin of at most ``window`` ns: the event loop is never blocked
longer than the budget by one look, and the caller yields to the loop between looks. The spin
never gives the CPU away: ``sched_yield`` between looks let a peer sharing our CPU run, but on
a loaded machine it handed whole timeslices (4-7 ms, traced) to other processes, blocking the
loop far beyond the budget. A look that still lasted over twice its window (preempted) sets it
to 0 (no look) until quick wake-ups grow it again: polling steps aside while CPUs are
contended, where it cannot help. Pure: only ``time.perf_counter_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import ArgumentTypeError, InvalidArgumentError

#: The smallest window worth a look (below it a look costs more than it can save).
MIN_WINDOW_NS = 2_000
#: One sleep in this many without a look probes with a look of the whole budget.
PROBE_EVERY = 16
#: The largest budget accepted: a look never blocks the event loop for longer (10 ms).
MAX_BUDGET_US = 10_000

_now = time.perf_counter_ns


def check_budget(budget_us: object) -> float:
    """``busy_poll=`` once checked: microseconds, 0 (off) to :data:`MAX_BUDGET_US`.

    Raises:
        ArgumentTypeError: not a real number (a str, a bool).
        InvalidArgumentError: NaN, negative or above :data:`MAX_BUDGET_US`.
    """
    if isinstance(budget_us, bool) or not isinstance(budget_us, int | float):
        raise ArgumentTypeError(
            f"busy_poll must be a number of microseconds, not {type(budget_us).__name__}"
        )
    if not 0 <= budget_us <= MAX_BUDGET_US:  # also NaN
        raise InvalidArgumentError(
            f"busy_poll must be 0 (off) to {MAX_BUDGET_US} microseconds, not {budget_us!r}"
        )
    return float(budget_us)


class BusyPoll:
    """The adaptive look-before-sleeping of one receiver (see module docstring).

    Args:
        budget_us: the most microseconds one look may take (0: never look).
        relax: called between two looks at the ring (tests: a fake clock's tick).
    """

    __slots__ = (
        "_relax",
        "_skipped",
        "_slept_at",
        "budget_ns",
        "hits",
        "misses",
        "overruns",
        "probes",
        "spent_ns",
        "window_ns",
    )

    def __init__(self, budget_us: float, relax: Callable[[], object] = lambda: None) -> None:
        self._relax = relax
        self.budget_ns = round(budget_us * 1000)
        self.window_ns = self.budget_ns
        self.hits = self.misses = self.overruns = self.spent_ns = 0
        self._slept_at = 0  # when the last look gave up (0: none since the last wake-up)
        self._skipped = 0  # sleeps without a look since the last probe (window 0)
        self.probes = 0

    @property
    def enabled(self) -> bool:
        return self.budget_ns > 0

    def spin(self, pending: Callable[[], bool]) -> bool:
        """Look at ``pending()`` for at most the current window: True as soon as it is."""
        window = self.window_ns
        probing = False
        if not window:
            if not self.budget_ns:
                self._slept_at = 0
                return False
            self._skipped += 1
            if self._skipped < PROBE_EVERY:
                self._slept_at = _now()
                return False
            self._skipped = 0
            self.probes += 1
            probing = True
            window = self.window_ns = self.budget_ns
        start = _now()
        deadline = start + window
        relax = self._relax
        while True:
            if pending():
                self.hits += 1
                self._spent(start, window)
                return True
            relax()
            now = _now()
            if now >= deadline:
                break
        self.misses += 1
        self._slept_at = self._spent(start, window)
        if probing:
            self.window_ns = 0  # in vain: back to no look (a quick wake-up may still grow it)
        return False

    def _spent(self, start: int, window: int) -> int:
        """Account for a look; one that lasted over twice its window lost the CPU (preempted):
        on a loaded machine a look blocks the loop for whole timeslices and the peer may need
        our CPU, so looks stop until quick wake-ups grow the window again."""
        now = _now()
        self.spent_ns += now - start
        if now - start > 2 * window:
            self.window_ns = 0
            self.overruns += 1
        return now

    def woke(self) -> None:
        """A notification arrived: had we looked a little longer, would we have caught it?"""
        slept_at = self._slept_at
        if slept_at:
            self._slept_at = 0
            window = self.window_ns
            if _now() - slept_at < self.budget_ns:
                self.window_ns = min(self.budget_ns, max(MIN_WINDOW_NS, window * 2))
            elif window:
                window //= 2
                self.window_ns = window if window >= MIN_WINDOW_NS else 0
