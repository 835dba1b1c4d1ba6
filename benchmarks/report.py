"""Goals (same-run ratios), the markdown table and the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import spread

Result = dict[str, Any]


#: A verdict from fewer or shorter repeats than the full run's is only indicative.
INDICATIVE_MODES = ("quick", "smoke")


def _runs(figure: Result, key: str) -> list[float]:
    """The value of ``key`` in each round of a summarized figure (see ``summarize``)."""
    return [float(run[key]) for run in figure["runs"]]


def _ratios(ours: Result, base: Result, key: str) -> list[float]:
    """Round by round: each round's figure over the baseline measured in the same round."""
    return [a / b for a, b in zip(_runs(ours, key), _runs(base, key), strict=True)]


def _goal(
    name: str,
    target: float,
    higher_is_better: bool,
    cases: list[tuple[str, list[float]]],
    mode: str,
    unit: str = "ratio",
) -> Result:
    """One goal, judged by the median over the rounds of its worst case; every case keeps its
    min / median / max. The verdict is indicative in the quick modes, and wherever some case's
    rounds fall on both sides of the target (the repeats disagree)."""
    if not cases:
        return {"name": name, "ratio": None, "target": target, "met": None, "details": {}}

    def meets(value: float) -> bool:
        return value >= target if higher_is_better else value <= target

    spreads = {case: spread(values) for case, values in cases}
    pick: Callable[..., str] = min if higher_is_better else max
    worst = pick(spreads, key=lambda case: spreads[case]["median"])
    straddling = [c for c, sp in spreads.items() if meets(sp["min"]) != meets(sp["max"])]
    why = []
    if mode in INDICATIVE_MODES:
        why.append(f"{mode} mode: fewer, shorter repeats than the full run")
    if straddling:
        why.append(f"the repeats fall on both sides of the target in {', '.join(straddling)}")
    return {
        "name": name,
        "ratio": round(spreads[worst]["median"], 3),
        "spread": {k: round(v, 3) for k, v in spreads[worst].items()},
        "target": target,
        "met": all(meets(sp["median"]) for sp in spreads.values()),
        "indicative": bool(why),
        "why_indicative": "; ".join(why) or None,
        "worst_case": worst,
        "unit": unit,
        "details": {
            case: {k: round(v, 3) for k, v in sp.items() if k != "n"}
            for case, sp in spreads.items()
        },
    }


def evaluate_goals(results: Result) -> list[Result]:
    lb_rtt, lb_thr, shm_rtt, shm_thr, kicks, allocs, eps = ([] for _ in range(7))
    floor_rtt, batch_thr, zc_thr, idle = ([] for _ in range(4))
    for loop, per in results["loops"].items():
        for size in map(str, results["sizes"]):
            ours, queue = per["rpmsg"][size], per["asyncio.Queue"][size]
            lb_rtt.append((f"{loop}/{size}", _ratios(ours, queue, "median_us")))
            lb_thr.append((f"{loop}/{size}", _ratios(ours, queue, "msgs_per_s")))
            kicks.append((f"loopback/{loop}/{size}", _runs(ours, "kicks_per_msg")))
            if "ipc" in per:
                shm, ipc = per["ipc"]["rpmsg shm"][size], per["ipc"]
                shm_rtt.append(
                    (f"{loop}/{size}", _ratios(shm, ipc["bare socket"][size], "median_us"))
                )
                shm_thr.append(
                    (f"{loop}/{size}", _ratios(shm, ipc["unix streams"][size], "msgs_per_s"))
                )
                kicks.append((f"shm/{loop}/{size}", _runs(shm, "kicks_per_msg")))
                if "floor: blocking socketpair" in ipc:
                    floor = ipc["floor: blocking socketpair"][size]
                    floor_rtt.append((f"{loop}/{size}", _ratios(shm, floor, "median_us")))
                    batch = ipc["rpmsg shm, send_many"][size]
                    batch_thr.append(
                        (f"{loop}/{size}", _ratios(batch, ipc["unix streams"][size], "msgs_per_s"))
                    )
                if "rpmsg shm, zero-copy" in ipc:
                    zc = ipc["rpmsg shm, zero-copy"][size]
                    zc_thr.append(
                        (f"{loop}/{size}", _ratios(zc, ipc["unix streams"][size], "msgs_per_s"))
                    )
        if "idle_cpu" in per:
            cpu = per["idle_cpu"]
            both = zip(_runs(cpu, "peer"), _runs(cpu, "host"), strict=True)
            idle.append((loop, [max(p, h) for p, h in both]))
        allocs.append((loop, _runs(per["allocations"], "extra_per_msg")))
        by_count = {e["endpoints"]: e for e in per["endpoints"]}
        eps.append((loop, _ratios(by_count[1000], by_count[1], "msgs_per_s")))
    mode = results["mode"]
    return [
        _goal("loopback round trip <= 2.0 x asyncio.Queue ping-pong", 2.0, False, lb_rtt, mode),
        _goal("loopback throughput >= 0.5 x asyncio.Queue", 0.5, True, lb_thr, mode),
        _goal("shm round trip <= 1.0 x bare socket ping-pong", 1.0, False, shm_rtt, mode),
        _goal("shm round trip <= 1.2 x blocking socketpair floor", 1.2, False, floor_rtt, mode),
        _goal("shm throughput >= 2.0 x asyncio unix streams", 2.0, True, shm_thr, mode),
        _goal("shm send_many throughput >= 3.0 x unix streams", 3.0, True, batch_thr, mode),
        _goal("shm zero-copy throughput >= 3.0 x unix streams", 3.0, True, zc_thr, mode),
        _goal("idle bound shm peer and host <= 5% of a core", 0.05, False, idle, mode, "cores"),
        _goal("<= 0.05 kicks per message under saturation", 0.05, False, kicks, mode, "kicks/msg"),
        _goal(
            "no allocation per message beyond the payload handed to the user",
            0.0,
            False,
            allocs,
            mode,
            "extra blocks/msg",
        ),
        _goal("throughput at 1000 endpoints >= 0.9 x at 1 endpoint", 0.9, True, eps, mode),
    ]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _with_spread(figure: Result, key: str) -> str:
    """``median (min-max)`` of one figure's repeats; the bare median if it has one run."""
    sp = figure.get("spread", {}).get(key)
    if sp is None or sp["n"] < 2:
        return _fmt(figure[key])
    return f"{_fmt(sp['median'])} ({_fmt(sp['min'])}-{_fmt(sp['max'])})"


def _ratio_text(values: list[float]) -> str:
    sp = spread(values)
    if sp["n"] < 2:
        return f"{sp['median']:.2f}"
    return f"{sp['median']:.2f} ({sp['min']:.2f}-{sp['max']:.2f})"


def markdown(results: Result) -> str:
    m = results["machine"]
    repeats = results.get("repeats", 1)
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, uvloop {m['uvloop']}, "
        f"vrings: {m.get('vrings', 'pure Python')}; "
        f"mode {results['mode']}, {repeats} rounds, {results.get('elapsed_s', '?')} s. "
        "Each figure: median of the rounds (min-max); each ratio: median of the rounds' "
        "ratios, each round against the baseline measured in the same round.",
        "",
        "| loop | size | path | RTT median us | RTT p99 us | msgs/s one way | RTT ratio | "
        "throughput ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loop, per in results["loops"].items():
        for size in map(str, results["sizes"]):
            rows = [
                (name, per[name][size], per["asyncio.Queue"][size], per["asyncio.Queue"][size])
                for name in ("rpmsg", "asyncio.Queue", "anyio stream")
            ]
            for name, by_size in per.get("ipc", {}).items():
                ipc = per["ipc"]
                rows.append(
                    (name, by_size[size], ipc["bare socket"][size], ipc["unix streams"][size])
                )
            for name, r, rtt_base, thr_base in rows:
                has_thr = "msgs_per_s" in r
                thr_ratio = _ratio_text(_ratios(r, thr_base, "msgs_per_s")) if has_thr else "-"
                lines.append(
                    f"| {loop} | {size} | {name} | {_with_spread(r, 'median_us')} | "
                    f"{_with_spread(r, 'p99_us')} | "
                    f"{_with_spread(r, 'msgs_per_s') if has_thr else '-'} | "
                    f"{_ratio_text(_ratios(r, rtt_base, 'median_us'))} | {thr_ratio} |"
                )
    lines += [
        "",
        "RTT ratio: against asyncio.Queue in process, the bare socket between "
        "processes; throughput ratio: against asyncio.Queue / asyncio unix streams.",
        "",
    ]
    lines += ["| loop | endpoints | msgs/s | vs 1 endpoint |", "|---|---|---|---|"]
    for loop, per in results["loops"].items():
        one = per["endpoints"][0]
        for e in per["endpoints"]:
            lines.append(
                f"| {loop} | {e['endpoints']} | {_with_spread(e, 'msgs_per_s')} | "
                f"{_ratio_text(_ratios(e, one, 'msgs_per_s'))} |"
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
            f"| {loop} | {_with_spread(a, 'blocks_per_msg')} | {_with_spread(a, 'extra_per_msg')} "
            f"| {_with_spread(b['in_process'], 'ms')} | {_with_spread(b['own_process'], 'ms')} |"
        )
    lines += kernel_rows(results)
    elf = results["elf_load_1mib"]
    for loop, per in results["loops"].items():
        if "idle_cpu" in per:
            cpu = per["idle_cpu"]
            lines += [
                "",
                f"Idle CPU of a bound, silent shm link ({loop}), fraction of a core: peer "
                f"{_with_spread(cpu, 'peer')}, host {_with_spread(cpu, 'host')}.",
            ]
    lines += [
        "",
        f"ELF load (1 MiB segment, {elf['image_bytes']} bytes): {_with_spread(elf, 'ms')} ms.",
        "",
        "| goal | worst case | ratio (min-max) | target | met |",
        "|---|---|---|---|---|",
    ]
    for g in results["goals"]:
        met = "n/a" if g["met"] is None else "yes" if g["met"] else "**no**"
        if g.get("indicative"):
            met += " (indicative)"
        sp = g.get("spread")
        ratio = g["ratio"] if not sp else f"{g['ratio']} ({sp['min']}-{sp['max']})"
        lines.append(
            f"| {g['name']} | {g.get('worst_case', '-')} | {ratio} | {g['target']} | {met} |"
        )
    whys = [g["why_indicative"] for g in results["goals"] if g.get("why_indicative")]
    notes = list(dict.fromkeys(part for why in whys for part in why.split("; ")))
    if notes:
        lines += ["", "Indicative verdicts: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


_KERNEL_PATHS = (
    ("/dev/rpmsgN -> aioamp remote -> back", "rpmsg"),
    ("guest pipe ping-pong (two guest processes)", "pipe"),
)


def kernel_rows(results: Result) -> list[str]:
    """The round trips through the UML kernel (benchmarks.kernel), or why they were skipped."""
    runs = {loop: per["kernel"] for loop, per in results["loops"].items() if "kernel" in per}
    if not runs:
        return []
    lines = [
        "",
        "| loop | size | round trip in the UML guest | median us | p99 us | vs guest pipe "
        "(same boot) |",
        "|---|---|---|---|---|---|",
    ]
    for loop, run in runs.items():
        if "skipped" in run:
            lines.append(f"| {loop} | - | skipped: {run['skipped']} | - | - | - |")
            continue
        for size, paths in run["sizes"].items():
            for name, key in _KERNEL_PATHS:
                r = paths[key]
                ratio = _ratio_text(_ratios(r, paths["pipe"], "median_us"))
                lines.append(
                    f"| {loop} | {size} | {name} | {_with_spread(r, 'median_us')} | "
                    f"{_with_spread(r, 'p99_us')} | {ratio} |"
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
