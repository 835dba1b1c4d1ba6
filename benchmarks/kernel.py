"""The Linux kernel as the rpmsg host: round trips from a guest process through ``/dev/rpmsgN``
to an aioamp remote and back, beside a guest pipe ping-pong in the same kernel.

Boots the User-Mode Linux kernel that ``make kernel`` builds (platforms.uml) against an aioamp
vhost-user backend whose remote bus echoes on an ``rpmsg-raw`` service; the guest runs
:mod:`benchmarks.kernel_guest` with this interpreter (hostfs shows it the checkout) and reports
its figures on the console. Without a kernel the figure is ``{"skipped": reason}``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platforms.uml import KernelNotFoundError, UmlKernel, find_kernel
from rpmsg import BusClosedError, RpmsgBus
from transports.backends.vhost_user.server import listen_vhost_user

from .common import run_on, summarize
from .kernel_guest import MARKER

_ROOT = Path(__file__).resolve().parent.parent


def available() -> bool:
    """Whether there is a kernel to boot (:func:`~platforms.uml.find_kernel`)."""
    try:
        find_kernel()
    except KernelNotFoundError:
        return False
    return True


async def kernel_rtt(sizes: list[int], count: int) -> dict[str, Any]:
    """``{"device", "sizes": {SIZE: {"rpmsg": {median_us, p99_us}, "pipe": {...}}}}``, or
    ``{"skipped": reason}`` when there is no kernel.

    Raises:
        KernelExitedError, GuestCommandError: the guest's benchmark failed (an echo differed,
            a device was missing); the message holds the console's end.
    """
    try:
        kernel = find_kernel()
    except KernelNotFoundError as exc:
        return {"skipped": str(exc)}
    argv = [sys.executable, "-m", "benchmarks.kernel_guest", str(count), *map(str, sizes)]
    with tempfile.TemporaryDirectory(prefix="aioamp-bench-") as tmp:
        sock = Path(tmp) / "rpmsg.sock"
        backend = listen_vhost_user(sock)
        async with (
            backend,
            UmlKernel(
                argv, kernel=kernel, devices=[sock], timeout=600, env={"PYTHONPATH": str(_ROOT)}
            ) as uml,
            RpmsgBus(backend, name="bench-remote", ready_timeout=30) as bus,
        ):
            ep = await bus.create_service("rpmsg-raw")
            try:
                async for msg in ep:
                    await ep.send_to(msg.src, msg.payload)
            except BusClosedError:
                pass  # the guest is done: the kernel halted (the bus served it until then)
            (await uml.wait()).check()
            report = await uml.wait_for_line(f"^{re.escape(MARKER)}(.*)$")
    figures: dict[str, Any] = json.loads(report.group(1))
    return figures


def kernel_figure(
    loop: str, sizes: list[int], count: int, repeats: int, step: Callable[[str], None]
) -> dict[str, Any]:
    """:func:`kernel_rtt` on ``loop``, one boot per round (``step`` is told as each starts);
    per size and path the median of the rounds with their spread (``summarize``). Both paths
    of a round are measured in the same boot, so their ratio pairs them round by round."""
    runs = []
    for _ in range(repeats):
        step("the Linux kernel as host (User-Mode Linux)")
        runs.append(run_on(loop, kernel_rtt, sizes, count))
        if "skipped" in runs[0]:
            return runs[0]
    return {
        "device": runs[0]["device"],
        "sizes": {
            size: {path: summarize([run["sizes"][size][path] for run in runs]) for path in paths}
            for size, paths in runs[0]["sizes"].items()
        },
    }
