"""The DSP (Tesla) end to end on the OMAP4 model: boot through CONTROL_DSP_BOOTADDR, the DSP
MMU, mailbox fifos 3/2, the client sample, CRASH -> recovery, shutdown; and IPU + DSP running
together on the one shared mailbox without cross-talk."""

from __future__ import annotations

import anyio
import pytest
from conftest import WaitUntil, boot_watching, client_sample_completes, labels, omap_processor

from platforms.pandaboard import config as C
from platforms.pandaboard.driver import PandaBoardPlatform
from platforms.pandaboard.hw import OmapMessage
from platforms.pandaboard.images import build_dsp_image, build_ipu_image
from platforms.pandaboard.model import CoreModel, OmapModel
from platforms.sim import Faults
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from rpmsg.samples import client_driver

DSP_CLIENT = load_firmware(build_dsp_image("rpmsg-client-sample"), name="dsp.elf")
pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

DSP_ECHO = load_firmware(build_dsp_image("rpmsg-echo"), name="dsp-echo.elf")
IPU_CLIENT = load_firmware(build_ipu_image("rpmsg-client-sample"), name="ipu.elf")
TESLA = C.TESLA_RESET
DUCATI = C.DUCATI_RESET


def _host_writes(model: OmapModel, fifo: int) -> list[int]:
    """Every value the host driver wrote to ``MESSAGE_fifo`` (recorded by the model's bus)."""
    return model.bus.writes_to(C.MAILBOX.base + C.MAILBOX.message(fifo))


def _host_received(plat: PandaBoardPlatform) -> int:
    s = plat.statistics()
    return s.vq_interrupts + s.echo_replies + s.crashes + sum(s.control.values()) + s.unknown


def test_dsp_image_layout() -> None:
    assert DSP_CLIENT.machine == "EM_TI_C6000"
    assert DSP_CLIENT.entry == C.DSP_DA + 0x1000
    assert DSP_CLIENT.entry % C.DSP.bootaddr_align == 0
    assert C.DSP.tx_fifo == 3 and C.DSP.rx_fifo == 2


async def test_dsp_boot_echo_bootaddr_mmu_ns_sample_and_shutdown() -> None:
    async with OmapModel() as model:
        core = model.core("dsp")
        core.install(DSP_CLIENT)
        board = model.board()
        plat = board.platform("dsp")
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=DSP_CLIENT)
            probe, result = client_driver(count=100)
            rp.register_driver("rpmsg-client-sample", probe)
            await rp.boot()
            assert core.running and core.starts == 1 and core.boot_faults == 0
            # CONTROL_DSP_BOOTADDR holds the entry, written before the core reset release
            assert model.prcm.value(C.CONTROL_DSP_BOOTADDR) == DSP_CLIENT.entry
            assert core.boot_address == DSP_CLIENT.entry
            writes = model.bus.writes
            boot_at = writes.index((C.CONTROL_DSP_BOOTADDR, DSP_CLIENT.entry))
            release = [i for i, (pa, v) in enumerate(writes) if pa == TESLA.rstctrl and not v & 1]
            assert boot_at < release[-1]
            assert model.reset_releases() == [("tesla", TESLA.mmu_bit), ("tesla", 0)]
            # ECHO over the DSP's fifos only
            await plat.wait_echo_reply(2)
            assert core.echo_requests == 1 and plat.statistics().echo_replies == 1
            assert _host_writes(model, C.DSP.tx_fifo)[0] == OmapMessage.ECHO_REQUEST
            # the DSP MMU (not the IPU's) translates every carveout and vring da to its pa
            mmu = model.mmu("dsp")
            assert mmu is model.mmus[C.DSP_MMU.base] and mmu is not model.mmu("ipu")
            assert mmu.enabled and mmu.locked == len(plat.tlb) > 0
            assert not model.mmu("ipu").entries()
            loaded = rp.loaded
            assert loaded is not None and loaded.table is not None
            carveouts = loaded.table.carveouts
            assert [c.da for c in carveouts] == [C.DSP_DA, C.DSP_DA + 0x10000]
            assert carveouts[0].pa == C.DSP_MEMORY.pa
            for entry in carveouts:
                for off in (0, entry.len // 2, entry.len - 4):
                    assert mmu.translate(entry.da + off) == entry.pa + off
            for da, (pa, size) in plat.translations.items():
                assert mmu.translate(da + size - 1) == pa + size - 1
            stats = await client_sample_completes(rp, plat, result)  # NS, 100 exchanges
            assert core.unknown == 0 and core.host_kicks == stats.kicks_sent
            await rp.shutdown()
            assert not core.running
        assert model.prcm.in_reset(TESLA.rstctrl, TESLA.core_bits[0])
        assert model.prcm.in_reset(TESLA.rstctrl, TESLA.mmu_bit)
        assert model.prcm.value(TESLA.rstctrl) == 0b11
        assert not model.prcm.module_enabled(C.TESLA_CLOCK)
        assert not mmu.entries()
        assert plat.physical.in_use == 0
        # the IPU was never touched
        assert model.prcm.value(DUCATI.rstctrl) == 0b111 and model.core("ipu").starts == 0


async def test_dsp_does_not_run_from_a_wrong_boot_address() -> None:
    async with OmapModel() as model:
        core = model.core("dsp")
        core.install(DSP_ECHO)
        # the driver boots an image linked elsewhere: it programs that image's entry
        other = load_firmware(build_dsp_image("rpmsg-echo", base_da=C.DSP_DA + C.MiB), name="x")
        plat = model.board().platform("dsp")
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=other)
            await rp.boot()
            assert model.prcm.value(C.CONTROL_DSP_BOOTADDR) == other.entry != DSP_ECHO.entry
            assert core.boot_faults == 1
            with pytest.raises(TimeoutError):
                await plat.wait_echo_reply(0.2)
            assert core.echo_requests == 0
            await rp.shutdown()


async def test_dsp_stale_messages_in_both_fifos_are_flushed_before_boot(
    wait_until: WaitUntil,
) -> None:
    async with OmapModel() as model:
        core = model.core("dsp")
        core.install(DSP_ECHO)
        board = model.board()
        plat = board.platform("dsp")
        model.mailbox.post(C.DSP.rx_fifo, 0)  # a stale kick from a previous DSP run
        model.mailbox.post(C.DSP.tx_fifo, 0x0012_3456)  # a stale host message
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=DSP_ECHO)
            await rp.boot()
            await plat.wait_echo_reply(2)
            assert board.mailbox.statistics().flushed == 2
            # Once the host has read all the core posted, its vring interrupts are the core's
            # own kicks (its announcement may already be among them), never the stale one.
            await wait_until(lambda: not model.mailbox.fifos[C.DSP.rx_fifo])
            assert core.unknown == 0
            assert plat.statistics().vq_interrupts == core.posted - 1  # less the ECHO_REPLY
            await rp.shutdown()


async def test_dsp_crash_is_recovered_and_the_sample_completes(wait_until: WaitUntil) -> None:
    async with OmapModel() as model:
        core, plat = omap_processor(
            model, "dsp", DSP_CLIENT, faults=Faults(crash_after_messages=30)
        )
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=DSP_CLIENT)
            probe, result = client_driver(count=100)
            rp.register_driver("rpmsg-client-sample", probe)
            seen = await boot_watching(rp, 3)
            assert labels(seen) == [
                ("offline", "running"),
                ("running", "crashed"),
                ("crashed", "running"),
            ]
            assert "RP_MBOX_CRASH" in seen[1].cause
            await wait_until(lambda: result.finished)
            assert result.replies >= 100 and result.payloads_ok
            assert plat.statistics().crashes == 1 and core.starts == 2
            await plat.wait_echo_reply(2)  # the restarted DSP answered a fresh ECHO_REQUEST
            assert core.echo_requests == 2 and core.boot_faults == 0
            assert core.boot_address == DSP_CLIENT.entry
            assert model.bus.writes_to(C.CONTROL_DSP_BOOTADDR) == [DSP_CLIENT.entry] * 2
            await rp.shutdown()
        assert model.reset_releases() == [("tesla", TESLA.mmu_bit), ("tesla", 0)] * 2
        assert model.prcm.value(TESLA.rstctrl) == 0b11


def _no_cross_talk(plat: PandaBoardPlatform, core: CoreModel) -> None:
    stats = plat.statistics()
    assert stats.unknown == 0 and stats.ignored_after_crash == 0 and stats.echo_replies == 1
    assert core.echo_requests == 1 and core.unknown == 0 and core.boot_faults == 0
    # everything the host wrote to this core's tx fifo reached this core, and nothing else
    assert core.host_kicks == stats.kicks_sent
    # everything this core posted reached this core's platform, and nothing else
    assert _host_received(plat) == core.posted


async def test_ipu_and_dsp_share_the_mailbox_without_cross_talk(wait_until: WaitUntil) -> None:
    async with OmapModel() as model:
        ipu_core, dsp_core = model.core("ipu"), model.core("dsp")
        ipu_core.install(IPU_CLIENT)
        dsp_core.install(DSP_CLIENT)
        board = model.board()
        ipu, dsp = board.platform("ipu"), board.platform("dsp")
        async with RemoteprocManager() as mgr:
            rp_ipu = mgr.add(ipu, firmware=IPU_CLIENT)
            rp_dsp = mgr.add(dsp, firmware=DSP_CLIENT)
            probe_ipu, res_ipu = client_driver(count=100)
            probe_dsp, res_dsp = client_driver(count=100)
            rp_ipu.register_driver("rpmsg-client-sample", probe_ipu)
            rp_dsp.register_driver("rpmsg-client-sample", probe_dsp)
            async with anyio.create_task_group() as tg:
                tg.start_soon(rp_ipu.boot)
                tg.start_soon(rp_dsp.boot)
            assert ipu_core.running and dsp_core.running
            assert sorted(board.mailbox._receivers) == [C.IPU_CORE0.rx_fifo, C.DSP.rx_fifo]
            await ipu.wait_echo_reply(2)
            await dsp.wait_echo_reply(2)
            await wait_until(lambda: res_ipu.finished and res_dsp.finished)
            assert res_ipu.replies == res_dsp.replies == 100
            assert res_ipu.payloads_ok and res_dsp.payloads_ok
            # both vdevs number their vrings from 0: only the fifo tells them apart
            await wait_until(lambda: _host_received(ipu) == ipu_core.posted)
            await wait_until(lambda: _host_received(dsp) == dsp_core.posted)
            _no_cross_talk(ipu, ipu_core)
            _no_cross_talk(dsp, dsp_core)
            assert ipu.statistics().vq_interrupts >= 100 and dsp.statistics().vq_interrupts >= 100
            # each fifo only ever carried its own core's traffic
            for fifo in (C.IPU_CORE0.tx_fifo, C.DSP.tx_fifo):
                assert _host_writes(model, fifo)[0] == OmapMessage.ECHO_REQUEST
            assert len(_host_writes(model, C.IPU_CORE0.tx_fifo)) == ipu_core.host_kicks + 1
            assert len(_host_writes(model, C.DSP.tx_fifo)) == dsp_core.host_kicks + 1
            assert board.mailbox.statistics().unclaimed == 0
            assert model.mailbox.overflows == 0
            # the two MMUs hold their own processor's mappings only
            assert model.mmu("ipu").entries()[0][:2] == (C.IPC_DA, C.IPC_PA)
            assert model.mmu("dsp").entries()[0][:2] == (C.DSP_DA, C.DSP_MEMORY.pa)
            await rp_dsp.shutdown()
            assert not dsp_core.running and ipu_core.running  # the IPU keeps its mailbox
            assert list(board.mailbox._receivers) == [C.IPU_CORE0.rx_fifo]
            assert model.prcm.value(TESLA.rstctrl) == 0b11
            assert model.prcm.value(DUCATI.rstctrl) == 0b010  # core 1 still held
            await rp_ipu.shutdown()
        assert model.prcm.value(TESLA.rstctrl) == 0b11
        assert model.prcm.value(DUCATI.rstctrl) == 0b111
