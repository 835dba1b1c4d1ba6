"""How the benchmarks turn repeated runs into figures and verdicts: medians with their spread,
ratios paired round by round, verdicts labelled indicative when they are (no timing here)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.common import Counts, spread, summarize
from benchmarks.report import _goal, _ratios, evaluate_goals, markdown


def test_a_figure_is_the_median_of_its_runs_with_their_spread() -> None:
    runs = [{"msgs_per_s": v, "endpoints": 1000, "kind": "x"} for v in (300.0, 100.0, 200.0)]
    fig = summarize(runs)
    assert fig["msgs_per_s"] == 200.0
    assert fig["spread"]["msgs_per_s"] == {"min": 100.0, "median": 200.0, "max": 300.0, "n": 3}
    assert fig["endpoints"] == 1000 and "endpoints" not in fig["spread"]  # a label
    assert fig["kind"] == "x" and fig["runs"] == runs


def test_ratios_pair_the_runs_of_one_round() -> None:
    """A slow round slows the path and its baseline alike: its ratio stays put, where the
    ratio of two medians would mix rounds."""
    ours = summarize([{"msgs_per_s": v} for v in (100.0, 50.0, 90.0)])
    base = summarize([{"msgs_per_s": v} for v in (200.0, 100.0, 180.0)])
    assert _ratios(ours, base, "msgs_per_s") == [0.5, 0.5, 0.5]


def _case(values: list[float], mode: str = "full", higher: bool = True) -> dict[str, Any]:
    return _goal("g", 0.9, higher, [("a", [1.0, 1.0, 1.0]), ("b", values)], mode)


def test_a_verdict_goes_by_the_median_of_the_worst_case() -> None:
    goal = _case([0.95, 0.97, 0.96])
    assert (goal["met"], goal["worst_case"], goal["ratio"]) == (True, "b", 0.96)
    assert goal["spread"] == {"min": 0.95, "median": 0.96, "max": 0.97, "n": 3}
    assert goal["indicative"] is False and goal["why_indicative"] is None
    assert goal["details"]["b"] == {"min": 0.95, "median": 0.96, "max": 0.97}
    assert _case([0.5, 0.6, 0.55])["met"] is False
    assert _goal("k", 0.05, False, [("c", [0.01, 0.02, 0.03])], "full")["met"] is True


@pytest.mark.parametrize("mode", ["quick", "smoke"])
def test_quick_verdicts_are_indicative(mode: str) -> None:
    goal = _case([0.95, 0.97, 0.96], mode)
    assert goal["indicative"] is True and f"{mode} mode" in goal["why_indicative"]


def test_a_verdict_whose_repeats_straddle_the_target_is_indicative() -> None:
    goal = _case([0.85, 0.95, 0.96])
    assert goal["met"] is True and goal["indicative"] is True
    assert "both sides of the target in b" in goal["why_indicative"]


def test_quick_repeats_enough_to_give_a_spread() -> None:
    assert Counts.for_mode("quick").repeats >= 3 and Counts.for_mode("full").repeats >= 5
    assert Counts.for_mode("smoke").repeats >= 2


def test_spread_of_one_value() -> None:
    assert spread([2.0]) == {"min": 2.0, "median": 2.0, "max": 2.0, "n": 1}


def test_markdown_shows_the_spread_and_the_indicative_label() -> None:
    def fig(values: list[float], key: str = "msgs_per_s") -> dict[str, Any]:
        return summarize([{key: v, "median_us": 10.0 * v, "p99_us": 20.0, "kicks_per_msg": 0.01}
                          for v in values])  # fmt: skip

    per: dict[str, Any] = {
        name: {"16": fig([1.0, 2.0, 3.0])} for name in ("rpmsg", "asyncio.Queue", "anyio stream")
    }
    per["endpoints"] = [
        summarize([{"endpoints": k, "msgs_per_s": v} for v in (9.0, 10.0)]) for k in (1, 1000)
    ]
    per["allocations"] = summarize([{"blocks_per_msg": 2.0, "extra_per_msg": 0.0}] * 2)
    boot = summarize([{"ms": 2.0}, {"ms": 4.0}])
    per["boot"] = {"in_process": boot, "own_process": boot}
    results: dict[str, Any] = {
        "mode": "quick",
        "repeats": 3,
        "machine": {"cpu": "x", "cores": 2, "python": "3", "uvloop": None},
        "sizes": [16],
        "loops": {"asyncio": per},
        "elf_load_1mib": summarize([{"image_bytes": 5, "ms": 1.0}, {"image_bytes": 5, "ms": 3.0}]),
    }
    results["goals"] = evaluate_goals(results)
    text = markdown(results)
    assert "| asyncio | 16 | rpmsg | 20.0 (10.0-30.0) |" in text
    assert "| asyncio | 1000 | 9.50 (9.00-10.0) | 1.00 (1.00-1.00) |" in text
    assert "ELF load (1 MiB segment, 5 bytes): 2.00 (1.00-3.00) ms." in text
    assert "yes (indicative)" in text and "Indicative verdicts: quick mode" in text
