"""Shared memory addressed by device address.

Theory of operation: the remote core sees memory at *device addresses* (da); the host holds it
as Python buffers. A :class:`DeviceMemory` is a sorted set of non-overlapping regions, each a
``(da, memoryview)`` pair; :meth:`DeviceMemory.view` turns a (da, length) range into a zero-copy
memoryview after checking that the whole range lies inside one region. Every address that came
from the peer goes through here, so nothing can read or write outside the shared buffers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import attrs

from ..errors import MemoryAccessError


@attrs.frozen
class Region:
    """One contiguous window of device memory.

    Attributes:
        da: device address of the first byte.
        mem: the backing bytes (writable memoryview of format ``B``).
        name: a label used in error messages.
    """

    da: int
    mem: memoryview
    name: str = ""

    @property
    def size(self) -> int:
        return self.mem.nbytes

    @property
    def end(self) -> int:
        """One past the last device address."""
        return self.da + self.mem.nbytes

    def contains(self, da: int, length: int) -> bool:
        start = self.da  # checked once per received buffer: no property call here
        return length >= 0 and start <= da and da + length <= start + self.mem.nbytes


class DeviceMemory:
    """A bounds-checked map from device addresses to host memory."""

    def __init__(self, regions: list[Region] | None = None) -> None:
        self._regions: list[Region] = []
        self._starts: list[int] = []
        for region in regions or []:
            self.add(region)

    def add(self, region: Region) -> Region:
        """Add a region; overlapping an existing one is an error."""
        mem = region.mem
        if mem.format != "B" or mem.ndim != 1:
            mem = mem.cast("B")
            region = attrs.evolve(region, mem=mem)
        if region.da < 0 or region.size == 0:
            raise MemoryAccessError(f"region {region.name!r}: empty or negative address")
        for other in self._regions:
            if region.da < other.end and other.da < region.end:
                raise MemoryAccessError(
                    f"region {region.name!r} [{region.da:#x}, {region.end:#x}) overlaps "
                    f"{other.name!r} [{other.da:#x}, {other.end:#x})"
                )
        i = bisect.bisect(self._starts, region.da)
        self._regions.insert(i, region)
        self._starts.insert(i, region.da)
        return region

    def remove(self, region: Region) -> None:
        i = self._regions.index(region)
        del self._regions[i]
        del self._starts[i]

    def __iter__(self) -> Iterator[Region]:
        return iter(self._regions)

    def find(self, da: int, length: int = 1) -> Region | None:
        """The region holding all of ``[da, da + length)``, or None."""
        i = bisect.bisect(self._starts, da) - 1
        if i < 0:
            return None
        region = self._regions[i]
        return region if region.contains(da, length) else None

    def contains(self, da: int, length: int) -> bool:
        return self.find(da, length) is not None

    def view(self, da: int, length: int) -> memoryview:
        """A zero-copy view of ``[da, da + length)``.

        Raises:
            MemoryAccessError: the range is not entirely inside one region.
        """
        region = self.find(da, length)
        if region is None or length < 0:
            raise MemoryAccessError(
                f"device range [{da:#x}, +{length:#x}) is outside shared memory"
            )
        off = da - region.da
        return region.mem[off : off + length]
