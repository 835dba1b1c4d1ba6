"""Pure lifecycle state machine of one remote processor (no I/O, no clock, no event loop).

Theory of operation
-------------------
This is the bookkeeping half of Linux's remoteproc core (``rproc_boot`` / ``rproc_shutdown`` with
the ``power`` refcount, ``rproc_get_by_name`` / ``rproc_put`` with the owner refcount, crash
recovery, attach / detach), split from the half that touches hardware, like h11 or aioquic.
Methods take events and return a :class:`Step`: the :class:`Action` s the async shell must perform,
in order, and the :class:`Transition` s of ``state`` that the call caused (for the shell's stream).
The core never blocks and never guesses whether an action worked: the shell tells it.

The shell performs the steps as :mod:`remoteproc.states` describes: operations that bring the
core up are two-phase (``pending`` until the shell reports success or failure), those that bring
it down are committed at once.

Decisions where Linux is silent or the brief left a choice are in each method's docstring.
Two span the machine: ``power == 0`` exactly when the state is OFFLINE, DETACHED or DELETED;
and deletion is a flag, not a state: :meth:`~Lifecycle.delete` refuses new owners and boots,
while existing users may still shut down, put, crash and recover.
"""

from __future__ import annotations

import math
from typing import Final, NoReturn

import attrs

from remoteproc.errors import CrashedError, StateError
from remoteproc.recovery import CrashRecord, RecoveryPolicy
from remoteproc.states import (
    STATE_NAMES,
    Action,
    LifecycleStatistics,
    Operation,
    State,
    Step,
    Transition,
)

__all__ = [
    "STATE_NAMES",
    "Action",
    "Lifecycle",
    "LifecycleStatistics",
    "Operation",
    "RecoveryPolicy",
    "State",
    "Step",
    "Transition",
]

_NOTHING: Final = Step()
_RECOVERY: Final = (Action.STOP, Action.RELOAD, Action.START)
_TEARDOWN: Final = (Action.STOP, Action.RELEASE_RESOURCES)


def _initial_state(_instance: object, _attribute: object, value: State) -> None:
    if value not in (State.OFFLINE, State.DETACHED):
        raise ValueError(f"initial state must be offline or detached, not {value.label}")


@attrs.define(eq=False)
class Lifecycle:
    """Refcounted lifecycle of one processor; see the module docstring for the protocol.

    Attributes:
        name: used in error messages only.
        recovery_enabled: restart automatically on a crash (Linux's ``recovery`` debugfs knob);
            may be changed at any time.
        recovery_policy: how soon and how often (backoff, limit); may be changed at any time.
        initial_state: OFFLINE, or DETACHED when the platform reports the core already runs
            (booted by a bootloader): the first ``boot()`` then attaches.
    """

    name: str = "remoteproc"
    recovery_enabled: bool = True
    recovery_policy: RecoveryPolicy = attrs.field(factory=RecoveryPolicy)
    _state: State = attrs.field(
        default=State.OFFLINE,
        alias="initial_state",
        validator=_initial_state,
        on_setattr=attrs.setters.NO_OP,  # validate the argument only, not every transition
    )
    _power: int = attrs.field(default=0, init=False)
    _owners: int = attrs.field(default=0, init=False)
    _pending: Operation | None = attrs.field(default=None, init=False)
    _deleting: bool = attrs.field(default=False, init=False)
    _boots: int = attrs.field(default=0, init=False)
    _attaches: int = attrs.field(default=0, init=False)
    _boot_failures: int = attrs.field(default=0, init=False)
    _record: CrashRecord = attrs.field(factory=CrashRecord, init=False)
    _last_failure: str | None = attrs.field(default=None, init=False)

    # -- read-only view -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def power(self) -> int:
        """Users that booted the processor and have not shut it down yet."""
        return self._power

    @property
    def owners(self) -> int:
        """Holders of a ``get()`` reference; deletion waits for them."""
        return self._owners

    @property
    def pending(self) -> Operation | None:
        return self._pending

    @property
    def deleting(self) -> bool:
        return self._deleting

    @property
    def recoveries(self) -> int:
        return self._record.recoveries

    @property
    def consecutive_crashes(self) -> int:
        """Crashes in the current streak (see :class:`~remoteproc.recovery.RecoveryPolicy`)."""
        return self._record.consecutive_crashes

    @property
    def stuck(self) -> str | None:
        """Why a CRASHED core is not recovering (disabled, failed, the policy gave up), or
        None while it is not crashed or a recovery is pending."""
        return (
            self._record.stuck if self._state is State.CRASHED and self._pending is None else None
        )

    @property
    def can_finish_delete(self) -> bool:
        """True once :meth:`delete` was called and the last owner is gone."""
        idle = self._owners == 0 and self._pending is None
        return self._deleting and self._state is not State.DELETED and idle

    def statistics(self) -> LifecycleStatistics:
        return LifecycleStatistics(
            state=self._state,
            power=self._power,
            owners=self._owners,
            pending=self._pending,
            deleting=self._deleting,
            boots=self._boots,
            attaches=self._attaches,
            boot_failures=self._boot_failures,
            last_failure=self._last_failure,
            **self._record.counters(),
        )

    # -- power refcount -------------------------------------------------------------------

    def boot(self) -> Step:
        """Take a power reference. The first one loads and starts the core, or attaches a
        DETACHED one (as Linux). Later ones only count, also while SUSPENDED (no resume), but
        a CRASHED core that is not recovering raises :class:`CrashedError`."""
        self._check_idle("boot")
        self._check_not_deleting("boot")
        if self._power == 0:
            self._record.new_streak()
            if self._state is State.DETACHED:
                return self._begin(Operation.ATTACH, (Action.ATTACH,))
            return self._begin(Operation.BOOT, (Action.LOAD, Action.START))
        if self._state is State.CRASHED:
            raise CrashedError(
                f"{self._who}: cannot boot while {self._describe()}: the processor crashed and "
                f"is not recovering ({self._record.stuck}); call recover() or shut it down"
            )
        self._power += 1
        return _NOTHING

    def attach(self) -> Step:
        """Adopt a core that already runs (DETACHED) without loading or starting it: the
        explicit form of a first :meth:`boot` that refuses to load firmware."""
        self._check_idle("attach")
        self._check_not_deleting("attach")
        if self._state is not State.DETACHED:
            self._refuse("attach", "only a detached processor can be attached")
        return self._begin(Operation.ATTACH, (Action.ATTACH,))

    def shutdown(self) -> Step:
        """Drop a power reference; the last one stops the core (an ATTACHED one too, as
        Linux) and releases its resources."""
        self._check_idle("shutdown")
        if self._power == 0:
            self._refuse("shutdown", "it was not booted (power 0)")
        self._power -= 1
        if self._power:
            return _NOTHING
        graceful = self._state is not State.CRASHED
        return Step(_TEARDOWN, (self._move(State.OFFLINE, "shutdown"),), graceful)

    def detach(self) -> Step:
        """Drop a power reference; the last one leaves the core running, unmanaged (DETACHED)."""
        self._check_idle("detach")
        if self._power == 0:
            self._refuse("detach", "it was not booted (power 0)")
        if self._state not in (State.RUNNING, State.ATTACHED):
            self._refuse("detach", "only a running or attached processor can be detached")
        self._power -= 1
        if self._power:
            return _NOTHING
        transition = self._move(State.DETACHED, "detach")
        return Step((Action.DETACH, Action.RELEASE_RESOURCES), (transition,))

    # -- completion of two-phase operations -----------------------------------------------

    def succeeded(self) -> Step:
        """The shell performed every action of the pending operation."""
        op = self._pending
        if op is None:
            self._refuse("complete an operation", "no operation is in progress")
        self._pending = None
        if op is Operation.BOOT:
            self._power, self._boots = 1, self._boots + 1
            return Step(transitions=(self._move(State.RUNNING, "boot"),))
        if op is Operation.ATTACH:
            self._power, self._attaches = 1, self._attaches + 1
            return Step(transitions=(self._move(State.ATTACHED, "attach"),))
        if op is Operation.RECOVER:
            self._record.recoveries += 1
            return Step(transitions=(self._move(State.RUNNING, "recovery"),))
        if op is Operation.SUSPEND:
            return Step(transitions=(self._move(State.SUSPENDED, "suspend"),))
        return Step(transitions=(self._move(State.RUNNING, "resume"),))

    def failed(self, reason: str) -> Step:
        """An action of the pending operation failed; returns the cleanup to perform."""
        op = self._pending
        if op is None:
            self._refuse("fail an operation", "no operation is in progress")
        self._pending = None
        self._last_failure = f"{op.value}: {reason}"
        if op in (Operation.BOOT, Operation.ATTACH):
            self._boot_failures += 1
            return Step((Action.RELEASE_RESOURCES,))
        if op is Operation.RECOVER:
            # Keep the resources: the core stays CRASHED until recover() or the last shutdown.
            self._record.recovery_failed(reason)
        return _NOTHING  # suspend/resume failed: the core stays where it was

    def boot_succeeded(self) -> Step:
        """:meth:`succeeded` for a boot (which may have taken the attach path)."""
        self._check_pending("boot_succeeded", Operation.BOOT, Operation.ATTACH)
        return self.succeeded()

    def boot_failed(self, reason: str) -> Step:
        self._check_pending("boot_failed", Operation.BOOT, Operation.ATTACH)
        return self.failed(reason)

    def recovery_succeeded(self) -> Step:
        self._check_pending("recovery_succeeded", Operation.RECOVER)
        return self.succeeded()

    def recovery_failed(self, reason: str) -> Step:
        self._check_pending("recovery_failed", Operation.RECOVER)
        return self.failed(reason)

    # -- crash and recovery ---------------------------------------------------------------

    def crashed(self, reason: str, *, uptime: float = math.inf) -> Step:
        """The platform reports a crash (watchdog, MMU fault) after the core ran ``uptime``
        seconds; recovers if enabled and the :attr:`recovery_policy` allows it. A report while
        OFFLINE, DETACHED, CRASHED or DELETED is not an error (the peer is not the caller) but
        is counted in ``spurious_crashes``; one while an operation is pending is a protocol bug
        of the shell (:class:`StateError`)."""
        self._check_idle("handle a crash")
        if self._state not in (State.RUNNING, State.ATTACHED, State.SUSPENDED):
            self._record.spurious_crashes += 1
            return _NOTHING
        transition = self._move(State.CRASHED, f"crash: {reason}")
        policy, enabled = self.recovery_policy, self.recovery_enabled
        delay = self._record.crashed(policy, uptime=uptime, enabled=enabled)
        if delay is None:
            return Step(transitions=(transition,))
        self._pending = Operation.RECOVER
        if delay == 0:
            return Step(_RECOVERY, (transition,), graceful=False)
        actions = (Action.STOP, Action.BACKOFF, Action.RELOAD, Action.START)
        return Step(actions, (transition,), graceful=False, delay=delay)

    def recover(self) -> Step:
        """Manual recovery of a CRASHED core (recovery disabled, failed, or given up): at once,
        and it starts a new streak for the recovery policy. Recovery is ``STOP, RELOAD,
        START`` keeping the allocated resources; success goes to RUNNING (also from ATTACHED:
        the host now owns the firmware); failure leaves the core CRASHED until the next
        :meth:`recover` or the last shutdown."""
        self._check_idle("recover")
        if self._state is not State.CRASHED:
            self._refuse("recover", "only a crashed processor can be recovered")
        self._pending = Operation.RECOVER
        self._record.new_streak()
        return Step(_RECOVERY, graceful=False)

    # -- suspend / resume -----------------------------------------------------------------

    def suspend(self) -> Step:
        self._check_idle("suspend")
        if self._state is not State.RUNNING:
            self._refuse("suspend", "only a running processor can be suspended")
        return self._begin(Operation.SUSPEND, (Action.SUSPEND,))

    def resume(self) -> Step:
        self._check_idle("resume")
        if self._state is not State.SUSPENDED:
            self._refuse("resume", "only a suspended processor can be resumed")
        return self._begin(Operation.RESUME, (Action.RESUME,))

    # -- owner refcount and deletion ------------------------------------------------------

    def get(self) -> None:
        """Take an owner reference (``rproc_get_by_name``); refused once deletion started."""
        self._check_not_deleting("get")
        self._owners += 1

    def put(self) -> None:
        """Drop an owner reference (``rproc_put``); check :attr:`can_finish_delete` after."""
        if self._owners == 0:
            self._refuse("put", "it has no owners")
        self._owners -= 1

    def delete(self) -> bool:
        """Start deletion: refuse new owners and boots. Returns True if owners must leave first."""
        self._check_idle("delete")
        self._check_not_deleting("delete")
        self._deleting = True
        return self._owners > 0

    def finish_delete(self) -> Step:
        """Complete deletion once :attr:`can_finish_delete`. Power references left without an
        owner (e.g. an auto-boot reference) are dropped with a last shutdown's teardown."""
        if not self._deleting or self._state is State.DELETED:
            self._refuse("finish_delete", "delete() was not called")
        self._check_idle("finish_delete")
        if self._owners:
            self._refuse("finish_delete", f"{self._owners} owner(s) still hold it")
        if self._power == 0:
            return Step(transitions=(self._move(State.DELETED, "delete"),))
        self._power = 0
        graceful = self._state is not State.CRASHED
        down = self._move(State.OFFLINE, "shutdown on delete")
        return Step(_TEARDOWN, (down, self._move(State.DELETED, "delete")), graceful)

    # -- helpers --------------------------------------------------------------------------

    @property
    def _who(self) -> str:
        return f"remoteproc {self.name!r}"

    def _describe(self) -> str:
        text = f"{self._state.label} (power {self._power}, owners {self._owners}"
        if self._pending is not None:
            text += f", {self._pending.value} in progress"
        if self._deleting and self._state is not State.DELETED:
            text += ", being deleted"
        return text + ")"

    def _refuse(self, operation: str, why: str) -> NoReturn:
        raise StateError(f"{self._who}: cannot {operation} while {self._describe()}: {why}")

    def _check_idle(self, operation: str) -> None:
        if self._pending is not None:
            self._refuse(operation, f"complete the pending {self._pending.value} first")

    def _check_not_deleting(self, operation: str) -> None:
        if self._state is State.DELETED:
            self._refuse(operation, "it was deleted")
        if self._deleting:
            self._refuse(operation, "it is being deleted")

    def _check_pending(self, operation: str, *expected: Operation) -> None:
        if self._pending not in expected:
            wanted = " or ".join(op.value for op in expected)
            self._refuse(operation, f"no {wanted} is in progress")

    def _begin(self, op: Operation, actions: tuple[Action, ...]) -> Step:
        self._pending = op
        return Step(actions)

    def _move(self, new: State, cause: str) -> Transition:
        transition = Transition(self._state, new, cause)
        self._state = new
        return transition
