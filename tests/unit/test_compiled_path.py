"""The mypyc-compiled per-message path against its pure sources (transports/_compiled.py).

The same random scenarios (tests/compiled_scenarios.py: routed, unknown destination, garbage
to the name service, rx callbacks that log or raise, full queues under each Overflow policy,
BLOCK stalls and their resume, a tap) run in two processes, compiled and ``AIOAMP_PURE_PYTHON=1``;
every message, error and statistics snapshot must be equal. Seeded batches rather than
hypothesis examples: each comparison costs two interpreter starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from transports import _compiled

SCENARIOS = Path(__file__).parent.parent / "compiled_scenarios.py"


def _run(seed: int, count: int, *, pure: bool) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("AIOAMP_PURE_PYTHON", None)
    if pure:
        env["AIOAMP_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, str(SCENARIOS), str(seed), str(count)],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _built() -> bool:
    return not _compiled.pure_requested() and _compiled.active()


@pytest.mark.skipif(not _built(), reason="the mypyc-compiled modules are not built (or are off)")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_and_pure_paths_agree_on_every_outcome(seed: int) -> None:
    compiled = _run(seed, 25, pure=False)
    pure = _run(seed, 25, pure=True)
    assert compiled["compiled"] is True
    assert pure["compiled"] is False
    for i, (a, b) in enumerate(zip(compiled["results"], pure["results"], strict=True)):
        assert a == b, f"scenario {i} of seed {seed}"
    # The scenarios reach every outcome they are meant to compare.
    stats = " ".join(s for r in pure["results"] for s in r["stats"])
    for counter in (
        "'unknown_dst': ",
        "'bad_ns': ",
        "'queue_full': ",
        "queue_stalls=",
        "callback_errors=",
    ):
        assert re.search(re.escape(counter) + "[1-9]", stats), counter
    traces = [t for r in pure["results"] for t in r["trace"]]
    kinds = {t[0] if isinstance(t, list) and isinstance(t[0], str) else "msg" for t in traces}
    assert {"sent", "cb", "bad-cb", "msg"} <= kinds
    assert any(r["tap"] for r in pure["results"])


def test_pure_python_loads_the_sources() -> None:
    """AIOAMP_PURE_PYTHON=1 runs every listed module from its .py, built or not."""
    code = (
        "import importlib, json; from transports import _compiled; "
        "print(json.dumps([importlib.import_module(m).__file__ for m in _compiled.COMPILED]"
        " + [_compiled.active()]))"
    )
    env = dict(os.environ, AIOAMP_PURE_PYTHON="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=60
    )
    *files, active = json.loads(out.stdout)
    assert active is False
    assert all(f.endswith(".py") for f in files), files


def _checkout(root: Path, *, setup: bool = True, built: bool = True) -> Path:
    """A fake checkout: every compiled module's source, then (later) the group's runtime."""
    for name in _compiled.COMPILED:
        source = root.joinpath(*name.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
        os.utime(source, (1000, 1000))
    if setup:
        (root / "setup.py").write_text("")
    runtime = root / "transports" / "_path__mypyc.cpython-311-x86_64-linux-gnu.so"
    if built:
        runtime.write_text("")
        os.utime(runtime, (2000, 2000))
    return root


def test_a_source_edited_after_the_build_makes_the_checkout_run_its_sources(
    tmp_path: Path,
) -> None:
    root = _checkout(tmp_path)
    assert not _compiled.stale(root)
    os.utime(root / "rpmsg" / "receive.py", (3000, 3000))
    assert _compiled.stale(root)


def test_only_a_built_checkout_is_ever_stale(tmp_path: Path) -> None:
    """An installed package (no setup.py beside it: file times are the installer's) and a
    checkout never compiled are not."""
    installed = _checkout(tmp_path / "site", setup=False)
    unbuilt = _checkout(tmp_path / "unbuilt", built=False)
    for root in (installed, unbuilt):
        os.utime(root / "rpmsg" / "receive.py", (3000, 3000))
        assert not _compiled.stale(root)


@pytest.mark.asyncio_only
async def test_a_kept_message_holds_no_block_but_its_payload_and_itself() -> None:
    """Per message, only the payload bytes and the Message stay alive while the user keeps
    it, compiled or not (benchmarks.inproc.allocations counts every live block). Compiled
    code keeps ints unboxed: a Message built from them boxed a fresh src and dst int per
    message (3 blocks per message instead of 2) until the endpoint passed its address objects
    through ``Any``."""
    from benchmarks import inproc

    result = await inproc.allocations(16, 400)
    assert result["blocks_per_msg"] < 2.1, result
