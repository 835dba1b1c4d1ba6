"""Simulated-processor boot time and ELF load time."""

from __future__ import annotations

import time

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.elfwriter import build_firmware
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager


async def boot_time(process: bool, n: int) -> list[dict[str, float]]:
    """From ``boot()`` until the firmware's echo service is announced, ``n`` times."""
    image = build_sample_image("rpmsg-echo")
    samples = []
    async with RemoteprocManager() as mgr:
        rproc = mgr.add(SimPlatform("bench", process=process), firmware=image)
        for _ in range(n):
            t0 = time.perf_counter()
            await rproc.boot()
            await rproc.wait_for_service("rpmsg-echo", timeout=30)
            samples.append(time.perf_counter() - t0)
            await rproc.shutdown()
    return [{"ms": sample * 1e3} for sample in samples]


def elf_load_time(n: int) -> list[dict[str, float]]:
    """Parse and validate a 1 MiB single-segment image, ``n`` times."""
    image = build_firmware(0x1000, [(0x1000, bytes(range(256)) * 4096)])
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        load_firmware(image, name="1mib.elf")
        samples.append(time.perf_counter() - t0)
    return [{"image_bytes": len(image), "ms": sample * 1e3} for sample in samples]
