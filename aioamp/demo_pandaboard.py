"""``aioamp demo --platform pandaboard-model|pandaboard-emu``: the PandaBoard driver against the
OMAP4 model; with ``pandaboard-emu`` an emulated Cortex-M3 in the IPU socket executes a real
firmware ELF (default: the project's firmware/ipu-m3.elf; docs/emulated-firmware.md).

Boots an IPU image (carveouts at device address 0xA0000000, in the IPC window at physical
0xA9000000) through :class:`~remoteproc.manager.RemoteprocManager` and the unchanged
:class:`~platforms.pandaboard.PandaBoardPlatform`, on the register-level model: mailbox ECHO,
the locked MMU entries, state transitions, the rpmsg channel, the client sample, the firmware's
trace, and the resets on shutdown.
"""

from __future__ import annotations

import time

import anyio

from platforms.pandaboard import config as board_config
from platforms.pandaboard.images import build_ipu_image
from platforms.pandaboard.model import CoreFactory, OmapModel
from remoteproc.firmware import FirmwareImage, load_firmware
from remoteproc.manager import RemoteprocManager
from rpmsg.samples import SERVICE_NAME, client_driver

from .output import say as say_line

#: Seconds the driver waits for an emulated core's reset to complete (by default 50 ms).
EMULATED_RESET_TIMEOUT = 2.0


async def pandaboard_model_demo(
    count: int, quiet: bool, firmware: FirmwareImage | None = None, source: str = ""
) -> bool:
    """Run the demo; True if the client sample completed. With ``firmware`` (read from
    ``source``) the IPU is an emulated Cortex-M3 executing it, not the Python core."""

    def say(who: str, line: str) -> None:
        if not quiet or not line.startswith("incoming msg"):
            say_line(f"[{who}] {line}")

    start = time.perf_counter()
    cores: dict[str, CoreFactory] | None = None
    emulated = firmware is not None
    if firmware is not None:
        from platforms.emu import AttachedCore

        image = firmware
        say("fw", f"{source}: entry {image.entry:#x}, executed by an emulated Cortex-M3")
        cores = {"ipu": AttachedCore.factory()}
    else:
        image = load_firmware(build_ipu_image("rpmsg-client-sample"), name="ipu.elf")
        say("fw", f"ipu.elf: entry {image.entry:#x}, program {image.program!r}")
    config = board_config.PANDABOARD
    if emulated:  # its threads share the CPUs and the GIL with the driver's RSTST polls
        config = config.with_reset_timeout(EMULATED_RESET_TIMEOUT)
    async with OmapModel(config, cores=cores) as model:
        if not emulated:
            model.core("ipu").install(image, args={"count": str(count)})
        board = model.board()
        plat = board.platform("ipu")
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            probe, result = client_driver(count=count, report=lambda s: say("client", s))
            rp.register_driver(SERVICE_NAME, probe)
            async with rp.transitions() as stream:

                async def show() -> None:
                    async for t in stream:
                        say("rproc", f"{t.old.label} -> {t.new.label} ({t.cause})")

                async with anyio.create_task_group() as tg:
                    tg.start_soon(show)
                    await rp.boot()
                    try:
                        await plat.wait_echo_reply(2)
                        say("mbox", "ECHO_REQUEST -> ECHO_REPLY on fifos 0/1")
                        for da, pa, size in model.mmu("ipu").entries():
                            say("mmu", f"da {da:#010x} -> pa {pa:#010x} ({size >> 10} KiB)")
                        channel = await rp.wait_for_service(SERVICE_NAME, timeout=5)
                        say("rpmsg", f"channel {SERVICE_NAME!r}: 0x{channel.dst:x}")
                        with anyio.fail_after(max(10.0, count / 50)):
                            while not result.finished:
                                await anyio.sleep(0.01)
                    except TimeoutError:  # a firmware that never answers, or keeps crashing
                        say("demo", f"no answer in time; last crash: {rp.last_crash or 'none'}")
                    for line in rp.trace(0).splitlines():
                        say("trace", line)
                    say("mbox", str(board.mailbox.statistics()))
                    await rp.shutdown()
                    tg.cancel_scope.cancel()
        held = model.prcm.value(board_config.DUCATI_RESET.rstctrl)
        say("prcm", f"RM_DUCATI_RSTCTRL = {held:#x} (cores and MMU held in reset)")
    elapsed = time.perf_counter() - start
    ok = result.finished and result.payloads_ok
    say("demo", f"{result.replies} replies in {elapsed:.2f} s: {'ok' if ok else 'FAILED'}")
    return ok
