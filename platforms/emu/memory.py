"""What the emulated core can reach: the board's bus, resolved lazily into unicorn mappings.

Theory of operation: the core starts with only its System Control Space mapped. An access to
any other address traps (unicorn's unmapped-access hook) and the core asks its board,
through :class:`CoreBus.resolve`, what lies there: a :class:`Window` of host memory (a
carveout, a vring, a buffer pool: mapped in place with ``mem_map_ptr``, so both sides share
the bytes without copies) or of registers (MMIO served by a board device, one callback per
access). ``None`` means nothing answers at that address (no IOMMU entry, no device): the access
becomes a bus fault. This is how a board's IOMMU programming reaches the core: only what the
host mapped is ever resolved, like a TLB that fills on a miss and is flushed by a reset.

:class:`AddressMap` keeps what is mapped, so a window that overlaps earlier ones is mapped in
its gaps only, and finds the host bytes behind an address (the exception frames are written
there directly).
"""

from __future__ import annotations

import bisect
import ctypes
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import attrs
from unicorn import UC_PROT_ALL, Uc

PAGE = 0x1000


class RegisterDevice(Protocol):
    """A register block as the core sees it: 32-bit accesses by offset."""

    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...


class BusError(Exception):
    """A device refused an access (no register there): the core takes a bus fault."""


class Stall(Exception):
    """The access never completes: the initiator waits forever (an OMAP4 L2 MMU miss stalls
    the core until the host handles the fault). The core stops; the board reports."""

    def __init__(self, address: int, access: str, detail: str) -> None:
        super().__init__(detail)
        self.address = address
        self.access = access


@attrs.frozen
class Window:
    """What lies at ``[da, da + size)`` (both 4 KiB aligned): host memory or registers.

    Attributes:
        ram: the host bytes (``size`` of them) for memory.
        device: the register device for MMIO; offsets are from ``da``.
        name: for fault reports.
    """

    da: int
    size: int
    ram: memoryview | None = None
    device: RegisterDevice | None = None
    name: str = ""

    def __attrs_post_init__(self) -> None:
        if self.da % PAGE or self.size % PAGE or self.size <= 0:
            raise ValueError(
                f"window {self.name!r} [{self.da:#x}, +{self.size:#x}) not 4 KiB aligned"
            )
        if (self.ram is None) == (self.device is None):
            raise ValueError(f"window {self.name!r} needs exactly one of ram and device")
        if self.ram is not None and self.ram.nbytes != self.size:
            raise ValueError(f"window {self.name!r}: {self.ram.nbytes} bytes for {self.size:#x}")


class CoreBus(Protocol):
    """What a board offers its emulated core.

    ``lock`` serialises the core's device accesses with everyone else's (the host driver
    runs in another thread); it must be reentrant, as a board may reset the core while holding
    it. ``resolve`` answers "what is at this device address" (see the module docstring).
    """

    @property
    def lock(self) -> AbstractContextManager[bool]: ...

    def resolve(self, da: int) -> Window | None: ...


def new_lock() -> threading.RLock:
    return threading.RLock()


class AddressMap:
    """The unicorn mappings of one core and the host bytes behind them."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._starts: list[int] = []
        self._spans: list[tuple[int, int, memoryview | None]] = []  # (start, end, host bytes)
        self._exports: list[object] = []  # ctypes views keeping the host buffers pinned

    def mapped(self, da: int) -> bool:
        i = bisect.bisect_right(self._starts, da) - 1
        return i >= 0 and da < self._spans[i][1]

    def _gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        gaps, cursor = [], start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        for s, e, _ in self._spans[i:]:
            if s >= end:
                break
            if e <= cursor:
                continue
            if s > cursor:
                gaps.append((cursor, s))
            cursor = max(cursor, e)
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def _add(self, start: int, end: int, host: memoryview | None) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._spans.insert(i, (start, end, host))

    def map_window(
        self,
        window: Window,
        read: Callable[[Uc, int, int, object], int],
        write: Callable[[Uc, int, int, int, object], None],
    ) -> None:
        """Map ``window`` where nothing is mapped yet. MMIO callbacks get ``(window, base)`` as
        user data: the window offset of the access is ``base + offset``."""
        for start, end in self._gaps(window.da, window.da + window.size):
            off = start - window.da
            if window.ram is not None:
                host = window.ram[off : off + end - start]
                pinned = (ctypes.c_char * (end - start)).from_buffer(host)
                self._exports.append(pinned)
                self._uc.mem_map_ptr(start, end - start, UC_PROT_ALL, ctypes.addressof(pinned))
                self._add(start, end, host)
            else:
                where = (window, off)  # callbacks get offsets from the gap's start
                self._uc.mmio_map(start, end - start, read, where, write, where)
                self._add(start, end, None)

    def map_private(
        self, da: int, size: int, read: Callable[..., int], write: Callable[..., None]
    ) -> None:
        """Map a core-private MMIO page (the SCS)."""
        self._uc.mmio_map(da, size, read, None, write, None)
        self._add(da, da + size, None)

    def host(self, da: int, size: int) -> memoryview | None:
        """The host bytes at ``[da, da + size)`` if they are RAM mapped in one piece."""
        i = bisect.bisect_right(self._starts, da) - 1
        if i < 0:
            return None
        start, end, host = self._spans[i]
        if host is None or da + size > end:
            return None
        return host[da - start : da - start + size]

    def window_bytes(self, da: int) -> tuple[int, bytes] | None:
        """``(start, a copy of the bytes)`` of the RAM span mapped at ``da``."""
        i = bisect.bisect_right(self._starts, da) - 1
        if i < 0:
            return None
        start, end, host = self._spans[i]
        if host is None or da >= end:
            return None
        return start, bytes(host)

    def release(self) -> None:
        """Drop the pins on the host buffers (after the unicorn engine is gone)."""
        self._exports.clear()
        self._spans.clear()
        self._starts.clear()
