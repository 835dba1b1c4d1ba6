"""Shared helpers: counts per mode, timing statistics, the loop switch and the peer protocol."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import attrs

T = TypeVar("T")

#: First payload byte of the two-process protocol: echo it, swallow it, or swallow and ack.
ECHO, SINK, ACK = 0x45, 0x53, 0x41


@attrs.frozen
class Counts:
    """Iterations per measurement; ``--quick`` uses tiny ones, the smoke test tinier still."""

    rtt: int
    throughput: int
    endpoints: int
    boots: int
    elf: int
    allocs: int
    #: Round trips per size through the UML kernel (benchmarks.kernel).
    kernel: int
    #: Runs per figure; the best is kept (see :func:`best_of`).
    repeats: int = 1

    @classmethod
    def for_mode(cls, mode: str) -> Counts:
        if mode == "full":
            return cls(
                rtt=3000,
                throughput=30000,
                endpoints=20000,
                boots=5,
                elf=10,
                allocs=2000,
                kernel=2000,
                repeats=3,
            )
        if mode == "quick":
            return cls(
                rtt=300, throughput=3000, endpoints=3000, boots=1, elf=2, allocs=500, kernel=300
            )
        return cls(rtt=20, throughput=100, endpoints=200, boots=1, elf=1, allocs=50, kernel=20)


def best_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The best of repeated runs of one figure: the run with the lowest median round trip
    gives the RTT figures, the one with the highest throughput the throughput figures (with
    its own kicks per message). The same rule for every path, baselines included: on a
    shared machine a slow run says more about the neighbours than about the code."""
    out = dict(runs[0])
    if "median_us" in out:
        fastest = min(runs, key=lambda r: r["median_us"])
        out.update(median_us=fastest["median_us"], p99_us=fastest["p99_us"])
    if "msgs_per_s" in out:
        out.update(
            {
                k: v
                for k, v in max(runs, key=lambda r: r["msgs_per_s"]).items()
                if k not in ("median_us", "p99_us")
            }
        )
    return out


def payload(kind: int, size: int) -> bytes:
    return bytes([kind]) + bytes(size - 1)


def rtt_stats(samples: Sequence[float]) -> dict[str, float]:
    """Median and p99 in microseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_us": statistics.median(ordered) * 1e6, "p99_us": p99 * 1e6}


def run_on(loop: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func`` on stock asyncio or uvloop (anyio's asyncio backend either way)."""
    return anyio.run(
        func, *args, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"}
    )


def loops_available() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]
