"""OMAP4 register addresses, checked against sources other than themselves.

The driver and the register models both take their addresses from ``MailboxConfig``,
``platforms.pandaboard.config`` and ``platforms.pandaboard.mmu.MMU``: a wrong offset there is
consistent on both sides, so every end-to-end test stays green (MESSAGE at 0x44 or
IRQENABLE_SET at 0x118 did). Every expected number below is a literal written from the OMAP4
TRM and Linux, never read from the configuration. Each test compares the configuration with
them, and drives the real driver on the model, then looks at the model (or at the bus writes
it recorded) through the literal address.

Sources (OMAP4430/4460 TRM register maps; Linux):
- Mailbox: ``drivers/mailbox/omap-mailbox.c`` (``MAILBOX_MESSAGE(m)`` .. ``OMAP4_MAILBOX_
  IRQENABLE_CLR(u)``, ``MAILBOX_IRQ_NEWMSG/NOTFULL``); the TRM's IRQSTATUS_RAW_u (0x100 +
  0x10u) and SYSCONFIG (0x10, SOFTRESET bit 0); base 0x4A0F4000 (L4_CFG + 0xF4000).
- PRCM: ``arch/arm/mach-omap2/cm1_44xx.h`` (CM1 0x4A004000, TESLA_INST 0x400,
  CM_TESLA_CLKSTCTRL +0x0, CM_TESLA_TESLA_CLKCTRL +0x20), ``cm2_44xx.h`` (CM2 0x4A008000,
  CORE_INST 0x700, CM_DUCATI_CLKSTCTRL +0x200, CM_DUCATI_DUCATI_CLKCTRL +0x220),
  ``drivers/soc/ti/omap_prm.c`` ``omap4_prm_data`` (tesla 0x4A306400: rstctrl +0x10, rstst
  +0x14, lines 0 1; core 0x4A306700, clkdm ducati: rstctrl +0x210, rstst +0x214, lines 0 1
  2); omap4.dtsi (dsp ``ti,bootreg`` = scm_conf 0x4A002000 + 0x304).
- MMU: ``drivers/iommu/omap-iommu.h`` (MMU_REVISION .. MMU_EMU_FAULT_AD; SYSCONFIG 0x10 from
  the older ``plat-omap/include/plat/iommu2.h``); omap4.dtsi (mmu_ipu 0x55082000, mmu_dsp
  0x4A066000).
"""

from __future__ import annotations

import pytest
from conftest import omap_processor

from platforms.pandaboard import config as C
from platforms.pandaboard.hw import Mailbox, MailboxConfig, UioDevice
from platforms.pandaboard.images import build_dsp_image, build_ipu_image
from platforms.pandaboard.mmu import MMU
from platforms.pandaboard.model import FakeUio, MailboxModel, MmuFault, ModelBus, OmapModel
from remoteproc.firmware import FirmwareImage, load_firmware
from remoteproc.manager import RemoteprocManager

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

# -- mailbox (omap-mailbox.c, OMAP4 TRM) -----------------------------------------------------------
MBOX_BASE = 0x4A0F_4000
MBOX_REVISION = 0x000
MBOX_SYSCONFIG = 0x010
MBOX_SYSCONFIG_SOFTRESET = 1 << 0
FIFOS, USERS, DEPTH = 8, 3, 4


def MESSAGE(m: int) -> int:
    return 0x040 + 4 * m


def FIFOSTATUS(m: int) -> int:
    return 0x080 + 4 * m


def MSGSTATUS(m: int) -> int:
    return 0x0C0 + 4 * m


def IRQSTATUS_RAW(u: int) -> int:
    return 0x100 + 0x10 * u


def IRQSTATUS_CLR(u: int) -> int:  # Linux: OMAP4_MAILBOX_IRQSTATUS(u)
    return 0x104 + 0x10 * u


def IRQENABLE_SET(u: int) -> int:  # Linux: OMAP4_MAILBOX_IRQENABLE(u)
    return 0x108 + 0x10 * u


def IRQENABLE_CLR(u: int) -> int:
    return 0x10C + 0x10 * u


def NEWMSG(m: int) -> int:
    return 1 << (2 * m)


def NOTFULL(m: int) -> int:
    return 1 << (2 * m + 1)


# -- PRCM and the DSP boot register ----------------------------------------------------------------
CM_DUCATI_CLKSTCTRL = 0x4A00_8000 + 0x700 + 0x200
CM_DUCATI_DUCATI_CLKCTRL = 0x4A00_8000 + 0x700 + 0x220
CM_TESLA_CLKSTCTRL = 0x4A00_4000 + 0x400 + 0x000
CM_TESLA_TESLA_CLKCTRL = 0x4A00_4000 + 0x400 + 0x020
RM_DUCATI_RSTCTRL = 0x4A30_6700 + 0x210
RM_DUCATI_RSTST = 0x4A30_6700 + 0x214
RM_TESLA_RSTCTRL = 0x4A30_6400 + 0x010
RM_TESLA_RSTST = 0x4A30_6400 + 0x014
DUCATI_CPU0, DUCATI_CPU1, DUCATI_MMU_CACHE = 0, 1, 2
TESLA_DSP, TESLA_MMU_CACHE = 0, 1
CONTROL_DSP_BOOTADDR = 0x4A00_2000 + 0x304
MODULEMODE_MASK, MODULEMODE_HWCTRL = 0x3, 0x1  # CLKCTRL bits 1:0
CLKTRCTRL_MASK, CLKTRCTRL_SW_WKUP = 0x3, 0x2  # CLKSTCTRL bits 1:0

# -- L2 MMU (omap-iommu.h) -------------------------------------------------------------------------
IPU_MMU_BASE, DSP_MMU_BASE = 0x5508_2000, 0x4A06_6000
MMU_REVISION = 0x00
MMU_SYSCONFIG = 0x10
MMU_IRQSTATUS = 0x18
MMU_IRQENABLE = 0x1C
MMU_WALKING_ST = 0x40
MMU_CNTL = 0x44
MMU_FAULT_AD = 0x48
MMU_TTB = 0x4C
MMU_LOCK = 0x50
MMU_LD_TLB = 0x54
MMU_CAM = 0x58
MMU_RAM = 0x5C
MMU_GFLUSH = 0x60
MMU_FLUSH_ENTRY = 0x64
MMU_READ_CAM = 0x68
MMU_READ_RAM = 0x6C
MMU_EMU_FAULT_AD = 0x70
MMU_CNTL_MMU_EN = 1 << 1
MMU_LOCK_BASE_SHIFT, MMU_LOCK_VICT_SHIFT = 10, 4
MMU_CAM_V = 1 << 2
MMU_IRQ_TLBMISS = 1 << 0

IPU_IMAGE = load_firmware(build_ipu_image("rpmsg-echo"), name="ipu.elf")
DSP_IMAGE = load_firmware(build_dsp_image("rpmsg-echo"), name="dsp.elf")


# -- mailbox ---------------------------------------------------------------------------------------
def test_mailbox_configuration_is_the_trm_layout() -> None:
    cfg = MailboxConfig()
    assert (cfg.base, cfg.revision, cfg.sysconfig) == (MBOX_BASE, MBOX_REVISION, MBOX_SYSCONFIG)
    assert cfg.sysconfig_softreset == MBOX_SYSCONFIG_SOFTRESET
    assert (cfg.fifo_count, cfg.users, cfg.depth, cfg.user) == (FIFOS, USERS, DEPTH, 0)
    assert cfg.window >= IRQENABLE_CLR(USERS - 1) + 4
    for m in range(FIFOS):
        assert (cfg.message(m), cfg.fifostatus(m), cfg.msgstatus(m)) == (
            MESSAGE(m),
            FIFOSTATUS(m),
            MSGSTATUS(m),
        )
        assert (cfg.newmsg_bit(m), cfg.notfull_bit(m)) == (NEWMSG(m), NOTFULL(m))
    for u in range(USERS):
        assert (
            cfg.irqstatus_raw(u),
            cfg.irqstatus_clr(u),
            cfg.irqenable_set(u),
            cfg.irqenable_clr(u),
        ) == (IRQSTATUS_RAW(u), IRQSTATUS_CLR(u), IRQENABLE_SET(u), IRQENABLE_CLR(u))


def test_mailbox_driver_and_model_meet_at_the_trm_offsets() -> None:
    """The driver works through the configuration's names; the test plays the remote core
    and reads the model only at literal offsets, and checks where the driver wrote."""
    cfg = MailboxConfig()
    model = MailboxModel(cfg)
    bus = ModelBus(0x1000_0000, 0x1000)
    uio = FakeUio("mailbox")
    try:
        bus.add_device(MBOX_BASE, 0x200, model, "mailbox")
        mbox = Mailbox(bus.map(MBOX_BASE, 0x200), UioDevice("/dev/uio0", opener=uio.opener), cfg)
        got: list[int] = []

        mbox.subscribe(1, got.append)  # NEWMSG of fifo 1, for the host (user 0)
        assert bus.writes[-1] == (MBOX_BASE + IRQENABLE_SET(0), NEWMSG(1))
        assert model.read32(IRQENABLE_SET(0)) == NEWMSG(1) == model.read32(IRQENABLE_CLR(0))

        assert mbox.try_send(0, 0xCAFE)  # host -> core on fifo 0
        assert bus.writes[-1] == (MBOX_BASE + MESSAGE(0), 0xCAFE)
        assert model.read32(MSGSTATUS(0)) == 1 and model.read32(FIFOSTATUS(0)) == 0
        assert model.read32(MESSAGE(0)) == 0xCAFE  # the core pops it
        for v in range(DEPTH):
            model.write32(MESSAGE(3), v)
        assert model.read32(FIFOSTATUS(3)) == 1  # FULL: the driver sees it and refuses
        assert not mbox.try_send(3, 99)

        model.write32(MESSAGE(1), 7)  # core -> host on fifo 1
        assert model.read32(IRQSTATUS_RAW(2)) & NEWMSG(1)  # raw: every user sees it
        assert model.read32(IRQSTATUS_CLR(0)) == NEWMSG(1)  # masked: enabled for user 0
        assert mbox.handle_interrupt() == 1 and got == [7]
        assert (MBOX_BASE + IRQSTATUS_CLR(0), NEWMSG(1)) in bus.writes  # acknowledged
        assert model.read32(IRQSTATUS_CLR(0)) == 0 and model.read32(MSGSTATUS(1)) == 0

        mbox.unsubscribe(1)
        assert bus.writes[-1] == (MBOX_BASE + IRQENABLE_CLR(0), NEWMSG(1))
        assert model.read32(IRQENABLE_SET(0)) == 0

        model.write32(MESSAGE(2), 5)
        model.read32(MBOX_REVISION)
        model.write32(MBOX_SYSCONFIG, MBOX_SYSCONFIG_SOFTRESET)
        assert model.read32(MSGSTATUS(2)) == 0  # the soft reset emptied the fifos
        assert {pa - MBOX_BASE for pa, _ in bus.writes} <= {
            *(MESSAGE(m) for m in range(FIFOS)),
            IRQSTATUS_CLR(0),
            IRQENABLE_SET(0),
            IRQENABLE_CLR(0),
        }
    finally:
        uio.close()
        bus.close()


# -- PRCM, boot address and MMUs -------------------------------------------------------------------
def test_prcm_mmu_and_boot_register_configuration_is_the_trm_layout() -> None:
    assert (C.DUCATI_CLOCK.clkstctrl, C.DUCATI_CLOCK.clkctrl) == (
        CM_DUCATI_CLKSTCTRL,
        CM_DUCATI_DUCATI_CLKCTRL,
    )
    assert (C.TESLA_CLOCK.clkstctrl, C.TESLA_CLOCK.clkctrl) == (
        CM_TESLA_CLKSTCTRL,
        CM_TESLA_TESLA_CLKCTRL,
    )
    ducati, tesla = C.DUCATI_RESET, C.TESLA_RESET
    assert (ducati.rstctrl, ducati.rstst) == (RM_DUCATI_RSTCTRL, RM_DUCATI_RSTST)
    assert (ducati.core_bits, ducati.mmu_bit) == ((DUCATI_CPU0, DUCATI_CPU1), DUCATI_MMU_CACHE)
    assert (tesla.rstctrl, tesla.rstst) == (RM_TESLA_RSTCTRL, RM_TESLA_RSTST)
    assert (tesla.core_bits, tesla.mmu_bit) == ((TESLA_DSP,), TESLA_MMU_CACHE)
    assert C.CONTROL_DSP_BOOTADDR == CONTROL_DSP_BOOTADDR == C.DSP.bootaddr_reg
    assert (C.IPU_MMU.base, C.DSP_MMU.base) == (IPU_MMU_BASE, DSP_MMU_BASE)
    assert (MMU.revision, MMU.sysconfig, MMU.irqstatus, MMU.irqenable) == (
        MMU_REVISION,
        MMU_SYSCONFIG,
        MMU_IRQSTATUS,
        MMU_IRQENABLE,
    )
    assert (MMU.cntl, MMU.fault_ad, MMU.ttb, MMU.lock, MMU.ld_tlb) == (
        MMU_CNTL,
        MMU_FAULT_AD,
        MMU_TTB,
        MMU_LOCK,
        MMU_LD_TLB,
    )
    assert (MMU.cam, MMU.ram, MMU.gflush, MMU.flush_entry, MMU.read_cam, MMU.read_ram) == (
        MMU_CAM,
        MMU_RAM,
        MMU_GFLUSH,
        MMU_FLUSH_ENTRY,
        MMU_READ_CAM,
        MMU_READ_RAM,
    )


@pytest.mark.parametrize(
    ("name", "image", "clkstctrl", "clkctrl", "rstctrl", "rstst", "lines", "mmu_base"),
    [
        (
            "ipu",
            IPU_IMAGE,
            CM_DUCATI_CLKSTCTRL,
            CM_DUCATI_DUCATI_CLKCTRL,
            RM_DUCATI_RSTCTRL,
            RM_DUCATI_RSTST,
            (DUCATI_MMU_CACHE, DUCATI_CPU0),
            IPU_MMU_BASE,
        ),
        (
            "dsp",
            DSP_IMAGE,
            CM_TESLA_CLKSTCTRL,
            CM_TESLA_TESLA_CLKCTRL,
            RM_TESLA_RSTCTRL,
            RM_TESLA_RSTST,
            (TESLA_MMU_CACHE, TESLA_DSP),
            DSP_MMU_BASE,
        ),
    ],
)
async def test_boot_touches_the_trm_prcm_and_mmu_registers(
    name: str,
    image: FirmwareImage,
    clkstctrl: int,
    clkctrl: int,
    rstctrl: int,
    rstst: int,
    lines: tuple[int, ...],
    mmu_base: int,
) -> None:
    """A real boot on the model; the PRCM, boot register and MMU are then read back at the
    literal TRM addresses and offsets."""
    async with OmapModel() as model:
        _core, plat = omap_processor(model, name, image)
        async with RemoteprocManager() as mgr:
            rp = mgr.add(plat, firmware=image)
            await rp.boot()
            await plat.wait_echo_reply(2)
            prcm, writes = model.prcm, model.bus.writes
            # Clock domain forced awake, module enabled under hardware control.
            assert (clkstctrl, CLKTRCTRL_SW_WKUP) in [(pa, v & CLKTRCTRL_MASK) for pa, v in writes]
            assert prcm.read(clkctrl) & MODULEMODE_MASK == MODULEMODE_HWCTRL
            # The MMU line released first, then the core's; both completed (RSTST).
            released = [bit for pa, bit, held in prcm.resets if pa == rstctrl and not held]
            assert released == list(lines)
            assert not prcm.read(rstctrl) & sum(1 << b for b in lines)
            assert rstst in {pa for pa, _ in writes}  # RSTST cleared before the release
            if name == "dsp":
                assert prcm.read(CONTROL_DSP_BOOTADDR) == image.entry
            # The MMU, read at the omap-iommu.h offsets.
            mmu = model.mmus[mmu_base]
            assert mmu.read32(MMU_CNTL) & MMU_CNTL_MMU_EN
            locked = (mmu.read32(MMU_LOCK) >> MMU_LOCK_BASE_SHIFT) & 0x1F
            assert locked == len(plat.tlb) > 0
            assert writes.count((mmu_base + MMU_LD_TLB, 1)) == locked
            for i, entry in enumerate(plat.tlb):
                mmu.write32(MMU_LOCK, locked << MMU_LOCK_BASE_SHIFT | i << MMU_LOCK_VICT_SHIFT)
                cam, ram = mmu.read32(MMU_READ_CAM), mmu.read32(MMU_READ_RAM)
                assert cam & MMU_CAM_V and cam & ~0xFFF == entry.da
                assert ram & ~0xFFF == entry.pa
            with pytest.raises(MmuFault):
                mmu.translate(0xFFFF_0000)
            assert mmu.read32(MMU_FAULT_AD) == 0xFFFF_0000
            assert mmu.read32(MMU_IRQSTATUS) & MMU_IRQ_TLBMISS
            mmu.write32(MMU_IRQSTATUS, MMU_IRQ_TLBMISS)  # write 1 to clear
            assert not mmu.read32(MMU_IRQSTATUS) & MMU_IRQ_TLBMISS
