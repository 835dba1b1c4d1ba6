"""The ARMv7-M exception rules of the emulated core, without unicorn (platforms.emu.nvic)."""

from __future__ import annotations

from platforms.emu.nvic import (
    BUSFAULT,
    HARDFAULT,
    IRQ0,
    LOCKUP,
    NMI,
    PENDSV,
    SVCALL,
    SYSTICK,
    THREAD,
    USAGEFAULT,
    ExceptionState,
)


def state() -> ExceptionState:
    st = ExceptionState(irqs=32, prio_bits=4)
    st.irq_enabled = 0xF
    return st


def test_the_higher_group_priority_preempts_and_equal_does_not() -> None:
    st = state()
    st.set_priority(IRQ0 + 0, 0x80)
    st.set_priority(IRQ0 + 1, 0x40)
    st.pend(IRQ0 + 0)
    assert st.next_exception(THREAD) == IRQ0
    st.enter(IRQ0)
    running = st.execution_priority(False, False, 0)
    assert running == 0x80
    st.pend(IRQ0 + 1)
    assert st.next_exception(running) == IRQ0 + 1  # 0x40 < 0x80: nests
    st.set_priority(IRQ0 + 1, 0x80)
    assert st.next_exception(running) is None  # the same priority waits


def test_subpriority_orders_but_does_not_preempt() -> None:
    st = state()
    st.prigroup = 5  # group = bits 7:6, subpriority = bits 5:0
    st.set_priority(IRQ0 + 0, 0x40)
    st.set_priority(IRQ0 + 1, 0x50)  # same group (0x40), lower subpriority
    st.pend(IRQ0 + 1)
    st.enter(IRQ0 + 1)
    st.pend(IRQ0 + 0)
    assert st.next_exception(st.execution_priority(False, False, 0)) is None
    st.leave()
    st.pend(IRQ0 + 1)
    assert st.next_exception(THREAD) == IRQ0 + 0  # of two pending, the lower value first


def test_masks_primask_basepri_faultmask() -> None:
    st = state()
    st.set_priority(IRQ0, 0x40)
    st.pend(IRQ0)
    assert st.next_exception(st.execution_priority(True, False, 0)) is None
    assert st.next_exception(st.execution_priority(False, False, 0x40)) is None
    assert st.next_exception(st.execution_priority(False, False, 0x80)) == IRQ0
    st.pend(NMI)
    assert st.next_exception(st.execution_priority(True, True, 0)) == NMI  # NMI is not masked


def test_wfi_wakes_on_any_enabled_pending_even_masked() -> None:
    st = state()
    assert not st.wakes()
    st.pend(IRQ0 + 5)  # not enabled
    assert not st.wakes()
    st.pend(IRQ0 + 1)
    assert st.wakes()


def test_a_level_line_pends_again_after_its_handler_while_asserted() -> None:
    st = state()
    st.set_line(2, True)
    st.enter(IRQ0 + 2)
    assert IRQ0 + 2 not in st.pending  # while active it is not pending
    assert st.leave() == IRQ0 + 2
    assert IRQ0 + 2 in st.pending  # still asserted
    st.enter(IRQ0 + 2)
    st.set_line(2, False)
    st.leave()
    assert IRQ0 + 2 not in st.pending
    st.set_line(3, True)
    st.unpend(IRQ0 + 3)
    assert IRQ0 + 3 in st.pending  # ICPR cannot clear an asserted line


def test_faults_go_to_their_handler_or_escalate_or_lock_up() -> None:
    st = state()
    assert st.fault_target(BUSFAULT, THREAD) == (HARDFAULT, True)  # not enabled
    st.shcsr_enable = 1 << 17
    assert st.fault_target(BUSFAULT, THREAD) == (BUSFAULT, False)
    st.set_priority(BUSFAULT, 0x80)
    assert st.fault_target(BUSFAULT, 0x40) == (HARDFAULT, True)  # cannot preempt
    assert st.fault_target(USAGEFAULT, -1) == (LOCKUP, False)  # in HardFault already
    assert st.fault_target(HARDFAULT, -2) == (LOCKUP, False)  # in NMI


def test_an_svc_that_cannot_be_taken_escalates() -> None:
    st = state()
    assert st.fault_target(SVCALL, THREAD) == (SVCALL, False)
    assert st.fault_target(SVCALL, 0) == (HARDFAULT, True)  # PRIMASK set


def test_fixed_priorities_and_priority_bits() -> None:
    st = state()
    st.set_priority(SYSTICK, 0xFF)
    st.set_priority(PENDSV, 0x37)
    assert st.priority_of(SYSTICK) == 0xF0 and st.priority_of(PENDSV) == 0x30
    assert st.priority_of(NMI) == -2 and st.priority_of(HARDFAULT) == -1
    st.set_priority(HARDFAULT, 0x10)
    assert st.priority_of(HARDFAULT) == -1
