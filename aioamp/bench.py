"""``aioamp bench``: run the benchmark suite of ``benchmarks/`` (a source checkout's package,
not installed with the wheel: its baselines need the ``bench`` extra)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from .exits import CommandError


def _runner() -> Any:
    """``benchmarks.runner``; from an editable install the checkout root may not be on the
    path (the console script's directory is), so fall back to the checkout next to us."""
    try:
        return importlib.import_module("benchmarks.runner")
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if not (root / "benchmarks" / "runner.py").exists():
            raise CommandError("needs a source checkout (benchmarks/ not found)") from None
        sys.path.insert(0, str(root))
        return importlib.import_module("benchmarks.runner")


def add_bench_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark rpmsg against asyncio.Queue, sockets, pipes and zmq",
        description="Measure aioamp against the IPC paths users would pick instead, on asyncio "
        "and uvloop, in rounds that measure every path once; each figure is the median of the "
        "rounds with its min and max, each goal judged by same-round ratios. A progress bar "
        "shows on a terminal.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 short rounds instead of 5 (~15 s); its verdicts are only indicative",
    )
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the JSON to stdout")
    p.add_argument("--out", default="bench-results", help="output directory")
    p.add_argument(
        "--loops",
        nargs="+",
        choices=["asyncio", "uvloop"],
        help="loops to run (default: every one installed)",
    )
    p.add_argument("--no-ipc", action="store_true", help="skip the two-process figures")
    p.add_argument(
        "--no-kernel",
        action="store_true",
        help="skip the round trip through the Linux kernel (User-Mode Linux, `make kernel`; "
        "skipped anyway when it is not built)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=bench_main)


def bench_main(args: argparse.Namespace) -> int:
    status: int = _runner().run_args(args)
    return status
