"""Tests of the pure lifecycle state machine: unit tests per transition, then a hypothesis model."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from remoteproc.errors import CrashedError, RemoteprocError, StateError
from remoteproc.lifecycle import (
    STATE_NAMES,
    Action,
    Lifecycle,
    Operation,
    State,
    Step,
    Transition,
)
from remoteproc.recovery import RecoveryPolicy

A = Action
S = State


def running(recovery_enabled: bool = True) -> Lifecycle:
    sm = Lifecycle(recovery_enabled=recovery_enabled)
    assert sm.boot().actions == (A.LOAD, A.START)
    sm.boot_succeeded()
    return sm


def attached() -> Lifecycle:
    sm = Lifecycle(initial_state=S.DETACHED)
    assert sm.boot().actions == (A.ATTACH,)
    sm.boot_succeeded()
    return sm


# -- state table ------------------------------------------------------------------------------


def test_state_table_matches_linux() -> None:
    assert {s.label for s in State} == {
        "offline",
        "suspended",
        "running",
        "crashed",
        "deleted",
        "attached",
        "detached",
    }
    assert [s.value for s in State] == list(range(7))  # enum rproc_state order
    assert set(STATE_NAMES) == set(State)
    for s in State:
        assert State.from_label(s.label) is s
    with pytest.raises(ValueError, match="invalid"):
        State.from_label("invalid")


def test_initial_state_must_be_offline_or_detached() -> None:
    assert Lifecycle().state is S.OFFLINE
    assert Lifecycle(initial_state=S.DETACHED).state is S.DETACHED
    with pytest.raises(ValueError, match="running"):
        Lifecycle(initial_state=S.RUNNING)


# -- boot / shutdown ----------------------------------------------------------------------------


def test_first_boot_loads_and_starts_only_on_success() -> None:
    sm = Lifecycle(name="ipu")
    step = sm.boot()
    assert step == Step((A.LOAD, A.START))
    assert (sm.state, sm.power, sm.pending) == (S.OFFLINE, 0, Operation.BOOT)
    done = sm.boot_succeeded()
    assert done.actions == ()
    assert done.transitions == (Transition(S.OFFLINE, S.RUNNING, "boot"),)
    assert (sm.state, sm.power, sm.pending) == (S.RUNNING, 1, None)
    assert sm.statistics().boots == 1


def test_boot_failure_releases_and_stays_offline() -> None:
    sm = Lifecycle()
    sm.boot()
    step = sm.boot_failed("no firmware")
    assert step == Step((A.RELEASE_RESOURCES,))
    assert (sm.state, sm.power, sm.pending) == (S.OFFLINE, 0, None)
    stats = sm.statistics()
    assert stats.boot_failures == 1
    assert stats.last_failure == "boot: no firmware"
    assert sm.boot().actions == (A.LOAD, A.START)  # may try again


def test_boot_reentry_while_in_progress_is_refused() -> None:
    sm = Lifecycle(name="dsp")
    sm.boot()
    with pytest.raises(StateError, match=r"'dsp'.*boot.*offline.*boot in progress"):
        sm.boot()
    for op in (sm.shutdown, sm.detach, sm.recover, sm.suspend, sm.resume, sm.delete):
        with pytest.raises(StateError, match="pending boot"):
            op()
    with pytest.raises(StateError, match="pending boot"):
        sm.crashed("wdt")
    with pytest.raises(StateError, match="no recover"):
        sm.recovery_succeeded()


def test_repeated_boot_and_shutdown_are_refcounted() -> None:
    sm = running()
    assert sm.boot() == Step()
    assert sm.boot() == Step()
    assert sm.power == 3
    assert sm.shutdown() == Step()
    assert sm.shutdown() == Step()
    assert sm.state is S.RUNNING
    last = sm.shutdown()
    assert last.actions == (A.STOP, A.RELEASE_RESOURCES)
    assert last.graceful
    assert last.transitions == (Transition(S.RUNNING, S.OFFLINE, "shutdown"),)
    assert (sm.state, sm.power) == (S.OFFLINE, 0)


def test_shutdown_at_power_zero_is_a_caller_bug() -> None:
    with pytest.raises(StateError, match=r"cannot shutdown while offline \(power 0.*not booted"):
        Lifecycle().shutdown()
    with pytest.raises(StateError, match="not booted"):
        Lifecycle().detach()


def test_completion_without_pending_operation() -> None:
    sm = Lifecycle()
    with pytest.raises(StateError, match="no operation is in progress"):
        sm.succeeded()
    with pytest.raises(StateError, match="no operation is in progress"):
        sm.failed("x")
    with pytest.raises(StateError, match="no boot or attach"):
        sm.boot_succeeded()
    with pytest.raises(StateError, match="no boot or attach"):
        sm.boot_failed("x")
    with pytest.raises(StateError, match="no recover"):
        sm.recovery_failed("x")


def test_errors_are_remoteproc_errors() -> None:
    assert issubclass(StateError, RemoteprocError)
    assert issubclass(StateError, RuntimeError)
    assert issubclass(CrashedError, ConnectionError)


# -- attach / detach ----------------------------------------------------------------------------


def test_boot_of_detached_core_attaches() -> None:
    sm = Lifecycle(initial_state=S.DETACHED)
    assert sm.boot() == Step((A.ATTACH,))
    assert sm.pending is Operation.ATTACH
    done = sm.boot_succeeded()
    assert done.transitions == (Transition(S.DETACHED, S.ATTACHED, "attach"),)
    assert (sm.state, sm.power) == (S.ATTACHED, 1)
    assert sm.statistics().attaches == 1


def test_explicit_attach() -> None:
    sm = Lifecycle(initial_state=S.DETACHED)
    assert sm.attach() == Step((A.ATTACH,))
    sm.succeeded()
    assert sm.state is S.ATTACHED
    with pytest.raises(StateError, match="only a detached"):
        sm.attach()
    with pytest.raises(StateError, match=r"cannot attach while offline.*only a detached"):
        Lifecycle().attach()


def test_attach_failure_releases_and_stays_detached() -> None:
    sm = Lifecycle(initial_state=S.DETACHED)
    sm.attach()
    assert sm.boot_failed("bad table") == Step((A.RELEASE_RESOURCES,))
    assert (sm.state, sm.power) == (S.DETACHED, 0)


def test_last_shutdown_of_attached_core_stops_it() -> None:
    sm = attached()
    step = sm.shutdown()
    assert step.actions == (A.STOP, A.RELEASE_RESOURCES)
    assert step.transitions == (Transition(S.ATTACHED, S.OFFLINE, "shutdown"),)
    assert sm.boot().actions == (A.LOAD, A.START)  # no longer running: a real boot


@pytest.mark.parametrize("make", [attached, running])
def test_detach_leaves_core_running(make: object) -> None:
    sm = make()  # type: ignore[operator]
    old = sm.state
    sm.boot()
    assert sm.detach() == Step()  # not the last reference
    step = sm.detach()
    assert step.actions == (A.DETACH, A.RELEASE_RESOURCES)
    assert step.transitions == (Transition(old, S.DETACHED, "detach"),)
    assert (sm.state, sm.power) == (S.DETACHED, 0)
    assert sm.boot().actions == (A.ATTACH,)  # re-attach


def test_detach_refused_when_suspended_or_crashed() -> None:
    sm = running()
    sm.suspend()
    sm.succeeded()
    with pytest.raises(StateError, match="cannot detach while suspended"):
        sm.detach()
    sm = running(recovery_enabled=False)
    sm.crashed("wdt")
    with pytest.raises(StateError, match="cannot detach while crashed"):
        sm.detach()
    assert sm.power == 1  # a refused detach keeps the reference


# -- crash and recovery ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [attached, running])
def test_crash_with_recovery(make: object) -> None:
    sm = make()  # type: ignore[operator]
    old = sm.state
    step = sm.crashed("mmu fault")
    assert step.actions == (A.STOP, A.RELOAD, A.START)
    assert not step.graceful
    assert step.transitions == (Transition(old, S.CRASHED, "crash: mmu fault"),)
    assert (sm.state, sm.pending, sm.power) == (S.CRASHED, Operation.RECOVER, 1)
    done = sm.recovery_succeeded()
    assert done.transitions == (Transition(S.CRASHED, S.RUNNING, "recovery"),)
    assert (sm.state, sm.recoveries, sm.power) == (S.RUNNING, 1, 1)
    assert sm.statistics().crashes == 1


def test_failed_recovery_stays_crashed_until_manual_recover() -> None:
    sm = running()
    sm.crashed("wdt")
    assert sm.recovery_failed("start timeout") == Step()
    assert (sm.state, sm.pending) == (S.CRASHED, None)
    with pytest.raises(CrashedError, match="recover"):
        sm.boot()
    step = sm.recover()
    assert step == Step((A.STOP, A.RELOAD, A.START), graceful=False)
    sm.recovery_succeeded()
    assert sm.state is S.RUNNING
    stats = sm.statistics()
    assert (stats.recoveries, stats.recovery_failures) == (1, 1)


def test_crash_without_recovery_waits_for_last_shutdown() -> None:
    sm = running(recovery_enabled=False)
    sm.boot()
    step = sm.crashed("wdt")
    assert step == Step(transitions=(Transition(S.RUNNING, S.CRASHED, "crash: wdt"),))
    assert sm.pending is None
    with pytest.raises(CrashedError, match="crashed"):
        sm.boot()
    assert sm.shutdown() == Step()
    last = sm.shutdown()
    assert last.actions == (A.STOP, A.RELEASE_RESOURCES)
    assert not last.graceful
    assert sm.state is S.OFFLINE


def test_manual_recover_with_recovery_disabled() -> None:
    sm = running(recovery_enabled=False)
    sm.crashed("wdt")
    assert sm.recover().actions == (A.STOP, A.RELOAD, A.START)
    sm.succeeded()
    assert (sm.state, sm.recoveries) == (S.RUNNING, 1)


def test_recover_refused_unless_crashed() -> None:
    with pytest.raises(StateError, match=r"cannot recover while running.*only a crashed"):
        running().recover()


@pytest.mark.parametrize("initial", [S.OFFLINE, S.DETACHED])
def test_spurious_crashes_are_counted_not_raised(initial: State) -> None:
    sm = Lifecycle(initial_state=initial)
    assert sm.crashed("ghost") == Step()
    assert sm.state is initial
    assert sm.statistics().spurious_crashes == 1
    sm = running(recovery_enabled=False)
    sm.crashed("first")
    assert sm.crashed("second") == Step()  # already crashed
    assert (sm.statistics().crashes, sm.statistics().spurious_crashes) == (1, 1)


def test_crash_while_suspended() -> None:
    sm = running(recovery_enabled=False)
    sm.suspend()
    sm.succeeded()
    step = sm.crashed("wdt")
    assert step.transitions == (Transition(S.SUSPENDED, S.CRASHED, "crash: wdt"),)


# -- suspend / resume --------------------------------------------------------------------------


def test_suspend_and_resume() -> None:
    sm = running()
    assert sm.suspend() == Step((A.SUSPEND,))
    assert sm.state is S.RUNNING  # only after success
    assert sm.succeeded().transitions == (Transition(S.RUNNING, S.SUSPENDED, "suspend"),)
    with pytest.raises(StateError, match="cannot suspend while suspended"):
        sm.suspend()
    assert sm.boot() == Step()  # a reference only, does not resume
    assert sm.resume() == Step((A.RESUME,))
    assert sm.succeeded().transitions == (Transition(S.SUSPENDED, S.RUNNING, "resume"),)
    with pytest.raises(StateError, match="cannot resume while running"):
        sm.resume()


def test_suspend_resume_failures_keep_state() -> None:
    sm = running()
    sm.suspend()
    assert sm.failed("busy") == Step()
    assert sm.state is S.RUNNING
    sm.suspend()
    sm.succeeded()
    sm.resume()
    assert sm.failed("no ack") == Step()
    assert sm.statistics().state is S.SUSPENDED  # (via statistics: mypy narrowed sm.state)
    last = sm.shutdown()
    assert last.actions == (A.STOP, A.RELEASE_RESOURCES)
    assert last.transitions == (Transition(S.SUSPENDED, S.OFFLINE, "shutdown"),)


def test_suspend_refused_when_offline() -> None:
    with pytest.raises(StateError, match="cannot suspend while offline"):
        Lifecycle().suspend()


# -- owners and deletion --------------------------------------------------------------------------


def test_owner_refcount() -> None:
    sm = Lifecycle()
    sm.get()
    sm.get()
    assert sm.owners == 2
    sm.put()
    sm.put()
    with pytest.raises(StateError, match=r"cannot put.*no owners"):
        sm.put()


def test_delete_waits_for_owners() -> None:
    sm = running()
    sm.get()
    assert sm.delete() is True
    assert sm.deleting and not sm.can_finish_delete
    with pytest.raises(StateError, match=r"cannot get.*being deleted"):
        sm.get()
    with pytest.raises(StateError, match=r"cannot boot.*being deleted"):
        sm.boot()
    with pytest.raises(StateError, match=r"cannot delete.*being deleted"):
        sm.delete()
    with pytest.raises(StateError, match=r"finish_delete.*1 owner\(s\)"):
        sm.finish_delete()
    last = sm.shutdown()  # existing users may still shut down
    assert last.actions == (A.STOP, A.RELEASE_RESOURCES)
    sm.put()
    assert sm.can_finish_delete
    step = sm.finish_delete()
    assert step == Step(transitions=(Transition(S.OFFLINE, S.DELETED, "delete"),))
    assert sm.state is S.DELETED and not sm.can_finish_delete


def test_delete_without_owners_finishes_at_once() -> None:
    sm = Lifecycle()
    assert sm.delete() is False
    assert sm.can_finish_delete
    sm.finish_delete()
    assert sm.state is S.DELETED


def test_finish_delete_tears_down_unowned_power_references() -> None:
    sm = running()
    sm.boot()
    sm.delete()
    step = sm.finish_delete()
    assert step.actions == (A.STOP, A.RELEASE_RESOURCES)
    assert step.transitions == (
        Transition(S.RUNNING, S.OFFLINE, "shutdown on delete"),
        Transition(S.OFFLINE, S.DELETED, "delete"),
    )
    assert sm.power == 0


def test_delete_of_detached_core_leaves_it_alone() -> None:
    sm = Lifecycle(initial_state=S.DETACHED)
    sm.delete()
    assert sm.finish_delete() == Step(transitions=(Transition(S.DETACHED, S.DELETED, "delete"),))


def test_finish_delete_requires_delete() -> None:
    with pytest.raises(StateError, match=r"delete\(\) was not called"):
        Lifecycle().finish_delete()


def test_everything_refused_after_deleted() -> None:
    sm = Lifecycle()
    sm.delete()
    sm.finish_delete()
    for op in (
        sm.boot,
        sm.attach,
        sm.shutdown,
        sm.detach,
        sm.get,
        sm.put,
        sm.delete,
        sm.finish_delete,
        sm.recover,
        sm.suspend,
        sm.resume,
        sm.succeeded,
    ):
        with pytest.raises(StateError, match="deleted"):
            op()
    assert sm.crashed("late irq") == Step()  # the peer's report: counted, no action
    assert sm.statistics().spurious_crashes == 1


def test_delete_refused_while_pending_but_get_put_allowed() -> None:
    sm = Lifecycle()
    sm.boot()
    sm.get()
    sm.put()
    with pytest.raises(StateError, match=r"cannot delete.*pending boot"):
        sm.delete()


def test_recovery_allowed_while_deleting() -> None:
    sm = running()
    sm.get()
    sm.delete()
    sm.crashed("wdt")
    assert not sm.can_finish_delete
    sm.recovery_succeeded()
    assert sm.state is S.RUNNING


# -- model-based test ---------------------------------------------------------------------------


@attrs.define
class FakeCore:
    """The hardware as the shell sees it; refuses actions that make no sense physically."""

    core: str = "off"  # off | on | suspended | crashed
    held: bool = False  # host-side resources (carveouts, vdevs, mappings)

    def perform(self, action: Action) -> None:
        if action is A.LOAD:
            assert self.core == "off" and not self.held, "load into a live core or twice"
            self.held = True
        elif action is A.START:
            assert self.core == "off" and self.held, "start without load or twice"
            self.core = "on"
        elif action is A.RELOAD:
            assert self.core == "off" and self.held
        elif action is A.STOP:
            self.core = "off"
        elif action is A.BACKOFF:
            assert self.core == "off" and self.held, "backoff before the crashed core stopped"
        elif action is A.ATTACH:
            assert self.core == "on" and not self.held
            self.held = True
        elif action is A.DETACH:
            assert self.core == "on" and self.held
        elif action is A.SUSPEND:
            assert self.core == "on"
            self.core = "suspended"
        elif action is A.RESUME:
            assert self.core == "suspended"
            self.core = "on"
        else:
            assert action is A.RELEASE_RESOURCES
            self.held = False


UP = (S.RUNNING, S.ATTACHED, S.SUSPENDED)
MODEL_POLICY = RecoveryPolicy(max_consecutive=2, backoff_initial=1.0, stable_after=5.0)


class LifecycleModel(RuleBasedStateMachine):
    """Random shells: drives the machine, a reference model and a fake core side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.sm = Lifecycle(name="model", recovery_policy=MODEL_POLICY)
        self.hw = FakeCore()
        self.streak = 0  # crashes in a row, as the model counts them
        self.power = 0
        self.owners = 0
        self.state = S.OFFLINE
        self.pending: Operation | None = None
        self.in_flight: tuple[Action, ...] = ()
        self.deleting = False

    @initialize(detached=st.booleans())
    def start(self, detached: bool) -> None:
        if detached:
            self.sm = Lifecycle(
                name="model", recovery_policy=MODEL_POLICY, initial_state=S.DETACHED
            )
            self.hw = FakeCore(core="on")
            self.state = S.DETACHED

    # -- helpers

    def expect(self, step: Step, new_state: State) -> None:
        """Transitions chain from the model's state to the machine's, which must be predicted."""
        old = self.state
        for t in step.transitions:
            assert t.old is old and t.new is not t.old and t.cause
            old = t.new
        assert old is self.sm.state is new_state
        self.state = new_state

    def refused(self, call: object, error: type[Exception] = StateError) -> None:
        before = self.sm.statistics()
        with pytest.raises(error):
            call()  # type: ignore[operator]
        assert self.sm.statistics() == before

    def begin(self, step: Step, op: Operation, state: State) -> None:
        assert self.sm.pending is op
        self.expect(step, state)
        self.pending = op
        self.in_flight = step.actions

    # -- rules

    @rule()
    def boot(self) -> None:
        if self.pending or self.state is S.DELETED or self.deleting:
            self.refused(self.sm.boot)
        elif self.power == 0:
            step = self.sm.boot()
            self.streak = 0
            if self.state is S.DETACHED:
                assert step.actions == (A.ATTACH,)
                self.begin(step, Operation.ATTACH, S.DETACHED)
            else:
                assert step.actions == (A.LOAD, A.START)  # START only on power 0 -> 1
                self.begin(step, Operation.BOOT, S.OFFLINE)
        elif self.state is S.CRASHED:
            self.refused(self.sm.boot, CrashedError)
        else:
            assert self.sm.boot() == Step()
            self.power += 1

    @rule()
    def attach(self) -> None:
        if self.pending or self.deleting or self.state is not S.DETACHED:
            self.refused(self.sm.attach)
        else:
            self.begin(self.sm.attach(), Operation.ATTACH, S.DETACHED)

    @rule(detach=st.booleans())
    def shutdown(self, detach: bool) -> None:
        call = self.sm.detach if detach else self.sm.shutdown
        if self.pending or self.power == 0:
            self.refused(call)
            return
        if detach and self.state not in (S.RUNNING, S.ATTACHED):
            self.refused(call)
            return
        step = call()
        self.power -= 1
        if self.power:
            assert step == Step()
            self.expect(step, self.state)
            return
        crashed = self.state is S.CRASHED
        if detach:
            assert step.actions == (A.DETACH, A.RELEASE_RESOURCES)
            self.expect(step, S.DETACHED)
        else:
            assert step.actions.count(A.STOP) == 1  # exactly one STOP per power 1 -> 0
            assert step.actions == (A.STOP, A.RELEASE_RESOURCES)
            assert step.graceful is not crashed
            self.expect(step, S.OFFLINE)
        for action in step.actions:
            self.hw.perform(action)

    @rule(fail_at=st.none() | st.integers(min_value=0, max_value=2), reason=st.text(max_size=5))
    def complete(self, fail_at: int | None, reason: str) -> None:
        if self.pending is None:
            self.refused(self.sm.succeeded)
            self.refused(lambda: self.sm.failed(reason))
            return
        op, self.pending = self.pending, None
        actions = self.in_flight
        if fail_at is not None and fail_at < len(actions):
            for action in actions[:fail_at]:
                self.hw.perform(action)
            step = self.sm.failed(reason)
            if op in (Operation.BOOT, Operation.ATTACH):
                assert step.actions == (A.RELEASE_RESOURCES,)
            else:
                assert step.actions == ()
            self.expect(step, self.state)
            for action in step.actions:
                self.hw.perform(action)
            return
        for action in actions:
            self.hw.perform(action)
        step = self.sm.succeeded()
        assert step.actions == ()
        if op in (Operation.BOOT, Operation.ATTACH):
            self.power = 1
            self.expect(step, S.RUNNING if op is Operation.BOOT else S.ATTACHED)
        elif op is Operation.SUSPEND:
            self.expect(step, S.SUSPENDED)
        else:
            self.expect(step, S.RUNNING)

    @rule(enabled=st.booleans(), uptime=st.sampled_from([0.0, 4.9, 5.0, math.inf]))
    def crash(self, enabled: bool, uptime: float) -> None:
        self.sm.recovery_enabled = enabled
        if self.pending:
            self.refused(lambda: self.sm.crashed("wdt", uptime=uptime))
            return
        before = self.sm.statistics()
        if self.state not in UP:
            assert self.sm.crashed("ghost") == Step()
            after = self.sm.statistics()
            assert after.spurious_crashes == before.spurious_crashes + 1
            assert after.crashes == before.crashes
            return
        self.hw.core = "crashed"
        step = self.sm.crashed("wdt", uptime=uptime)
        self.streak = self.streak + 1 if uptime < MODEL_POLICY.stable_after else 1
        delay = MODEL_POLICY.delay(self.streak)
        if enabled and delay is not None:
            backoff = (A.BACKOFF,) if delay else ()
            assert step.actions == (A.STOP, *backoff, A.RELOAD, A.START)
            assert step.delay == delay and not step.graceful
            self.begin(step, Operation.RECOVER, S.CRASHED)
        else:
            assert step.actions == ()
            self.expect(step, S.CRASHED)
            assert self.sm.stuck is not None
            given_up = before.recovery_give_ups + (enabled and delay is None)
            assert self.sm.statistics().recovery_give_ups == given_up
        assert self.sm.consecutive_crashes == self.streak

    @rule()
    def recover(self) -> None:
        if self.pending or self.state is not S.CRASHED:
            self.refused(self.sm.recover)
        else:
            self.begin(self.sm.recover(), Operation.RECOVER, S.CRASHED)
            self.streak = 0

    @rule(resume=st.booleans())
    def suspend(self, resume: bool) -> None:
        call, needed, op = (
            (self.sm.resume, S.SUSPENDED, Operation.RESUME)
            if resume
            else (self.sm.suspend, S.RUNNING, Operation.SUSPEND)
        )
        if self.pending or self.state is not needed:
            self.refused(call)
        else:
            self.begin(call(), op, needed)

    @rule()
    def get(self) -> None:
        if self.deleting or self.state is S.DELETED:
            self.refused(self.sm.get)
        else:
            self.sm.get()
            self.owners += 1

    @rule()
    def put(self) -> None:
        if self.owners == 0:
            self.refused(self.sm.put)
        else:
            self.sm.put()
            self.owners -= 1

    @rule()
    def delete(self) -> None:
        if self.pending or self.deleting:
            self.refused(self.sm.delete)
        else:
            assert self.sm.delete() is (self.owners > 0)
            self.deleting = True

    @rule()
    def finish_delete(self) -> None:
        if not self.deleting or self.state is S.DELETED or self.pending or self.owners:
            assert not self.sm.can_finish_delete
            self.refused(self.sm.finish_delete)
            return
        assert self.sm.can_finish_delete
        was_up = self.power > 0
        step = self.sm.finish_delete()
        if was_up:
            assert step.actions == (A.STOP, A.RELEASE_RESOURCES)
        else:
            assert step.actions == ()
        self.power = 0
        for action in step.actions:
            self.hw.perform(action)
        self.expect(step, S.DELETED)

    # -- invariants

    @invariant()
    def counters_match_model(self) -> None:
        sm = self.sm
        assert sm.power == self.power >= 0
        assert sm.owners == self.owners >= 0
        assert sm.state is self.state
        assert sm.pending is self.pending
        assert sm.deleting is self.deleting or sm.state is S.DELETED
        assert sm.state.label in STATE_NAMES.values()
        stats = sm.statistics()
        assert (stats.state, stats.power, stats.owners) == (sm.state, sm.power, sm.owners)

    @invariant()
    def power_matches_state(self) -> None:
        assert (self.power == 0) == (self.state in (S.OFFLINE, S.DETACHED, S.DELETED))

    @invariant()
    def hardware_matches_state(self) -> None:
        if self.pending is not None:
            return
        state, hw = self.state, self.hw
        if state in (S.RUNNING, S.ATTACHED):
            assert (hw.core, hw.held) == ("on", True)
        elif state is S.SUSPENDED:
            assert (hw.core, hw.held) == ("suspended", True)
        elif state is S.CRASHED:
            assert hw.held and hw.core in ("crashed", "off")
        elif state is S.OFFLINE:
            assert (hw.core, hw.held) == ("off", False)
        elif state is S.DETACHED:
            assert (hw.core, hw.held) == ("on", False)
        else:
            assert not hw.held  # DELETED: nothing left allocated (a detached core keeps running)

    @invariant()
    def nothing_after_deleted(self) -> None:
        if self.state is not S.DELETED:
            return
        for call in (self.sm.boot, self.sm.shutdown, self.sm.recover, self.sm.finish_delete):
            self.refused(call)
        assert self.sm.crashed("late").actions == ()


TestLifecycleModel = LifecycleModel.TestCase
TestLifecycleModel.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
