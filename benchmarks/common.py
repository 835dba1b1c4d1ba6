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
    """Iterations per measurement and repeats per figure. ``--quick`` runs fewer and shorter
    repeats (its verdicts are labelled indicative), the smoke test the fewest that still give a
    spread."""

    rtt: int
    throughput: int
    endpoints: int
    boots: int
    elf: int
    allocs: int
    #: Round trips per size through the UML kernel (benchmarks.kernel), one boot per round.
    kernel: int
    #: Rounds per figure: each round measures every path once, so a ratio pairs figures taken
    #: moments apart; a figure is the median of its rounds, with their min and max.
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
                repeats=5,
            )
        if mode == "quick":
            return cls(
                rtt=300,
                throughput=4000,
                endpoints=5000,
                boots=2,
                elf=3,
                allocs=500,
                kernel=300,
                repeats=3,
            )
        return cls(
            rtt=20, throughput=100, endpoints=200, boots=1, elf=1, allocs=50, kernel=20, repeats=2
        )


#: Messages a one-way run sends before its clock starts: two rings' worth (256 buffers each
#: way), so the figure is the steady state and not the first burst into empty rings, which
#: costs less per message (the sender never waits) and would dominate a short run.
WARMUP_MESSAGES = 512


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of the repeats of one figure."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


#: Fields that name what was measured (the same in every run), not a measurement.
LABELS = frozenset({"endpoints", "image_bytes", "handed_to_user_per_msg"})


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One figure from its repeated runs: each number is the median of the runs, its
    ``spread`` the min / median / max, and ``runs`` keeps every run (in round order, so a
    ratio can pair the runs of one round). Other values come from the first run. The same
    rule for every path, baselines included."""
    out: dict[str, Any] = {}
    spreads: dict[str, dict[str, float]] = {}
    for key, value in runs[0].items():
        numbers = [run[key] for run in runs]
        if key in LABELS:
            out[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            spreads[key] = spread(numbers)
            out[key] = spreads[key]["median"]
        else:
            out[key] = value
    out["spread"] = spreads
    out["runs"] = list(runs)
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
