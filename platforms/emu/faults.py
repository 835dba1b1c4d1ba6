"""What the emulator saw when the firmware faulted, hung or locked up.

Theory of operation: the emulator records a :class:`CoreFault` for every fault it raises
(before the firmware's handler runs, if it can run), for a lockup (a fault the core cannot
take) and for a watchdog expiry. The record names the faulting PC and address, the core's
registers and the last PCs the emulator observed, which is what a crash report needs and
what a debugger would show.
"""

from __future__ import annotations

import enum

import attrs


class FaultKind(enum.Enum):
    """What went wrong (ARMv7-M fault classes, plus the emulator's own verdicts)."""

    BUS = "bus fault"  # no memory or device at an address: no IOMMU/MMU entry, or a hole
    STALL = "stalled access"  # an access that never completes (an OMAP4 L2 MMU miss)
    UNDEFINED = "undefined instruction"
    INVALID_STATE = "invalid exception return"
    BREAKPOINT = "breakpoint"
    SVC_MASKED = "svc escalated"  # an SVC that could not be taken (masked): HardFault
    WATCHDOG = "watchdog"  # the core ran too long without waiting for an interrupt
    LOCKUP = "lockup"  # a fault the core could not take (in HardFault / NMI, no vectors)


@attrs.frozen
class CoreFault:
    """One fault of the emulated core.

    Attributes:
        kind: the fault class.
        pc: the faulting instruction (the one that was executing, for a watchdog).
        address: the data address for a bus fault (the fetch address for an instruction bus
            fault), else None.
        access: "read", "write" or "fetch" for a bus fault.
        handler: the exception the firmware got (3 HardFault, 5 BusFault, ...); 0 when the
            core stopped instead (lockup, watchdog halt).
        forced: the fault escalated to HardFault (HFSR.FORCED).
        registers: r0-r12, sp, lr, pc, xpsr at the fault.
        last_pcs: the most recent PCs the emulator saw, oldest first.
        detail: extra words (what was at the address, why a lockup happened).
    """

    kind: FaultKind
    pc: int
    address: int | None = None
    access: str = ""
    handler: int = 0
    forced: bool = False
    registers: dict[str, int] = attrs.field(factory=dict)
    last_pcs: tuple[int, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.kind.value} at pc {self.pc:#010x}"
        if self.address is not None:
            where += f", {self.access or 'access'} of address {self.address:#010x}"
        if self.detail:
            where += f" ({self.detail})"
        if self.handler == 0:
            return where + ": core stopped"
        name = {3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault", 2: "NMI"}
        escalated = " (escalated)" if self.forced else ""
        return f"{where}: {name.get(self.handler, f'exception {self.handler}')}{escalated}"
