"""An emulated core plugged into a board model's core socket (the PandaBoard model's IPU).

Theory of operation: a board model that runs real code offers a *port* for each core
(:class:`PhysicalPort`, e.g. ``platforms.pandaboard.model.CorePort``): device addresses are
translated by the board's IOMMU, physical addresses lead to RAM or to register pages, and the
core's interrupt line is one of the board's. :class:`TranslatingBus` turns a port into the
:class:`~platforms.emu.memory.CoreBus` a :class:`~platforms.emu.core.CortexM` resolves its
pages through: an IOMMU entry backed by RAM becomes one window (a 1 MiB section stays one
mapping), a register page one MMIO window; a miss is a bus fault, or a stall when the board's
IOMMU has no bus-error response (OMAP4). :class:`AttachedCore` follows the board's reset
line: a fresh :class:`CortexM` per release, stopped on hold; :meth:`AttachedCore.close` joins
every run's threads. The model and this module know each other only through these protocols.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .base import Limits
from .core import CortexM
from .faults import CoreFault
from .memory import PAGE, RegisterDevice, Stall, Window

log = logging.getLogger("aioamp.platform.emu")


class PhysicalPort(Protocol):
    """What a board offers a plugged core (see the module docstring)."""

    name: str
    irq: int | None
    stalls_on_miss: bool

    @property
    def lock(self) -> AbstractContextManager[Any]: ...

    def translate(self, da: int) -> tuple[int, int, int] | None: ...

    def ram(self, pa: int, size: int) -> memoryview | None: ...

    def registers(self, pa: int) -> RegisterDevice | None: ...

    def listen_irq(self, listener: Callable[[bool], None]) -> None: ...


class TranslatingBus:
    """A :class:`~platforms.emu.memory.CoreBus` over a board's IOMMU and physical bus."""

    def __init__(self, port: PhysicalPort) -> None:
        self.port = port

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self.port.lock

    def resolve(self, da: int) -> Window | None:
        port = self.port
        entry = port.translate(da)
        if entry is None:
            if port.stalls_on_miss:
                raise Stall(da, "access", f"{port.name}: no IOMMU entry for da {da:#010x}")
            return None
        eda, epa, size = entry
        ram = port.ram(epa, size)
        if ram is not None:
            return Window(eda, size, ram=ram, name=f"da {eda:#x} -> pa {epa:#x}")
        pa = epa + (da - eda)
        registers = port.registers(pa & ~(PAGE - 1))
        if registers is None:
            return None  # translated, but no device answers there: a bus error
        return Window(da & ~(PAGE - 1), PAGE, device=registers, name=f"regs at pa {pa:#x}")


class AttachedCore:
    """An emulated Cortex-M behind a board's port, run from its reset line.

    Args:
        port: the board's socket for this core.
        model: ``cortex-m3`` or ``cortex-m4``.
        limits: the core's watchdog and fault-record settings.
    """

    def __init__(
        self, port: PhysicalPort, *, model: str = "cortex-m3", limits: Limits | None = None
    ) -> None:
        self.port = port
        self.model = model
        self.limits = limits or Limits()
        self.bus = TranslatingBus(port)
        self.current: CortexM | None = None
        self.runs: list[CortexM] = []  # those whose threads may still run
        self.faults: list[CoreFault] = []  # every run's, oldest first
        self.starts = 0
        self._level = False
        port.listen_irq(self._line)

    @classmethod
    def factory(
        cls, *, model: str = "cortex-m3", limits: Limits | None = None
    ) -> Callable[[PhysicalPort], AttachedCore]:
        """A core factory for a board model (``OmapModel(cores={"ipu": ...})``)."""
        return lambda port: cls(port, model=model, limits=limits)

    def _line(self, level: bool) -> None:
        self._level = level
        core, irq = self.current, self.port.irq
        if core is not None and irq is not None:
            core.set_irq(irq, level)

    def reset_changed(self, held: bool) -> None:
        """The board's reset line for this core changed (the board's lock is held)."""
        if held:
            core, self.current = self.current, None
            if core is not None:
                core.stop()
            return
        if self.current is not None:
            return
        core = CortexM(
            self.bus,
            name=self.port.name,
            model=self.model,
            limits=self.limits,
            on_fault=self.faults.append,  # from the core's thread: one atomic append
        )
        self.runs = [run for run in self.runs if run.threads_alive()] + [core]
        self.current = core
        self.starts += 1
        if self.port.irq is not None and self._level:
            core.set_irq(self.port.irq, True)
        core.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop for good and join every run's threads (not with the board's lock held)."""
        with self.port.lock:
            self.reset_changed(True)
        for run in self.runs:
            if not run.join(timeout):
                log.error("%s: an emulated core's threads did not end", self.port.name)
