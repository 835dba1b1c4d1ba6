"""``AIOAMP_EVENT_LOOP`` picks the loop the commands run on: the library runs on asyncio,
uvloop and trio alike (through anyio), and ``aioamp --version`` says which one runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is an optional extra
    uvloop = None


def aioamp(loop: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aioamp", *args],
        env={**os.environ, "AIOAMP_EVENT_LOOP": loop},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


LOOPS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(uvloop is None, reason="no uvloop")),
    "trio",
]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("where", ["own-process", "in-process"])
def test_demo_runs_on_the_chosen_loop(loop: str, where: str) -> None:
    """The demo boots the simulated core (in its own process, or as a task of this one) and
    exchanges its messages, on each loop; ``--version`` names that loop."""
    args = ["demo", "--count", "20"] + (["--in-process"] if where == "in-process" else [])
    result = aioamp(loop, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    version = aioamp(loop, "--version").stdout
    (line,) = [line for line in version.splitlines() if line.startswith("event loop:")]
    assert line.startswith(f"event loop: {loop} ") and "(AIOAMP_EVENT_LOOP)" in line


def test_an_unknown_loop_is_a_usage_error() -> None:
    result = aioamp("curio", "demo")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "aioamp demo: error: AIOAMP_EVENT_LOOP='curio' is not one of asyncio, uvloop, trio"
    )
    assert "none: AIOAMP_EVENT_LOOP='curio'" in aioamp("curio", "--version").stdout
