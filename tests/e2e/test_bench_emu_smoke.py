"""benchmarks/emu.py runs end to end with tiny counts (no timing assertions): it cannot rot."""

from __future__ import annotations

import re

import pytest
from emu_support import emulator_threads, need_unicorn

need_unicorn()

from benchmarks import emu  # noqa: E402


def test_bench_emu_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert emu.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"emulated core: \d+\.\d\d G instructions/s", out)
    rows = re.findall(r"^\| (\w+, [^|]+) \| (\d+) \| (\d+) \|$", out, re.M)
    assert [name for name, _, _ in rows] == list(emu.PATHS)
    assert all(int(rtt) > 0 and int(tput) > 0 for _, rtt, tput in rows)
    assert emulator_threads() == []
