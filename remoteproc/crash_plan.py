"""Which processors a crash takes down and brings back, and in what order (pure, no I/O).

Theory of operation: processors form a dependency graph (``depends_on``: booted before the
processor, shut down after it). When one crashes, every *powered* processor that depends on it,
directly or through other powered ones, has lost a peer its firmware talks to: the group goes
down and comes back together. The crash handler holds the locks of the whole group for the
recovery. It takes them in the order ``boot()`` and ``shutdown()`` do (a processor before the
ones it depends on, also through processors outside the group), so the handler and a
concurrent boot or shutdown cannot deadlock.

:func:`plan_crash` turns the graph, the powered processors and the crashed one into a
:class:`CrashPlan`:

* ``down``: the lock order, also the teardown order: the dependents, each before the
  processors it depends on, then the crashed processor (its STOP opens its recovery);
* ``up``: the recovery order, ``down`` reversed: the crashed processor first, then each
  dependent after every processor it depends on, as a boot would.

Processors are named by strings; ties keep the order of the graph mapping (the order the
manager registered them), so a plan is deterministic. The planner knows nothing of
:class:`~remoteproc.rproc.RemoteProc`, locks or tasks: :mod:`remoteproc.crash` performs the plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import attrs

from .errors import RemoteprocError

__all__ = ["CrashPlan", "CrashPlanError", "plan_crash"]


class CrashPlanError(RemoteprocError, ValueError):
    """The dependency graph cannot be planned: an unknown processor, or a cycle."""


@attrs.frozen
class CrashPlan:
    """The processors a crash of ``crashed`` takes down and brings back, in order."""

    crashed: str
    down: tuple[str, ...]  # lock and teardown order; ends with ``crashed``

    @property
    def dependents(self) -> tuple[str, ...]:
        """The processors that go down with the crashed one (lock order)."""
        return self.down[:-1]

    @property
    def lock_order(self) -> tuple[str, ...]:
        return self.down

    @property
    def up(self) -> tuple[str, ...]:
        """Recovery order: the crashed processor, then its dependents, dependencies first."""
        return tuple(reversed(self.down))


def plan_crash(
    depends_on: Mapping[str, Iterable[str]], powered: Collection[str], crashed: str
) -> CrashPlan:
    """Plan the crash of ``crashed``.

    Args:
        depends_on: every processor's direct dependencies, in registration order.
        powered: the processors with a power reference (booted, not yet shut down).
        crashed: the processor whose crash is handled (powered or not: the lifecycle decides
            whether the crash counts).

    Raises:
        CrashPlanError: ``crashed`` or a dependency is not in ``depends_on``, or the graph
            has a cycle (the manager never builds one: dependencies are fixed at ``add()``).
    """
    graph = {name: tuple(deps) for name, deps in depends_on.items()}
    for name, deps in (*graph.items(), ("the crash report", (crashed,))):
        for dep in deps:
            if dep not in graph:
                raise CrashPlanError(f"{name} depends on {dep!r}, which is not in the graph")
    below = {name: _dependencies(graph, name) for name in graph}
    looped = [name for name in graph if name in below[name]]
    if looped:
        raise CrashPlanError(f"the dependencies of {', '.join(looped)} form a cycle")
    group = [
        name
        for name in graph
        if name != crashed and name in powered and _reaches(graph, powered, name, crashed)
    ]
    return CrashPlan(crashed, (*_dependents_first(group, below), crashed))


def _dependencies(graph: Mapping[str, tuple[str, ...]], name: str) -> frozenset[str]:
    """Everything ``name`` depends on, directly or not."""
    seen: set[str] = set()
    todo = list(graph[name])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(graph[dep])
    return frozenset(seen)


def _reaches(
    graph: Mapping[str, tuple[str, ...]], powered: Collection[str], name: str, crashed: str
) -> bool:
    """Whether ``name`` depends on ``crashed`` through powered processors only (an unpowered
    processor in between runs no firmware that could pass the loss of the peer on)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for dep in graph[current]:
            if dep == crashed:
                return True
            if dep in powered and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


def _dependents_first(group: list[str], below: Mapping[str, frozenset[str]]) -> list[str]:
    """``group`` ordered so each processor comes before those it depends on; ties keep the
    group's order."""
    ordered: list[str] = []
    left = list(group)
    while left:
        first = next(p for p in left if not any(p in below[q] for q in left))
        ordered.append(first)
        left.remove(first)
    return ordered
