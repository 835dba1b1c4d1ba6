"""The firmware resource table: parse, validate, build and patch in place (pure, no I/O).

Theory of operation: a remoteproc firmware image carries a ``.resource_table`` section that tells
the host what the remote core needs before it runs: memory to allocate (CARVEOUT), device memory
to map (DEVMEM), trace buffers to expose (TRACE) and virtio devices to create (VDEV, one per rpmsg
bus). Linux walks it in ``rproc_handle_resources()``; aioamp does the same in three steps:

1. :func:`parse_resource_table` turns the bytes into frozen attrs entries, each remembering the
   byte ``offset`` of its type word, and validates everything the remote side could get wrong.
   The peer is untrusted: every offset, count and length is bounds-checked before it is used.
2. The loader allocates carveouts and vrings, then writes the assigned addresses back *in place*
   in the table copy the remote will read (:func:`write_carveout_addresses`,
   :func:`write_vring_da`, :func:`write_vring_notifyid`), and wraps each VDEV body in a
   :class:`transports.virtio.vdev.VdevView` at :func:`vdev_entry_view_offset` for live negotiation.
3. :func:`build_resource_table` lays out a table from entries (simulated firmware, tests); it
   validates its own output with the parser, so it never emits a table the parser rejects.

Validation has two modes sharing one code path: :func:`parse_resource_table` raises the first
:class:`~remoteproc.errors.ResourceTableError` (in table order), while
:func:`inspect_resource_table` / :func:`validate_resource_table` collect every finding for an
``inspect`` command, skipping only the entries that cannot be decoded at all.

Decisions (where Linux is silent or lax):

* Notify ids (the VDEV ``notifyid`` and every vring ``notifyid``) share one namespace and must be
  unique across the table, except :data:`RSC_NOTIFY_ID_ANY` (0xFFFFFFFF, "host assigns"), which
  may repeat.
* Device-address ranges: carveouts and devmems must be pairwise disjoint; a trace buffer must be
  disjoint from every other trace and either disjoint from, or wholly inside, one carveout/devmem
  (TI IPC firmware puts its trace buffer inside its data carveout). Entries whose ``da`` is
  :data:`FW_RSC_ADDR_ANY` are placed later and skipped. A range may not wrap past 4 GiB.
* Zero-length carveouts, devmems and traces are rejected (nothing to map).
* Entries may not share bytes in the table (write-back into one would corrupt another).
* A vendor entry (types 128..512, inclusive as in Linux) spans from its type word to the next
  entry's offset (or the table end) and is kept opaque unless a vendor handler is registered.

Layouts (little-endian, include/linux/remoteproc.h) beyond those in :mod:`transports.virtio.vdev`::

    struct fw_rsc_carveout { u32 da; u32 pa; u32 len; u32 flags; u32 reserved; u8 name[32]; }
    struct fw_rsc_devmem   { u32 da; u32 pa; u32 len; u32 flags; u32 reserved; u8 name[32]; }
    struct fw_rsc_trace    { u32 da; u32 len; u32 reserved; u8 name[32]; }
"""

from __future__ import annotations

import bisect
import enum
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar, TypeAlias

import attrs

from transports.virtio.constants import ENDIAN, VIRTIO_ID_RPMSG
from transports.virtio.vdev import FW_RSC_VDEV, FW_RSC_VDEV_VRING, RSC_HDR, RSC_TABLE_HDR, VringInfo

from .errors import ResourceTableError

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


class ResourceType(enum.IntEnum):
    """``enum fw_resource_type`` (include/linux/remoteproc.h)."""

    CARVEOUT = 0
    DEVMEM = 1
    TRACE = 2
    VDEV = 3


#: First and last (inclusive) vendor-specific resource types (RSC_VENDOR_START / _END).
RSC_VENDOR_START = 128
RSC_VENDOR_END = 512
#: "Any address": the host chooses the da/pa and writes it back.
FW_RSC_ADDR_ANY = 0xFFFFFFFF
#: "Any notify id": the host assigns it; not subject to the uniqueness check.
RSC_NOTIFY_ID_ANY = 0xFFFFFFFF

#: struct fw_rsc_carveout, after the type word.
FW_RSC_CARVEOUT = struct.Struct(ENDIAN + "IIIII32s")
#: struct fw_rsc_devmem, after the type word (same layout as a carveout).
FW_RSC_DEVMEM = struct.Struct(ENDIAN + "IIIII32s")
#: struct fw_rsc_trace, after the type word.
FW_RSC_TRACE = struct.Struct(ENDIAN + "III32s")

_U32 = struct.Struct(ENDIAN + "I")
_DA_PA = struct.Struct(ENDIAN + "II")  # the leading {da, pa} of fw_rsc_carveout
_NAME_LEN = 32
_U32_LIMIT = 1 << 32
_MAX_VRING_NUM = 32768

# Field offsets inside the bodies (counted from the byte after the type word).
_CARVEOUT_LEN, _CARVEOUT_RESERVED, _CARVEOUT_NAME = 8, 16, 20
_TRACE_LEN, _TRACE_RESERVED, _TRACE_NAME = 4, 8, 12
_VDEV_NOTIFYID, _VDEV_CONFIG_LEN, _VDEV_NUM_VRINGS, _VDEV_RESERVED = 4, 16, 21, 22
_VRING_ALIGN, _VRING_NUM, _VRING_NOTIFYID, _VRING_PA = 4, 8, 12, 16


@attrs.frozen
class Carveout:
    """``fw_rsc_carveout``: physically contiguous memory the host allocates and maps at ``da``.

    ``offset`` (in every entry class) is the byte offset of the entry's type word in the table,
    None if not placed. It is metadata, not content: it takes no part in ``==``, so
    ``parse_resource_table(build_resource_table(e)).entries == e``.
    """

    type: ClassVar[int] = ResourceType.CARVEOUT
    da: int
    pa: int
    len: int
    flags: int = 0
    name: str = ""
    offset: int | None = attrs.field(default=None, kw_only=True, eq=False)


@attrs.frozen
class Devmem:
    """``fw_rsc_devmem``: existing physical memory (registers, SRAM) mapped at ``da``."""

    type: ClassVar[int] = ResourceType.DEVMEM
    da: int
    pa: int
    len: int
    flags: int = 0
    name: str = ""
    offset: int | None = attrs.field(default=None, kw_only=True, eq=False)


@attrs.frozen
class Trace:
    """``fw_rsc_trace``: a log buffer the remote writes at ``da`` and the host exposes."""

    type: ClassVar[int] = ResourceType.TRACE
    da: int
    len: int
    name: str = ""
    offset: int | None = attrs.field(default=None, kw_only=True, eq=False)


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
    offset: int | None = attrs.field(default=None, kw_only=True, eq=False)

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
    offset: int | None = attrs.field(default=None, kw_only=True, eq=False)


Entry: TypeAlias = Carveout | Devmem | Trace | Vdev | VendorEntry

#: A vendor handler gets the entry's raw bytes (after the type word, up to the next entry) and
#: returns a decoded value (stored as ``VendorEntry.parsed``) or raises ``ValueError`` (a
#: :class:`ResourceTableError` included) whose message becomes the finding's reason. It must be
#: pure: it also runs when :func:`build_resource_table` validates its output.
VendorHandler: TypeAlias = Callable[[bytes], object]

_VENDOR_HANDLERS: dict[int, VendorHandler] = {}


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
    if rsc_type in _VENDOR_HANDLERS and not replace:
        raise ValueError(f"vendor resource type {rsc_type} already has a handler")
    _VENDOR_HANDLERS[rsc_type] = handler


def unregister_vendor_handler(rsc_type: int) -> None:
    """Remove the handler for ``rsc_type`` (no error if there is none)."""
    _VENDOR_HANDLERS.pop(rsc_type, None)


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


# -- parsing --------------------------------------------------------------------------------------


class _Report:
    """Raise the first finding (strict) or collect them all (inspect): one validation path."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.findings: list[ResourceTableError] = []

    def __call__(self, reason: str, *, index: int | None = None, offset: int | None = None) -> None:
        err = ResourceTableError(reason, index=index, offset=offset)
        if self.strict:
            raise err
        self.findings.append(err)


@attrs.frozen
class _Region:
    kind: str
    index: int
    start: int
    end: int


def _decode_name(raw: bytes, report: _Report, index: int, offset: int) -> str:
    nul = raw.find(b"\0")
    if nul < 0:
        report(f"name has no NUL terminator within {_NAME_LEN} bytes", index=index, offset=offset)
        nul = len(raw)
    return raw[:nul].decode("utf-8", "surrogateescape")


class _Parser:
    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        strict: bool,
        handlers: Mapping[int, VendorHandler],
    ) -> None:
        self.mem = memoryview(data).cast("B")
        self.size = self.mem.nbytes
        self.report = _Report(strict)
        self.handlers = handlers
        self.spans: list[tuple[int, int, int]] = []  # (start, end, index) of entry bytes
        self.regions: list[_Region] = []
        self.notifyids: dict[int, str] = {}

    def run(self) -> ResourceTable:
        mem, size, report = self.mem, self.size, self.report
        if size < RSC_TABLE_HDR.size:
            report(
                f"table is {size} bytes, shorter than its {RSC_TABLE_HDR.size}-byte header",
                offset=0,
            )
            return ResourceTable(version=0, entries=())
        ver, num, res0, res1 = RSC_TABLE_HDR.unpack_from(mem, 0)
        if ver != 1:
            report(f"version {ver} is not supported (expected 1)", offset=0)
        for k, value in enumerate((res0, res1)):
            if value:
                report(f"header reserved[{k}] is {value:#x}, expected 0", offset=8 + 4 * k)
        array_end = RSC_TABLE_HDR.size + _U32.size * num
        if array_end > size:
            report(
                f"num {num}: the offset array would end at {array_end:#x}, "
                f"past the end of the {size}-byte table",
                offset=4,
            )
            return ResourceTable(version=ver, entries=())
        offsets = [_U32.unpack_from(mem, RSC_TABLE_HDR.size + 4 * i)[0] for i in range(num)]
        # Where each vendor entry ends: at the next entry that starts after it, or the table end.
        starts = sorted({o for o in offsets if array_end <= o <= size - RSC_HDR.size})
        entries: list[Entry] = []
        for i, off in enumerate(offsets):
            where = RSC_TABLE_HDR.size + 4 * i
            if off < array_end:
                report(
                    f"offset {off:#x} points into the header/offset array "
                    f"(entries start at {array_end:#x})",
                    index=i,
                    offset=where,
                )
                continue
            if off >= size:
                report(f"offset {off:#x} is outside the {size}-byte table", index=i, offset=where)
                continue
            if off + RSC_HDR.size > size:
                report("type word runs past the end of the table", index=i, offset=off)
                continue
            entry = self.entry(i, off, starts)
            if entry is not None:
                entries.append(entry)
        return ResourceTable(version=ver, entries=tuple(entries))

    # -- one entry --------------------------------------------------------------------------------
    def entry(self, i: int, off: int, starts: list[int]) -> Entry | None:
        (rtype,) = RSC_HDR.unpack_from(self.mem, off)
        body = off + RSC_HDR.size
        if rtype in (ResourceType.CARVEOUT, ResourceType.DEVMEM):
            return self.carveout_or_devmem(i, off, body, rtype)
        if rtype == ResourceType.TRACE:
            return self.trace(i, off, body)
        if rtype == ResourceType.VDEV:
            return self.vdev(i, off, body)
        if RSC_VENDOR_START <= rtype <= RSC_VENDOR_END:
            nxt = bisect.bisect_right(starts, off)
            end = starts[nxt] if nxt < len(starts) else self.size
            return self.vendor(i, off, rtype, bytes(self.mem[body:end]))
        self.report(
            f"unknown resource type {rtype} (Linux types are 0..3, vendor types "
            f"{RSC_VENDOR_START}..{RSC_VENDOR_END})",
            index=i,
            offset=off,
        )
        return None

    def fits(self, i: int, off: int, end: int, what: str) -> bool:
        """Whether the table holds bytes up to ``end`` (reports a truncated entry otherwise)."""
        if end > self.size:
            self.report(
                f"{what} runs past the end of the table ({end - off} bytes needed from "
                f"{off:#x}, {self.size - off} remain)",
                index=i,
                offset=off,
            )
            return False
        return True

    def claim(self, i: int, start: int, end: int) -> None:
        for s, e, j in self.spans:
            if start < e and s < end:
                self.report(
                    f"entry bytes [{start:#x}, {end:#x}) overlap entry {j} at [{s:#x}, {e:#x})",
                    index=i,
                    offset=start,
                )
                break
        self.spans.append((start, end, i))

    def region(self, kind: str, i: int, da: int, length: int, field_off: int) -> None:
        """Check a device-address range against earlier ones (see the module docstring)."""
        if da == FW_RSC_ADDR_ANY or length == 0:
            return
        if da + length > _U32_LIMIT:
            self.report(
                f"{kind} da range {da:#x}+{length:#x} wraps past 4 GiB", index=i, offset=field_off
            )
            return
        new = _Region(kind, i, da, da + length)
        for old in self.regions:
            if not (new.start < old.end and old.start < new.end):
                continue
            # A trace buffer may live inside a carveout/devmem (TI IPC does), never the reverse
            # of a partial overlap, and never across another trace.
            inner, outer = (new, old) if new.kind == "trace" else (old, new)
            if (
                inner.kind == "trace"
                and outer.kind != "trace"
                and outer.start <= inner.start
                and inner.end <= outer.end
            ):
                continue
            self.report(
                f"{kind} da range [{new.start:#x}, {new.end:#x}) overlaps {old.kind} entry "
                f"{old.index} at [{old.start:#x}, {old.end:#x})",
                index=i,
                offset=field_off,
            )
            break
        self.regions.append(new)

    def notifyid(self, owner: str, i: int, nid: int, field_off: int) -> None:
        """Notify ids share one namespace; RSC_NOTIFY_ID_ANY ("host assigns") may repeat."""
        if nid == RSC_NOTIFY_ID_ANY:
            return
        if nid in self.notifyids:
            self.report(
                f"{owner} notifyid {nid} is already used by {self.notifyids[nid]}",
                index=i,
                offset=field_off,
            )
            return
        self.notifyids[nid] = f"entry {i} {owner}"

    def carveout_or_devmem(
        self, i: int, off: int, body: int, rtype: int
    ) -> Carveout | Devmem | None:
        kind = "carveout" if rtype == ResourceType.CARVEOUT else "devmem"
        layout = FW_RSC_CARVEOUT if kind == "carveout" else FW_RSC_DEVMEM
        end = body + layout.size
        if not self.fits(i, off, end, f"{kind} entry"):
            return None
        self.claim(i, off, end)
        da, pa, length, flags, reserved, raw_name = layout.unpack_from(self.mem, body)
        if reserved:
            self.report(
                f"reserved is {reserved:#x}, expected 0", index=i, offset=body + _CARVEOUT_RESERVED
            )
        name = _decode_name(raw_name, self.report, i, body + _CARVEOUT_NAME)
        if length == 0:
            self.report(f"zero-length {kind}", index=i, offset=body + _CARVEOUT_LEN)
        self.region(kind, i, da, length, body)
        cls = Carveout if kind == "carveout" else Devmem
        return cls(da=da, pa=pa, len=length, flags=flags, name=name, offset=off)

    def trace(self, i: int, off: int, body: int) -> Trace | None:
        end = body + FW_RSC_TRACE.size
        if not self.fits(i, off, end, "trace entry"):
            return None
        self.claim(i, off, end)
        da, length, reserved, raw_name = FW_RSC_TRACE.unpack_from(self.mem, body)
        if reserved:
            self.report(
                f"reserved is {reserved:#x}, expected 0", index=i, offset=body + _TRACE_RESERVED
            )
        name = _decode_name(raw_name, self.report, i, body + _TRACE_NAME)
        if length == 0:
            self.report("zero-length trace", index=i, offset=body + _TRACE_LEN)
        self.region("trace", i, da, length, body)
        return Trace(da=da, len=length, name=name, offset=off)

    def vdev(self, i: int, off: int, body: int) -> Vdev | None:
        vrings_off = body + FW_RSC_VDEV.size
        if not self.fits(i, off, vrings_off, "vdev entry"):
            return None
        vid, nid, dfeat, gfeat, config_len, status, nvr, reserved = FW_RSC_VDEV.unpack_from(
            self.mem, body
        )
        config_off = vrings_off + FW_RSC_VDEV_VRING.size * nvr
        if config_off > self.size:
            self.report(
                f"num_of_vrings {nvr} needs {FW_RSC_VDEV_VRING.size * nvr} bytes of vrings, "
                f"{max(self.size - vrings_off, 0)} remain in the table",
                index=i,
                offset=body + _VDEV_NUM_VRINGS,
            )
            return None
        end = config_off + config_len
        if end > self.size:
            self.report(
                f"config_len {config_len} runs past the end of the table "
                f"({self.size - config_off} bytes remain)",
                index=i,
                offset=body + _VDEV_CONFIG_LEN,
            )
            return None
        self.claim(i, off, end)
        if reserved != b"\0\0":
            self.report(
                f"reserved bytes are {reserved.hex()}, expected 0000",
                index=i,
                offset=body + _VDEV_RESERVED,
            )
        self.notifyid("vdev", i, nid, body + _VDEV_NOTIFYID)
        vrings = []
        for j in range(nvr):
            base = vrings_off + FW_RSC_VDEV_VRING.size * j
            da, align, num, vnid, pa = FW_RSC_VDEV_VRING.unpack_from(self.mem, base)
            if num == 0 or num & (num - 1) or num > _MAX_VRING_NUM:
                self.report(
                    f"vring {j}: num {num} is not a power of two <= {_MAX_VRING_NUM}",
                    index=i,
                    offset=base + _VRING_NUM,
                )
            if align == 0 or align & (align - 1):
                self.report(
                    f"vring {j}: align {align:#x} is not a power of two",
                    index=i,
                    offset=base + _VRING_ALIGN,
                )
            self.notifyid(f"vring {j}", i, vnid, base + _VRING_NOTIFYID)
            vrings.append(VringInfo(da=da, align=align, num=num, notifyid=vnid, pa=pa))
        return Vdev(
            id=vid,
            notifyid=nid,
            dfeatures=dfeat,
            gfeatures=gfeat,
            status=status,
            vrings=tuple(vrings),
            config=bytes(self.mem[config_off:end]),
            offset=off,
        )

    def vendor(self, i: int, off: int, rtype: int, data: bytes) -> VendorEntry:
        self.claim(i, off, off + RSC_HDR.size + len(data))
        parsed: object = None
        handler = self.handlers.get(rtype)
        if handler is not None:
            try:
                parsed = handler(data)
            except ValueError as exc:
                reason = exc.reason if isinstance(exc, ResourceTableError) else str(exc)
                self.report(f"vendor type {rtype}: {reason}", index=i, offset=off)
        return VendorEntry(type=rtype, data=data, parsed=parsed, offset=off)


def parse_resource_table(
    data: bytes | bytearray | memoryview,
    *,
    vendor_handlers: Mapping[int, VendorHandler] | None = None,
) -> ResourceTable:
    """Parse and fully validate a resource table.

    Args:
        data: the table bytes (e.g. the ``.resource_table`` section, or a live memoryview).
        vendor_handlers: handlers by vendor type; None uses the process-wide registry.

    Raises:
        ResourceTableError: the first problem in table order (header, then entries by index),
            naming the entry index, the byte offset of the offending field and the reason.
    """
    handlers = _VENDOR_HANDLERS if vendor_handlers is None else vendor_handlers
    parser = _Parser(data, True, handlers)
    try:
        return parser.run()
    finally:
        parser.mem.release()  # a traceback must not pin the caller's bytearray


def inspect_resource_table(
    data: bytes | bytearray | memoryview,
    *,
    vendor_handlers: Mapping[int, VendorHandler] | None = None,
) -> tuple[ResourceTable, list[ResourceTableError]]:
    """Best-effort parse that collects every finding instead of raising (for ``inspect``).

    Entries that cannot be decoded at all (bad offset, truncated, unknown type) are left out of
    the returned table; entries with field-level problems are kept. The first finding is the
    error :func:`parse_resource_table` would raise.
    """
    handlers = _VENDOR_HANDLERS if vendor_handlers is None else vendor_handlers
    parser = _Parser(data, False, handlers)
    try:
        return parser.run(), parser.report.findings
    finally:
        parser.mem.release()


def validate_resource_table(
    data: bytes | bytearray | memoryview,
    *,
    vendor_handlers: Mapping[int, VendorHandler] | None = None,
) -> list[ResourceTableError]:
    """Every finding in the table; empty when :func:`parse_resource_table` would succeed."""
    return inspect_resource_table(data, vendor_handlers=vendor_handlers)[1]


# -- building -------------------------------------------------------------------------------------


def _encode_name(name: str, index: int, offset: int) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ResourceTableError(f"name {name!r} contains a NUL", index=index, offset=offset)
    if len(raw) >= _NAME_LEN:
        raise ResourceTableError(
            f"name {name!r} is {len(raw)} bytes; at most {_NAME_LEN - 1} fit with the NUL",
            index=index,
            offset=offset,
        )
    return raw


def _pack_entry(entry: Entry, index: int, offset: int) -> bytes:
    body = offset + RSC_HDR.size
    if isinstance(entry, Carveout | Devmem):
        layout = FW_RSC_CARVEOUT if isinstance(entry, Carveout) else FW_RSC_DEVMEM
        name = _encode_name(entry.name, index, body + _CARVEOUT_NAME)
        return RSC_HDR.pack(entry.type) + layout.pack(
            entry.da, entry.pa, entry.len, entry.flags, 0, name
        )
    if isinstance(entry, Trace):
        name = _encode_name(entry.name, index, body + _TRACE_NAME)
        return RSC_HDR.pack(entry.type) + FW_RSC_TRACE.pack(entry.da, entry.len, 0, name)
    if isinstance(entry, Vdev):
        if entry.num_of_vrings > 0xFF:
            raise ResourceTableError(
                f"{entry.num_of_vrings} vrings do not fit the u8 num_of_vrings",
                index=index,
                offset=body + _VDEV_NUM_VRINGS,
            )
        out = RSC_HDR.pack(entry.type) + FW_RSC_VDEV.pack(
            entry.id,
            entry.notifyid,
            entry.dfeatures,
            entry.gfeatures,
            entry.config_len,
            entry.status,
            entry.num_of_vrings,
            b"\0\0",
        )
        for v in entry.vrings:
            out += FW_RSC_VDEV_VRING.pack(v.da, v.align, v.num, v.notifyid, v.pa)
        return out + entry.config
    if isinstance(entry, VendorEntry):
        if not RSC_VENDOR_START <= entry.type <= RSC_VENDOR_END:
            raise ResourceTableError(
                f"vendor type {entry.type} is outside {RSC_VENDOR_START}..{RSC_VENDOR_END}",
                index=index,
                offset=offset,
            )
        return RSC_HDR.pack(entry.type) + entry.data
    raise TypeError(f"not a resource table entry: {entry!r}")


def build_resource_table(
    entries: Iterable[Entry],
    *,
    vendor_handlers: Mapping[int, VendorHandler] | None = None,
) -> bytes:
    """Lay out ``struct resource_table`` (version 1) holding ``entries`` in order.

    Entries follow the offset array back to back, each starting on a 4-byte boundary like the C
    structs a firmware would compile (a vendor payload whose length is not a multiple of 4 is
    zero-padded and parses back with the padding). ``offset`` fields of the inputs are ignored;
    ``parse_resource_table(result)`` gives the placed entries. Names are zero-padded to 32 bytes.

    Raises:
        ResourceTableError: a name does not fit with its NUL, a value does not fit its field, or
            the result fails validation (overlapping ranges, duplicate notify ids, ...).
    """
    items = list(entries)
    pos = RSC_TABLE_HDR.size + _U32.size * len(items)
    offsets: list[int] = []
    body = bytearray()
    for i, entry in enumerate(items):
        offsets.append(pos)
        try:
            raw = _pack_entry(entry, i, pos)
        except struct.error as exc:
            raise ResourceTableError(f"a field does not fit: {exc}", index=i, offset=pos) from exc
        raw += bytes(-len(raw) % 4)
        body += raw
        pos += len(raw)
    out = bytearray(RSC_TABLE_HDR.pack(1, len(items), 0, 0))
    for off in offsets:
        out += _U32.pack(off)
    out += body
    result = bytes(out)
    parse_resource_table(result, vendor_handlers=vendor_handlers)  # never emit what we reject
    return result


# -- in-place write-back --------------------------------------------------------------------------


def _check_u32(what: str, value: int) -> None:
    if not 0 <= value < _U32_LIMIT:
        raise ValueError(f"{what} {value:#x} does not fit in a u32")


def _placed(table_mem: memoryview, entry: Entry, size: int) -> int:
    """The entry's offset, after checking it lies in ``table_mem`` with the expected type word."""
    if entry.offset is None:
        raise ValueError(f"{type(entry).__name__} has no table offset (not from a parsed table)")
    off = entry.offset
    if off + size > table_mem.nbytes:
        raise ResourceTableError(
            f"entry of {size} bytes does not fit a {table_mem.nbytes}-byte table", offset=off
        )
    (rtype,) = RSC_HDR.unpack_from(table_mem, off)
    if rtype != entry.type:
        raise ResourceTableError(
            f"type word is {rtype}, expected {entry.type}: table and entry do not match",
            offset=off,
        )
    return off


def _vring_field(table_mem: memoryview, vdev: Vdev, index: int) -> int:
    if not 0 <= index < vdev.num_of_vrings:
        raise IndexError(f"vdev has {vdev.num_of_vrings} vrings, vring {index} does not exist")
    size = RSC_HDR.size + FW_RSC_VDEV.size + FW_RSC_VDEV_VRING.size * vdev.num_of_vrings
    off = _placed(table_mem, vdev, size)
    return off + RSC_HDR.size + FW_RSC_VDEV.size + FW_RSC_VDEV_VRING.size * index


def write_carveout_addresses(table_mem: memoryview, entry: Carveout, da: int, pa: int) -> Carveout:
    """Write the allocated ``da``/``pa`` into the carveout in place (Linux does the same so the
    remote learns where its memory went); returns the updated entry."""
    _check_u32("da", da)
    _check_u32("pa", pa)
    off = _placed(table_mem, entry, RSC_HDR.size + FW_RSC_CARVEOUT.size)
    _DA_PA.pack_into(table_mem, off + RSC_HDR.size, da, pa)
    return attrs.evolve(entry, da=da, pa=pa)


def write_vring_da(table_mem: memoryview, vdev_entry: Vdev, index: int, da: int, pa: int) -> Vdev:
    """Write the allocated ring address of vring ``index`` in place; returns the updated entry."""
    _check_u32("da", da)
    _check_u32("pa", pa)
    field = _vring_field(table_mem, vdev_entry, index)
    _U32.pack_into(table_mem, field, da)
    _U32.pack_into(table_mem, field + _VRING_PA, pa)
    vrings = list(vdev_entry.vrings)
    vrings[index] = attrs.evolve(vrings[index], da=da, pa=pa)
    return attrs.evolve(vdev_entry, vrings=tuple(vrings))


def write_vring_notifyid(
    table_mem: memoryview, vdev_entry: Vdev, index: int, notifyid: int
) -> Vdev:
    """Write a host-assigned notify id for vring ``index`` in place; returns the updated entry."""
    _check_u32("notifyid", notifyid)
    field = _vring_field(table_mem, vdev_entry, index)
    _U32.pack_into(table_mem, field + _VRING_NOTIFYID, notifyid)
    vrings = list(vdev_entry.vrings)
    vrings[index] = attrs.evolve(vrings[index], notifyid=notifyid)
    return attrs.evolve(vdev_entry, vrings=tuple(vrings))


def vdev_entry_view_offset(entry: Vdev) -> int:
    """Where the ``fw_rsc_vdev`` body starts (after the type word): wrap
    ``table_mem[vdev_entry_view_offset(e):]`` in :class:`transports.virtio.vdev.VdevView`."""
    if entry.offset is None:
        raise ValueError("Vdev has no table offset (not from a parsed table)")
    return entry.offset + RSC_HDR.size


# -- JSON -----------------------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    if attrs.has(type(value)):
        return attrs.asdict(value)  # type: ignore[arg-type]
    return repr(value)


def entry_to_dict(entry: Entry) -> dict[str, object]:
    """A JSON-ready dict with Linux field names (``type`` is "carveout", "devmem", ...)."""
    out: dict[str, object]
    if isinstance(entry, Carveout | Devmem):
        out = {
            "type": "carveout" if isinstance(entry, Carveout) else "devmem",
            "da": entry.da,
            "pa": entry.pa,
            "len": entry.len,
            "flags": entry.flags,
            "name": entry.name,
        }
    elif isinstance(entry, Trace):
        out = {"type": "trace", "da": entry.da, "len": entry.len, "name": entry.name}
    elif isinstance(entry, Vdev):
        out = {
            "type": "vdev",
            "id": entry.id,
            "notifyid": entry.notifyid,
            "dfeatures": entry.dfeatures,
            "gfeatures": entry.gfeatures,
            "config_len": entry.config_len,
            "status": entry.status,
            "num_of_vrings": entry.num_of_vrings,
            "vrings": [
                {"da": v.da, "align": v.align, "num": v.num, "notifyid": v.notifyid, "pa": v.pa}
                for v in entry.vrings
            ],
            "config": entry.config.hex(),
        }
    else:
        out = {"type": "vendor", "vendor_type": entry.type, "data": entry.data.hex()}
        if entry.parsed is not None:
            out["parsed"] = _jsonable(entry.parsed)
    out["offset"] = entry.offset
    return out


def table_to_dict(table: ResourceTable) -> dict[str, object]:
    """A JSON-ready dict of the whole table: ``ver``, ``num`` and ``entries``."""
    return {
        "ver": table.version,
        "num": len(table.entries),
        "entries": [entry_to_dict(e) for e in table.entries],
    }
