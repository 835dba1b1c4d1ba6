"""The benchmark suite runs end to end with tiny counts (no timing assertions): it cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioamp.cli import main


def test_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["bench", "--smoke", "--json", "--loops", "asyncio", "--out", str(tmp_path)])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    names = [g["name"] for g in report["goals"]]
    assert len(names) == 11
    assert all({"name", "ratio", "target", "met", "spread"} <= set(g) for g in report["goals"])
    loop = report["loops"]["asyncio"]
    assert set(loop["ipc"]) == {
        "rpmsg shm",
        "rpmsg shm, busy_poll=0",
        "rpmsg shm, send_many",
        "rpmsg shm, zero-copy",
        "bare socket",
        "unix streams",
        "mp.Pipe",
        "zmq PAIR",
        "floor: blocking socketpair",
        "floor: spinning shm",
    }
    assert loop["ipc"]["floor: spinning shm"]["16"]["median_us"] > 0
    assert {"peer", "host"} <= set(loop["idle_cpu"])
    assert loop["rpmsg"]["496"]["msgs_per_s"] > 0
    # Every figure carries the spread of its rounds, and the rounds themselves.
    for figure in (loop["rpmsg"]["16"], loop["ipc"]["rpmsg shm"]["16"], loop["endpoints"][3]):
        assert len(figure["runs"]) == report["repeats"] >= 2
        for sp in figure["spread"].values():
            assert sp["min"] <= sp["median"] <= sp["max"] and sp["n"] == report["repeats"]
    assert all(g["indicative"] for g in report["goals"])  # smoke verdicts are never final
    kernel = loop["kernel"]  # the round trip through the UML kernel, or why it was skipped
    if "skipped" not in kernel:
        assert set(kernel["sizes"]) == {"16", "64", "496"}
        assert len(kernel["sizes"]["16"]["rpmsg"]["runs"]) == report["repeats"]  # one boot each
    assert (tmp_path / "results.md").read_text().count("| asyncio |") > 10
    assert (tmp_path / "bench-asyncio.png").stat().st_size > 0


async def test_without_a_kernel_the_kernel_row_is_skipped_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.kernel import kernel_rtt
    from benchmarks.report import kernel_rows

    monkeypatch.setenv("AIOAMP_UML_KERNEL", str(tmp_path / "linux"))
    figure = await kernel_rtt([16], 10)
    assert set(figure) == {"skipped"} and "`make kernel`" in figure["skipped"]
    rows = kernel_rows({"loops": {"asyncio": {"kernel": figure}}})
    assert f"| asyncio | - | skipped: {figure['skipped']} | - | - | - |" in rows
