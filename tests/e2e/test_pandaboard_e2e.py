"""End to end through RemoteprocManager + PandaBoardPlatform + the OMAP4 model: boot, mailbox
echo, name service, the client sample, CRASH -> recovery, shutdown, the dual-core dependency."""

from __future__ import annotations

import anyio
from conftest import (
    WaitUntil,
    boot_watching,
    client_sample_completes,
    echo_round_trip,
    labels,
    omap_processor,
)

from platforms.pandaboard import config as C
from platforms.pandaboard.hw import OmapMessage
from platforms.pandaboard.images import build_ipu_image
from platforms.pandaboard.model import OmapModel
from platforms.sim import Faults
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from rpmsg.samples import client_driver

CLIENT = load_firmware(build_ipu_image("rpmsg-client-sample"), name="ipu.elf")
ECHO = load_firmware(build_ipu_image("rpmsg-echo"), name="echo.elf")
CORE1 = load_firmware(
    build_ipu_image("rpmsg-echo", base_da=C.IPC_DA + C.IPU_CORE1_MEMORY.size), name="core1.elf"
)
DUCATI = C.DUCATI_RESET


async def test_boot_echo_ns_client_sample_and_shutdown() -> None:
    async with OmapModel() as model:
        core, plat = omap_processor(model, "ipu", CLIENT)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=CLIENT)
            probe, result = client_driver(count=100)
            rp.register_driver("rpmsg-client-sample", probe)
            await rp.boot()
            assert core.running and core.starts == 1
            await plat.wait_echo_reply(2)  # ECHO_REQUEST queued before the reset release
            assert core.echo_requests == 1
            await client_sample_completes(rp, plat, result)  # NS, then the 100 exchanges
            await rp.shutdown()
            assert not core.running
        assert model.prcm.in_reset(DUCATI.rstctrl, 0)
        assert model.prcm.in_reset(DUCATI.rstctrl, DUCATI.mmu_bit)
        assert plat.physical.in_use == 0


async def test_crash_message_is_recovered_and_the_sample_completes(wait_until: WaitUntil) -> None:
    async with OmapModel() as model:
        core, plat = omap_processor(model, "ipu", CLIENT, faults=Faults(crash_after_messages=30))
        runs: list[int] = []
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=CLIENT)
            probe, result = client_driver(count=100)
            rp.register_driver("rpmsg-client-sample", probe)
            seen = await boot_watching(rp, 3)
            await wait_until(lambda: result.finished)
            runs.append(result.replies)
            assert labels(seen) == [
                ("offline", "running"),
                ("running", "crashed"),
                ("crashed", "running"),
            ]
            assert "RP_MBOX_CRASH" in seen[1].cause
            assert plat.statistics().crashes == 1 and core.starts == 2
            # the recovered core answered a fresh ECHO_REQUEST
            await plat.wait_echo_reply(2)
            assert core.echo_requests == 2
            # 29 replies in the first run (it died on message 30), then a full run
            assert result.replies >= 100 and result.finished
            await rp.shutdown()
        releases = model.reset_releases()
        assert releases == [("ducati", 2), ("ducati", 0)] * 2


async def test_an_injected_crash_on_start_fires_on_the_model_core_too() -> None:
    """The model's cores run programs through platforms.runtime.run_firmware, like the
    simulator: every fault of Faults is injected (crash_on_start used to be ignored there)."""
    async with OmapModel() as model:
        core, plat = omap_processor(model, "ipu", ECHO, faults=Faults(crash_on_start=True))
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=ECHO)
            await rp.boot()
            channel = await rp.wait_for_service("rpmsg-echo", timeout=5)  # after the recovery
            assert rp.statistics().lifecycle.recoveries == 1 and core.starts == 2
            assert plat.statistics().crashes == 1
            await channel.send(b"after the crash")
            assert (await channel.recv(timeout=5)).payload == b"after the crash"
            await rp.shutdown()


async def test_explicit_crash_and_unknown_and_control_messages_are_counted(
    wait_until: WaitUntil,
) -> None:
    async with OmapModel() as model:
        core, plat = omap_processor(model, "ipu", ECHO)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=ECHO, recovery=False)
            await rp.boot()
            await plat.wait_echo_reply(2)
            model.mailbox.post(C.IPU_CORE0.rx_fifo, 0x0012_3456)  # not a notify id
            model.mailbox.post(C.IPU_CORE0.rx_fifo, OmapMessage.READY)
            model.mailbox.post(C.IPU_CORE0.rx_fifo, 0xFFFF_FF20)  # above SUSPEND_CANCEL
            await wait_until(lambda: plat.statistics().unknown == 2)
            assert plat.statistics().control == {"READY": 1}
            core.crash()
            await wait_until(lambda: rp.state_name == "crashed")
            assert plat.statistics().crashes == 1
            await rp.shutdown()


async def test_kicks_wait_for_notfull_when_the_core_stops_reading(wait_until: WaitUntil) -> None:
    async with OmapModel() as model:
        core, plat = omap_processor(model, "ipu", ECHO)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=ECHO)
            await rp.boot()
            await plat.wait_echo_reply(2)
            core.running = False  # the core stops servicing its mailbox
            tx = C.IPU_CORE0.tx_fifo
            for nid in (0, 1, 0, 1, 0, 1, 0, 1):
                plat.kick(nid)
            assert len(model.mailbox.fifos[tx]) == 4
            stats = plat.statistics()
            assert (stats.kicks_queued, stats.kicks_coalesced) == (2, 2)
            await anyio.sleep(0.05)
            # the kick writer sleeps on NOTFULL (enabled for the host), it does not spin
            assert model.mailbox.enabled[0] & model.mailbox.config.notfull_bit(tx)
            sent = plat.statistics().kicks_sent
            core.running = True  # the core reads its mailbox again
            core._wake.set()
            await wait_until(lambda: plat.statistics().kicks_sent == sent + 2)
            assert not model.mailbox.enabled[0] & model.mailbox.config.notfull_bit(tx)
            await rp.shutdown()


async def test_core1_depends_on_core0() -> None:
    async with OmapModel() as model:
        model.core("ipu").install(ECHO)
        model.core("ipu-core1").install(CORE1)
        board = model.board()
        p0, p1 = board.platform("ipu"), board.platform("ipu-core1")
        async with RemoteprocManager() as mgr:
            rp0 = mgr.add(p0, firmware=ECHO)
            rp1 = mgr.add(p1, firmware=CORE1, depends_on=[rp0])
            await rp1.boot()  # boots core 0 first
            assert rp0.state_name == rp1.state_name == "running"
            assert model.reset_releases() == [("ducati", 2), ("ducati", 0), ("ducati", 1)]
            await p0.wait_echo_reply(2)
            await p1.wait_echo_reply(2)
            mmu = model.mmu("ipu")
            assert mmu.locked == len(p0.tlb) + len(p1.tlb)  # one shared MMU
            for rp in (rp0, rp1):
                await echo_round_trip(rp, b"ping " + rp.name.encode())
            await rp1.shutdown()  # core 1 down, then core 0 (the dependency) too
            assert rp0.state_name == "offline"
        assert model.prcm.value(DUCATI.rstctrl) & 0b111 == 0b111
        assert [(bit, held) for _pa, bit, held in model.prcm.resets][-3:] == [
            (1, True),
            (0, True),
            (2, True),
        ]
