"""L2 MMU programming, PRCM clocks/resets (RSTST handshake) and the allowlist, on the model."""

from __future__ import annotations

import time

import anyio
import pytest
from conftest import omap_processor

from platforms.pandaboard import config as C
from platforms.pandaboard.images import build_ipu_image, ipu_entries
from platforms.pandaboard.mmu import MMU, MmuError, TlbEntry, plan_entries
from platforms.pandaboard.model import MmuFault, MmuModel, ModelError, OmapModel
from remoteproc.errors import BootError, DevmemNotAllowedError, MemoryMapError
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from remoteproc.rsc_table import Carveout, Devmem

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

MiB = 1 << 20
L4_DEVMEM = Devmem(da=0xAA00_0000, pa=0x4A00_0000, len=16 * MiB, name="l4_cfg")


def test_plan_uses_sections_where_aligned_and_pages_elsewhere() -> None:
    entries = plan_entries([(0xA000_0000, 0xA900_0000, 17 * MiB + 0x11000)], 32)
    assert [e.size for e in entries] == [16 * MiB, MiB, 0x10000, 0x1000]
    assert entries[0] == TlbEntry(0xA000_0000, 0xA900_0000, 16 * MiB)
    # CAM: VATAG | P | V | PGSZ(16M = 3); RAM: PHYS | ELSZ none, little endian, not mixed
    assert entries[0].cam() == 0xA000_0000 | MMU.cam_p | MMU.cam_v | 0x3
    assert entries[0].ram() == 0xA900_0000 | MMU.ram_elsz_none
    assert entries[1].cam() & 0x3 == 0x0 and entries[2].cam() & 0x3 == 0x1
    # merged: two neighbours with the same translation become one section
    assert [
        e.size for e in plan_entries([(0, 0x100000, MiB // 2), (MiB // 2, 0x180000, MiB // 2)], 32)
    ] == [MiB]
    with pytest.raises(MmuError, match="TLB entries"):
        plan_entries([(0x1000, 0x2000, 0x1000 * 40)], 32)  # never 64 KiB-aligned together
    with pytest.raises(MmuError, match="overlaps"):
        plan_entries([(0, 0x100000, 0x2000), (0x1000, 0x300000, 0x1000)], 32)


def test_mmu_model_loads_locked_entries_and_faults() -> None:
    mmu = MmuModel("mmu")
    mmu.write32(MMU.lock, 3 << MMU.lock_vict_shift)
    mmu.write32(MMU.cam, TlbEntry(0x1000, 0x8000_1000, 0x1000).cam())
    mmu.write32(MMU.ram, TlbEntry(0x1000, 0x8000_1000, 0x1000).ram())
    mmu.write32(MMU.ld_tlb, 1)
    with pytest.raises(MmuFault):
        mmu.translate(0x1004)  # not enabled yet
    mmu.write32(MMU.cntl, MMU.cntl_mmu_en)
    assert mmu.translate(0x1004) == 0x8000_1004
    assert mmu.read32(MMU.read_cam) & ~0xFFF == 0x1000
    with pytest.raises(MmuFault):
        mmu.translate(0x2000)
    assert mmu.read32(MMU.fault_ad) == 0x2000 and mmu.read32(MMU.irqstatus) & MMU.irq_tlbmiss
    off = MmuModel("off", accessible=lambda: False)
    with pytest.raises(ModelError, match="reset"):
        off.write32(MMU.cntl, 0)


async def test_boot_programs_every_carveout_and_devmem_translation() -> None:
    image = load_firmware(build_ipu_image(entries=ipu_entries(devmem=(L4_DEVMEM,))), name="ipu.elf")
    async with OmapModel() as model:
        _core, plat = omap_processor(model, "ipu", image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            await rp.boot()
            await plat.wait_echo_reply(2)
            mmu = model.mmu("ipu")
            assert mmu.enabled and mmu.locked == len(plat.tlb) <= 32
            loaded = rp.loaded
            assert loaded is not None and loaded.table is not None
            checked = 0
            for entry in (*loaded.table.carveouts, *loaded.table.devmems):
                for off in (0, entry.len // 2, entry.len - 4):
                    assert mmu.translate(entry.da + off) == entry.pa + off
                checked += 1
            assert checked == 3
            assert loaded.table.carveouts[0].da == C.IPC_DA
            assert loaded.table.carveouts[0].pa == C.IPC_PA
            # vrings and the pool are identity-mapped inside the window
            for da, (pa, size) in plat.translations.items():
                assert mmu.translate(da + size - 1) == pa + size - 1
            await rp.shutdown()
        assert not mmu.entries()  # the MMU reset dropped them


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (Devmem(da=0xB000_0000, pa=0x8000_0000, len=MiB, name="ddr"), DevmemNotAllowedError),
        (
            Devmem(da=0xB000_0000, pa=0x4AFF_F000, len=0x2000, name="straddles"),
            DevmemNotAllowedError,
        ),
        (Carveout(da=0xB000_0000, pa=0x9000_0000, len=0x1000, name="outside"), MemoryMapError),
    ],
    ids=["ddr", "straddles", "outside"],
)
async def test_allowlist_violations_touch_nothing(
    bad: Devmem | Carveout, error: type[Exception]
) -> None:
    image = load_firmware(build_ipu_image(entries=ipu_entries(devmem=(bad,))), name="bad.elf")
    async with OmapModel() as model:
        _core, plat = omap_processor(model, "ipu", image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            with pytest.raises(error, match=bad.name):
                await rp.boot()
            assert rp.state_name == "offline"
        assert model.bus.writes == []  # not one register write
        assert not model.mmu("ipu").entries() and not plat.translations
        assert plat.physical.in_use == 0 and model.core("ipu").starts == 0
        assert model.reset_releases() == []


async def test_rstst_handshake_and_clock_order() -> None:
    image = load_firmware(build_ipu_image("rpmsg-echo"), name="echo.elf")
    async with OmapModel() as model:
        _core, plat = omap_processor(model, "ipu", image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            await rp.boot()
            writes = [pa for pa, _v in model.bus.writes]
            rstctrl, rstst = C.DUCATI_RESET.rstctrl, C.DUCATI_RESET.rstst
            # clock domain awake and module enabled before any reset release
            assert writes.index(C.DUCATI_CLOCK.clkstctrl) < writes.index(rstctrl)
            assert writes.index(C.DUCATI_CLOCK.clkctrl) < writes.index(rstctrl)
            # RSTST cleared (write 1) before each deassert, and set by the model after it
            assert model.bus.writes[writes.index(rstst)][1] == 1 << C.DUCATI_RESET.mmu_bit
            assert model.prcm.value(rstst) & 0b101 == 0b101
            assert model.reset_releases() == [("ducati", 2), ("ducati", 0)]
            await rp.shutdown()
        assert model.prcm.value(rstctrl) & 0b101 == 0b101  # held in reset again
        assert model.prcm.value(C.DUCATI_CLOCK.clkctrl) & 0x3 == 0  # module disabled


async def test_reset_that_never_completes_times_out_and_is_reasserted() -> None:
    image = load_firmware(build_ipu_image("rpmsg-echo"), name="echo.elf")
    async with OmapModel() as model:
        model.prcm.stuck.add((C.DUCATI_RESET.rstctrl, 0))
        _core, plat = omap_processor(model, "ipu", image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            with anyio.fail_after(5), pytest.raises(BootError, match="did not complete"):
                await rp.boot()
        assert model.prcm.in_reset(C.DUCATI_RESET.rstctrl, 0)
        assert model.prcm.in_reset(C.DUCATI_RESET.rstctrl, C.DUCATI_RESET.mmu_bit)
        assert plat.physical.in_use == 0


async def test_a_stalled_loop_does_not_fail_a_reset_that_completes() -> None:
    """A loaded machine can stall the event loop past the 50 ms reset timeout between two
    polls of RSTST. The wait counts its polls (Linux's omap_test_timeout counts iterations),
    so it still reads the register until the reset completes; a deadline on the clock failed
    the boot with "did not complete" after one slow poll (seen in trio runs under load)."""
    image = load_firmware(build_ipu_image("rpmsg-echo"), name="echo.elf")
    async with OmapModel() as model:
        read = model.prcm.read
        rststs = {C.DUCATI_RESET.rstst}

        def stalled_read(pa: int) -> int:
            if pa in rststs:
                time.sleep(C.DUCATI_RESET.timeout * 1.2)  # the loop stalls past the deadline
            return read(pa)

        model.prcm.read = stalled_read  # type: ignore[method-assign]
        _core, plat = omap_processor(model, "ipu", image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            await rp.boot()
            assert model.reset_releases() == [("ducati", 2), ("ducati", 0)]
            await rp.shutdown()
