"""A fake OMAP4 physical address space: register models plus file-backed RAM.

Theory of operation: :class:`ModelBus` implements :class:`~platforms.pandaboard.hw.PhysicalBus`.
Register ranges are served by device models (anything with ``read32`` / ``write32`` taking an
offset); every host register write is recorded in :attr:`ModelBus.writes` so tests can assert
what the driver did, or that it did nothing. Register windows refuse slice access, as the
driver must never use it. RAM is a sparse temporary file opened through python-periphery's
``MMIO`` at the physical offset, exactly as ``/dev/mem`` would be on the board.

Other bus masters (an emulated core, :mod:`platforms.pandaboard.model.port`) reach the same
devices through :meth:`ModelBus.register_page`, from their own threads: every register access,
the driver's and theirs, is made under :attr:`ModelBus.lock`, one access at a time, as the
interconnect serialises them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from typing import Protocol

import attrs

from platforms.pandaboard.hw import DevMemBus, RegisterWindow


class ModelError(RuntimeError):
    """The driver touched the model in a way the hardware would fault on."""


class RegisterDevice(Protocol):
    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...


@attrs.frozen
class _Mapping:
    base: int
    size: int
    device: RegisterDevice
    name: str


class _Window:
    """What the driver gets from :meth:`ModelBus.map`: 32-bit accesses only, recorded."""

    def __init__(self, bus: ModelBus, mapping: _Mapping, phys: int, size: int) -> None:
        self._bus, self._mapping, self._phys, self._size = bus, mapping, phys, size

    def _offset(self, offset: int) -> int:
        if offset % 4 or not 0 <= offset < self._size:
            raise ModelError(f"{self._mapping.name}: bad register offset {offset:#x}")
        return self._phys - self._mapping.base + offset

    def read32(self, offset: int) -> int:
        with self._bus.lock:
            return self._mapping.device.read32(self._offset(offset)) & 0xFFFF_FFFF

    def write32(self, offset: int, value: int) -> None:
        off = self._offset(offset)
        with self._bus.lock:
            self._bus.writes.append((self._phys + offset, value & 0xFFFF_FFFF))
            self._mapping.device.write32(off, value & 0xFFFF_FFFF)

    def read(self, offset: int, length: int) -> bytes:
        raise ModelError(f"{self._mapping.name}: registers are read 32 bits at a time")

    def write(self, offset: int, data: bytes) -> None:
        raise ModelError(f"{self._mapping.name}: registers are written 32 bits at a time")


class _Page:
    """One 4 KiB page of registers for another bus master: 32-bit accesses by page offset,
    dispatched to the device covering it; nothing there is a :class:`ModelError`."""

    def __init__(self, bus: ModelBus, page: int, mappings: list[_Mapping]) -> None:
        self._bus, self._page, self._mappings = bus, page, mappings

    def _find(self, offset: int) -> tuple[RegisterDevice, int]:
        pa = self._page + offset
        for m in self._mappings:
            if m.base <= pa < m.base + m.size:
                return m.device, pa - m.base
        raise ModelError(f"no device answers at pa {pa:#010x}")

    def read32(self, offset: int) -> int:
        with self._bus.lock:
            device, off = self._find(offset)
            return device.read32(off) & 0xFFFF_FFFF

    def write32(self, offset: int, value: int) -> None:
        with self._bus.lock:
            device, off = self._find(offset)
            device.write32(off, value & 0xFFFF_FFFF)


class ModelBus:
    """Physical address space of the model.

    Args:
        ram_base, ram_size: the DDR range backed by the file (the reserved window).
        path: the backing file; a sparse temporary file by default, removed by :meth:`close`.
    """

    def __init__(self, ram_base: int, ram_size: int, path: str | None = None) -> None:
        self.ram_base, self.ram_size = ram_base, ram_size
        self._owns_file = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="aioamp-omap4-ram-")
            os.close(fd)
        self.path = path
        with open(path, "r+b") as f:  # sparse: only touched pages use space
            f.truncate(max(os.path.getsize(path), ram_base + ram_size))
        self._ram = DevMemBus(path)
        self._devices: list[_Mapping] = []
        self.writes: list[tuple[int, int]] = []
        self._remote: memoryview | None = None
        #: Serialises register accesses of the driver and of other bus masters (reentrant:
        #: a register write may reset a core model that then takes it again).
        self.lock = threading.RLock()

    def add_device(self, base: int, size: int, device: RegisterDevice, name: str) -> None:
        for other in self._devices:
            if base < other.base + other.size and other.base < base + size:
                raise ModelError(f"{name} overlaps {other.name}")
        self._devices.append(_Mapping(base, size, device, name))

    def map(self, phys: int, size: int) -> RegisterWindow:
        for m in self._devices:
            if m.base <= phys and phys + size <= m.base + m.size:
                return _Window(self, m, phys, size)
        raise ModelError(f"no modelled device at [{phys:#x}, +{size:#x})")

    def map_memory(self, phys: int, size: int) -> memoryview:
        if not (self.ram_base <= phys and phys + size <= self.ram_base + self.ram_size):
            raise ModelError(f"[{phys:#x}, +{size:#x}) is not modelled RAM")
        return self._ram.map_memory(phys, size)

    def ram_view(self, phys: int, size: int) -> memoryview:
        """A view through a second mapping of the same RAM file: what a modelled bus master
        (the remote core) sees; never the host's own mapping."""
        if self._remote is None:
            self._remote = self.map_memory(self.ram_base, self.ram_size)
        if not (self.ram_base <= phys and phys + size <= self.ram_base + self.ram_size):
            raise ModelError(f"[{phys:#x}, +{size:#x}) is not modelled RAM")
        off = phys - self.ram_base
        return self._remote[off : off + size]

    def register_page(self, pa: int) -> _Page | None:
        """The registers of the 4 KiB page at ``pa`` as another bus master reaches them, or
        None when no device answers there. Accesses are not recorded in :attr:`writes` (those
        are the driver's)."""
        page = pa & ~0xFFF
        found = [m for m in self._devices if m.base < page + 0x1000 and page < m.base + m.size]
        return _Page(self, page, found) if found else None

    def is_ram(self, pa: int, size: int) -> bool:
        return self.ram_base <= pa and pa + size <= self.ram_base + self.ram_size

    def writes_to(self, pa: int) -> list[int]:
        return [v for a, v in self.writes if a == pa]

    def close(self) -> None:
        if self._owns_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
