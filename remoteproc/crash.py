"""Crash handling of a remote processor: the shell side of crash-group recovery.

Theory of operation: :meth:`RemoteProc.report_crash <remoteproc.rproc.RemoteProc.report_crash>`
starts :func:`handle_crash` in the manager's task group. It takes the locks of the powered
processors that depend on the crashed one (dependents first, the lock order of ``boot()``),
then its own, and asks the lifecycle, which applies the
:class:`~remoteproc.recovery.RecoveryPolicy`. The crash is logged in one line that says which
crash of the streak it is and what happens next (no traceback: a crash is the peer's doing,
not a host bug). Then:

* Recovering: the dependents go down (not gracefully), the crashed core is stopped, the shell
  waits out the backoff, reloads and restarts it, and restarts the dependents. The backoff is
  the one wait a caller can cut short: a last ``shutdown()``, a ``remove()`` without owners or
  the manager closing abandons the recovery (the core stays crashed, then goes offline) instead
  of waiting for it.
* Not recovering (disabled, failed, given up): the buses fail with :func:`not_recovering`, a
  :class:`~remoteproc.errors.CrashedError` whose ``__cause__`` is the
  :class:`~remoteproc.errors.CrashReport`; ``wait_for_service`` raises the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import TYPE_CHECKING

import anyio
import attrs

from .errors import CrashedError, CrashReport, RemoteprocError
from .lifecycle import Action, Step

if TYPE_CHECKING:
    from .rproc import RemoteProc

log = logging.getLogger("remoteproc")


class _GaveWay(RemoteprocError):
    """A shutdown, removal or the manager closing cut a recovery's backoff short."""


def not_recovering(rproc: RemoteProc) -> CrashedError:
    """The error for users of a crashed processor that is not recovering, chained to its
    last :class:`CrashReport`."""
    report = rproc._last_report
    what = str(report) if report is not None else f"{rproc.name} crashed"
    err = CrashedError(f"{what}; not recovering: {rproc._sm.stuck or 'no recovery pending'}")
    err.__cause__ = report
    return err


def dependents(rproc: RemoteProc) -> list[RemoteProc]:
    """Powered processors that depend on ``rproc``, directly or through others, each listed
    before the processors it depends on (the lock order of ``boot()``)."""
    depth: dict[RemoteProc, int] = {}
    frontier = [(rproc, 0)]
    while frontier:
        current, level = frontier.pop()
        for proc in rproc._manager.processors:
            deeper = depth.get(proc, -1) < level + 1
            if current in proc.depends_on and proc.power > 0 and proc is not rproc and deeper:
                depth[proc] = level + 1
                frontier.append((proc, level + 1))
    return sorted(depth, key=lambda proc: -depth[proc])


def _log_crash(rproc: RemoteProc, reason: str, step: Step) -> None:
    count = rproc._sm.consecutive_crashes
    streak = f" (crash {count} in a row)" if count > 1 else ""
    if step.actions:
        when = f" in {step.delay:.3g} s" if step.delay else ""
        log.warning("%s: crashed%s: %s; recovering%s", rproc.name, streak, reason, when)
    else:
        stuck = rproc._sm.stuck
        log.error("%s: crashed%s: %s; not recovering: %s", rproc.name, streak, reason, stuck)


async def handle_crash(rproc: RemoteProc, report: CrashReport, uptime: float) -> None:
    """Handle one crash report of ``rproc``, whose core had run ``uptime`` seconds."""
    reason = f"{report.kind.value}: {report.detail}"
    group = dependents(rproc)
    async with AsyncExitStack() as stack:
        for dep in group:  # lock order: dependents before dependencies, as boot()
            await stack.enter_async_context(dep._lock)
            dep._held_by = rproc
            stack.callback(setattr, dep, "_held_by", None)
        await stack.enter_async_context(rproc._lock)
        step = rproc._sm.crashed(reason, uptime=uptime)
        if not step.transitions:
            log.info("%s: crash report while %s ignored: %s", rproc.name, rproc.state_name, reason)
            return
        rproc._last_report = report
        rproc._publish(step)
        _log_crash(rproc, reason, step)
        if not step.actions:
            rproc._vdevs.fail(not_recovering(rproc))
            return
        # Dependents go down with the group (without waiting for them: not graceful). Their
        # crash is not their own: it starts no streak of theirs (uptime left infinite).
        group_steps: list[tuple[RemoteProc, Step]] = []
        for dep in group:
            dstep = dep._sm.crashed(f"dependency {rproc.name} crashed: {reason}")
            dep._publish(dstep)
            if dstep.actions:
                await dep._teardown(graceful=False)
                group_steps.append((dep, dstep))
            elif dstep.transitions:
                dep._last_report = report
                dep._vdevs.fail(not_recovering(dep))
        await recover(rproc, step)
        for dep, dstep in reversed(group_steps):  # dependencies first
            rest = tuple(a for a in dstep.actions if a not in (Action.STOP, Action.BACKOFF))
            await recover(dep, attrs.evolve(dstep, actions=rest))


async def recover(rproc: RemoteProc, step: Step) -> None:
    """Perform a recovery step under ``rproc``'s lock; on failure the core stays crashed."""
    try:
        for action in step.actions:
            if action is Action.BACKOFF:
                await _backoff(rproc, step.delay)
            else:
                with anyio.CancelScope(shield=True):
                    await rproc._perform(action, graceful=False)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await _recovery_failed(rproc, exc)
        if not isinstance(exc, Exception):
            raise  # cancelled (the manager is going away) or interrupted
        return
    rproc._publish(rproc._sm.recovery_succeeded())


def log_failure(what: str, exc: BaseException) -> None:
    """One line for an expected failure (a RemoteprocError); a traceback only for a bug."""
    if isinstance(exc, RemoteprocError):
        log.error("%s: %s", what, exc)
    else:
        log.error("%s", what, exc_info=exc)


async def _recovery_failed(rproc: RemoteProc, exc: BaseException) -> None:
    if isinstance(exc, _GaveWay):
        log.info("%s: recovery abandoned: %s", rproc.name, exc)
    else:
        log_failure(f"{rproc.name}: recovery failed", exc)
    rproc._publish(rproc._sm.recovery_failed(str(exc) or type(exc).__name__))
    await rproc._teardown(graceful=False)
    rproc._vdevs.fail(not_recovering(rproc))


async def _backoff(rproc: RemoteProc, delay: float) -> None:
    gave_way = _GaveWay("a shutdown, removal or the manager closing came during the backoff")
    if rproc._stops_waiting or rproc._manager.closing:
        raise gave_way
    with anyio.CancelScope() as scope:
        rproc._backoff_scope = scope
        try:
            await anyio.sleep(delay)
        finally:
            rproc._backoff_scope = None
    if scope.cancelled_caught:
        raise gave_way


@contextmanager
def backoff_gives_way(rproc: RemoteProc, *, when: bool = True) -> Iterator[None]:
    """While the caller waits for ``rproc``'s lock (``when`` it is a last shutdown or a
    removal without owners), the recovery backoff holding that lock stops and gives up: its
    own, or that of the dependency whose crash took it down."""
    if not when:
        yield
        return
    holders = {rproc, rproc._held_by or rproc}
    for proc in holders:
        proc._stops_waiting += 1
        cut_backoff(proc)
    try:
        yield
    finally:
        for proc in holders:
            proc._stops_waiting -= 1


def cut_backoff(rproc: RemoteProc) -> None:
    """End the backoff ``rproc`` is waiting out now, if any: its recovery is abandoned."""
    if rproc._backoff_scope is not None:
        rproc._backoff_scope.cancel()
