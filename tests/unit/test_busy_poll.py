"""``rpmsg.busy_poll``: the adaptive window of a look before sleeping, on a fake clock."""

from __future__ import annotations

import math

import pytest

from rpmsg import busy_poll
from rpmsg.busy_poll import MIN_WINDOW_NS, PROBE_EVERY, BusyPoll, check_budget
from rpmsg.errors import ArgumentTypeError, InvalidArgumentError


class Clock:
    """perf_counter_ns that moves only when a look relaxes (1 us per turn) or a test says."""

    def __init__(self) -> None:
        self.ns = 1_000_000

    def __call__(self) -> int:
        return self.ns

    def tick(self) -> None:
        self.ns += 1000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(busy_poll, "_now", fake)
    return fake


def test_a_look_never_lasts_longer_than_the_window(clock: Clock) -> None:
    poll = BusyPoll(50, relax=clock.tick)
    looks = []

    def pending() -> bool:
        looks.append(clock.ns)
        return False

    start = clock.ns
    assert not poll.spin(pending)
    assert clock.ns - start == 50_000  # 50 turns of 1 us: the budget, not one turn more
    assert len(looks) == 50
    assert (poll.hits, poll.misses, poll.spent_ns) == (0, 1, 50_000)


def test_a_look_ends_as_soon_as_a_message_is_there(clock: Clock) -> None:
    poll = BusyPoll(50, relax=clock.tick)
    turns = iter([False, False, True])
    assert poll.spin(lambda: next(turns))
    assert (poll.hits, poll.misses, poll.spent_ns, poll.window_ns) == (1, 0, 2000, 50_000)


def test_a_quick_wake_up_after_a_miss_grows_the_window_a_slow_one_shrinks_it(
    clock: Clock,
) -> None:
    poll = BusyPoll(64, relax=clock.tick)
    windows = []
    for _ in range(7):  # every look in vain, every wake-up long after: 64 -> 0 by halves
        poll.spin(lambda: False)
        clock.ns += 1_000_000
        poll.woke()
        windows.append(poll.window_ns // 1000)
    assert windows == [32, 16, 8, 4, 2, 0, 0]
    # With the window at 0 there is no look at all (the loop never spins) ...
    calls = []
    assert not poll.spin(lambda: calls.append(1) is None and False)
    assert calls == []
    # ... but a message soon after the sleep began says a look would have caught it.
    for expected in (2, 4, 8, 16, 32, 64, 64):
        poll.spin(lambda: False)
        clock.ns += 1000
        poll.woke()
        assert poll.window_ns // 1000 == expected


def test_a_wake_up_without_a_look_before_it_changes_nothing(clock: Clock) -> None:
    poll = BusyPoll(50, relax=clock.tick)
    poll.woke()
    assert poll.window_ns == 50_000
    poll.spin(lambda: True)  # a hit: no sleep followed
    poll.woke()
    assert poll.window_ns == 50_000


def test_zero_budget_never_looks(clock: Clock) -> None:
    poll = BusyPoll(0, relax=clock.tick)
    assert not poll.enabled
    assert not poll.spin(lambda: True)  # not even once
    poll.woke()
    assert poll.window_ns == 0
    assert (poll.hits, poll.misses, poll.spent_ns) == (0, 0, 0)


def test_the_window_floor_is_the_smallest_useful_look() -> None:
    poll = BusyPoll(MIN_WINDOW_NS / 1000 * 1.5)
    assert poll.window_ns == MIN_WINDOW_NS * 1.5


@pytest.mark.parametrize("value", [0, 0.5, 50, busy_poll.MAX_BUDGET_US])
def test_budget_accepted(value: float) -> None:
    assert check_budget(value) == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("50", ArgumentTypeError),
        (True, ArgumentTypeError),
        (None, ArgumentTypeError),
        (-1, InvalidArgumentError),
        (math.nan, InvalidArgumentError),
        (math.inf, InvalidArgumentError),
        (busy_poll.MAX_BUDGET_US + 1, InvalidArgumentError),
    ],
)
def test_budget_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="busy_poll"):
        check_budget(value)  # type: ignore[arg-type]


def test_a_look_that_lost_the_cpu_stops_the_looks_until_wake_ups_come_quickly(
    clock: Clock,
) -> None:
    """The CPU went elsewhere for a timeslice (4 ms: sched_yield on a loaded machine, or a
    preemption) during a look: the window drops to 0, whether the look then found a message
    or not; quick wake-ups grow it again from the smallest window."""

    def preempted() -> None:
        clock.ns += 4_000_000

    def late_message() -> bool:
        preempted()
        return True

    for relax, pending, found in [
        (preempted, lambda: False, False),
        (clock.tick, late_message, True),
    ]:
        poll = BusyPoll(50, relax=relax)
        assert poll.spin(pending) is found
        assert (poll.window_ns, poll.overruns) == (0, 1)
        assert not poll.spin(lambda: pytest.fail("looked"))  # no look at all now
        clock.ns += 1000
        poll.woke()
        assert poll.window_ns == MIN_WINDOW_NS


def test_a_window_of_zero_probes_every_so_often_and_a_probe_that_hits_restores_it(
    clock: Clock,
) -> None:
    """Two peers both at window 0 wake each other with a full wake-up each way, so every
    wake-up comes later than a budget after the sleep and the window never grew again (runs
    stayed at the unpolled round trip). Every PROBE_EVERY-th sleep without a look now looks
    for the whole budget: in vain it goes back to 0 at once, a hit keeps the whole budget."""
    poll = BusyPoll(50, relax=clock.tick)
    poll.window_ns = 0  # e.g. after a preempted look
    looked = []

    def nothing() -> bool:
        looked.append(clock.ns)
        return False

    for _ in range(3 * PROBE_EVERY):  # every wake-up late: no growth, only the probes look
        assert not poll.spin(nothing)
        clock.ns += 1_000_000
        poll.woke()
        assert poll.window_ns == 0
    assert poll.probes == 3
    assert len(looked) == 3 * 50  # three looks of the whole budget (1 us per turn), no more
    for _ in range(PROBE_EVERY - 1):
        assert not poll.spin(nothing)
    assert poll.spin(lambda: True)  # the probe finds the peer's message
    assert poll.window_ns == 50_000
    assert poll.probes == 4
