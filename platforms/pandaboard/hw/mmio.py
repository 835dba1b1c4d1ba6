"""Physical address space access: register windows and RAM windows.

Theory of operation: board code never touches ``/dev/mem`` directly. It asks a
:class:`PhysicalBus` for a :class:`RegisterWindow` over a register block (mailbox, PRCM, MMU)
or for a memoryview over reserved RAM. On a board :class:`DevMemBus` returns python-periphery
``MMIO`` objects over ``/dev/mem`` (which periphery opens with ``O_SYNC``: uncached mappings);
the register-level model (:mod:`platforms.pandaboard.model`) returns device models for register
blocks and a file-backed periphery ``MMIO`` for RAM, so the same driver code runs on both.

Registers are touched only through :meth:`RegisterWindow.read32` / :meth:`write32`: one 32-bit
access each. Slice copies (``read``/``write``) may be split or repeated by the C library, and a
duplicated read of a mailbox MESSAGE register pops a second message.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .errors import Omap4Error


@runtime_checkable
class RegisterWindow(Protocol):
    """A mapped register block; offsets are relative to its base."""

    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...


class PhysicalBus(Protocol):
    """Where physical addresses are mapped from (``/dev/mem``, or the model)."""

    def map(self, phys: int, size: int) -> RegisterWindow:
        """A register window over ``[phys, phys + size)``."""
        ...

    def map_memory(self, phys: int, size: int) -> memoryview:
        """A byte view of RAM ``[phys, phys + size)`` (shared with the remote cores)."""
        ...


def _periphery_mmio(phys: int, size: int, path: str) -> Any:
    try:
        from periphery import MMIO
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise Omap4Error(
            "python-periphery is required for /dev/mem access: pip install 'aioamp[omap4]'"
        ) from exc
    try:
        return MMIO(phys, size, path=path)
    except Exception as exc:  # periphery raises MMIOError(OSError-like)
        raise Omap4Error(f"cannot map {path} at {phys:#x} (+{size:#x}): {exc}") from exc


def mmio_memoryview(mmio: Any, size: int) -> memoryview:
    """A byte view of a periphery ``MMIO`` mapping (for RAM, never for registers).

    periphery maps from the page below ``phys``; the view starts at ``phys`` itself.
    """
    start = mmio._physaddr - mmio._aligned_physaddr
    return memoryview(mmio.mapping)[start : start + size]


class DevMemBus:
    """The real physical address space through ``/dev/mem`` (python-periphery ``MMIO``).

    Args:
        path: the memory device; a regular file works too (the model uses one).
    """

    def __init__(self, path: str = "/dev/mem") -> None:
        self.path = path

    def map(self, phys: int, size: int) -> RegisterWindow:
        window: RegisterWindow = _periphery_mmio(phys, size, self.path)
        return window

    def map_memory(self, phys: int, size: int) -> memoryview:
        mmio = _periphery_mmio(phys, size, self.path)
        view = mmio_memoryview(mmio, size)
        # The view now owns the mmap (it is unmapped when the last view goes). periphery's
        # close() / __del__ would fail on a mapping with live views, so detach it.
        mmio.mapping = None
        return view
