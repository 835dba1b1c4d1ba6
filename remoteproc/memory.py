"""Host memory for remote processors: carveout allocation and the processor's memory map.

Theory of operation: a platform owns one or more :class:`PhysicalMemory` windows (reserved
DDR on a board, a bytearray in the simulator) from which carveouts, vrings and rpmsg buffer
pools are allocated first-fit. Each allocation is then *mapped* at a device address in the
processor's :class:`~transports.virtio.memory.DeviceMemory`, the da -> host view both the loader and
the rpmsg bus use (the platform programs its IOMMU to match). Everything is released in
reverse order on shutdown or on a failed boot, so nothing is left behind.
"""

from __future__ import annotations

import bisect

import attrs

from .errors import MemoryMapError


@attrs.frozen
class Allocation:
    """A block of physical memory: ``pa`` and its host view."""

    pa: int
    mem: memoryview
    name: str

    @property
    def size(self) -> int:
        return self.mem.nbytes


class PhysicalMemory:
    """A window of host-physical memory with a first-fit allocator.

    Args:
        base_pa: physical address of ``mem[0]``.
        mem: the backing bytes (a bytearray for the simulator, an mmap of /dev/mem on a board).
        name: label for errors.
    """

    def __init__(self, base_pa: int, mem: memoryview | bytearray, name: str = "ddr") -> None:
        view = memoryview(mem).cast("B") if not isinstance(mem, memoryview) else mem.cast("B")
        self.base_pa = base_pa
        self.mem = view
        self.name = name
        self._starts: list[int] = []  # sorted offsets of live allocations
        self._sizes: dict[int, int] = {}

    @property
    def size(self) -> int:
        return self.mem.nbytes

    @property
    def in_use(self) -> int:
        """Bytes currently allocated (for leak checks)."""
        return sum(self._sizes.values())

    def contains(self, pa: int, size: int) -> bool:
        return self.base_pa <= pa and pa + size <= self.base_pa + self.size

    def _free_at(self, off: int, size: int) -> bool:
        i = bisect.bisect_right(self._starts, off)
        if i > 0:
            prev = self._starts[i - 1]
            if prev + self._sizes[prev] > off:
                return False
        return not (i < len(self._starts) and self._starts[i] < off + size)

    def allocate(
        self,
        size: int,
        *,
        align: int = 4096,
        pa: int | None = None,
        name: str = "",
        zero: bool = True,
    ) -> Allocation:
        """Allocate ``size`` bytes (zeroed unless ``zero`` is False, as when adopting memory
        a running processor already uses), at ``pa`` if given, else the first fit.

        Raises:
            MemoryMapError: no room, or ``pa`` is outside the window or taken.
        """
        if size <= 0:
            raise MemoryMapError(f"{name or 'allocation'}: size {size} must be positive")
        if pa is not None:
            if not self.contains(pa, size):
                raise MemoryMapError(
                    f"{name}: [{pa:#x}, +{size:#x}) is outside {self.name} "
                    f"[{self.base_pa:#x}, +{self.size:#x})"
                )
            off = pa - self.base_pa
            if not self._free_at(off, size):
                raise MemoryMapError(f"{name}: physical range at {pa:#x} is already allocated")
        else:
            found: int | None = None
            candidate = 0
            for start in [*self._starts, self.size]:
                aligned = -(-(self.base_pa + candidate) // align) * align - self.base_pa
                if aligned + size <= start:
                    found = aligned
                    break
                if start < self.size:
                    candidate = max(candidate, start + self._sizes[start])
            if found is None:
                raise MemoryMapError(
                    f"{name}: cannot allocate {size:#x} bytes in {self.name} "
                    f"({self.size - self.in_use:#x} free, fragmented or too small)"
                )
            off = found
        bisect.insort(self._starts, off)
        self._sizes[off] = size
        view = self.mem[off : off + size]
        if zero:
            view[:] = bytes(size)
        return Allocation(self.base_pa + off, view, name)

    def free(self, alloc: Allocation) -> None:
        off = alloc.pa - self.base_pa
        # Same pa and size is not enough: two windows may sit at the same physical address
        # (two simulators), so the view must also come from this window's buffer.
        if self._sizes.get(off) != alloc.size or alloc.mem.obj is not self.mem.obj:
            raise MemoryMapError(f"{alloc.name}: not an allocation of {self.name}")
        del self._sizes[off]
        self._starts.remove(off)
