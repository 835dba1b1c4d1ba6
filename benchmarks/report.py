"""Goals (same-run ratios), the markdown table and the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _goal(
    name: str,
    target: float,
    higher_is_better: bool,
    cases: list[tuple[str, float]],
    unit: str = "ratio",
) -> Result:
    """One goal judged by its worst case; every case is kept in ``details``."""
    if not cases:
        return {"name": name, "ratio": None, "target": target, "met": None, "details": {}}
    pick: Callable[..., tuple[str, float]] = min if higher_is_better else max
    worst = pick(cases, key=lambda case: case[1])
    met = all((v >= target) if higher_is_better else (v <= target) for _, v in cases)
    return {
        "name": name,
        "ratio": round(worst[1], 3),
        "target": target,
        "met": met,
        "worst_case": worst[0],
        "unit": unit,
        "details": {case: round(v, 3) for case, v in cases},
    }


def evaluate_goals(results: Result) -> list[Result]:
    lb_rtt, lb_thr, shm_rtt, shm_thr, kicks, allocs, eps = ([] for _ in range(7))
    for loop, per in results["loops"].items():
        for size in map(str, results["sizes"]):
            ours, queue = per["rpmsg"][size], per["asyncio.Queue"][size]
            lb_rtt.append((f"{loop}/{size}", ours["median_us"] / queue["median_us"]))
            lb_thr.append((f"{loop}/{size}", ours["msgs_per_s"] / queue["msgs_per_s"]))
            kicks.append((f"loopback/{loop}/{size}", ours["kicks_per_msg"]))
            if "ipc" in per:
                shm, ipc = per["ipc"]["rpmsg shm"][size], per["ipc"]
                bare = ipc["bare socket"][size]["median_us"]
                shm_rtt.append((f"{loop}/{size}", shm["median_us"] / bare))
                streams = ipc["unix streams"][size]["msgs_per_s"]
                shm_thr.append((f"{loop}/{size}", shm["msgs_per_s"] / streams))
                kicks.append((f"shm/{loop}/{size}", shm["kicks_per_msg"]))
        allocs.append((loop, per["allocations"]["extra_per_msg"]))
        by_count = {e["endpoints"]: e["msgs_per_s"] for e in per["endpoints"]}
        eps.append((loop, by_count[1000] / by_count[1]))
    return [
        _goal("loopback round trip <= 2.0 x asyncio.Queue ping-pong", 2.0, False, lb_rtt),
        _goal("loopback throughput >= 0.5 x asyncio.Queue", 0.5, True, lb_thr),
        _goal("shm round trip <= 1.4 x bare socket ping-pong", 1.4, False, shm_rtt),
        _goal("shm throughput >= 2.0 x asyncio unix streams", 2.0, True, shm_thr),
        _goal("<= 0.05 kicks per message under saturation", 0.05, False, kicks, "kicks/msg"),
        _goal(
            "no allocation per message beyond the payload handed to the user",
            0.0,
            False,
            allocs,
            "extra blocks/msg",
        ),
        _goal("throughput at 1000 endpoints >= 0.9 x at 1 endpoint", 0.9, True, eps),
    ]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def markdown(results: Result) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, uvloop {m['uvloop']}, "
        f"vrings: {m.get('vrings', 'pure Python')}; "
        f"mode {results['mode']}, {results.get('elapsed_s', '?')} s.",
        "",
        "| loop | size | path | RTT median us | RTT p99 us | msgs/s one way | RTT ratio | "
        "throughput ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loop, per in results["loops"].items():
        for size in map(str, results["sizes"]):
            rows = [
                (name, per[name][size], "asyncio.Queue")
                for name in ("rpmsg", "asyncio.Queue", "anyio stream")
            ]
            for name, by_size in per.get("ipc", {}).items():
                rows.append((name, by_size[size], "bare socket"))
            for name, r, base in rows:
                if base == "bare socket":
                    base_r = per["ipc"]["bare socket"][size]
                    thr_base = per["ipc"]["unix streams"][size]
                else:
                    base_r = thr_base = per["asyncio.Queue"][size]
                rtt_ratio = r["median_us"] / base_r["median_us"]
                thr = r.get("msgs_per_s")
                thr_ratio = f"{thr / thr_base['msgs_per_s']:.2f}" if thr else "-"
                lines.append(
                    f"| {loop} | {size} | {name} | {_fmt(r['median_us'])} | {_fmt(r['p99_us'])} "
                    f"| {_fmt(thr) if thr else '-'} | {rtt_ratio:.2f} | {thr_ratio} |"
                )
    lines += [
        "",
        "RTT ratio: against asyncio.Queue in process, the bare socket between "
        "processes; throughput ratio: against asyncio.Queue / asyncio unix streams.",
        "",
    ]
    lines += ["| loop | endpoints | msgs/s | vs 1 endpoint |", "|---|---|---|---|"]
    for loop, per in results["loops"].items():
        one = per["endpoints"][0]["msgs_per_s"]
        for e in per["endpoints"]:
            lines.append(
                f"| {loop} | {e['endpoints']} | {_fmt(e['msgs_per_s'])} | "
                f"{e['msgs_per_s'] / one:.2f} |"
            )
    lines += [
        "",
        "| loop | allocations/msg (live blocks) | beyond payload + Message | "
        "sim boot in process ms | sim boot own process ms |",
        "|---|---|---|---|---|",
    ]
    for loop, per in results["loops"].items():
        a, b = per["allocations"], per["boot"]
        lines.append(
            f"| {loop} | {a['blocks_per_msg']} | {a['extra_per_msg']} | "
            f"{_fmt(b['in_process']['median_ms'])} | {_fmt(b['own_process']['median_ms'])} |"
        )
    lines += _kernel_rows(results)
    elf = results["elf_load_1mib"]
    lines += [
        "",
        f"ELF load (1 MiB segment, {elf['image_bytes']} bytes): {elf['median_ms']:.2f} ms.",
        "",
        "| goal | worst case | ratio | target | met |",
        "|---|---|---|---|---|",
    ]
    for g in results["goals"]:
        met = "n/a" if g["met"] is None else "yes" if g["met"] else "**no**"
        lines.append(
            f"| {g['name']} | {g.get('worst_case', '-')} | {g['ratio']} | {g['target']} | {met} |"
        )
    return "\n".join(lines) + "\n"


_KERNEL_PATHS = (
    ("/dev/rpmsgN -> aioamp remote -> back", "rpmsg"),
    ("guest pipe ping-pong (two guest processes)", "pipe"),
)


def _kernel_rows(results: Result) -> list[str]:
    """The round trips through the UML kernel (benchmarks.kernel), or why they were skipped."""
    runs = {loop: per["kernel"] for loop, per in results["loops"].items() if "kernel" in per}
    if not runs:
        return []
    lines = [
        "",
        "| loop | size | round trip in the UML guest | median us | p99 us | vs guest pipe |",
        "|---|---|---|---|---|---|",
    ]
    for loop, run in runs.items():
        if "skipped" in run:
            lines.append(f"| {loop} | - | skipped: {run['skipped']} | - | - | - |")
            continue
        for size, paths in run["sizes"].items():
            pipe = paths["pipe"]["median_us"]
            for name, key in _KERNEL_PATHS:
                r = paths[key]
                lines.append(
                    f"| {loop} | {size} | {name} | {_fmt(r['median_us'])} | {_fmt(r['p99_us'])} "
                    f"| {r['median_us'] / pipe:.2f} |"
                )
    return lines


def plot(results: Result, out: Path) -> list[Path]:
    """One PNG per loop: round trip and throughput, in process and between processes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    sizes = list(map(str, results["sizes"]))
    for loop, per in results["loops"].items():
        groups = [("in process", {n: per[n] for n in ("rpmsg", "asyncio.Queue", "anyio stream")})]
        if "ipc" in per:
            groups.append(("two processes", per["ipc"]))
        fig, axes = plt.subplots(len(groups), 2, figsize=(12, 4 * len(groups)), squeeze=False)
        for row, (title, impls) in enumerate(groups):
            for col, (key, label) in enumerate(
                [("median_us", "round trip median (us)"), ("msgs_per_s", "one-way msgs/s")]
            ):
                ax = axes[row][col]
                width = 0.8 / len(impls)
                for i, (name, by_size) in enumerate(impls.items()):
                    values = [by_size[s].get(key, 0.0) for s in sizes]
                    ax.bar([x + i * width for x in range(len(sizes))], values, width, label=name)
                ax.set_xticks([x + 0.4 - width / 2 for x in range(len(sizes))], sizes)
                ax.set_xlabel("payload bytes")
                ax.set_title(f"{loop}, {title}: {label}")
                ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"bench-{loop}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written
