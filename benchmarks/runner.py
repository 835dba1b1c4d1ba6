"""The benchmark runner: measures everything on each loop, then writes JSON, a markdown table
and PNG plots. Only ratios against baselines of the same run are judged (see ``goals``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aioamp.output import progress

from . import boot, inproc, ipc, kernel
from .common import Counts, loops_available, run_on, summarize
from .report import evaluate_goals, markdown, plot

SIZES = [16, 64, 496]
ENDPOINT_COUNTS = [1, 10, 100, 1000]
_INPROC = {
    "rpmsg": (inproc.rpmsg_rtt, inproc.rpmsg_throughput),
    "asyncio.Queue": (inproc.queue_rtt, inproc.queue_throughput),
    "anyio stream": (inproc.anyio_rtt, inproc.anyio_throughput),
}
_IPC_NAMES = {
    "shm": "rpmsg shm",
    "shm-nopoll": "rpmsg shm, busy_poll=0",
    "shm-batch": "rpmsg shm, send_many",
    "shm-zc": "rpmsg shm, zero-copy",
    "socket": "bare socket",
    "streams": "unix streams",
    "pipe": "mp.Pipe",
    "zmq": "zmq PAIR",
    "blocking": "floor: blocking socketpair",
    "spin": "floor: spinning shm",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 short rounds instead of 5 (~15 s); its verdicts are only indicative",
    )
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the JSON to stdout")
    parser.add_argument(
        "--out", default="bench-results", help="output directory (default: bench-results/)"
    )
    parser.add_argument("--loops", nargs="+", choices=["asyncio", "uvloop"], help="loops to run")
    parser.add_argument("--no-ipc", action="store_true", help="skip the two-process figures")
    parser.add_argument(
        "--no-kernel", action="store_true", help="skip the round trip through the UML kernel"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        uv: str | None = version("uvloop")
    except Exception:  # not installed
        uv = None
    from transports.virtio.vring import ACCELERATED

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "uvloop": uv,
        "platform": platform.platform(),
        # Which vring implementation ran (AIOAMP_PURE_PYTHON=1 forces the pure one).
        "vrings": "C accelerator" if ACCELERATED else "pure Python",
    }


Step = Callable[[str], None]


async def _inproc_round(sizes: list[int], c: Counts, step: Step) -> dict[str, Any]:
    """Every in-process figure once: one round."""
    out: dict[str, Any] = {}
    for name, (rtt, thr) in _INPROC.items():
        step(f"in process: {name}")
        out[name] = {str(s): {**await rtt(s, c.rtt), **await thr(s, c.throughput)} for s in sizes}
    step("in process: endpoints")
    out["endpoints"] = [await inproc.endpoints_throughput(k, c.endpoints) for k in ENDPOINT_COUNTS]
    out["allocations"] = await inproc.allocations(16, c.allocs)
    return out


async def _inproc_loop(sizes: list[int], c: Counts, step: Step) -> dict[str, Any]:
    """``c.repeats`` rounds, each measuring every path once (so drift in the machine's load
    hits a path and its baseline alike), then one figure per path: median and spread."""
    rounds = [await _inproc_round(sizes, c, step) for _ in range(c.repeats)]
    out: dict[str, Any] = {
        name: {str(s): summarize([r[name][str(s)] for r in rounds]) for s in sizes}
        for name in _INPROC
    }
    out["endpoints"] = [
        summarize([r["endpoints"][i] for r in rounds]) for i in range(len(ENDPOINT_COUNTS))
    ]
    out["allocations"] = summarize([r["allocations"] for r in rounds])
    return out


def _ipc(loop: str, c: Counts, step: Step) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every two-process path, ``c.repeats`` rounds; and the idle CPU of the shm peer."""
    rounds: dict[str, list[Any]] = {kind: [] for kind in ipc.KINDS}
    for _ in range(c.repeats):
        for kind in ipc.KINDS:
            step(f"two processes: {kind}")
            rounds[kind].append(ipc.measure_kind(kind, loop, SIZES, c.rtt, c.throughput))
    return {
        _IPC_NAMES[kind]: {str(s): summarize([run[str(s)] for run in runs]) for s in SIZES}
        for kind, runs in rounds.items()
    }, summarize([run["idle_cpu"] for run in rounds["shm"]])


async def _boots(c: Counts, step: Step) -> dict[str, Any]:
    step("simulated boot")
    return {
        "in_process": summarize(await boot.boot_time(False, c.boots)),
        "own_process": summarize(await boot.boot_time(True, c.boots)),
    }


def steps_of(mode: str, loops: list[str], ipc_too: bool, kernel_too: bool = True) -> int:
    """How many times :func:`run` calls its ``step``: the progress bar's total (a skipped
    kernel row takes one step instead of one per round)."""
    c = Counts.for_mode(mode)
    per_loop = c.repeats * (len(_INPROC) + 1) + 1 + (c.repeats * len(ipc.KINDS) if ipc_too else 0)
    kernel_steps = (c.repeats if kernel.available() else 1) if kernel_too else 0
    return len(loops) * (per_loop + kernel_steps)


def run(
    mode: str,
    loops: list[str],
    ipc_too: bool,
    step: Step = lambda _stage: None,
    kernel_too: bool = True,
) -> dict[str, Any]:
    """Measure everything; ``step(stage)`` is called as each stage starts."""
    c = Counts.for_mode(mode)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "mode": mode,
        "repeats": c.repeats,
        "machine": machine(),
        "sizes": SIZES,
        "loops": {},
    }
    for loop in loops:

        def loop_step(stage: str, loop: str = loop) -> None:
            step(f"[{loop}] {stage}")

        per: dict[str, Any] = run_on(loop, _inproc_loop, SIZES, c, loop_step)
        if ipc_too:
            per["ipc"], per["idle_cpu"] = _ipc(loop, c, loop_step)
        per["boot"] = run_on(loop, _boots, c, loop_step)
        if kernel_too:
            per["kernel"] = kernel.kernel_figure(loop, SIZES, c.kernel, c.repeats, loop_step)
        results["loops"][loop] = per
    results["elf_load_1mib"] = summarize(boot.elf_load_time(c.elf))
    results["goals"] = evaluate_goals(results)
    results["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_arguments(parser)
    return run_args(parser.parse_args(argv))


def run_args(args: argparse.Namespace) -> int:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    loops = args.loops or loops_available()
    kernel_too = not args.no_kernel
    steps = steps_of(mode, loops, not args.no_ipc, kernel_too)
    with progress(steps, "bench", unit="step") as bar:

        def step(stage: str) -> None:
            bar.set_description_str(stage, refresh=False)
            bar.update()

        results = run(mode, loops, not args.no_ipc, step, kernel_too)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "results.md").write_text(table)
    if not args.no_plots:
        plot(results, out)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table)
        print(f"written to {out}/")
    return 0
