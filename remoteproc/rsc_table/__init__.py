"""The firmware resource table: parse, validate, build and patch in place (pure, no I/O).

Theory of operation: a remoteproc firmware image carries a ``.resource_table`` section that tells
the host what the remote core needs before it runs: memory to allocate (CARVEOUT), device memory
to map (DEVMEM), trace buffers to expose (TRACE) and virtio devices to create (VDEV, one per rpmsg
bus). Linux walks it in ``rproc_handle_resources()``; aioamp does the same in three steps:

1. :func:`parse_resource_table` (:mod:`.parse`) turns the bytes into frozen attrs entries
   (:mod:`.entries`), each remembering the byte ``offset`` of its type word, and validates
   everything the remote side could get wrong.
2. The loader allocates carveouts and vrings and writes the assigned addresses back in place
   (:mod:`.build`), then negotiates through a :class:`transports.virtio.vdev.VdevView` of each VDEV.
3. :func:`build_resource_table` (:mod:`.build`) lays out a table from entries.

Each ``fw_rsc_*`` layout is defined once: the carveout, devmem, trace and vendor entries in
:mod:`.entries`, the table header and the VDEV entry (the virtio config every transport
exposes) in :mod:`transports.virtio.vdev`, which this package imports from below.

Decisions (where Linux is silent or lax): the table-wide rules are in :mod:`.rules`;
zero-length carveouts, devmems and traces are rejected (nothing to map); a vendor entry
(types 128..512, inclusive as in Linux) spans from its type word to the next entry's offset
(or the table end) and is kept opaque unless a vendor handler is registered.
"""

from transports.virtio.constants import VIRTIO_ID_RPMSG

from .build import (
    build_resource_table,
    vdev_entry_view_offset,
    write_carveout_addresses,
    write_vring_da,
    write_vring_notifyid,
)
from .entries import (
    FW_RSC_ADDR_ANY,
    FW_RSC_CARVEOUT,
    FW_RSC_DEVMEM,
    FW_RSC_TRACE,
    RSC_NOTIFY_ID_ANY,
    RSC_VENDOR_END,
    RSC_VENDOR_START,
    Carveout,
    Devmem,
    Entry,
    MemoryEntry,
    ResourceTable,
    ResourceType,
    Trace,
    Vdev,
    VendorEntry,
    VendorHandler,
    register_vendor_handler,
    unregister_vendor_handler,
)
from .export import entry_to_dict, table_to_dict
from .parse import inspect_resource_table, parse_resource_table, validate_resource_table

__all__ = [
    "FW_RSC_ADDR_ANY",
    "FW_RSC_CARVEOUT",
    "FW_RSC_DEVMEM",
    "FW_RSC_TRACE",
    "RSC_NOTIFY_ID_ANY",
    "RSC_VENDOR_END",
    "RSC_VENDOR_START",
    "VIRTIO_ID_RPMSG",
    "Carveout",
    "Devmem",
    "Entry",
    "MemoryEntry",
    "ResourceTable",
    "ResourceType",
    "Trace",
    "Vdev",
    "VendorEntry",
    "VendorHandler",
    "build_resource_table",
    "entry_to_dict",
    "inspect_resource_table",
    "parse_resource_table",
    "register_vendor_handler",
    "table_to_dict",
    "unregister_vendor_handler",
    "validate_resource_table",
    "vdev_entry_view_offset",
    "write_carveout_addresses",
    "write_vring_da",
    "write_vring_notifyid",
]
