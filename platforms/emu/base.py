"""The state of one emulated core and how its faults are taken and recorded.

Theory of operation: :class:`CoreBase` holds what the core thread, the ticker thread and the
board's threads share (guarded by ``_cv``, a condition variable on the core's lock), and turns
faults into ARMv7-M fault exceptions or a lockup (see :mod:`platforms.emu.nvic`), recording a
:class:`~platforms.emu.faults.CoreFault` each time. Lock order: the board's bus lock before
the core's lock, never the other way; callbacks to the board (``on_fault``, ``on_halt``) are
made with no core lock held.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

import attrs
from unicorn import UC_ARCH_ARM, UC_MODE_THUMB, Uc
from unicorn.arm_const import UC_CPU_ARM_CORTEX_M3, UC_CPU_ARM_CORTEX_M4

from . import regs as R
from .exceptions import ExceptionEngine
from .faults import CoreFault, FaultKind
from .memory import AddressMap, CoreBus, Stall
from .nvic import HARDFAULT, LOCKUP, SVCALL, ExceptionState
from .scs import CFSR_BFARVALID, CFSR_IBUSERR, CFSR_PRECISERR, HFSR_FORCED, Scs, SysTick

log = logging.getLogger("aioamp.platform.emu")

MODELS = {"cortex-m3": UC_CPU_ARM_CORTEX_M3, "cortex-m4": UC_CPU_ARM_CORTEX_M4}
#: Faults without a WFI in between after which the core is halted (a handler that returns to
#: the faulting instruction, or skips into more faults, would otherwise loop forever).
FAULT_STORM = 256


@attrs.frozen
class Limits:
    """How long a core may run without waiting for an interrupt, and what faults record.

    Attributes:
        watchdog: seconds of continuous running (no WFI) after which the watchdog raises an
            NMI, so the firmware can report where it was stuck.
        halt_after: further seconds after which the core is stopped (a runaway firmware
            cannot hang a test); ``on_halt`` then reports it.
        pc_history: how many recent PCs fault records keep.
        trace_blocks: record every basic block's PC (slow: about 0.3 us per block) instead
            of only the PCs seen at exceptions, WFI and faults.
    """

    watchdog: float = 2.0
    halt_after: float = 2.0
    pc_history: int = 32
    trace_blocks: bool = False


@attrs.define
class CoreStatistics:
    """Counters of one core run."""

    entries: int = 0  # exceptions taken (faults included)
    returns: int = 0
    tail_chains: int = 0
    sleeps: int = 0  # WFIs that found nothing pending
    stops: int = 0  # emu_stop requests made to deliver an interrupt
    windows: int = 0  # lazily mapped windows (TLB fills)
    mmio: int = 0  # device register accesses
    faults: int = 0
    busy_seconds: float = 0.0  # inside emu_start


@attrs.frozen
class Replay:
    """An access made just before a stop, which unicorn makes again when the stopped
    instruction (at ``pc``) restarts: the first access once the core is back in the same
    exception context ``active``."""

    pc: int
    active: tuple[int, ...]
    write: bool
    address: int
    value: int


class CoreBase:
    """Shared state and fault handling of :class:`~platforms.emu.core.CortexM`."""

    def __init__(
        self,
        bus: CoreBus,
        *,
        name: str,
        model: str,
        irqs: int,
        clock_hz: float,
        limits: Limits | None,
        on_halt: Callable[[CoreFault], None] | None,
        on_fault: Callable[[CoreFault], None] | None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown core model {model!r} (known: {', '.join(MODELS)})")
        self.bus, self.name, self.model = bus, name, model
        self.limits = limits or Limits()
        self._on_halt, self._on_fault = on_halt, on_fault
        uc = self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        uc.ctl_set_cpu_model(MODELS[model])
        self.state = ExceptionState(irqs)
        self.systick = SysTick(clock_hz)
        self.scs = Scs(self.state, self.systick, self._wake, model)
        self.amap = AddressMap(uc)
        self.engine = ExceptionEngine(uc, self.state, self.scs, self.amap)
        self._general = R.RegisterBatch(uc, R.GENERAL)
        self._cv = threading.Condition(threading.Lock())
        self._alive = False  # released from reset and not stopped / halted
        self._finished = False  # the core thread has ended
        self._sleeping = False  # in WFI with nothing pending
        self._in_emu = False  # inside emu_start (a stop request may be needed)
        self._stop_pending = False  # the core thread should regain control
        self._stop_flag = False  # a stop was issued: device accesses now replay
        self._io_busy = False  # inside a device access callback
        self._io_seq = 0  # device access callbacks so far
        self._cpu_clock: int | None = None  # the core thread's CPU-time clock
        self._quiet_since: tuple[int, float] | None = None  # (io_seq, CPU time) first seen
        self._busy_since = 0.0
        self._watchdog_stage = 0  # 1: NMI raised, 2: halt asked for
        self._watchdog_nmi = False  # the core took the watchdog's NMI
        self._bus_fault: tuple[str, int, str] | None = None  # (access, address, detail)
        self._stall: Stall | None = None
        self._svc_pending = False
        self._replay_next: tuple[bool, int, int] | None = None  # see hooks.Replay
        self._replays: dict[tuple[int, ...], Replay] = {}  # by exception context
        self._faults_since_wfi = 0
        self._masked_pending = False  # an exception waits only for a mask to be lowered
        self.unmask_sites: list[int] = []
        self.pcs: collections.deque[int] = collections.deque(maxlen=self.limits.pc_history)
        self.faults: collections.deque[CoreFault] = collections.deque(maxlen=64)
        self.halted: CoreFault | None = None
        self.stats = CoreStatistics()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._core_ident = 0

    # -- waking the core (``_cv`` held) ----------------------------------------------------------
    def _wake(self) -> None:
        """Something may be takeable now: wake a sleeping core, or have the ticker stop a
        running one (never stopped from here: a stop inside a device access replays it)."""
        if self._in_emu and not self._sleeping:
            self._stop_pending = True
        self._cv.notify_all()

    def _pc(self) -> int:
        return int(self.uc.reg_read(R.PC))

    # -- faults ----------------------------------------------------------------------------------
    def _bus(self, pc: int) -> int | None:
        assert self._bus_fault is not None
        access, address, detail = self._bus_fault
        self._bus_fault = None
        if access == "fetch":
            return self._fault(FaultKind.BUS, pc, 5, CFSR_IBUSERR, address, access, detail)
        self.scs.bfar = address
        bits = CFSR_PRECISERR | CFSR_BFARVALID
        return self._fault(FaultKind.BUS, pc, 5, bits, address, access, detail)

    def _fault(
        self,
        kind: FaultKind,
        pc: int,
        fault: int,
        cfsr: int,
        address: int | None = None,
        access: str = "",
        detail: str = "",
        hfsr: int = HFSR_FORCED,
    ) -> int | None:
        """A synchronous fault (or an SVC) at ``pc``: to its handler, to HardFault (a fault
        record), or a lockup (the core halts). Returns the handler's PC, None on lockup."""
        if fault != SVCALL:
            self._faults_since_wfi += 1
            if self._faults_since_wfi > FAULT_STORM:
                detail = f"{FAULT_STORM} faults without a WFI: {detail}"
                self._halt(kind, pc, address=address, access=access, detail=detail)
                return None
        with self._cv:
            target, forced = self.state.fault_target(fault, self.engine.execution_priority())
            if target == LOCKUP:
                detail = f"{detail}; " if detail else ""
                detail += f"fault in exception {self.state.current}: lockup"
            else:
                self.scs.cfsr |= cfsr
                if forced or fault == HARDFAULT:
                    self.scs.hfsr |= hfsr
        if target == LOCKUP:
            self._halt(kind, pc, address=address, access=access, detail=detail)
            return None
        if target != SVCALL:  # an SVC that was taken is no fault
            self._notify(self._snapshot(kind, pc, address, access, target, forced, detail))
        self.pcs.append(pc)
        self._prepare_entry()
        with self._cv:
            handler = self.engine.enter(target, return_address=pc)
        self.pcs.append(handler)
        return handler

    def _prepare_entry(self) -> None:
        """Map the stack below SP and the vector table before an entry needs them (entries
        run under the core's lock, which must not be held while the bus lock is taken)."""
        sp = int(self.uc.reg_read(R.SP))
        for da in (sp - 36, sp - 1, self.scs.vtor):
            if not self.amap.mapped(da & 0xFFFF_FFFF):
                self._resolve(da & 0xFFFF_FFFF)

    def _resolve(self, da: int) -> bool:
        raise NotImplementedError  # CoreHooks

    def _snapshot(
        self,
        kind: FaultKind,
        pc: int,
        address: int | None = None,
        access: str = "",
        handler: int = 0,
        forced: bool = False,
        detail: str = "",
    ) -> CoreFault:
        values = self._general.read()
        registers = dict(zip(R.GENERAL_NAMES, values, strict=True))
        fault = CoreFault(
            kind, pc, address, access, handler, forced, registers, (*self.pcs, pc), detail
        )
        self.faults.append(fault)
        self.stats.faults += 1
        return fault

    def _notify(self, fault: CoreFault) -> None:
        log.info("%s: %s", self.name, fault)
        if self._on_fault is not None:
            self._on_fault(fault)

    def _halt(
        self,
        kind: FaultKind,
        pc: int,
        *,
        address: int | None = None,
        access: str = "",
        detail: str = "",
    ) -> None:
        fault = self._snapshot(kind, pc, address, access, detail=detail)
        self._notify(fault)
        self.halted = fault
        with self._cv:
            self._alive = False
            self._cv.notify_all()
        if self._on_halt is not None:
            self._on_halt(fault)

    def statistics(self) -> CoreStatistics:
        """A snapshot of the counters (the exception counts are the engine's)."""
        engine = self.engine
        return attrs.evolve(
            self.stats,
            entries=engine.entries,
            returns=engine.returns,
            tail_chains=engine.tail_chains,
        )

    def _start_busy(self) -> None:
        self._busy_since = time.monotonic()
        self._watchdog_stage = 0
        self._watchdog_nmi = False
