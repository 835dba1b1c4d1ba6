"""When a crashed processor is restarted: the pure recovery policy (no clock, no I/O).

Theory of operation: Linux restarts a crashed core at once, every time. A firmware that dies
at start then loops as fast as the host can reload it, logging each crash. Here each crash is
numbered within its *streak*: a crash after the core ran for ``stable_after`` seconds starts a
new streak at 1, any earlier crash continues it. The first recovery of a streak is immediate
(as Linux); the n-th waits ``backoff_initial * backoff_factor ** (n - 2)`` seconds, at most
``backoff_max``; after ``max_consecutive`` recoveries the next crash of the streak is not
recovered and the processor stays crashed, with :attr:`CrashRecord.stuck` saying why, until a
manual ``recover()`` (which starts a new streak) or the last shutdown. A :class:`CrashRecord`
keeps a processor's count; :class:`~remoteproc.lifecycle.Lifecycle` turns its verdict into a
``BACKOFF`` action after ``STOP`` (sleep ``Step.delay``, cancellable) or into no recovery.
"""

from __future__ import annotations

import math

import attrs

from .errors import ArgumentTypeError, RecoveryPolicyError

__all__ = ["CrashRecord", "RecoveryPolicy"]


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

    Attributes:
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


@attrs.define
class CrashRecord:
    """One processor's crashes as its policy sees them: the counters, the current streak,
    and why the last crash is not being recovered (kept by the processor's lifecycle)."""

    crashes: int = 0
    spurious_crashes: int = 0  # reported while the core was not running: counted, ignored
    recoveries: int = 0
    recovery_failures: int = 0
    consecutive_crashes: int = 0  # in the current streak
    recovery_give_ups: int = 0  # crashes the policy did not recover
    stuck: str | None = None  # why the last crash is not recovered (a reason, not a counter)

    def counters(self) -> dict[str, int]:
        """The counters by name (as :class:`~remoteproc.states.LifecycleStatistics` has them)."""
        return attrs.asdict(self, filter=lambda field, _value: field.name != "stuck")

    def crashed(self, policy: RecoveryPolicy, *, uptime: float, enabled: bool) -> float | None:
        """Count a crash after ``uptime`` seconds of running: the seconds to wait before
        recovering it, or None when it is not recovered (:attr:`stuck` says why)."""
        self.crashes += 1
        streak = policy.continues_streak(uptime)
        self.consecutive_crashes = self.consecutive_crashes + 1 if streak else 1
        if not enabled:
            self.stuck = "recovery is disabled"
            return None
        delay = policy.delay(self.consecutive_crashes)
        if delay is None:
            self.recovery_give_ups += 1
            self.stuck = policy.describe_limit()
        return delay

    def recovery_failed(self, reason: str) -> None:
        self.recovery_failures += 1
        self.stuck = f"recovery failed: {reason}"

    def new_streak(self) -> None:
        """A boot from power 0 or a manual recovery: the next crash is the first again."""
        self.consecutive_crashes = 0
