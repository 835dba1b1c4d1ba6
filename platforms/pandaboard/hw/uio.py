"""Linux UIO devices: finding them, waiting for their interrupts, mapping their memory.

Theory of operation (``Documentation/driver-api/uio-howto.rst``): a device bound to
``uio_pdrv_genirq`` appears as ``/dev/uioN`` with ``/sys/class/uio/uioN/name`` and one
``maps/mapM/{name,addr,size,offset}`` directory per memory region. Reading 4 bytes from the
device blocks until the next interrupt and returns the total interrupt count (native-endian
u32); the kernel masks the line when it fires, and writing the 4-byte value 1 unmasks it. The
count lets us see interrupts we were too slow to read: a jump of more than one. We wait with the
event loop's reader (:func:`anyio.wait_readable`), so no thread and no polling loop is needed.
Map ``M`` is mmapped at file offset ``M * pagesize``.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs

from .errors import UioError

DEFAULT_SYSFS = "/sys/class/uio"
_U32 = struct.Struct("=I")  # UIO reads/writes are native-endian 32-bit integers

Opener = Callable[[str], int]


def _default_opener(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)


@attrs.frozen
class UioMap:
    """``/sys/class/uio/uioN/maps/mapM``."""

    index: int
    name: str
    addr: int
    size: int
    offset: int


def find_uio(name: str, sysfs: str | os.PathLike[str] = DEFAULT_SYSFS) -> str:
    """The ``uioN`` whose ``name`` file reads ``name`` (e.g. ``"mailbox"``).

    Raises:
        UioError: no such device (is the overlay loaded, the driver bound?).
    """
    root = Path(sysfs)
    found = []
    try:
        entries = sorted(root.iterdir(), key=lambda p: (len(p.name), p.name))
    except OSError as exc:
        raise UioError(f"cannot list {root}: {exc}") from exc
    for entry in entries:
        try:
            if (entry / "name").read_text().strip() == name:
                return entry.name
        except OSError:
            continue
        found.append(entry.name)
    raise UioError(f"no UIO device named {name!r} under {root} (have: {found or 'none'})")


def _read_int(path: Path) -> int:
    return int(path.read_text().strip(), 0)


def uio_maps(device: str, sysfs: str | os.PathLike[str] = DEFAULT_SYSFS) -> list[UioMap]:
    """The memory maps of ``device`` (``uioN``), in index order."""
    maps_dir = Path(sysfs) / device / "maps"
    out: list[UioMap] = []
    if not maps_dir.is_dir():
        return out
    for entry in maps_dir.iterdir():
        if not entry.name.startswith("map") or not entry.name[3:].isdigit():
            continue
        try:
            name_file = entry / "name"
            name = name_file.read_text().strip() if name_file.exists() else ""
            out.append(
                UioMap(
                    index=int(entry.name[3:]),
                    name=name,
                    addr=_read_int(entry / "addr"),
                    size=_read_int(entry / "size"),
                    offset=_read_int(entry / "offset") if (entry / "offset").exists() else 0,
                )
            )
        except (OSError, ValueError) as exc:
            raise UioError(f"{entry}: unreadable map description: {exc}") from exc
    return sorted(out, key=lambda m: m.index)


class MmapWindow:
    """A register window over an mmap (a UIO map): single 32-bit accesses via ctypes."""

    def __init__(self, mapping: mmap.mmap, start: int, size: int) -> None:
        self._mapping = mapping
        self._start = start
        self.size = size

    def _at(self, offset: int, length: int) -> int:
        if offset < 0 or offset + length > self.size or offset % min(length, 4):
            raise UioError(f"register offset {offset:#x} outside or misaligned in the map")
        return self._start + offset

    def read32(self, offset: int) -> int:
        return int(ctypes.c_uint32.from_buffer(self._mapping, self._at(offset, 4)).value)

    def write32(self, offset: int, value: int) -> None:
        ctypes.c_uint32.from_buffer(self._mapping, self._at(offset, 4)).value = value

    def read(self, offset: int, length: int) -> bytes:
        start = self._at(offset, 1)
        self._at(offset, length)
        return bytes(self._mapping[start : start + length])

    def write(self, offset: int, data: bytes) -> None:
        start = self._at(offset, 1)
        self._at(offset, len(data))
        self._mapping[start : start + len(data)] = data

    def close(self) -> None:
        self._mapping.close()


class UioDevice:
    """One opened UIO device.

    Args:
        path: the device node (``/dev/uioN``).
        opener: opens ``path`` and returns a file descriptor (the model injects a fake).
        sysfs: where ``uioN/maps`` are described.
    """

    def __init__(
        self,
        path: str,
        *,
        opener: Opener | None = None,
        sysfs: str | os.PathLike[str] = DEFAULT_SYSFS,
    ) -> None:
        self.path = path
        self.sysfs = sysfs
        try:
            self.fd = (opener or _default_opener)(path)
        except OSError as exc:
            raise UioError(f"cannot open {path}: {exc} (is your user in its group?)") from exc
        with contextlib.suppress(OSError):
            os.set_blocking(self.fd, False)
        self.count: int | None = None  # last event count read
        self.interrupts = 0
        self.missed = 0

    @classmethod
    def by_name(
        cls,
        name: str,
        *,
        sysfs: str | os.PathLike[str] = DEFAULT_SYSFS,
        dev: str | os.PathLike[str] = "/dev",
        opener: Opener | None = None,
    ) -> UioDevice:
        """Open the UIO device whose sysfs ``name`` is ``name``."""
        device = find_uio(name, sysfs)
        return cls(str(Path(dev) / device), opener=opener, sysfs=sysfs)

    async def wait(self) -> int:
        """Wait for the next interrupt; returns the kernel's event count. A jump of more
        than one adds the interrupts we did not see to :attr:`missed`."""
        while True:
            try:
                data = os.read(self.fd, 4)
            except BlockingIOError:
                await anyio.wait_readable(self.fd)
                continue
            except OSError as exc:
                raise UioError(f"{self.path}: read failed: {exc}") from exc
            if len(data) != 4:
                raise UioError(f"{self.path}: short read of {len(data)} bytes (device gone?)")
            count: int = _U32.unpack(data)[0]
            if self.count is not None:
                delta = (count - self.count) & 0xFFFF_FFFF
                if delta > 1:
                    self.missed += delta - 1
            self.count = count
            self.interrupts += 1
            return count

    def unmask(self) -> None:
        """Re-enable the interrupt (``irqcontrol``: write the 4-byte value 1)."""
        self._control(1)

    def mask(self) -> None:
        self._control(0)

    def _control(self, value: int) -> None:
        try:
            os.write(self.fd, _U32.pack(value))
        except OSError as exc:
            raise UioError(f"{self.path}: irqcontrol write failed: {exc}") from exc

    def maps(self) -> list[UioMap]:
        return uio_maps(Path(self.path).name, self.sysfs)

    def map(self, index: int) -> MmapWindow:
        """mmap map ``index`` (file offset ``index * pagesize``) as a register window."""
        known = {m.index: m for m in self.maps()}
        if index not in known:
            raise UioError(f"{self.path}: no map {index} (have {sorted(known)})")
        desc = known[index]
        length = desc.offset + desc.size
        length = -(-length // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            mapping = mmap.mmap(self.fd, length, offset=index * mmap.PAGESIZE)
        except OSError as exc:
            raise UioError(f"{self.path}: cannot mmap map {index}: {exc}") from exc
        return MmapWindow(mapping, desc.offset, desc.size)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
