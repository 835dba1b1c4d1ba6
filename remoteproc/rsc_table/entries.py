"""The resource table's entries: their C layouts, frozen attrs classes and vendor handlers.

Layouts (little-endian, include/linux/remoteproc.h) of the entries remoteproc owns; the table
header, the type word and the VDEV entry (``fw_rsc_vdev`` with its ``fw_rsc_vdev_vring`` s, the
virtio config every transport exposes) are defined once, below, in :mod:`transports.virtio.vdev`::

    struct fw_rsc_carveout { u32 da; u32 pa; u32 len; u32 flags; u32 reserved; u8 name[32]; }
    struct fw_rsc_devmem   { u32 da; u32 pa; u32 len; u32 flags; u32 reserved; u8 name[32]; }
    struct fw_rsc_trace    { u32 da; u32 len; u32 reserved; u8 name[32]; }

Field offsets, for findings that name the byte at fault and for write-back in place, are
derived from the layouts (:func:`field_offsets`), never written out by hand.
"""

from __future__ import annotations

import enum
import re
import struct
from collections.abc import Callable
from typing import Any, ClassVar, TypeAlias

import attrs

from transports.virtio.constants import ENDIAN, RSC_VDEV
from transports.virtio.vdev import FW_RSC_VDEV, FW_RSC_VDEV_VRING, VringInfo

__all__ = [
    "FW_RSC_ADDR_ANY",
    "FW_RSC_CARVEOUT",
    "FW_RSC_DEVMEM",
    "FW_RSC_TRACE",
    "RSC_NOTIFY_ID_ANY",
    "RSC_VENDOR_END",
    "RSC_VENDOR_START",
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
    "field_offsets",
    "register_vendor_handler",
    "unregister_vendor_handler",
]


class ResourceType(enum.IntEnum):
    """``enum fw_resource_type`` (include/linux/remoteproc.h)."""

    CARVEOUT = 0
    DEVMEM = 1
    TRACE = 2
    VDEV = RSC_VDEV


#: First and last (inclusive) vendor-specific resource types (RSC_VENDOR_START / _END).
RSC_VENDOR_START = 128
RSC_VENDOR_END = 512
#: "Any address": the host chooses the da/pa and writes it back.
FW_RSC_ADDR_ANY = 0xFFFFFFFF
#: "Any notify id": the host assigns it; not subject to the uniqueness check.
RSC_NOTIFY_ID_ANY = 0xFFFFFFFF
#: Bytes of an entry's ``name``, its NUL included.
NAME_LEN = 32
#: One little-endian u32 (the offset array, fields written back in place), and its limit.
U32 = struct.Struct(ENDIAN + "I")
U32_LIMIT = 1 << 32

#: struct fw_rsc_carveout, after the type word.
FW_RSC_CARVEOUT = struct.Struct(f"{ENDIAN}IIIII{NAME_LEN}s")
#: struct fw_rsc_devmem, after the type word: the layout of a carveout.
FW_RSC_DEVMEM = FW_RSC_CARVEOUT
#: struct fw_rsc_trace, after the type word.
FW_RSC_TRACE = struct.Struct(f"{ENDIAN}III{NAME_LEN}s")

_FIELD = re.compile(r"(\d*)([a-zA-Z?])")


def field_offsets(layout: struct.Struct, names: str) -> dict[str, int]:
    """The byte offset of each field of ``layout``, by the space-separated ``names`` (one per
    field; ``32s`` is one field, ``3I`` three)."""
    fmt = layout.format
    done = fmt[0] if fmt[0] in "@=<>!" else ""
    offsets: list[int] = []
    for count, code in _FIELD.findall(fmt[len(done) :]):
        for item in [count + code] if code in "sp" else [code] * int(count or 1):
            if code != "x":
                offsets.append(struct.calcsize(done))
            done += item
    keys = names.split()
    if len(keys) != len(offsets):
        raise ValueError(f"{layout.format!r} has {len(offsets)} fields, not {len(keys)}")
    return dict(zip(keys, offsets, strict=True))


#: Where each field sits in an entry's body (counted from the byte after the type word).
MEMORY_FIELDS = field_offsets(FW_RSC_CARVEOUT, "da pa len flags reserved name")
TRACE_FIELDS = field_offsets(FW_RSC_TRACE, "da len reserved name")
VDEV_FIELDS = field_offsets(
    FW_RSC_VDEV, "id notifyid dfeatures gfeatures config_len status num_of_vrings reserved"
)
VRING_FIELDS = field_offsets(FW_RSC_VDEV_VRING, "da align num notifyid pa")


def _placement() -> Any:
    """The ``offset`` of every entry: where its type word sits in the table, None if not
    placed. It is metadata, not content: it takes no part in ``==``, so
    ``parse_resource_table(build_resource_table(e)).entries == e``."""
    return attrs.field(default=None, kw_only=True, eq=False)


@attrs.frozen
class MemoryEntry:
    """What a carveout and a devmem share: ``len`` bytes at device address ``da``, physical
    address ``pa`` (their layouts are the same)."""

    type: ClassVar[int]
    kind: ClassVar[str]
    da: int
    pa: int
    len: int
    flags: int = 0
    name: str = ""
    offset: int | None = _placement()


@attrs.frozen
class Carveout(MemoryEntry):
    """``fw_rsc_carveout``: physically contiguous memory the host allocates and maps at ``da``."""

    type: ClassVar[int] = ResourceType.CARVEOUT
    kind: ClassVar[str] = "carveout"


@attrs.frozen
class Devmem(MemoryEntry):
    """``fw_rsc_devmem``: existing physical memory (registers, SRAM) mapped at ``da``."""

    type: ClassVar[int] = ResourceType.DEVMEM
    kind: ClassVar[str] = "devmem"


@attrs.frozen
class Trace:
    """``fw_rsc_trace``: a log buffer the remote writes at ``da`` and the host exposes."""

    type: ClassVar[int] = ResourceType.TRACE
    da: int
    len: int
    name: str = ""
    offset: int | None = _placement()


@attrs.frozen
class Vdev:
    """``fw_rsc_vdev``: a virtio device (rpmsg is ``id`` 7) with its vrings and config space."""

    type: ClassVar[int] = ResourceType.VDEV
    id: int
    notifyid: int
    dfeatures: int
    gfeatures: int = 0
    status: int = 0
    vrings: tuple[VringInfo, ...] = ()
    config: bytes = b""
    offset: int | None = _placement()

    @property
    def config_len(self) -> int:
        return len(self.config)

    @property
    def num_of_vrings(self) -> int:
        return len(self.vrings)


@attrs.frozen
class VendorEntry:
    """A vendor resource (type 128..512), kept as raw bytes after the type word.

    ``parsed`` holds what a registered :data:`VendorHandler` returned (None without one); like
    ``offset`` it does not take part in equality.
    """

    type: int
    data: bytes
    parsed: object = attrs.field(default=None, kw_only=True, eq=False)
    offset: int | None = _placement()


Entry: TypeAlias = Carveout | Devmem | Trace | Vdev | VendorEntry

#: A vendor handler gets the entry's raw bytes (after the type word, up to the next entry) and
#: returns a decoded value (stored as ``VendorEntry.parsed``) or raises ``ValueError`` (a
#: :class:`ResourceTableError` included) whose message becomes the finding's reason. It must be
#: pure: it also runs when :func:`build_resource_table` validates its output.
VendorHandler: TypeAlias = Callable[[bytes], object]

VENDOR_HANDLERS: dict[int, VendorHandler] = {}


def register_vendor_handler(
    rsc_type: int, handler: VendorHandler, *, replace: bool = False
) -> None:
    """Install ``handler`` for vendor type ``rsc_type`` in the process-wide registry.

    Raises:
        ValueError: the type is outside 128..512, or already has a handler and not ``replace``.
    """
    if not RSC_VENDOR_START <= rsc_type <= RSC_VENDOR_END:
        raise ValueError(
            f"vendor resource type {rsc_type} is outside {RSC_VENDOR_START}..{RSC_VENDOR_END}"
        )
    if rsc_type in VENDOR_HANDLERS and not replace:
        raise ValueError(f"vendor resource type {rsc_type} already has a handler")
    VENDOR_HANDLERS[rsc_type] = handler


def unregister_vendor_handler(rsc_type: int) -> None:
    """Remove the handler for ``rsc_type`` (no error if there is none)."""
    VENDOR_HANDLERS.pop(rsc_type, None)


@attrs.frozen
class ResourceTable:
    """A parsed ``struct resource_table``: its version and entries in offset-array order."""

    version: int
    entries: tuple[Entry, ...]

    @property
    def carveouts(self) -> tuple[Carveout, ...]:
        return tuple(e for e in self.entries if isinstance(e, Carveout))

    @property
    def devmems(self) -> tuple[Devmem, ...]:
        return tuple(e for e in self.entries if isinstance(e, Devmem))

    @property
    def traces(self) -> tuple[Trace, ...]:
        return tuple(e for e in self.entries if isinstance(e, Trace))

    @property
    def vdevs(self) -> tuple[Vdev, ...]:
        return tuple(e for e in self.entries if isinstance(e, Vdev))

    @property
    def vendor_entries(self) -> tuple[VendorEntry, ...]:
        return tuple(e for e in self.entries if isinstance(e, VendorEntry))
