"""The platform driver protocol: what a board (or the simulator) provides to remoteproc.

Theory of operation: :class:`~remoteproc.rproc.RemoteProc` is generic; a
:class:`PlatformDriver` supplies what differs per SoC, like Linux's ``struct rproc_ops``:

* memory: the processor's fixed internal memories (by device address), the physical window
  carveouts are allocated from, the DEVMEM allowlist, and the IOMMU (``map`` / ``unmap``);
* control: ``start(entry)``, ``stop()``, optional ``attach()`` / ``detach()``;
* notifications: ``kick(notifyid)`` towards the processor. The other direction goes through
  the :class:`RprocEvents` the processor hands over in :meth:`PlatformDriver.bind`:
  ``vq_interrupt(notifyid)`` when the remote kicked a vring, ``report_crash(kind, detail)``
  when the platform sees a watchdog, fatal error or MMU fault.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from transports.virtio.memory import Region

from .errors import BootError, DevmemNotAllowedError
from .firmware import FirmwareImage
from .memory import PhysicalMemory
from .states import CrashKind

__all__ = ["CrashKind", "PlatformDriver", "RprocEvents"]


class RprocEvents(Protocol):
    """Callbacks from the platform into its processor (synchronous, never block)."""

    def vq_interrupt(self, notifyid: int) -> None: ...

    def report_crash(self, kind: CrashKind, detail: str) -> None: ...

    def spawn(self, func: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Run ``func`` as a background task that lives as long as the processor's manager
        (a simulated core's program, a board's interrupt reader)."""


class PlatformDriver(abc.ABC):
    """One remote processor's hardware access.

    Attributes:
        name: the processor's name (registry key).
        physical: where carveouts and vdev memory are allocated.
        devmem_allowlist: ``(pa, size)`` windows DEVMEM entries may map; anything else is
            refused before the boot touches memory.
    """

    name: str
    physical: PhysicalMemory
    devmem_allowlist: tuple[tuple[int, int], ...] = ()

    def __init__(self) -> None:
        self.events: RprocEvents | None = None

    def bind(self, events: RprocEvents) -> None:
        """Called once by the processor that owns this driver."""
        self.events = events

    # -- memory -------------------------------------------------------------------------------
    def internal_memory(self) -> list[Region]:
        """Memories the processor always has at fixed device addresses (SRAM, TCM)."""
        return []

    def check_devmem(self, da: int, pa: int, size: int, name: str) -> None:
        """Refuse a DEVMEM entry outside :attr:`devmem_allowlist`."""
        for base, length in self.devmem_allowlist:
            if base <= pa and pa + size <= base + length:
                return
        raise DevmemNotAllowedError(
            f"devmem {name!r} [{pa:#x}, +{size:#x}) at da {da:#x} is outside the platform's "
            "allowlist"
        )

    def map_devmem(self, da: int, pa: int, size: int) -> memoryview | None:
        """Map an allowed DEVMEM range; return a host view if the host may access it."""
        self.map(da, pa, size)
        return None

    def map(self, da: int, pa: int, size: int) -> None:  # noqa: B027 (optional hook)
        """Make ``da`` on the processor reach ``pa`` (program the IOMMU). Default: identity
        or no IOMMU, nothing to do."""

    def unmap(self, da: int, size: int) -> None:  # noqa: B027 (optional hook)
        """Undo :meth:`map`."""

    # -- control ------------------------------------------------------------------------------
    def firmware_loaded(self, image: FirmwareImage) -> None:  # noqa: B027 (optional hook)
        """The image was loaded into memory and is about to start (Linux ``ops->load``)."""

    @abc.abstractmethod
    async def start(self, entry: int) -> None:
        """Release the processor from reset at ``entry``."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Put the processor in reset (also called after a crash)."""

    @abc.abstractmethod
    def kick(self, notifyid: int) -> None:
        """Tell the processor that the vring (or vdev) ``notifyid`` has new work."""

    def is_running(self) -> bool:
        """Whether the processor already runs (booted by someone else): attach instead."""
        return False

    def loaded_table(self) -> tuple[int, memoryview] | None:
        """``(da, host view)`` of the live resource table of a running processor (attach)."""
        return None

    async def attach(self) -> None:
        raise BootError(f"{self.name}: this platform cannot attach to a running processor")

    async def detach(self) -> None:
        raise BootError(f"{self.name}: this platform cannot detach from its processor")

    async def suspend(self) -> None:
        raise BootError(f"{self.name}: this platform does not support suspend")

    async def resume(self) -> None:
        raise BootError(f"{self.name}: this platform does not support resume")
