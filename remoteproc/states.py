"""The vocabulary of the processor lifecycle: states, actions, steps, transitions, counters,
and the kinds of crash a platform reports.

Pure value types shared by :mod:`remoteproc.lifecycle` (which produces them) and the shell
(which performs the actions and publishes the transitions).

How the shell performs a :class:`Step` (it holds the processor's lock around every call to
its :class:`~remoteproc.lifecycle.Lifecycle` *and* the actions asked for, so calls never
interleave):

* Operations that bring the core **up** are two-phase: ``boot``, ``attach``, ``recover`` (and
  ``crashed`` when recovery is enabled), ``suspend``, ``resume``. They set ``pending`` and
  return the actions; the state changes only when the shell reports ``succeeded`` (or
  ``boot_succeeded`` / ``recovery_succeeded``). On the first failing action the shell calls
  ``failed`` and performs *its* actions (cleanup, best effort), then raises. While an
  operation is pending every other call except ``get`` / ``put`` raises ``StateError``::

      async with lock:
          step = sm.boot()
          try:
              for action in step.actions:
                  await perform(action)
          except Exception as exc:
              for action in sm.boot_failed(str(exc)).actions:
                  await perform_best_effort(action)
              raise
          publish(sm.boot_succeeded().transitions)

* Operations that bring the core **down** are committed at once: ``shutdown``, ``detach``,
  ``finish_delete``. The host stops using the core whatever the platform says, so the shell
  performs every returned action (best effort, release even if stop failed) and reports errors
  to its caller; there is nothing to roll back to.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs

__all__ = [
    "STATE_NAMES",
    "Action",
    "CrashKind",
    "LifecycleStatistics",
    "Operation",
    "State",
    "Step",
    "Transition",
]


class CrashKind(enum.Enum):
    """What the platform saw (``enum rproc_crash_type``)."""

    MMUFAULT = "mmu fault"
    WATCHDOG = "watchdog"
    FATAL_ERROR = "fatal error"


class State(enum.Enum):
    """Processor states; values mirror Linux's ``enum rproc_state`` (for sysfs interop)."""

    OFFLINE = 0
    SUSPENDED = 1
    RUNNING = 2
    CRASHED = 3
    DELETED = 4
    ATTACHED = 5
    DETACHED = 6

    @property
    def label(self) -> str:
        """The name Linux prints for this state (``rproc_state_string``)."""
        return STATE_NAMES[self]

    @classmethod
    def from_label(cls, label: str) -> State:
        """Parse a label such as ``/sys/class/remoteproc/*/state`` prints it."""
        for state, name in STATE_NAMES.items():
            if name == label:
                return state
        raise ValueError(f"unknown remoteproc state label {label!r}")


STATE_NAMES: Final[Mapping[State, str]] = {
    State.OFFLINE: "offline",
    State.SUSPENDED: "suspended",
    State.RUNNING: "running",
    State.CRASHED: "crashed",
    State.DELETED: "deleted",
    State.ATTACHED: "attached",
    State.DETACHED: "detached",
}


class Action(enum.Enum):
    """Work the shell performs for the core, in the order given."""

    LOAD = "load"  # allocate resources from the table and copy the firmware segments in
    START = "start"  # release the core from reset (platform start)
    STOP = "stop"  # stop subdevices, then put the core in reset (platform stop)
    RELOAD = "reload"  # copy the firmware segments again into the already allocated memory
    ATTACH = "attach"  # adopt a core that already runs: map its resources, no load, no start
    DETACH = "detach"  # stop using the core and leave it running (platform detach)
    SUSPEND = "suspend"
    RESUME = "resume"
    RELEASE_RESOURCES = "release-resources"  # host-side only: vdevs, mappings, carveouts
    BACKOFF = "backoff"  # recovery: wait Step.delay seconds (cancellable) before reloading


class Operation(enum.Enum):
    """A two-phase operation waiting for the shell's verdict (see the module docstring)."""

    BOOT = "boot"
    ATTACH = "attach"
    RECOVER = "recover"
    SUSPEND = "suspend"
    RESUME = "resume"


@attrs.frozen
class Transition:
    """One change of ``state``; ``cause`` says why, for logs and the shell's stream."""

    old: State
    new: State
    cause: str


@attrs.frozen
class Step:
    """What one call asks of the shell: actions to perform and the transitions it caused."""

    actions: tuple[Action, ...] = ()
    transitions: tuple[Transition, ...] = ()
    graceful: bool = True  # False: tearing down a crashed core, do not wait for the dead peer
    # (no rpmsg goodbyes), like Linux's ``rproc_stop(rproc, crashed=true)``
    delay: float = 0.0  # seconds the BACKOFF action waits


@attrs.frozen
class LifecycleStatistics:
    """Snapshot of the counters; nothing the core refuses or ignores goes uncounted."""

    state: State
    power: int
    owners: int
    pending: Operation | None
    deleting: bool
    boots: int
    attaches: int
    boot_failures: int
    crashes: int
    spurious_crashes: int
    recoveries: int
    recovery_failures: int
    consecutive_crashes: int  # in the current streak (see RecoveryPolicy)
    recovery_give_ups: int  # crashes the policy did not recover
    last_failure: str | None
