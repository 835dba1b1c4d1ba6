"""``aioamp demo``: boot a simulated remote processor from firmware and run the rpmsg client
sample against it, printing each step."""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.firmware import FirmwareImage, load_firmware
from remoteproc.manager import RemoteprocManager
from remoteproc.rproc import RemoteProc
from remoteproc.rsc_table import parse_resource_table
from rpmsg import Channel, RpmsgBus, RpmsgTimeoutError
from rpmsg.samples import (
    DEFAULT_COUNT,
    SERVICE_NAME,
    client_driver,
    register_client,
    run_service,
)
from transports import loopback_pair
from transports.virtio.constants import VIRTIO_CONFIG_S_DRIVER_OK

from .exits import CommandError
from .fw import load_for_command
from .loop import run
from .options import UsageError, integer
from .output import say

#: CLIENT_SAMPLE_COUNT of firmware/src/main.c (MSG_LIMIT of Linux's rpmsg_client_sample.c).
FIRMWARE_SAMPLE_COUNT = 100


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="boot a simulated remote processor and run the rpmsg client sample",
        description="Builds the sample firmware, boots a simulated processor through the "
        "remoteproc manager, runs the rpmsg client sample and shuts down.",
    )
    p.add_argument("--count", type=integer(1), default=DEFAULT_COUNT, help="messages to exchange")
    p.add_argument(
        "--platform",
        choices=["sim", "pandaboard-model", "pandaboard-emu", "uml"],
        default="sim",
        help="sim: the simulated processor (default); pandaboard-model: the PandaBoard driver "
        "against a register-level OMAP4 model (mailbox, PRCM, IPU MMU, UIO); pandaboard-emu: "
        "the same with an emulated Cortex-M3 executing a firmware ELF (needs the emu extra); "
        "uml: the Linux kernel (User-Mode Linux, `make kernel`) as the host of an aioamp "
        "remote, running its own rpmsg_client_sample",
    )
    p.add_argument(
        "--firmware",
        type=Path,
        metavar="PATH",
        help="pandaboard-emu: the IPU firmware ELF to run (default: the project's "
        "firmware/ipu-m3.elf)",
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the simulated core's program in this process instead of its own process",
    )
    p.add_argument(
        "--loopback",
        action="store_true",
        help="skip remoteproc: run the sample over an in-process loopback transport",
    )
    p.set_defaults(func=demo_main)


def demo_main(args: argparse.Namespace) -> int:
    quiet = args.quiet > 0  # -q/--quiet (aioamp's own): no line per message either
    if args.firmware is not None and args.platform != "pandaboard-emu":
        raise UsageError("--firmware goes with --platform pandaboard-emu")
    if args.loopback:
        ok: bool = run(_loopback_demo, args.count, quiet)
    elif args.platform in ("pandaboard-model", "pandaboard-emu"):
        from .demo_pandaboard import pandaboard_model_demo

        emulated = args.platform == "pandaboard-emu"
        if emulated and args.count > FIRMWARE_SAMPLE_COUNT:
            raise UsageError(
                f"--count: the firmware's client sample answers {FIRMWARE_SAMPLE_COUNT} messages"
            )
        image: FirmwareImage | None = None
        source = ""
        if emulated:
            if importlib.util.find_spec("unicorn") is None:
                raise CommandError(
                    "pandaboard-emu runs the firmware on unicorn, which is not installed: "
                    "pip install 'aioamp[emu]' (make test installs it)"
                )
            from platforms.emu import project_firmware

            source = str(args.firmware or project_firmware("omap4"))
            image = load_for_command(source)
        ok = run(pandaboard_model_demo, args.count, quiet, image, source)
    elif args.platform == "uml":
        from .demo_uml import uml_demo

        ok = run(uml_demo, args.count, quiet)
    else:
        ok = run(_sim_demo, args.count, quiet, not args.in_process)
    return 0 if ok else 1


def _reporter(who: str, quiet: bool) -> Callable[[str], None]:
    def report(line: str) -> None:
        if not quiet or not line.startswith("incoming msg"):
            say(f"[{who}] {line}")

    return report


async def _sim_demo(count: int, quiet: bool, separate_process: bool) -> bool:
    start = time.perf_counter()
    image_bytes = build_sample_image("rpmsg-client-sample")
    image = load_firmware(image_bytes, name="sample.elf")
    rsc = image.resource_table
    say(
        f"[fw] sample.elf: {len(image_bytes)} bytes, entry {image.entry:#x}, "
        f"{len(image.segments)} segments, program {image.program!r}, resource table at "
        f"{rsc.addr:#x} ({rsc.size} bytes)"
        if rsc
        else "[fw] sample.elf has no resource table"
    )
    async with RemoteprocManager() as mgr:
        platform = SimPlatform("sim0", args={"count": str(count)}, process=separate_process)
        rproc = mgr.add(platform, firmware=image)
        probe, result = client_driver(count=count, report=_reporter("host", quiet))
        probed: list[Channel] = []

        async def note_and_probe(channel: Channel) -> None:
            probed.append(channel)  # the sample may end (channel removed) before we look
            await probe(channel)

        rproc.register_driver(SERVICE_NAME, note_and_probe)
        async with rproc.transitions() as transitions:

            async def show_transitions() -> None:
                async for t in transitions:
                    say(f"[remoteproc] {rproc.name}: {t.old.label} -> {t.new.label} ({t.cause})")

            async with anyio.create_task_group() as tg:
                tg.start_soon(show_transitions)
                await rproc.boot()
                await anyio.sleep(0)  # let the transition printer run first
                where = (
                    f"its own process (pid {platform.pid}), sharing only memory and a doorbell"
                    if separate_process
                    else "this process"
                )
                say(f"[sim] the remote core's firmware runs in {where}")
                _show_vdevs(rproc)
                with anyio.move_on_after(10):
                    while not probed:
                        await anyio.sleep(0.005)
                if not probed:
                    raise RpmsgTimeoutError(f"{rproc.name}: {SERVICE_NAME!r} not announced in 10 s")
                channel = probed[0]
                say(
                    f"[rpmsg] channel {channel.name!r} announced: local 0x{channel.src:x} -> "
                    f"remote 0x{channel.dst:x}"
                )
                with anyio.fail_after(30):
                    while not channel.removed:
                        await anyio.sleep(0.005)
                stats = rproc.buses[0].statistics()
                say("[remoteproc] trace buffer 0 of the remote:")
                for line in rproc.trace(0).splitlines():
                    say(f"    {line}")
                await rproc.shutdown()
                await anyio.sleep(0)
                tg.cancel_scope.cancel()
    elapsed = time.perf_counter() - start
    say(
        f"client sample: {result.replies}/{count} echoes, payloads "
        f"{'ok' if result.payloads_ok else 'CORRUPT'}; host bus sent {stats.tx_messages} / "
        f"received {stats.rx_messages} messages, drops {sum(stats.drops.values())}, "
        f"kicks {stats.kicks_sent}; {elapsed * 1e3:.0f} ms; final state {rproc.state_name}, "
        f"memory in use {platform.physical.in_use} bytes"
    )
    return (
        result.finished
        and result.payloads_ok
        and result.replies == count
        and rproc.state_name == "offline"
        and platform.physical.in_use == 0
    )


def _show_vdevs(rproc: RemoteProc) -> None:
    loaded = rproc.loaded
    if loaded is None or loaded.table_view is None:
        raise RuntimeError(f"{rproc.name} booted without a resource table: nothing to show")
    table = parse_resource_table(loaded.table_view)
    for entry in table.carveouts:
        say(
            f"[remoteproc] carveout {entry.name!r}: da {entry.da:#x} -> pa {entry.pa:#x}, "
            f"{entry.len:#x} bytes"
        )
    for vdev in loaded.vdevs:
        view = vdev.view
        assert view is not None  # set when the table was installed
        rings = ", ".join(
            f"vring{i} da {ring.da:#x} num {ring.num} notifyid {ring.notifyid}"
            for i, ring in ((i, view.vring(i)) for i in range(view.num_of_vrings))
        )
        ok = "DRIVER_OK" if view.status & VIRTIO_CONFIG_S_DRIVER_OK else "not ready"
        say(
            f"[virtio] vdev{vdev.index}: rpmsg, status {view.status:#04x} ({ok}), features "
            f"device {view.dfeatures:#x} / driver {view.gfeatures:#x}; {rings}"
        )


async def _loopback_demo(count: int, quiet: bool) -> bool:
    start = time.perf_counter()
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end, name="host") as host:
        driver, result = register_client(host, count=count, report=_reporter("host", quiet))
        async with RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote:
            await run_service(remote, count=count, report=_reporter("remote", quiet))
            with anyio.fail_after(10):
                while driver.channels:
                    await anyio.sleep(0.001)
        stats = host.statistics()
    elapsed = time.perf_counter() - start
    say(
        f"client sample (loopback): {result.replies}/{count} echoes, payloads "
        f"{'ok' if result.payloads_ok else 'CORRUPT'}, {elapsed * 1e3:.1f} ms; host sent "
        f"{stats.tx_messages} / received {stats.rx_messages} messages, "
        f"drops {sum(stats.drops.values())}"
    )
    return result.finished and result.payloads_ok and result.replies == count
