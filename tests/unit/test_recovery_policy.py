"""The recovery policy and the lifecycle's use of it: pure, no event loop, no clock."""

from __future__ import annotations

import math

import pytest

from remoteproc.errors import (
    ArgumentTypeError,
    CrashedError,
    RecoveryPolicyError,
    RemoteprocError,
)
from remoteproc.lifecycle import Action, Lifecycle, Operation, State
from remoteproc.recovery import RecoveryPolicy

A = Action
RECOVER_NOW = (A.STOP, A.RELOAD, A.START)
RECOVER_LATER = (A.STOP, A.BACKOFF, A.RELOAD, A.START)


def test_the_first_recovery_of_a_streak_is_immediate_then_the_wait_grows_to_its_cap() -> None:
    policy = RecoveryPolicy(
        max_consecutive=None, backoff_initial=0.1, backoff_factor=2.0, backoff_max=1.0
    )
    delays = [policy.delay(n) for n in range(1, 9)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert policy.delay(100_000) == 1.0  # no float overflow on a long streak


def test_the_limit_counts_recoveries_of_one_streak() -> None:
    policy = RecoveryPolicy(max_consecutive=3)
    assert [policy.delay(n) is None for n in (1, 2, 3, 4, 5)] == [False] * 3 + [True] * 2
    assert RecoveryPolicy(max_consecutive=0).delay(1) is None
    assert "max_consecutive=3" in policy.describe_limit()


def test_a_streak_ends_after_a_stable_run() -> None:
    policy = RecoveryPolicy(stable_after=10.0)
    assert policy.continues_streak(0.0) and policy.continues_streak(9.99)
    assert not policy.continues_streak(10.0) and not policy.continues_streak(math.inf)


def test_defaults_are_bounded() -> None:
    policy = RecoveryPolicy()
    assert policy.max_consecutive is not None and policy.max_consecutive > 0
    assert 0 < policy.backoff_initial <= policy.backoff_max < math.inf


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_consecutive": -1},
        {"backoff_initial": -0.1},
        {"backoff_initial": math.nan},
        {"backoff_max": math.inf},
        {"backoff_factor": 0.5},
        {"backoff_initial": 2.0, "backoff_max": 1.0},
        {"stable_after": -1},
    ],
)
def test_out_of_range_values_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(RecoveryPolicyError) as info:
        RecoveryPolicy(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and isinstance(info.value, RemoteprocError)
    assert next(iter(kwargs)) in str(info.value) or "backoff_max" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_consecutive": 2.5}, {"max_consecutive": True}, {"backoff_initial": "0.1"}],
)
def test_wrong_types_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        RecoveryPolicy(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)


def test_crash_numbers_start_at_one() -> None:
    with pytest.raises(RecoveryPolicyError):
        RecoveryPolicy().delay(0)


# -- the lifecycle applies it ---------------------------------------------------------------------

POLICY = RecoveryPolicy(max_consecutive=3, backoff_initial=0.5, backoff_factor=3.0)


def _running(policy: RecoveryPolicy = POLICY) -> Lifecycle:
    sm = Lifecycle(name="p", recovery_policy=policy)
    sm.boot()
    sm.boot_succeeded()
    return sm


def test_a_crash_loop_backs_off_then_gives_up_and_stays_crashed() -> None:
    sm = _running()
    plans = []
    for _ in range(3):
        step = sm.crashed("wdt", uptime=0.0)
        plans.append((step.actions, step.delay))
        assert sm.pending is Operation.RECOVER and sm.stuck is None
        sm.recovery_succeeded()
    assert plans == [(RECOVER_NOW, 0.0), (RECOVER_LATER, 0.5), (RECOVER_LATER, 1.5)]

    step = sm.crashed("wdt", uptime=0.0)  # the fourth in a row: over the limit
    assert step.actions == () and [t.new for t in step.transitions] == [State.CRASHED]
    assert (sm.state, sm.pending, sm.power) == (State.CRASHED, None, 1)
    assert sm.stuck == "gave up after 3 consecutive recoveries (RecoveryPolicy.max_consecutive=3)"
    stats = sm.statistics()
    assert (stats.crashes, stats.recoveries, stats.recovery_give_ups) == (4, 3, 1)
    assert stats.consecutive_crashes == 4
    with pytest.raises(CrashedError, match="gave up after 3"):
        sm.boot()
    # A manual recover() starts a new streak: the next crash recovers at once again.
    assert sm.recover().actions == RECOVER_NOW
    sm.recovery_succeeded()
    assert sm.crashed("wdt", uptime=0.0).actions == RECOVER_NOW


def test_a_stable_run_starts_a_new_streak() -> None:
    sm = _running()
    sm.crashed("wdt", uptime=0.0)
    sm.recovery_succeeded()
    assert sm.crashed("wdt", uptime=1.0).delay == 0.5
    sm.recovery_succeeded()
    step = sm.crashed("wdt", uptime=POLICY.stable_after)
    assert (step.actions, sm.consecutive_crashes) == (RECOVER_NOW, 1)


def test_a_fresh_boot_starts_a_new_streak() -> None:
    sm = _running(RecoveryPolicy(max_consecutive=1))
    sm.crashed("wdt", uptime=0.0)
    sm.recovery_succeeded()
    assert sm.crashed("wdt", uptime=0.0).actions == ()  # given up
    sm.shutdown()
    sm.boot()
    sm.boot_succeeded()
    assert sm.crashed("wdt", uptime=0.0).actions == RECOVER_NOW


def test_why_a_crashed_core_is_not_recovering() -> None:
    sm = _running()
    sm.recovery_enabled = False
    sm.crashed("wdt")
    assert sm.stuck == "recovery is disabled"
    sm.recover()
    assert sm.stuck is None  # a recovery is pending
    sm.recovery_failed("reload: no memory")
    assert sm.stuck == "recovery failed: reload: no memory"
    sm.recover()
    sm.recovery_succeeded()
    assert sm.stuck is None and sm.state is State.RUNNING


def test_the_policy_can_be_changed_at_run_time() -> None:
    sm = _running(RecoveryPolicy(max_consecutive=0))
    sm.recovery_policy = RecoveryPolicy(max_consecutive=None, backoff_initial=0.0)
    for _ in range(50):
        assert sm.crashed("wdt", uptime=0.0).actions == RECOVER_NOW  # no backoff when 0
        sm.recovery_succeeded()
