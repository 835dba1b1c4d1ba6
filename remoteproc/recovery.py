"""When a crashed processor is restarted: the pure recovery policy (no clock, no I/O).

Theory of operation: Linux restarts a crashed core at once, every time. A firmware that dies
at start then loops as fast as the host can reload it, logging each crash. Here each crash is
numbered within its *streak*: a crash after the core ran for ``stable_after`` seconds starts a
new streak at 1, any earlier crash continues it. The first recovery of a streak is immediate
(as Linux); the n-th waits ``backoff_initial * backoff_factor ** (n - 2)`` seconds, at most
``backoff_max``; after ``max_consecutive`` recoveries the next crash of the streak is not
recovered and the processor stays crashed. :class:`~remoteproc.lifecycle.Lifecycle` keeps the
count and turns :meth:`RecoveryPolicy.delay` into a ``BACKOFF`` action the shell sleeps for.
"""

from __future__ import annotations

import math

import attrs

from .errors import ArgumentTypeError, RecoveryPolicyError

__all__ = ["RecoveryPolicy"]


def _number(name: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(f"RecoveryPolicy.{name} must be a number, not {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise RecoveryPolicyError(
            f"RecoveryPolicy.{name} must be a finite number >= {minimum}, not {value!r}"
        )


@attrs.frozen
class RecoveryPolicy:
    """How often, and how soon, a crashed processor is recovered automatically.

    Args:
        max_consecutive: recoveries allowed in one streak of crashes; the next crash leaves
            the processor crashed (``0``: never recover automatically; ``None``: no limit).
        backoff_initial: seconds before the second recovery of a streak (the first is
            immediate).
        backoff_factor: each further recovery of the streak waits this many times longer.
        backoff_max: the longest wait.
        stable_after: seconds the core must run for its next crash to start a new streak.
    """

    max_consecutive: int | None = 5
    backoff_initial: float = 0.1
    backoff_factor: float = 2.0
    backoff_max: float = 10.0
    stable_after: float = 10.0

    def __attrs_post_init__(self) -> None:
        limit = self.max_consecutive
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise ArgumentTypeError(
                    f"RecoveryPolicy.max_consecutive must be an int or None, not {limit!r}"
                )
            if limit < 0:
                raise RecoveryPolicyError(
                    f"RecoveryPolicy.max_consecutive must be >= 0, not {limit!r}"
                )
        _number("backoff_initial", self.backoff_initial, minimum=0.0)
        _number("backoff_factor", self.backoff_factor, minimum=1.0)
        _number("backoff_max", self.backoff_max, minimum=self.backoff_initial)
        _number("stable_after", self.stable_after, minimum=0.0)

    def continues_streak(self, uptime: float) -> bool:
        """Whether a crash after ``uptime`` seconds of running belongs to the current streak."""
        return uptime < self.stable_after

    def delay(self, consecutive: int) -> float | None:
        """Seconds to wait before recovering from crash number ``consecutive`` (1 = the first)
        of a streak, or None when the policy gives up on it."""
        if consecutive < 1:
            raise RecoveryPolicyError(f"crash numbers start at 1, not {consecutive}")
        if self.max_consecutive is not None and consecutive > self.max_consecutive:
            return None
        if consecutive == 1:
            return 0.0
        try:
            wait = self.backoff_initial * self.backoff_factor ** (consecutive - 2)
        except OverflowError:
            return self.backoff_max
        return min(wait, self.backoff_max)

    def describe_limit(self) -> str:
        """Why the policy stops, for logs and errors."""
        if self.max_consecutive == 0:
            return "the recovery policy allows no automatic recovery (max_consecutive=0)"
        return (
            f"gave up after {self.max_consecutive} consecutive recoveries "
            f"(RecoveryPolicy.max_consecutive={self.max_consecutive})"
        )
