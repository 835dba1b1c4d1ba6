"""Crash handling: one processor's side (:class:`CrashHandling`) and the group's (:func:`run_plan`).

Theory of operation: a platform reports a crash through ``report_crash()``; the processor hands
it to its manager, which plans the crash group (:func:`remoteproc.crash_plan.plan_crash`) and
runs :func:`run_plan` in its task group. The plan's processors are locked in its lock order,
each through the narrow interface of its :class:`CrashHandling`: the crashed processor's
lifecycle decides whether to recover (and how long to back off), the dependents go down without
waiting for their peers (not gracefully), the crashed core is stopped, waits out the backoff, is
reloaded and restarted, and the dependents come back, dependencies first. A crash report while
the processor is not running is counted and ignored (a late watchdog after a stop is the
platform's doing, not a host bug).

The backoff is the one wait a caller can cut short: a last ``shutdown()``, a ``remove()``
without owners or the manager closing abandons the recovery (the core stays crashed, then goes
offline) instead of waiting for it, also when the processor's lock is held by the crash handler
of a dependency (``holder``). A processor that is not recovering (disabled, failed, given up)
fails its buses with :meth:`CrashHandling.not_recovering`, a
:class:`~remoteproc.errors.CrashedError` whose ``__cause__`` is the
:class:`~remoteproc.errors.CrashReport`; ``wait_for_service`` raises the same.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager

import anyio
import attrs

from .actions import Performer, log_failure
from .crash_plan import CrashPlan
from .errors import CrashedError, CrashReport, RemoteprocError
from .lifecycle import Lifecycle
from .states import Action, Step

log = logging.getLogger("aioamp.remoteproc")

__all__ = ["CrashHandling", "run_plan"]


class _GaveWay(RemoteprocError):
    """A shutdown, removal or the manager closing cut a recovery's backoff short."""


class CrashHandling:
    """One processor's crash handling, performed under its lock.

    Args:
        name: the processor's name.
        lock: the processor's lock (held around every lifecycle call and its actions).
        lifecycle: the processor's lifecycle, fed the crash and the recovery's outcome.
        publish: publishes a step's transitions (and wakes the processor's waiters).
        performer: performs the recovery's actions.
        closing: whether the manager is closing (then a backoff gives way at once).
    """

    def __init__(
        self,
        name: str,
        *,
        lock: anyio.Lock,
        lifecycle: Lifecycle,
        publish: Callable[[Step], None],
        performer: Performer,
        closing: Callable[[], bool],
    ) -> None:
        self.name = name
        self._lock = lock
        self._sm = lifecycle
        self._publish = publish
        self._performer = performer
        self._closing = closing
        self.last_report: CrashReport | None = None
        self._backoff_scope: anyio.CancelScope | None = None
        self._stops_waiting = 0  # callers a recovery backoff gives way to
        self._held_by: CrashHandling | None = None  # whose crash handler holds our lock

    # -- what the group runner uses ----------------------------------------------------------------
    @asynccontextmanager
    async def held_for(self, holder: CrashHandling) -> AsyncIterator[None]:
        """Hold the processor's lock for the crash handler of ``holder``, whose backoff then
        gives way to this processor's last shutdown or removal too."""
        async with self._lock:
            self._held_by = holder
            try:
                yield
            finally:
                self._held_by = None

    def crashed(self, report: CrashReport, uptime: float) -> Step:
        """Feed the lifecycle this processor's own crash, after ``uptime`` seconds of running;
        returns its recovery step (no transitions: the report was ignored)."""
        reason = f"{report.kind.value}: {report.detail}"
        step = self._sm.crashed(reason, uptime=uptime)
        if not step.transitions:
            log.info(
                "%s: crash report while %s ignored: %s",
                *(self.name, self._sm.state.label, reason),
                extra={"processor": self.name, "state": self._sm.state.label, "reason": reason},
            )
            return step
        self.last_report = report
        self._publish(step)
        self._log_crash(reason, step)
        if not step.actions:
            self._performer.vdevs.fail(self.not_recovering())
        return step

    async def go_down(self, report: CrashReport) -> Step:
        """The processor's dependency crashed (``report``): go down without waiting for the
        peer. Returns what is left of the recovery (no STOP, no backoff: the crash is not this
        processor's, it starts no streak of its own)."""
        reason = f"dependency {report.processor} crashed: {report.kind.value}: {report.detail}"
        step = self._sm.crashed(reason)
        self._publish(step)
        if step.actions:
            await self._performer.teardown(graceful=False)
            rest = tuple(a for a in step.actions if a not in (Action.STOP, Action.BACKOFF))
            return attrs.evolve(step, actions=rest)
        if step.transitions:
            self.last_report = report
            self._performer.vdevs.fail(self.not_recovering())
        return Step()

    async def recover(self, step: Step) -> None:
        """Perform a recovery step (the lock is held); on failure the core stays crashed."""
        try:
            for action in step.actions:
                if action is Action.BACKOFF:
                    await self._backoff(step.delay)
                else:
                    with anyio.CancelScope(shield=True):
                        await self._performer.perform(action, graceful=False)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._recovery_failed(exc)
            if not isinstance(exc, Exception):
                raise  # cancelled (the manager is going away) or interrupted
            return
        self._publish(self._sm.recovery_succeeded())

    # -- what the processor uses -------------------------------------------------------------------
    def not_recovering(self) -> CrashedError:
        """The error for users of a crashed processor that is not recovering, chained to its
        last :class:`CrashReport`."""
        report = self.last_report
        what = str(report) if report is not None else f"{self.name} crashed"
        err = CrashedError(f"{what}; not recovering: {self._sm.stuck or 'no recovery pending'}")
        err.__cause__ = report
        return err

    @contextmanager
    def gives_way(self, *, when: bool = True) -> Iterator[None]:
        """While the caller waits for the processor's lock (``when`` it is a last shutdown or
        a removal without owners), the recovery backoff holding that lock stops and gives up:
        its own, or that of the dependency whose crash handler holds it."""
        with ExitStack() as stack:
            if when:
                for handling in {self, self._held_by or self}:
                    stack.enter_context(handling.abandoning_backoff())
            yield

    @contextmanager
    def abandoning_backoff(self) -> Iterator[None]:
        """Cut the backoff waited out now, and any that would start while in this block."""
        self._stops_waiting += 1
        self.cut_backoff()
        try:
            yield
        finally:
            self._stops_waiting -= 1

    def cut_backoff(self) -> None:
        """End the backoff waited out now, if any: its recovery is abandoned."""
        if self._backoff_scope is not None:
            self._backoff_scope.cancel()

    # -- internals ---------------------------------------------------------------------------------
    def _log_crash(self, reason: str, step: Step) -> None:
        count = self._sm.consecutive_crashes
        streak = f" (crash {count} in a row)" if count > 1 else ""
        extra = {"processor": self.name, "reason": reason, "crashes": count}
        if step.actions:
            when = f" in {step.delay:.3g} s" if step.delay else ""
            extra["delay"] = step.delay
            log.warning(
                "%s: crashed%s: %s; recovering%s", self.name, streak, reason, when, extra=extra
            )
        else:
            stuck = self._sm.stuck
            log.error(
                "%s: crashed%s: %s; not recovering: %s",
                self.name,
                streak,
                reason,
                stuck,
                extra=extra,
            )

    async def _recovery_failed(self, exc: BaseException) -> None:
        if isinstance(exc, _GaveWay):
            log.info(
                "%s: recovery abandoned: %s",
                *(self.name, exc),
                extra={"processor": self.name, "reason": str(exc)},
            )
        else:
            log_failure(f"{self.name}: recovery failed", exc, self.name)
        self._publish(self._sm.recovery_failed(str(exc) or type(exc).__name__))
        await self._performer.teardown(graceful=False)
        self._performer.vdevs.fail(self.not_recovering())

    async def _backoff(self, delay: float) -> None:
        gave_way = _GaveWay("a shutdown, removal or the manager closing came during the backoff")
        if self._stops_waiting or self._closing():
            raise gave_way
        with anyio.CancelScope() as scope:
            self._backoff_scope = scope
            try:
                await anyio.sleep(delay)
            finally:
                self._backoff_scope = None
        if scope.cancelled_caught:
            raise gave_way


async def run_plan(
    plan: CrashPlan, members: Mapping[str, CrashHandling], report: CrashReport, uptime: float
) -> None:
    """Handle the crash ``plan`` describes (see the module docstring); ``members`` are the
    crash handlings of the plan's processors by name, ``uptime`` how long the crashed core ran."""
    crashed = members[plan.crashed]
    async with AsyncExitStack() as stack:
        for name in plan.lock_order:
            await stack.enter_async_context(members[name].held_for(crashed))
        step = crashed.crashed(report, uptime)
        if not step.actions:
            return
        recovering: list[tuple[CrashHandling, Step]] = []
        for name in plan.dependents:  # teardown order: dependents before their dependencies
            rest = await members[name].go_down(report)
            if rest.actions:
                recovering.append((members[name], rest))
        await crashed.recover(step)
        for member, rest in reversed(recovering):  # plan.up: dependencies first
            await member.recover(rest)
