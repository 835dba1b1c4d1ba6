"""Everything PandaBoard (OMAP4430/4460) specific, in one place.

Theory of operation: the driver and the model never use a literal address, bit or fifo
number; they read them from these frozen configuration objects. Each value cites where it comes
from: the OMAP4 TRM, or the Linux sources that drive the same hardware
(``drivers/remoteproc/omap_remoteproc.c``, ``drivers/mailbox/omap-mailbox.c``,
``drivers/iommu/omap-iommu.[ch]``, ``arch/arm/mach-omap2/{cm1,cm2,prm}44xx.h`` and
``omap_hwmod_44xx_data.c``, ``arch/arm/boot/dts/omap4.dtsi``).
"""

from __future__ import annotations

import attrs

from platforms.pandaboard.hw import MailboxConfig

MiB = 1 << 20


@attrs.frozen
class ClockConfig:
    """A clock domain and its module (PRCM CM1/CM2).

    ``CLKTRCTRL`` (CLKSTCTRL bits 1:0): 2 = SW_WKUP (force the domain awake), 3 = HW_AUTO
    (``OMAP34XX_CLKSTCTRL_FORCE_WAKEUP`` / ``ENABLE_AUTO``). ``MODULEMODE`` (CLKCTRL bits
    1:0): 1 = HW_AUTO, as hwmod uses for the IPU and DSP (``MODULEMODE_HWCTRL``), 0 = disabled.
    ``IDLEST`` (CLKCTRL bits 17:16): 0 functional, 3 disabled.
    """

    clkstctrl: int
    clkctrl: int
    clktrctrl_mask: int = 0x3
    clktrctrl_sw_wkup: int = 0x2
    clktrctrl_hw_auto: int = 0x3
    modulemode_mask: int = 0x3
    modulemode_hw_auto: int = 0x1
    modulemode_disabled: int = 0x0
    idlest_shift: int = 16
    idlest_mask: int = 0x3 << 16
    idlest_functional: int = 0x0
    idlest_disabled: int = 0x3


@attrs.frozen
class ResetConfig:
    """A PRM reset block: ``RSTCTRL`` (1 = line held in reset) and ``RSTST`` (set by hardware
    when a line's reset completed, write 1 to clear): ``omap4_prminst_deassert_hardreset``
    clears RSTST, deasserts, then polls RSTST (``MAX_MODULE_HARDRESET_WAIT`` = 10 ms)."""

    rstctrl: int
    rstst: int
    core_bits: tuple[int, ...]  # one bit per core (IPU: cpu0, cpu1; DSP: dsp)
    mmu_bit: int  # the MMU / cache reset line
    timeout: float = 0.05  # generous against Linux's 10 ms
    poll_interval: float = 0.0005


@attrs.frozen
class MmuConfig:
    """An OMAP L2 MMU instance (``omap-iommu``): base and number of TLB entries."""

    base: int
    window: int = 0x1000
    tlb_entries: int = 32  # OMAP4 IPU/DSP MMU (omap4.dtsi ``ti,#tlb-entries`` default 32)


@attrs.frozen
class MemoryWindow:
    """Reserved DDR the host allocates carveouts, vrings and buffer pools from."""

    pa: int
    size: int


@attrs.frozen
class ProcessorConfig:
    """One remote core as the host drives it.

    Attributes:
        name: the processor name (``ipu``, ``ipu-core1``, ``dsp``).
        core: index into ``reset.core_bits``.
        tx_fifo / rx_fifo: mailbox fifos host -> core and core -> host.
        remote_user: the mailbox interrupt user the core listens on.
        memory: its reserved window; carveouts come from here.
        devmem_allowlist: ``(pa, size)`` peripheral windows DEVMEM entries may map.
        bootaddr_reg: physical address of the boot address register (DSP only).
        max_notifyid: highest vring notify id a mailbox value may carry.
        irq: the interrupt line of the core's mailbox user on its own interrupt controller
            (the M3's NVIC), for a model core that executes real code.
    """

    name: str
    core: int
    clock: ClockConfig
    reset: ResetConfig
    mmu: MmuConfig
    tx_fifo: int
    rx_fifo: int
    remote_user: int
    memory: MemoryWindow
    devmem_allowlist: tuple[tuple[int, int], ...]
    bootaddr_reg: int | None = None
    bootaddr_align: int = 0x400  # omap_remoteproc: "boot address must be aligned to 1KB"
    max_notifyid: int = 0xFF
    irq: int | None = None


# --- PRCM (OMAP4 TRM "Power, Reset, and Clock Management"; cm2_44xx.h, cm1_44xx.h, prm44xx.h) --
#: CD_DUCATI in CM2 (0x4A008900), CM_DUCATI_DUCATI_CLKCTRL at +0x20.
DUCATI_CLOCK = ClockConfig(clkstctrl=0x4A00_8900, clkctrl=0x4A00_8920)
#: CD_TESLA in CM1 (0x4A004400), CM_TESLA_TESLA_CLKCTRL at +0x20.
TESLA_CLOCK = ClockConfig(clkstctrl=0x4A00_4400, clkctrl=0x4A00_4420)
#: CORE_PRM + 0x210: RM_DUCATI_RSTCTRL; hwmod ``ipu`` rst lines cpu0 0, cpu1 1, mmu_cache 2.
DUCATI_RESET = ResetConfig(rstctrl=0x4A30_6910, rstst=0x4A30_6914, core_bits=(0, 1), mmu_bit=2)
#: TESLA_PRM + 0x10: RM_TESLA_RSTCTRL; hwmod ``dsp`` rst lines dsp 0, mmu_cache 1.
TESLA_RESET = ResetConfig(rstctrl=0x4A30_6410, rstst=0x4A30_6414, core_bits=(0,), mmu_bit=1)

# --- MMUs (omap4.dtsi: mmu_ipu reg 0x55082000, mmu_dsp reg 0x4a066000) ---------------------------
IPU_MMU = MmuConfig(base=0x5508_2000)
DSP_MMU = MmuConfig(base=0x4A06_6000)

#: CONTROL_DSP_BOOTADDR: SCM core (0x4A002000) + 0x304 (omap4.dtsi ``ti,bootreg``).
CONTROL_DSP_BOOTADDR = 0x4A00_2304

# --- Mailbox (omap4.dtsi mailbox 0x4a0f4000, 3 users, 8 fifos; IRQ GIC SPI 26) ------------------
MAILBOX = MailboxConfig()
MAILBOX_IRQ_SPI = 26
#: Mailbox interrupt users of the remote cores (TI SYS/BIOS IPC: DSP user 1, M3 user 2).
DSP_MAILBOX_USER = 1
IPU_MAILBOX_USER = 2
#: The M3's NVIC line of mailbox user 2: TI's InterruptM3.c (sysbios-rpmsg) registers its
#: mailbox handler on interrupt M3INT_MBX = 50, SYS/BIOS numbering for the M3 (exception
#: numbers), i.e. external line 50 - 16 = 34.
IPU_MAILBOX_IRQ = 50 - 16

# --- Memory ------------------------------------------------------------------------------------
#: The reserved IPC window of TI's 2012 firmware: physical 0xA9000000, seen by the M3 at
#: device address 0xA0000000 (its fixed carveouts). We reserve 16 MiB: core 0 gets the first
#: 8 MiB, core 1 the second; the DSP gets the 8 MiB below (0xA8800000). All three live in one
#: ``reserved-memory`` node (docs/pandaboard.md).
IPC_PA = 0xA900_0000
IPC_DA = 0xA000_0000
IPC_SIZE = 16 * MiB
IPU_CORE0_MEMORY = MemoryWindow(IPC_PA, IPC_SIZE // 2)
IPU_CORE1_MEMORY = MemoryWindow(IPC_PA + IPC_SIZE // 2, IPC_SIZE // 2)
DSP_MEMORY = MemoryWindow(0xA880_0000, 8 * MiB)
#: Where TI's OMAP4 DSP (Tesla) firmware links its code carveout (``DSP_MEM_TEXT`` in
#: ``rsc_table_dsp.h`` of the 2012 ipc/sysbios-rpmsg tree): the DSP sees it at device address
#: 0x20000000, the host places it in :data:`DSP_MEMORY`.
DSP_DA = 0x2000_0000
RESERVED = MemoryWindow(0xA880_0000, 8 * MiB + IPC_SIZE)

#: Peripheral windows DEVMEM entries may map (TI's rsc_table_ipu.h maps L4_CFG at da
#: 0xAA000000 and L4_PER at da 0xA8000000, 16 MiB each: IPU_PERIPHERAL_L4CFG / _L4PER in
#: src/ti/resources/rsc_table_ipu.h of sysbios-rpmsg, 2012; the M3 firmware then reaches the
#: mailbox at 0xAA0F4000, MAILBOX_BASEADDR in src/ti/ipc/rpmsg/InterruptM3.c). Nothing else:
#: no DDR outside the reserved window, no PRCM beyond L4_CFG's own access rules.
L4_CFG = (0x4A00_0000, 16 * MiB)
L4_PER = (0x4800_0000, 16 * MiB)
DEVMEM_ALLOWLIST = (L4_CFG, L4_PER)

IPU_CORE0 = ProcessorConfig(
    name="ipu",
    core=0,
    clock=DUCATI_CLOCK,
    reset=DUCATI_RESET,
    mmu=IPU_MMU,
    # omap4.dtsi mbox_ipu: ti,mbox-tx = <0 0 0>, ti,mbox-rx = <1 0 0>.
    tx_fifo=0,
    rx_fifo=1,
    remote_user=IPU_MAILBOX_USER,
    memory=IPU_CORE0_MEMORY,
    devmem_allowlist=DEVMEM_ALLOWLIST,
    irq=IPU_MAILBOX_IRQ,
)
#: Linux drives both M3s as one ``ipu`` rproc; we drive core 1 as its own processor that
#: depends on core 0. It shares the IPU clock, MMU and reset block; it needs its own fifo pair
#: (our convention: 4 host -> core 1, 5 core 1 -> host, unused by Linux on OMAP4) because both
#: processors number their vrings from 0.
IPU_CORE1 = attrs.evolve(
    IPU_CORE0, name="ipu-core1", core=1, tx_fifo=4, rx_fifo=5, memory=IPU_CORE1_MEMORY
)
DSP = ProcessorConfig(
    name="dsp",
    core=0,
    clock=TESLA_CLOCK,
    reset=TESLA_RESET,
    mmu=DSP_MMU,
    # omap4.dtsi mbox_dsp: ti,mbox-tx = <3 0 0>, ti,mbox-rx = <2 0 0>.
    tx_fifo=3,
    rx_fifo=2,
    remote_user=DSP_MAILBOX_USER,
    memory=DSP_MEMORY,
    devmem_allowlist=DEVMEM_ALLOWLIST,
    bootaddr_reg=CONTROL_DSP_BOOTADDR,
)

PROCESSORS = {p.name: p for p in (IPU_CORE0, IPU_CORE1, DSP)}


@attrs.frozen
class BoardConfig:
    """The whole board: mailbox, processors, the UIO device names and the reserved RAM."""

    mailbox: MailboxConfig = MAILBOX
    processors: tuple[ProcessorConfig, ...] = (IPU_CORE0, IPU_CORE1, DSP)
    reserved: MemoryWindow = RESERVED
    mailbox_uio_name: str = "mailbox"  # the DT node name uio_pdrv_genirq reports
    ipu_mmu_uio_name: str = "mmu_ipu"

    def processor(self, name: str) -> ProcessorConfig:
        for proc in self.processors:
            if proc.name == name:
                return proc
        known = ", ".join(p.name for p in self.processors)
        raise LookupError(f"no processor {name!r} on this board (known: {known})")

    def with_reset_timeout(self, timeout: float) -> BoardConfig:
        """This board with every processor's wait for a reset to complete set to ``timeout``
        seconds: a model whose cores are emulated in threads of this process may be slow to
        answer the driver's RSTST polls on a loaded machine."""
        procs = tuple(
            attrs.evolve(p, reset=attrs.evolve(p.reset, timeout=timeout)) for p in self.processors
        )
        return attrs.evolve(self, processors=procs)


PANDABOARD = BoardConfig()
