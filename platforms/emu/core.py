"""An emulated Cortex-M3/M4 core: unicorn executes the firmware, this package is its NVIC.

Theory of operation: a :class:`CortexM` is one run of a core, from a reset release to the
next reset. :meth:`CortexM.start` reads the initial stack pointer and reset vector from the
vector table at device address 0 (through the board, so an unmapped vector table is a fault
at reset) and starts the core's thread; :meth:`CortexM.stop` is the reset line: from then on
the core touches nothing, and its threads end by themselves (:meth:`CortexM.join` waits).

The core thread runs ``emu_start`` (which releases the GIL while unicorn executes) and
handles what makes it return: ``WFI`` (the core then sleeps on a condition variable until an
enabled interrupt is pending: no CPU is used while idle), a fault (turned into the ARMv7-M
fault exception), an SVC, or a stop request. Pending exceptions are taken between
``emu_start`` calls; exception returns are handled inside unicorn's interrupt hook
(:mod:`platforms.emu.hooks`). Other threads raise interrupt lines with :meth:`set_irq`; the
ticker thread (:mod:`platforms.emu.ticker`) stops a running core so it takes them, and drives
SysTick and the watchdog. An interrupt held back only by a mask (PRIMASK, FAULTMASK, BASEPRI: the
usual ``cpsid i; wfi; cpsie i`` idle loop) is taken right after the instruction that lowers
the mask: at reset the core finds those instructions in its code and hooks the instruction
after each (see :meth:`CoreHooks._watch_unmasking`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from unicorn import (
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_BLOCK,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_UNMAPPED,
    UcError,
)

from . import regs as R
from .base import CoreStatistics, Limits, Replay, log
from .exceptions import StackingError
from .faults import CoreFault, FaultKind
from .hooks import CoreHooks
from .memory import CoreBus
from .nvic import NMI, SVCALL, USAGEFAULT
from .scs import CFSR_UNDEFINSTR, SCS_BASE, SCS_SIZE
from .ticker import Ticker

__all__ = ["CoreStatistics", "CortexM", "Limits"]

_UNMAPPED = (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED)
_WFI = (b"\x30\xbf", b"\xaf\xf3\x03\x80")  # WFI (T1) and WFI.W (T2), little endian


class CortexM(CoreHooks, Ticker):
    """One run of an emulated core on ``bus`` (see the module docstring).

    Args:
        bus: the board (memory, devices, lock).
        name: for logs and threads.
        model: ``cortex-m3`` or ``cortex-m4``.
        irqs: external interrupt lines.
        clock_hz: the nominal clock SysTick counts.
        limits: watchdog and fault-record settings.
        on_halt: called (from the core's thread) when the core stops by itself: lockup,
            stall, watchdog halt.
        on_fault: called (from the core's thread) for every fault record.
    """

    def __init__(
        self,
        bus: CoreBus,
        *,
        name: str = "m3",
        model: str = "cortex-m3",
        irqs: int = 64,
        clock_hz: float = 200e6,
        limits: Limits | None = None,
        on_halt: Callable[[CoreFault], None] | None = None,
        on_fault: Callable[[CoreFault], None] | None = None,
    ) -> None:
        super().__init__(
            bus,
            name=name,
            model=model,
            irqs=irqs,
            clock_hz=clock_hz,
            limits=limits,
            on_halt=on_halt,
            on_fault=on_fault,
        )
        uc = self.uc
        self.amap.map_private(SCS_BASE, SCS_SIZE, self._scs_read, self._scs_write)
        uc.hook_add(UC_HOOK_INTR, self._intr_hook)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._unmapped_hook)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._invalid_hook)
        if self.limits.trace_blocks:
            uc.hook_add(UC_HOOK_BLOCK, self._block_hook)

    # -- public ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Release the core from reset: run from the vector table in its own thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: a CortexM runs once; make a new one per reset")
        self._alive = True
        self._start_busy()
        self._thread = threading.Thread(target=self._main, name=f"emu-{self.name}", daemon=True)
        self._ticker = threading.Thread(
            target=self._tick, name=f"emu-{self.name}-tick", daemon=True
        )
        self._thread.start()
        self._ticker.start()

    def stop(self) -> None:
        """Hold the core in reset: no access is made after this returns; the threads end
        soon after (:meth:`join`)."""
        with self.bus.lock, self._cv:
            self._alive = False
            if self._in_emu:
                self.uc.emu_stop()
            self._cv.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to end (after :meth:`stop` or a halt); True if they did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._thread, self._ticker):
            if thread is not None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
                if thread.is_alive():
                    return False
        self.amap.release()
        return True

    @property
    def alive(self) -> bool:
        """Released from reset and neither stopped nor halted."""
        return self._alive

    @property
    def sleeping(self) -> bool:
        """In WFI with nothing pending."""
        return self._sleeping

    def threads(self) -> list[threading.Thread]:
        return [t for t in (self._thread, self._ticker) if t is not None]

    def threads_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads())

    def set_irq(self, irq: int, level: bool) -> None:
        """External interrupt line ``irq`` changed (level sensitive); from any thread."""
        with self._cv:
            self.state.set_line(irq, level)
            if level:
                self._wake()

    def pend(self, exception: int) -> None:
        """Make ``exception`` (NMI, PendSV, an IRQ ``16 + n``) pending; from any thread."""
        with self._cv:
            self.state.pend(exception)
            self._wake()

    # -- the core thread -------------------------------------------------------------------------
    def _main(self) -> None:
        self._core_ident = threading.get_ident()
        with contextlib.suppress(AttributeError, OSError):  # not on every platform
            self._cpu_clock = time.pthread_getcpuclockid(self._core_ident)
        try:
            pc = self._reset()
            while pc is not None:
                pc = self._step(pc)
        except Exception as exc:  # an emulator bug must not pass silently
            log.exception("%s: emulator error", self.name)
            self._halt(FaultKind.LOCKUP, self._pc(), detail=f"emulator error: {exc!r}")
        finally:
            with self._cv:
                self._in_emu = False
                self._alive = False
                self._finished = True
                self._cv.notify_all()

    def _reset(self) -> int | None:
        if not self._resolve(0):
            self._halt(FaultKind.BUS, 0, address=0, access="read", detail="no vector table")
            return None
        self._watch_unmasking(0)
        words = bytes(self.uc.mem_read(0, 8))
        sp, reset = int.from_bytes(words[:4], "little"), int.from_bytes(words[4:], "little")
        R.RegisterBatch(self.uc, (R.MSP, R.CONTROL)).write((sp, 0))
        self.pcs.append(reset & ~1)
        return reset & ~1

    def _step(self, pc: int) -> int | None:
        """One ``emu_start``: take what is pending, run, handle why it returned."""
        self._prepare_entry()
        watchdog: CoreFault | None = None
        with self._cv:
            while True:
                if not self._alive:
                    return None
                self._stop_pending = self._stop_flag = False
                if not self._sleeping:
                    break
                if self.state.wakes():
                    self._sleeping = False
                    self._start_busy()
                    self._cv.notify_all()  # the idle ticker must arm the watchdog again
                    break
                self._cv.wait()
            nxt = self.engine.next_exception()
            if nxt == NMI and self._watchdog_stage == 1:
                detail = "no WFI in time"
                watchdog = self._snapshot(FaultKind.WATCHDOG, pc, handler=NMI, detail=detail)
                self._watchdog_nmi = True
                self._busy_since = time.monotonic()  # halt_after counts from the NMI
                self._cv.notify_all()  # the ticker times the halt from now
            if nxt is not None:
                pc = self.engine.enter(nxt)
                self.pcs.append(pc)
            self._masked_pending = self.engine.masked_only()
            self._in_emu = True
        if watchdog is not None:
            self._notify(watchdog)
        started = time.perf_counter()
        error: Exception | None = None
        try:
            self.uc.emu_start(pc | 1, 0xFFFF_FFFF)
        except (UcError, StackingError) as exc:
            error = exc
        self.stats.busy_seconds += time.perf_counter() - started
        with self._cv:
            self._in_emu = False
        return self._after(error)

    def _after(self, error: Exception | None) -> int | None:
        """Why ``emu_start`` returned, and where to go on (None: the core stopped)."""
        pc = self._pc()
        if self._replay_next is not None:
            active = tuple(self.state.active)
            self._replays[active] = Replay(pc, active, *self._replay_next)
            self._replay_next = None
        if not self._alive:
            if self._stall is not None:  # the board reset the core for it: keep the record
                stall, self._stall = self._stall, None
                fault = self._snapshot(
                    FaultKind.STALL, pc, stall.address, stall.access, detail=str(stall)
                )
                self._notify(fault)
            return None
        if self._watchdog_stage == 2:
            self._halt(FaultKind.WATCHDOG, pc, detail="still running after the watchdog NMI")
            return None
        if self._stall is not None:
            stall, self._stall = self._stall, None
            self._halt(
                FaultKind.STALL, pc, address=stall.address, access=stall.access, detail=str(stall)
            )
            return None
        if isinstance(error, StackingError):
            self._halt(FaultKind.LOCKUP, pc, address=error.sp, detail=str(error))
            return None
        if isinstance(error, UcError):
            if error.errno in _UNMAPPED and self._bus_fault is not None:
                return self._bus(pc)
            if error.errno == UC_ERR_INSN_INVALID:
                return self._fault(FaultKind.UNDEFINED, pc, USAGEFAULT, CFSR_UNDEFINSTR)
            self._halt(FaultKind.LOCKUP, pc, detail=f"unicorn: {error}")
            return None
        if self._bus_fault is not None:  # a device refused an access
            return self._bus(pc)
        if self._svc_pending:
            self._svc_pending = False
            return self._fault(FaultKind.SVC_MASKED, pc, SVCALL, 0, detail="SVC while masked")
        if self._is_wfi(pc):
            with self._cv:
                self._sleeping = True
            self._faults_since_wfi = 0
            self.stats.sleeps += 1
            self.pcs.append(pc)
        return pc

    def _is_wfi(self, pc: int) -> bool:
        for insn in _WFI:
            host = self.amap.host(pc - len(insn), len(insn))
            if host is not None and bytes(host) == insn:
                return True
        return False
