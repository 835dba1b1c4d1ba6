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
    assert len(names) == 10
    assert all({"name", "ratio", "target", "met", "spread"} <= set(g) for g in report["goals"])
    loop = report["loops"]["asyncio"]
    assert set(loop["ipc"]) == {
        "rpmsg shm",
        "rpmsg shm, busy_poll=0",
        "rpmsg shm, send_many",
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
    assert (tmp_path / "results.md").read_text().count("| asyncio |") > 10
    assert (tmp_path / "bench-asyncio.png").stat().st_size > 0
