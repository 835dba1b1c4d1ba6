"""The emulated core on a small test bus: device accesses are never made twice, the watchdog,
lockups and resets stop it, and its threads end (platforms.emu.core)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from emu_support import need_unicorn

need_unicorn()

from platforms.emu import CoreFault, CortexM, FaultKind, Limits, Window  # noqa: E402

# Program A (arm-none-eabi-as, linked at 0): enable IRQ 0; 200 times: r0 = *0x40000000 (a
# device that pops 1, 2, 3, ...), store it at 0x20000100[i]; then WFI. IRQ 0 counts itself
# at 0x20000000 (its handler uses r0 and r1, which the exception frame restores).
POP_LOOP = bytes.fromhex(
    "0010002081000000"
    + "00" * 56
    + "9f000000"
    + "00" * 60
    + "4ff08041094a0023094c01252560086842f823000133c82bf9d130bffee7"
    + "4ff00050016801310160704700000001002000e100e0"
)
# Program B: if *0x20000000 == 1, execute UDF (its HardFault handler is UDF too: a fault the
# core cannot take); else mask interrupts and spin (its NMI handler spins too).
SPIN_OR_FAULT = bytes.fromhex(
    "00100020810000009100000093000000" + "00" * 112 + "4ff000500168012901d072b6fee701defee702de"
)
SPIN_PC, NMI_PC, UDF_PC, HARDFAULT_UDF_PC = 0x8C, 0x90, 0x8E, 0x92


class PopDevice:
    """A FIFO register: each read pops the next number (a replayed read would lose one).
    Every 10th read also raises interrupt line 0 (as a status register's read-to-clear
    lowering one line may raise another): the core stops right after that access."""

    def __init__(self) -> None:
        self.numbers = itertools.count(1)
        self.reads = 0
        self.core: CortexM | None = None

    def read32(self, offset: int) -> int:
        self.reads += 1
        time.sleep(0.00002)  # a slow device: other threads' stop requests land meanwhile
        if self.core is not None and self.reads % 10 == 0:
            self.core.set_irq(0, True)
            self.core.set_irq(0, False)
        return next(self.numbers)

    def write32(self, offset: int, value: int) -> None:
        raise AssertionError("read only")


class SmallBus:
    """Code at 0, RAM at 0x20000000, a device page at 0x40000000."""

    def __init__(self, code: bytes, device: PopDevice | None = None, vectors: bool = True):
        self.code = bytearray(code.ljust(0x1000, b"\0"))
        self.ram = bytearray(0x1000)
        self.device = device
        self.vectors = vectors
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def resolve(self, da: int) -> Window | None:
        if da == 0 and self.vectors:
            return Window(0, 0x1000, ram=memoryview(self.code), name="code")
        if da == 0x2000_0000:
            return Window(da, 0x1000, ram=memoryview(self.ram), name="ram")
        if da == 0x4000_0000 and self.device is not None:
            return Window(da, 0x1000, device=self.device, name="pop")
        return None

    def word(self, offset: int) -> int:
        return int.from_bytes(self.ram[offset : offset + 4], "little")


def run_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the core did not get there"
        time.sleep(0.001)


def test_device_accesses_are_made_once_while_interrupts_stop_the_core() -> None:
    """Every interrupt raised while the core runs stops unicorn, which restarts the
    interrupted instruction; a FIFO read caught by a stop must still pop exactly once."""
    device = PopDevice()
    bus = SmallBus(POP_LOOP, device)
    core = device.core = CortexM(bus, name="pop")
    core.start()
    raised = 0
    while not core.sleeping:
        with bus.lock:  # as a board raises its lines: under its lock
            core.set_irq(0, True)
            core.set_irq(0, False)
        raised += 1
        time.sleep(0.0001)
    values = [bus.word(0x100 + 4 * i) for i in range(200)]
    core.stop()
    assert core.join(5)
    assert values == list(range(1, 201)), "a pop was lost or repeated"
    assert device.reads == 200
    assert bus.word(0) >= 20 and raised >= 1  # the interrupts were taken meanwhile


def test_the_watchdog_raises_an_nmi_then_stops_a_core_that_never_waits() -> None:
    halted: list[CoreFault] = []
    bus = SmallBus(SPIN_OR_FAULT)
    core = CortexM(bus, limits=Limits(watchdog=0.05, halt_after=0.05), on_halt=halted.append)
    core.start()
    run_until(lambda: halted)
    assert core.join(5)
    nmi, stop = core.faults
    assert nmi.kind is FaultKind.WATCHDOG and nmi.handler == 2 and nmi.pc == SPIN_PC
    assert stop.kind is FaultKind.WATCHDOG and stop.handler == 0 and stop.pc == NMI_PC
    assert halted == [stop] and not core.alive


def test_a_fault_in_the_hardfault_handler_is_a_lockup() -> None:
    halted: list[CoreFault] = []
    bus = SmallBus(SPIN_OR_FAULT)
    bus.ram[0] = 1
    core = CortexM(bus, on_halt=halted.append)
    core.start()
    run_until(lambda: halted)
    assert core.join(5)
    first, second = core.faults
    assert (first.kind, first.pc, first.handler, first.forced) == (
        FaultKind.UNDEFINED,
        UDF_PC,
        3,
        True,
    )
    assert second.pc == HARDFAULT_UDF_PC and second.handler == 0 and "lockup" in second.detail
    assert second.registers["pc"] == HARDFAULT_UDF_PC and UDF_PC in second.last_pcs


def test_nothing_at_the_vector_table_stops_the_core_at_reset() -> None:
    halted: list[CoreFault] = []
    core = CortexM(SmallBus(b"", vectors=False), on_halt=halted.append)
    core.start()
    run_until(lambda: halted)
    assert core.join(5)
    (fault,) = halted
    assert fault.kind is FaultKind.BUS and fault.address == 0 and "vector table" in fault.detail


@pytest.mark.parametrize("model", ["cortex-m3", "cortex-m4"])
def test_a_reset_stops_a_spinning_core_and_its_threads_end(model: str) -> None:
    core = CortexM(SmallBus(SPIN_OR_FAULT), model=model, limits=Limits(watchdog=60))
    core.start()
    run_until(lambda: core.stats.windows >= 2)
    threads = core.threads()
    core.stop()
    assert core.join(5)
    assert not any(t.is_alive() for t in threads) and not core.alive
    with pytest.raises(RuntimeError, match="runs once"):
        core.start()


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="cortex-m7"):
        CortexM(SmallBus(b""), model="cortex-m7")


# Program C: enable IRQ 0, WFI; once woken (and IRQ 0 taken), mask interrupts and spin at
# 0x8A (its NMI handler spins too, at 0x8C).
WAKE_THEN_SPIN = bytes.fromhex(
    "00100020810000008d0000008f000000"
    + "00" * 48
    + "91000000"
    + "00" * 60
    + "04480121016030bf72b6fee7fee7fee77047000000e100e0"
)


def test_a_core_woken_from_wfi_that_then_spins_gets_the_watchdog() -> None:
    """Waking from WFI re-arms the watchdog: the ticker, asleep while the core slept, must
    learn that the core is busy again (it waited forever before)."""
    halted: list[CoreFault] = []
    bus = SmallBus(WAKE_THEN_SPIN)
    core = CortexM(bus, limits=Limits(watchdog=0.05, halt_after=0.05), on_halt=halted.append)
    core.start()
    run_until(lambda: core.sleeping)
    with bus.lock:
        core.set_irq(0, True)
        core.set_irq(0, False)
    run_until(lambda: halted)
    assert core.join(5)
    nmi, stop = core.faults
    assert nmi.kind is FaultKind.WATCHDOG and nmi.pc == 0x8A and stop.pc == 0x8C
