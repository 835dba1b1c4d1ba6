"""Turning a firmware image and its resource table into mapped, loaded processor memory.

Theory of operation (Linux ``rproc_fw_boot``): the table is parsed and validated from a
private copy (the *cached* table); DEVMEM entries are checked against the platform's allowlist
before anything is touched; carveouts are allocated and mapped at their device addresses and
the chosen da/pa written back into the cached table; segments are copied in by ``p_paddr``
(zero-filling ``memsz > filesz``); each rpmsg vdev gets its vrings, notify ids and buffer pool;
finally the cached table is copied over the loaded one, which from then on is the live table
the remote and the host share. :class:`LoadedImage` records every allocation so
:meth:`LoadedImage.release` undoes exactly what was done, also after a failure half-way.
"""

from __future__ import annotations

import contextlib
import logging

import attrs

from transports.errors import MemoryAccessError
from transports.virtio.constants import VIRTIO_ID_RPMSG
from transports.virtio.layout import default_buffer_count
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vdev import VdevView
from transports.virtio.vring import VringLayout

from .errors import BootError, MemoryMapError, ResourceTableError
from .firmware import FirmwareImage
from .memory import Allocation
from .platform import PlatformDriver
from .rsc_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    ResourceTable,
    Trace,
    Vdev,
    parse_resource_table,
    vdev_entry_view_offset,
    write_carveout_addresses,
    write_vring_da,
    write_vring_notifyid,
)

log = logging.getLogger("aioamp.remoteproc")

#: Bytes per rpmsg buffer in the pools the host allocates (Linux RPMSG_BUF_SIZE).
RPMSG_BUF_SIZE = 512


@attrs.define(eq=False)
class VdevResources:
    """What one rpmsg vdev got: its table entry, notify ids and buffer pool."""

    index: int
    entry: Vdev
    notifyids: tuple[int, ...]
    pool: Region
    view: VdevView | None = None


@attrs.define(eq=False)
class LoadedImage:
    """Everything a load allocated and mapped, in order, so it can be undone."""

    platform: PlatformDriver
    image: FirmwareImage | None
    memory: DeviceMemory
    table: ResourceTable | None = None
    cached_table: bytearray | None = None
    table_view: memoryview | None = None
    allocations: list[Allocation] = attrs.field(factory=list)
    mappings: list[tuple[int, int]] = attrs.field(factory=list)  # (da, size) given to map()
    regions: list[Region] = attrs.field(factory=list)
    vdevs: list[VdevResources] = attrs.field(factory=list)
    traces: list[tuple[Trace, memoryview]] = attrs.field(factory=list)

    # -- building ---------------------------------------------------------------------------
    def _map(self, da: int, alloc: Allocation, name: str) -> Region:
        self.platform.map(da, alloc.pa, alloc.size)
        self.mappings.append((da, alloc.size))
        region = self.memory.add(Region(da, alloc.mem, name))
        self.regions.append(region)
        return region

    def _allocate(
        self, size: int, *, name: str, pa: int | None = None, align: int = 4096, zero: bool = True
    ) -> Allocation:
        alloc = self.platform.physical.allocate(size, pa=pa, align=align, name=name, zero=zero)
        self.allocations.append(alloc)
        return alloc

    def release(self, *, unmap: bool = True) -> None:
        """Unmap and free everything (reverse order); safe to call twice.

        ``unmap=False`` (detach): the host lets go of its bookkeeping but leaves the
        processor's IOMMU as it is, since the core keeps running on that memory.
        """
        for region in reversed(self.regions):
            with contextlib.suppress(ValueError):
                self.memory.remove(region)
        if unmap:
            for da, size in reversed(self.mappings):
                self.platform.unmap(da, size)
        for alloc in reversed(self.allocations):
            self.platform.physical.free(alloc)
        for item in (self.regions, self.mappings, self.allocations, self.vdevs, self.traces):
            item.clear()
        self.table_view = None

    # -- steps ------------------------------------------------------------------------------
    def parse_table(self) -> None:
        image = self.image
        if image is None or image.resource_table is None:
            log.info(
                "%s: firmware has no resource table (no vdevs)",
                self.platform.name,
                extra={"processor": self.platform.name},
            )
            return
        self.cached_table = bytearray(image.resource_table.data)
        self.table = parse_resource_table(self.cached_table)

    def check_devmems(self) -> None:
        if self.table is None:
            return
        for entry in self.table.devmems:
            self.platform.check_devmem(entry.da, entry.pa, entry.len, entry.name)

    def handle_carveouts(self) -> None:
        table, cached = self.table, self.cached_table
        if table is None or cached is None:
            return
        view = memoryview(cached)
        for entry in table.carveouts:
            pa = None if entry.pa == FW_RSC_ADDR_ANY else entry.pa
            alloc = self._allocate(entry.len, pa=pa, name=entry.name or "carveout")
            da = alloc.pa if entry.da == FW_RSC_ADDR_ANY else entry.da
            try:
                self._map(da, alloc, entry.name or "carveout")
            except MemoryAccessError as exc:
                raise MemoryMapError(f"carveout {entry.name!r}: {exc}") from exc
            updated = write_carveout_addresses(view, entry, da, alloc.pa)
            self._replace(entry, updated)
        for dev in table.devmems:
            host_view = self.platform.map_devmem(dev.da, dev.pa, dev.len)
            self.mappings.append((dev.da, dev.len))
            if host_view is not None:
                region = self.memory.add(Region(dev.da, host_view, dev.name or "devmem"))
                self.regions.append(region)

    def _replace(self, old: Carveout | Vdev, new: Carveout | Vdev) -> None:
        assert self.table is not None
        entries = tuple(new if e is old else e for e in self.table.entries)
        self.table = attrs.evolve(self.table, entries=entries)

    def load_segments(self) -> None:
        assert self.image is not None
        for seg in self.image.segments:
            if seg.memsz == 0:
                continue
            try:
                dest = self.memory.view(seg.paddr, seg.memsz)
            except MemoryAccessError:
                raise MemoryMapError(
                    f"segment {seg.index} [{seg.paddr:#x}, +{seg.memsz:#x}) is outside the "
                    f"processor's memory"
                ) from None
            dest[: seg.filesz] = seg.data
            dest[seg.filesz :] = bytes(seg.memsz - seg.filesz)

    def handle_vdevs(self, first_notifyid: int = 0) -> None:
        table, cached = self.table, self.cached_table
        if table is None or cached is None:
            return
        view = memoryview(cached)
        notifyid = first_notifyid
        for index, entry in enumerate(table.vdevs):
            if entry.id != VIRTIO_ID_RPMSG:
                log.warning(
                    "%s: vdev %d has virtio id %d, not rpmsg: ignored",
                    *(self.platform.name, index, entry.id),
                    extra={"processor": self.platform.name, "vdev": index},
                )
                continue
            if entry.num_of_vrings < 2:
                raise ResourceTableError(
                    f"rpmsg vdev needs 2 vrings, has {entry.num_of_vrings}", offset=entry.offset
                )
            ids = []
            for i, ring in enumerate(entry.vrings):
                layout = VringLayout(ring.num, ring.align)
                if ring.da == FW_RSC_ADDR_ANY:
                    alloc = self._allocate(
                        layout.size, name=f"vdev{index}vring{i}", align=max(ring.align, 4096)
                    )
                    self._map(alloc.pa, alloc, f"vdev{index}vring{i}")
                    entry = write_vring_da(view, entry, i, alloc.pa, alloc.pa)
                elif not self.memory.contains(ring.da, layout.size):
                    raise MemoryMapError(
                        f"vdev {index} vring {i} at da {ring.da:#x} (+{layout.size:#x}) is "
                        "outside the processor's memory"
                    )
                entry = write_vring_notifyid(view, entry, i, notifyid)
                ids.append(notifyid)
                notifyid += 1
            nbufs = default_buffer_count(entry.vrings[0].num)
            alloc = self._allocate(nbufs * RPMSG_BUF_SIZE, name=f"vdev{index}buffer")
            pool = self._map(alloc.pa, alloc, f"vdev{index}buffer")
            self.vdevs.append(VdevResources(index, entry, tuple(ids), pool))

    def install_table(self) -> None:
        """Copy the cached table over the loaded one: from now on the live copy is shared."""
        image, cached = self.image, self.cached_table
        if image is None or image.resource_table is None or cached is None:
            return
        addr = image.resource_table.addr
        try:
            live = self.memory.view(addr, len(cached))
        except MemoryAccessError:
            raise MemoryMapError(
                f"resource table at da {addr:#x} (+{len(cached):#x}) is outside the "
                "processor's memory"
            ) from None
        live[:] = cached
        self.table_view = live
        for vdev in self.vdevs:
            vdev.view = VdevView(live[vdev_entry_view_offset(vdev.entry) :])

    def map_traces(self) -> None:
        if self.table is None:
            return
        for entry in self.table.traces:
            try:
                self.traces.append((entry, self.memory.view(entry.da, entry.len)))
            except MemoryAccessError:
                raise MemoryMapError(
                    f"trace {entry.name!r} at da {entry.da:#x} (+{entry.len:#x}) is outside "
                    "the processor's memory"
                ) from None

    def reload(self) -> None:
        """Recovery: copy the segments and the pristine table again into the same memory."""
        if self.image is None:
            raise BootError("nothing to reload: the processor was attached, not loaded")
        self.load_segments()
        for _entry, view in self.traces:
            view[:] = bytes(view.nbytes)
        self.install_table()


def load(platform: PlatformDriver, image: FirmwareImage) -> LoadedImage:
    """Perform the LOAD action; on any error everything done so far is released."""
    loaded = LoadedImage(platform, image, DeviceMemory(platform.internal_memory()))
    try:
        loaded.parse_table()
        loaded.check_devmems()
        loaded.handle_carveouts()
        loaded.load_segments()
        loaded.handle_vdevs()
        loaded.install_table()
        loaded.map_traces()
    except BaseException:
        loaded.release()
        raise
    return loaded


def attach_resources(platform: PlatformDriver) -> LoadedImage:
    """Perform the ATTACH action: adopt the memory of a processor that already runs.

    Nothing is loaded or zeroed: the live resource table comes from the platform, its carveouts
    and vrings (already assigned by whoever booted the core) are adopted at their physical
    addresses, and each rpmsg vdev gets a fresh buffer pool.
    """
    located = platform.loaded_table()
    if located is None:
        raise BootError(f"{platform.name}: the platform does not know the running table")
    _table_da, table_mem = located
    loaded = LoadedImage(platform, None, DeviceMemory(platform.internal_memory()))
    try:
        loaded.table = parse_resource_table(table_mem)
        loaded.check_devmems()
        for entry in loaded.table.carveouts:
            alloc = loaded._allocate(entry.len, pa=entry.pa, name=entry.name, zero=False)
            loaded._map(entry.da, alloc, entry.name or "carveout")
        notifyids = []
        for index, vdev in enumerate(loaded.table.vdevs):
            if vdev.id != VIRTIO_ID_RPMSG:
                continue
            for i, ring in enumerate(vdev.vrings):
                size = VringLayout(ring.num, ring.align).size
                if not loaded.memory.contains(ring.da, size):
                    alloc = loaded._allocate(size, pa=ring.pa, name=f"vdev{index}vring{i}")
                    loaded._map(ring.da, alloc, f"vdev{index}vring{i}")
                notifyids.append(ring.notifyid)
            nbufs = default_buffer_count(vdev.vrings[0].num)
            alloc = loaded._allocate(nbufs * RPMSG_BUF_SIZE, name=f"vdev{index}buffer")
            pool = loaded._map(alloc.pa, alloc, f"vdev{index}buffer")
            ids = tuple(ring.notifyid for ring in vdev.vrings)
            loaded.vdevs.append(VdevResources(index, vdev, ids, pool))
        loaded.table_view = table_mem
        for res in loaded.vdevs:
            res.view = VdevView(table_mem[vdev_entry_view_offset(res.entry) :])
        loaded.map_traces()
    except BaseException:
        loaded.release()
        raise
    return loaded
