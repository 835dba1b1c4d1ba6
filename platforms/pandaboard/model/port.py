"""A socket for a remote core that executes real code: the bus master behind the L2 MMU.

Theory of operation: :class:`~platforms.pandaboard.model.board.OmapModel` runs each remote core
either as a Python firmware program (:class:`~platforms.pandaboard.model.core.CoreModel`) or as
a *plugged* core, built by a factory from a :class:`CorePort` (an emulated Cortex-M,
``platforms.emu.AttachedCore``: the model never imports it, the caller plugs it in). The port
gives the core what the IPU's M3 sees on the board:

* device addresses go through the L2 MMU model, with the TLB entries the driver loaded
  (:meth:`CorePort.translate`). A miss latches MMU_FAULT_AD and TLBMISS, which raises the
  MMU's interrupt to the host. OMAP4's MMU has no bus-error response: the access stalls
  (:attr:`CorePort.stalls_on_miss`) until the host resets the core;
* a translated address reaches RAM (a second mapping of the model's RAM file, as another bus
  master sees the DDR) or a page of device registers (the mailbox, ...); nothing there is a
  bus error;
* the core's interrupt line is its mailbox user's line (``ProcessorConfig.irq`` on its NVIC);
* the PRCM's reset line starts and stops it (:meth:`RemoteCore.reset_changed`).

Every access is made under the model bus's lock, like the driver's.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..config import ProcessorConfig
from .bus import ModelBus, RegisterDevice
from .mailbox import MailboxModel
from .mmu import MmuModel


class RemoteCore(Protocol):
    """What the model needs from a plugged core."""

    def reset_changed(self, held: bool) -> None:
        """The core's reset line changed (called with the bus lock held: must not block)."""

    def close(self) -> None:
        """The model is closing: stop for good and wait for the core's threads."""


class CorePort:
    """What one remote core (``config``) reaches on the modelled board."""

    #: OMAP4's L2 MMU stalls an access it cannot translate (no bus-error response).
    stalls_on_miss = True

    def __init__(
        self, config: ProcessorConfig, bus: ModelBus, mmu: MmuModel, mailbox: MailboxModel
    ) -> None:
        self.config = config
        self.name = config.name
        self.irq = config.irq
        self._bus, self._mmu, self._mailbox = bus, mmu, mailbox

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self._bus.lock

    def translate(self, da: int) -> tuple[int, int, int] | None:
        """The TLB entry ``(da, pa, size)`` covering ``da``; None after latching a miss."""
        with self._bus.lock:
            entry = self._mmu.lookup(da)
            if entry is None:
                self._mmu.miss(da)
            return entry

    def ram(self, pa: int, size: int) -> memoryview | None:
        """The DDR at ``[pa, pa + size)`` as this master sees it, if it is all RAM."""
        return self._bus.ram_view(pa, size) if self._bus.is_ram(pa, size) else None

    def registers(self, pa: int) -> RegisterDevice | None:
        """The register page at ``pa`` (offsets within the page), if any device is there."""
        return self._bus.register_page(pa)

    def listen_irq(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(level)`` whenever the core's mailbox interrupt line changes."""
        self._mailbox.listen(self.config.remote_user, listener)


#: Builds a plugged core for a processor of the model.
CoreFactory = Callable[[CorePort], RemoteCore]
