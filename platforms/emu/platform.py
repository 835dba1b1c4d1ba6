"""The ``emu`` platform: a remote processor whose firmware ELF runs on an emulated Cortex-M.

Theory of operation: :class:`EmuPlatform` is a remoteproc platform driver for the aioamp
virtual board (:mod:`platforms.emu.board`). remoteproc allocates and maps memory from the
board's RAM window and loads the image there; ``start()`` releases an emulated
:class:`~platforms.emu.core.CortexM` from reset, which boots from the vector table at device
address 0 and runs in its own threads (unicorn releases the GIL while it executes). Kicks
go to the doorbell; what the core reports (a notification on TX, a crash on CRASH, a halt the
emulator saw) reaches the event loop through a socket pair, the only thread-safe wake-up
every anyio backend can wait on, and becomes ``vq_interrupt`` or ``report_crash``. A crash
report names the faulting PC and address from the emulator's own fault record (the board is
the emulator: it sees what a debugger would). ``stop()`` holds the core in reset and waits for
its threads, so nothing keeps running after a shutdown.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading

import anyio
import attrs

from remoteproc.errors import BootError
from remoteproc.firmware import FirmwareImage
from remoteproc.platform import CrashKind, PlatformDriver

from .base import CoreStatistics, Limits
from .board import RAM_PA, RAM_SIZE, VirtualBoard
from .core import CortexM
from .faults import CoreFault, FaultKind

log = logging.getLogger("aioamp.platform.emu")
uart_log = logging.getLogger("aioamp.platform.emu.uart")

#: Crash codes the firmware writes to the doorbell's CRASH register.
CRASH_FAULT, CRASH_WATCHDOG = 1, 2


@attrs.define
class EmuStatistics:
    """Counters of one emulated processor (all runs)."""

    starts: int = 0
    kicks_sent: int = 0  # host -> core notifications queued
    kicks_dropped: int = 0  # the core was not running
    notifications: int = 0  # core -> host, delivered as vq interrupts
    notifications_by_id: dict[int, int] = attrs.field(factory=dict)  # the same, by notify id
    ignored_after_crash: int = 0
    crashes: int = 0
    uart_lines: int = 0
    core: CoreStatistics | None = None  # the current (or last) run's


class EmuPlatform(PlatformDriver):
    """A Cortex-M3 (or M4) on the aioamp virtual board.

    Args:
        name: processor name.
        model: ``cortex-m3`` or ``cortex-m4``.
        ram_pa, ram_size: the RAM window carveouts and vrings come from.
        limits: the watchdog and fault-record settings of the core.
        join_timeout: how long ``stop()`` waits for the core's threads.
    """

    def __init__(
        self,
        name: str = "emu",
        *,
        model: str = "cortex-m3",
        ram_pa: int = RAM_PA,
        ram_size: int = RAM_SIZE,
        limits: Limits | None = None,
        join_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.limits = limits or Limits()
        self.join_timeout = join_timeout
        self.board = VirtualBoard(name, ram_pa, ram_size)
        self.physical = self.board.physical
        self.core: CortexM | None = None
        self.uart_lines: list[str] = []
        self._image: FirmwareImage | None = None
        self._crashed = False
        self._stats = EmuStatistics()
        self._events: collections.deque[tuple[int, str, object]] = collections.deque()
        self._run = 0  # events of an earlier run are stale
        self._signal = threading.Lock()
        self._signalled = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._serving = False

    # -- memory -------------------------------------------------------------------------------
    def map(self, da: int, pa: int, size: int) -> None:
        if not self.physical.contains(pa, size):
            raise BootError(f"{self.name}: cannot map pa {pa:#x} (+{size:#x}): not in board RAM")
        self.board.translations[da] = (pa, size)

    def unmap(self, da: int, size: int) -> None:
        self.board.translations.pop(da, None)

    # -- control ------------------------------------------------------------------------------
    def firmware_loaded(self, image: FirmwareImage) -> None:
        self._image = image

    async def start(self, entry: int) -> None:
        events = self.events
        if events is None:
            raise BootError(f"{self.name}: platform not bound to a processor")
        if self.core is not None:
            raise BootError(f"{self.name}: the core is already running")
        if not self._serving:
            self._serving = True
            events.spawn(self._serve, "emulated core events")
        self._run += 1
        run = self._run
        core = CortexM(
            self.board,
            name=self.name,
            model=self.model,
            limits=self.limits,
            on_halt=lambda fault: self._post(run, "halt", fault),
        )
        self.board.attach(
            core.set_irq,
            lambda value: self._post(run, "kick", value),
            lambda code: self._post(run, "crash", code),
            self._uart_line,
        )
        self._crashed = False
        self._stats.starts += 1
        self.core = core
        core.start()
        log.info("%s: %s released from reset (entry %#x)", self.name, self.model, entry)

    async def stop(self) -> None:
        core, self.core = self.core, None
        if core is None:
            return
        core.stop()
        self.board.detach()
        self._stats.core = core.statistics()
        if not await anyio.to_thread.run_sync(core.join, self.join_timeout):
            raise BootError(
                f"{self.name}: the core's threads did not end within {self.join_timeout} s"
            )
        log.info("%s: held in reset", self.name)

    def kick(self, notifyid: int) -> None:
        if self.core is None or self._crashed or not self.board.kick(notifyid):
            self._stats.kicks_dropped += 1
            return
        self._stats.kicks_sent += 1

    def is_running(self) -> bool:
        return False  # always booted from reset

    def statistics(self) -> EmuStatistics:
        stats = attrs.evolve(self._stats, notifications_by_id=dict(self._stats.notifications_by_id))
        if self.core is not None:
            stats.core = self.core.statistics()
        return stats

    # -- from the core's thread ----------------------------------------------------------------
    def _uart_line(self, line: str) -> None:
        self.uart_lines.append(line)
        self._stats.uart_lines += 1
        uart_log.info("%s: %s", self.name, line)

    def _post(self, run: int, kind: str, value: object) -> None:
        """Queue an event of run ``run`` for the event loop and wake it (once per batch)."""
        self._events.append((run, kind, value))
        with self._signal:
            if self._signalled:
                return
            self._signalled = True
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    # -- on the event loop ---------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while True:
                await anyio.wait_readable(self._reader)
                with contextlib.suppress(BlockingIOError):
                    self._reader.recv(4096)
                with self._signal:
                    self._signalled = False
                while self._events:
                    self._deliver(*self._events.popleft())
        finally:
            self._reader.close()
            self._writer.close()

    def _deliver(self, run: int, kind: str, value: object) -> None:
        events = self.events
        if events is None:
            return
        if self._crashed or run != self._run or self.core is None:
            self._stats.ignored_after_crash += 1
            return
        if kind == "kick":
            assert isinstance(value, int)
            self._stats.notifications += 1
            by_id = self._stats.notifications_by_id
            by_id[value] = by_id.get(value, 0) + 1
            events.vq_interrupt(value)
            return
        self._crashed = True
        self._stats.crashes += 1
        if kind == "halt":
            assert isinstance(value, CoreFault)
            events.report_crash(_kind(value), f"{value}")
            return
        assert isinstance(value, int)
        fault = self._last_fault()
        if value == CRASH_WATCHDOG:
            crash = CrashKind.WATCHDOG
        else:
            crash = _kind(fault) if fault is not None else CrashKind.FATAL_ERROR
        what = f"{fault}" if fault is not None else "no fault seen by the core"
        events.report_crash(crash, f"the firmware reported crash code {value}: {what}")

    def _last_fault(self) -> CoreFault | None:
        core = self.core
        return core.faults[-1] if core is not None and core.faults else None


def _kind(fault: CoreFault | None) -> CrashKind:
    if fault is None:
        return CrashKind.FATAL_ERROR
    if fault.kind is FaultKind.WATCHDOG:
        return CrashKind.WATCHDOG
    if fault.kind is FaultKind.BUS and fault.detail == "nothing there":
        return CrashKind.MMUFAULT  # the host mapped nothing there: its IOMMU missed
    return CrashKind.FATAL_ERROR
