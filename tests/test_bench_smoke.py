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
    assert len(names) == 7
    assert all({"name", "ratio", "target", "met"} <= set(g) for g in report["goals"])
    loop = report["loops"]["asyncio"]
    assert set(loop["ipc"]) == {"rpmsg shm", "bare socket", "unix streams", "mp.Pipe", "zmq PAIR"}
    assert loop["rpmsg"]["496"]["msgs_per_s"] > 0
    kernel = loop["kernel"]  # the round trip through the UML kernel, or why it was skipped
    assert "skipped" in kernel or set(kernel["sizes"]) == {"16", "64", "496"}
    assert (tmp_path / "results.md").read_text().count("| asyncio |") > 10
    assert (tmp_path / "bench-asyncio.png").stat().st_size > 0


async def test_without_a_kernel_the_kernel_row_is_skipped_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks
    from benchmarks.kernel import kernel_rtt
    from benchmarks.report import markdown

    monkeypatch.setenv("AIOAMP_UML_KERNEL", str(tmp_path / "linux"))
    figure = await kernel_rtt([16], 10)
    assert set(figure) == {"skipped"} and "`make kernel`" in figure["skipped"]
    report = json.loads((Path(benchmarks.__file__).parent / "results/results.json").read_text())
    report["loops"] = {"asyncio": {**report["loops"]["asyncio"], "kernel": figure}}
    assert f"| asyncio | - | skipped: {figure['skipped']} |" in markdown(report)
