"""The pure crash-group planner: who goes down with a crash and comes back, in what order.

No event loop, no processors: names, a dependency graph and the powered set.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remoteproc.crash_plan import CrashPlan, CrashPlanError, plan_crash

CHAIN = {"a": [], "b": ["a"], "c": ["b"]}  # c depends on b, b on a
DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_a_leaf_crash_takes_nobody_else_down() -> None:
    plan = plan_crash(CHAIN, powered={"a", "b", "c"}, crashed="c")
    assert plan == CrashPlan("c", ("c",))
    assert (plan.dependents, plan.up) == ((), ("c",))


def test_a_root_crash_takes_the_chain_down_dependents_first_and_back_dependencies_first() -> None:
    plan = plan_crash(CHAIN, powered={"a", "b", "c"}, crashed="a")
    assert plan.down == plan.lock_order == ("c", "b", "a")
    assert plan.dependents == ("c", "b")
    assert plan.up == ("a", "b", "c")


def test_a_middle_crash_leaves_its_dependencies_running() -> None:
    assert plan_crash(CHAIN, powered={"a", "b", "c"}, crashed="b").down == ("c", "b")


def test_a_diamond_locks_the_bottom_first_once() -> None:
    plan = plan_crash(DIAMOND, powered=set(DIAMOND), crashed="a")
    assert plan.down == ("d", "b", "c", "a")
    assert plan.up == ("a", "c", "b", "d")
    assert plan_crash(DIAMOND, powered=set(DIAMOND), crashed="b").down == ("d", "b")


def test_ties_keep_the_registration_order() -> None:
    graph = {"a": [], "c": ["a"], "b": ["a"]}
    assert plan_crash(graph, powered=set(graph), crashed="a").down == ("c", "b", "a")


def test_unpowered_dependents_stay_out_and_do_not_pass_the_crash_on() -> None:
    assert plan_crash(CHAIN, powered={"a", "b"}, crashed="a").down == ("b", "a")
    # c runs but its dependency b does not: nothing between a and c runs firmware.
    assert plan_crash(CHAIN, powered={"a", "c"}, crashed="a").down == ("a",)


def test_an_unpowered_crashed_processor_is_planned_alone() -> None:
    # The lifecycle counts such a report as spurious; the plan has nothing else to do.
    assert plan_crash(CHAIN, powered=set(), crashed="a").down == ("a",)


def test_a_dependency_through_a_processor_outside_the_group_still_orders_the_locks() -> None:
    # p depends on q through m (not powered); shutdown() of p holds p's lock while it shuts
    # m and then q down, so the crash handler must take p's lock before q's too.
    graph = {"a": [], "q": ["a"], "m": ["q"], "p": ["a", "m"]}
    assert plan_crash(graph, powered={"a", "q", "p"}, crashed="a").down == ("p", "q", "a")


@pytest.mark.parametrize(
    ("graph", "crashed", "match"),
    [
        ({"a": []}, "x", "'x', which is not in the graph"),
        ({"a": ["y"]}, "a", "a depends on 'y'"),
        ({"a": ["b"], "b": ["a"]}, "a", "form a cycle"),
    ],
)
def test_a_graph_that_cannot_be_planned_is_refused(
    graph: dict[str, list[str]], crashed: str, match: str
) -> None:
    with pytest.raises(CrashPlanError, match=match) as info:
        plan_crash(graph, powered=set(graph), crashed=crashed)
    assert isinstance(info.value, ValueError)


Case = tuple[dict[str, list[str]], set[str], str]


@st.composite
def _graphs(draw: st.DrawFn) -> Case:
    """A random DAG (each processor depends only on earlier ones), a powered subset and a
    crashed processor."""
    n = draw(st.integers(1, 8))
    names = [f"p{i}" for i in range(n)]
    graph = {
        name: draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        for i, name in enumerate(names)
    }
    powered = draw(st.sets(st.sampled_from(names)))
    return graph, powered, draw(st.sampled_from(names))


def _closure(graph: dict[str, list[str]], name: str) -> set[str]:
    out: set[str] = set()
    todo = list(graph[name])
    while todo:
        dep = todo.pop()
        if dep not in out:
            out.add(dep)
            todo.extend(graph[dep])
    return out


@given(_graphs())
def test_every_plan_is_complete_and_ordered(case: Case) -> None:
    graph, powered, crashed = case
    plan = plan_crash(graph, powered, crashed)
    assert plan.down[-1] == crashed and plan.up == tuple(reversed(plan.down))
    assert len(set(plan.down)) == len(plan.down)
    # Exactly the powered processors that reach the crashed one through powered ones.
    reach = {crashed}
    changed = True
    while changed:
        new = {p for p in powered if set(graph[p]) & reach} - reach
        changed = bool(new)
        reach |= new
    assert set(plan.down) == reach
    # A processor is locked before everything it depends on, directly or not.
    for i, proc in enumerate(plan.down):
        assert not _closure(graph, proc) & set(plan.down[:i])
