"""ARMv7-M exception state: priorities, pending and active exceptions, masking, escalation.

Theory of operation (ARMv7-M Architecture Reference Manual, B1.5 "ARMv7-M exception model"):
exception ``n`` is 2 NMI, 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault, 11 SVCall,
14 PendSV, 15 SysTick, 16 + i external interrupt i. Reset, NMI and HardFault have the fixed
priorities -3, -2, -1; the others are programmed (8-bit fields of which the top
``prio_bits`` are implemented). Only the *group* priority (the bits above AIRCR.PRIGROUP)
decides preemption. The *execution priority* is the highest (numerically lowest) of the active
exceptions' group priorities, PRIMASK (0), FAULTMASK (-1) and BASEPRI; a pending, enabled
exception preempts when its group priority is strictly higher. External interrupts are level
sensitive: an asserted line keeps its interrupt pending, also again after its handler returns.

A synchronous fault goes to its configurable handler when SHCSR enables it and it can preempt;
otherwise it escalates to HardFault (HFSR.FORCED); a fault that cannot even do that (at
priority -1 or above) is a lockup. The same rule sends an SVC executed with interrupts masked
to HardFault.

This module is pure bookkeeping (no unicorn): the core asks it what to take and tells it what
it entered and left.
"""

from __future__ import annotations

NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT = 2, 3, 4, 5, 6
SVCALL, DEBUGMON, PENDSV, SYSTICK = 11, 12, 14, 15
IRQ0 = 16
#: The exception numbers the system defines (everything below IRQ0 that exists).
SYSTEM = (NMI, HARDFAULT, MEMMANAGE, BUSFAULT, USAGEFAULT, SVCALL, DEBUGMON, PENDSV, SYSTICK)
FIXED = {NMI: -2, HARDFAULT: -1}
#: SHCSR enable bits of the configurable faults.
FAULT_ENABLE = {MEMMANAGE: 1 << 16, BUSFAULT: 1 << 17, USAGEFAULT: 1 << 18}
THREAD = 256  # the execution priority of thread mode with nothing masked
LOCKUP = 0  # what :meth:`ExceptionState.fault_target` returns for a lockup


class ExceptionState:
    """The NVIC and the system handler state of one core.

    Args:
        irqs: external interrupt lines (a multiple of 32).
        prio_bits: implemented priority bits (Cortex-M3/M4 implementations use 3 to 8).
    """

    def __init__(self, irqs: int = 64, prio_bits: int = 4) -> None:
        self.irqs = irqs
        self.prio_mask = (0xFF << (8 - prio_bits)) & 0xFF
        self.reset()

    def reset(self) -> None:
        self.priority = [0] * (IRQ0 + self.irqs)
        self.irq_enabled = 0  # bit i: external interrupt i (NVIC_ISER)
        self.shcsr_enable = 0  # MEMFAULTENA / BUSFAULTENA / USGFAULTENA
        self.pending: set[int] = set()
        self.active: list[int] = []  # nesting order, innermost last
        self.lines = 0  # asserted external lines (level)
        self.prigroup = 0

    # -- priorities ------------------------------------------------------------------------------
    def set_priority(self, n: int, value: int) -> None:
        if n >= IRQ0 or n not in FIXED:
            self.priority[n] = value & self.prio_mask

    def priority_of(self, n: int) -> int:
        return FIXED.get(n, self.priority[n])

    def group(self, priority: int) -> int:
        """The group (preemption) priority of ``priority`` under AIRCR.PRIGROUP."""
        if priority < 0:
            return priority
        return priority & ~((2 << self.prigroup) - 1)

    def execution_priority(self, primask: bool, faultmask: bool, basepri: int) -> int:
        prio = min((self.group(self.priority_of(n)) for n in self.active), default=THREAD)
        if basepri & self.prio_mask:
            prio = min(prio, self.group(basepri & self.prio_mask))
        if primask:
            prio = min(prio, 0)
        if faultmask:
            prio = min(prio, -1)
        return prio

    # -- pending / active ------------------------------------------------------------------------
    def enabled(self, n: int) -> bool:
        if n >= IRQ0:
            return bool(self.irq_enabled >> (n - IRQ0) & 1)
        if n in FAULT_ENABLE:
            return bool(self.shcsr_enable & FAULT_ENABLE[n])
        return True

    def set_line(self, irq: int, level: bool) -> None:
        """The external line ``irq`` changed (level sensitive: asserted means pending)."""
        if level:
            self.lines |= 1 << irq
            if IRQ0 + irq not in self.active:
                self.pending.add(IRQ0 + irq)
        else:
            self.lines &= ~(1 << irq)

    def pend(self, n: int) -> None:
        self.pending.add(n)

    def unpend(self, n: int) -> None:
        """Clear pending (ICPR, ICSR.PENDxxCLR); an asserted line pends again at once."""
        self.pending.discard(n)
        if n >= IRQ0 and self.lines >> (n - IRQ0) & 1 and n not in self.active:
            self.pending.add(n)

    def next_exception(self, execution_priority: int) -> int | None:
        """The pending, enabled exception that would be taken now, if any."""
        best: tuple[int, int, int] | None = None
        for n in self.pending:
            if not self.enabled(n):
                continue
            prio = self.priority_of(n)
            key = (self.group(prio), prio, n)
            if key[0] < execution_priority and (best is None or key < best):
                best = key
        return None if best is None else best[2]

    def wakes(self) -> bool:
        """Whether WFI would wake: any enabled exception is pending (masking does not matter)."""
        return any(self.enabled(n) for n in self.pending)

    def enter(self, n: int) -> None:
        self.pending.discard(n)
        self.active.append(n)

    def leave(self) -> int:
        """The innermost active exception returns; returns its number."""
        n = self.active.pop()
        if n >= IRQ0 and self.lines >> (n - IRQ0) & 1:
            self.pending.add(n)  # level still asserted: pending again
        return n

    @property
    def current(self) -> int:
        """IPSR: the innermost active exception, 0 in thread mode."""
        return self.active[-1] if self.active else 0

    # -- faults ----------------------------------------------------------------------------------
    def fault_target(self, fault: int, execution_priority: int) -> tuple[int, bool]:
        """Where a synchronous fault (or an SVC) goes: ``(exception, forced)``, with
        ``forced`` when it escalated to HardFault, or ``(LOCKUP, False)``."""
        prio = self.group(self.priority_of(fault))
        if fault != HARDFAULT and self.enabled(fault) and prio < execution_priority:
            return fault, False
        if execution_priority > FIXED[HARDFAULT]:
            return HARDFAULT, fault != HARDFAULT
        return LOCKUP, False
