"""The benchmark runner: measures everything on each loop, then writes JSON, a markdown table
and PNG plots. Only ratios against baselines of the same run are judged (see ``goals``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import boot, inproc, ipc, kernel
from .common import Counts, best_of, loops_available, run_on
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
    "socket": "bare socket",
    "streams": "unix streams",
    "pipe": "mp.Pipe",
    "zmq": "zmq PAIR",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small counts (< 1 minute)")
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


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


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


async def _inproc_loop(sizes: list[int], c: Counts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (rtt, thr) in _INPROC.items():
        out[name] = {}
        for s in sizes:
            runs = [{**await rtt(s, c.rtt), **await thr(s, c.throughput)} for _ in range(c.repeats)]
            out[name][str(s)] = best_of(runs)
    out["endpoints"] = [
        best_of([await inproc.endpoints_throughput(k, c.endpoints) for _ in range(c.repeats)])
        for k in ENDPOINT_COUNTS
    ]
    out["allocations"] = await inproc.allocations(16, c.allocs)
    return out


async def _boots(c: Counts) -> dict[str, Any]:
    return {
        "in_process": await boot.boot_time(False, c.boots),
        "own_process": await boot.boot_time(True, c.boots),
    }


def run(
    mode: str, loops: list[str], ipc_too: bool, quiet: bool = False, kernel_too: bool = True
) -> dict[str, Any]:
    c = Counts.for_mode(mode)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"mode": mode, "machine": machine(), "sizes": SIZES, "loops": {}}
    for loop in loops:
        _log(quiet, f"[{loop}] in-process")
        per: dict[str, Any] = run_on(loop, _inproc_loop, SIZES, c)
        if ipc_too:
            per["ipc"] = {}
            for kind in ipc.KINDS:
                _log(quiet, f"[{loop}] two processes: {kind}")
                runs = [
                    ipc.measure_kind(kind, loop, SIZES, c.rtt, c.throughput)
                    for _ in range(c.repeats)
                ]
                per["ipc"][_IPC_NAMES[kind]] = {
                    str(s): best_of([run[str(s)] for run in runs]) for s in SIZES
                }
        _log(quiet, f"[{loop}] simulated boot")
        per["boot"] = run_on(loop, _boots, c)
        if kernel_too:
            _log(quiet, f"[{loop}] the Linux kernel as host (User-Mode Linux)")
            per["kernel"] = kernel.kernel_figure(loop, SIZES, c.kernel, c.repeats)
        results["loops"][loop] = per
    results["elf_load_1mib"] = boot.elf_load_time(c.elf)
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
    results = run(mode, loops, not args.no_ipc, quiet=args.json, kernel_too=not args.no_kernel)
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
