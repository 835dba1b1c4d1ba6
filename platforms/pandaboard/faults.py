"""What the host learns when an OMAP4 remote core fails: L2 MMU faults and the crash trace.

Theory of operation: an access the IPU's L2 MMU cannot translate raises the MMU's interrupt
(GIC SPI 100, ``mmu_ipu``, a UIO device like the mailbox's) and latches the device address
in ``MMU_FAULT_AD``; Linux's ``omap_iommu_fault_handler`` reads it and remoteproc reports an
``RPROC_MMUFAULT``. :class:`MmuFaultMonitor` does the same from userspace: per interrupt it
reads ``MMU_IRQSTATUS`` and ``MMU_FAULT_AD``, acknowledges the status (write one to clear),
reports an MMU fault naming the address to the MMU's running processor and unmasks. On OMAP4
the faulting access stalls; the recovery's resets clear the MMU.

A core that crashes sends RP_MBOX_CRASH after its exception handler wrote its last words
(TI's firmware dumps the faulting PC and registers) into trace buffer 0; :func:`trace_tail`
reads that line from the processor's memory, so the crash report carries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from platforms.pandaboard.hw import RegisterWindow, UioDevice
from remoteproc.firmware import FirmwareImage
from remoteproc.memory import PhysicalMemory
from remoteproc.rsc_table import parse_resource_table

from .mmu import MMU

log = logging.getLogger("aioamp.platform.pandaboard")

#: The fault bits of MMU_IRQSTATUS (omap-iommu.h MMU_IRQ_*).
FAULT_BITS = (
    MMU.irq_tlbmiss
    | MMU.irq_translationfault
    | MMU.irq_emumiss
    | MMU.irq_tablewalkfault
    | MMU.irq_multihitfault
)
TRACE_TAIL_MAX = 200


class MmuFaultMonitor:
    """Serves one L2 MMU's fault interrupt.

    Args:
        regs: the MMU's registers.
        uio: its interrupt line.
        report: called with the fault's description (the driver picks the processor).
    """

    def __init__(self, regs: RegisterWindow, uio: UioDevice, report: Callable[[str], None]):
        self.regs, self.uio, self._report = regs, uio, report
        self.faults = 0
        self.spurious = 0  # interrupts with no fault latched
        self.serving = False

    def handle(self) -> None:
        """Read, acknowledge and report what is latched (one interrupt)."""
        status = self.regs.read32(MMU.irqstatus) & FAULT_BITS
        if not status:
            self.spurious += 1
            return
        da = self.regs.read32(MMU.fault_ad)
        self.regs.write32(MMU.irqstatus, status)  # write one to clear
        self.faults += 1
        kinds = [
            name
            for bit, name in (
                (MMU.irq_tlbmiss, "TLB miss"),
                (MMU.irq_translationfault, "translation fault"),
                (MMU.irq_tablewalkfault, "table walk fault"),
                (MMU.irq_multihitfault, "multi-hit fault"),
                (MMU.irq_emumiss, "emulation miss"),
            )
            if status & bit
        ]
        self._report(f"device address {da:#010x} ({', '.join(kinds)}; MMU_FAULT_AD)")

    async def serve(self) -> None:
        """The interrupt loop: wait, handle, unmask; until cancelled."""
        self.serving = True
        try:
            self.uio.unmask()
            while True:
                await self.uio.wait()
                self.handle()
                self.uio.unmask()
        finally:
            self.serving = False


def trace_tail(
    image: FirmwareImage | None,
    translations: dict[int, tuple[int, int]],
    physical: PhysicalMemory,
) -> str:
    """The last line of trace buffer 0 as the core left it, or "" (no trace, not mapped)."""
    if image is None or image.resource_table is None:
        return ""
    try:
        table = parse_resource_table(image.resource_table.data)
    except Exception:  # the loader validated it; be safe in a crash path anyway
        return ""
    if not table.traces:
        return ""
    trace = table.traces[0]
    for da, (pa, size) in translations.items():
        if da <= trace.da and trace.da + trace.len <= da + size:
            offset = pa + (trace.da - da) - physical.base_pa
            if offset >= 0 and offset + trace.len <= physical.size:
                raw = bytes(physical.mem[offset : offset + trace.len]).split(b"\0", 1)[0]
                lines = raw.decode("utf-8", "replace").strip().splitlines()
                return lines[-1][:TRACE_TAIL_MAX] if lines else ""
    return ""
