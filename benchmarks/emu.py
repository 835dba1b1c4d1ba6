"""The emulated Cortex-M core: instructions per second, and echo round trip and throughput of
the project's C firmware against the Python-program simulated core, side by side.

``python -m benchmarks.emu [--quick]`` prints a markdown table (docs/emulated-firmware.md
quotes one). Needs the ``emu`` extra. Every path is measured in the same run; compare rows,
not absolute figures across machines.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio

from platforms.emu import CortexM, EmuPlatform, Window, project_firmware
from platforms.emu.attach import AttachedCore
from platforms.pandaboard.config import PANDABOARD
from platforms.pandaboard.model import OmapModel
from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from remoteproc.rproc import RemoteProc

# Linked at 0: SP, reset; at 0x80: r0 = *0x20000000; loop: subs r0, #1; bne loop; wfi.
_LOOP = bytes.fromhex("00100020" + "81000000").ljust(0x80, b"\0") + bytes.fromhex(
    "4ff0005108680138fdd130bff8e7"
)


class _LoopBus:
    """Code at 0 and RAM at 0x20000000 for the counting loop."""

    def __init__(self, iterations: int) -> None:
        self.code = bytearray(_LOOP.ljust(0x1000, b"\0"))
        self.ram = bytearray(iterations.to_bytes(4, "little").ljust(0x1000, b"\0"))
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def resolve(self, da: int) -> Window | None:
        if da == 0:
            return Window(0, 0x1000, ram=memoryview(self.code), name="code")
        if da == 0x2000_0000:
            return Window(da, 0x1000, ram=memoryview(self.ram), name="ram")
        return None


def instructions_per_second(iterations: int) -> float:
    """Run ``2 * iterations`` instructions (subs, bne) to the WFI; instructions per second."""
    core = CortexM(_LoopBus(iterations), name="bench-loop")
    start = time.perf_counter()
    core.start()
    while not core.sleeping:
        time.sleep(0.0005)
    elapsed = time.perf_counter() - start
    core.stop()
    core.join(5)
    return 2 * iterations / elapsed


async def _echo(rp: RemoteProc, count: int, size: int, window: int) -> float:
    """``count`` messages of ``size`` bytes through ``rpmsg-echo``, ``window`` in flight;
    seconds per message."""
    channel = await rp.wait_for_service("rpmsg-echo", timeout=30)
    payload = bytes(size)
    sent = received = 0
    start = time.perf_counter()
    while received < count:
        while sent < count and sent - received < window:
            await channel.send(payload)
            sent += 1
        await channel.recv(timeout=30)
        received += 1
    return (time.perf_counter() - start) / count


Runner = Callable[[], AbstractAsyncContextManager[RemoteProc]]


def _sim(process: bool) -> Runner:
    @asynccontextmanager
    async def run() -> AsyncIterator[RemoteProc]:
        async with RemoteprocManager() as mgr:
            image = load_firmware(build_sample_image("rpmsg-echo"), name="echo.elf")
            rp = mgr.add(SimPlatform("bench", process=process), firmware=image)
            await rp.boot()
            yield rp
            await rp.shutdown()

    return run


@asynccontextmanager
async def _emu_vboard() -> AsyncIterator[RemoteProc]:
    image = load_firmware(project_firmware("vboard").read_bytes(), name="vboard-m3.elf")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(EmuPlatform("bench"), firmware=image)
        await rp.boot()
        yield rp
        await rp.shutdown()


@asynccontextmanager
async def _emu_pandaboard() -> AsyncIterator[RemoteProc]:
    image = load_firmware(project_firmware("omap4").read_bytes(), name="ipu-m3.elf")
    model = OmapModel(PANDABOARD.with_reset_timeout(2.0), cores={"ipu": AttachedCore.factory()})
    async with model, RemoteprocManager() as mgr:
        rp = mgr.add(model.board().platform("ipu"), firmware=image)
        await rp.boot()
        yield rp
        await rp.shutdown()


PATHS: dict[str, Runner] = {
    "sim, Python program, in process": _sim(False),
    "sim, Python program, own process": _sim(True),
    "emu, C firmware, virtual board": _emu_vboard,
    "emu, C firmware, PandaBoard model": _emu_pandaboard,
}


async def measure(count: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median over ``rounds`` of: round trip (16 bytes, one in flight, µs) and throughput
    (496 bytes, 64 in flight, messages/s) per path."""
    rows: dict[str, dict[str, list[float]]] = {p: {"rtt": [], "tput": []} for p in PATHS}
    for _ in range(rounds):
        for name, runner in PATHS.items():
            async with runner() as rp:
                await _echo(rp, 100, 16, 1)  # warm-up
                rows[name]["rtt"].append(await _echo(rp, count, 16, 1) * 1e6)
                rows[name]["tput"].append(1 / await _echo(rp, count * 5, 496, 64))
    return {
        name: {key: statistics.median(values) for key, values in row.items()}
        for name, row in rows.items()
    }


def report(ips: float, rows: dict[str, dict[str, float]]) -> str:
    lines = [
        f"emulated core: {ips / 1e9:.2f} G instructions/s (a subs/bne loop, no hooks)",
        "",
        "| path | echo round trip, 16 B (µs) | echo throughput, 496 B (msg/s) |",
        "|---|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['rtt']:.0f} | {row['tput']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emu", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages, one round")
    parser.add_argument("--smoke", action="store_true", help="tiny counts: the test suite's")
    args = parser.parse_args(argv)
    count, rounds, loops = (200, 1, 10**8) if args.quick else (2000, 3, 10**8)
    if args.smoke:
        count, rounds, loops = 10, 1, 10**5
    ips = statistics.median(instructions_per_second(loops) for _ in range(rounds))
    rows = anyio.run(measure, count, rounds)
    print(report(ips, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
