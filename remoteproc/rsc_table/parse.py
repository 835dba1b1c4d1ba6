"""Parsing and validating a resource table: every finding with its entry index and byte offset.

Validation has two modes sharing one code path: :func:`parse_resource_table` raises the first
:class:`~remoteproc.errors.ResourceTableError` (in table order), while
:func:`inspect_resource_table` / :func:`validate_resource_table` collect every finding for an
``inspect`` command, skipping only the entries that cannot be decoded at all. The peer is
untrusted: every offset, count and length is bounds-checked before it is used. The rules that
span entries (shared bytes, overlapping ranges, notify ids) are :mod:`.rules`.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TypeVar

from transports.virtio.constants import MAX_VRING_NUM
from transports.virtio.vdev import FW_RSC_VDEV, FW_RSC_VDEV_VRING, RSC_HDR, RSC_TABLE_HDR, VringInfo

from ..errors import ResourceTableError
from .entries import (
    FW_RSC_CARVEOUT,
    FW_RSC_TRACE,
    MEMORY_FIELDS,
    NAME_LEN,
    RSC_VENDOR_END,
    RSC_VENDOR_START,
    TRACE_FIELDS,
    U32,
    VDEV_FIELDS,
    VENDOR_HANDLERS,
    VRING_FIELDS,
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
)
from .rules import Report, TableRules

__all__ = ["inspect_resource_table", "parse_resource_table", "validate_resource_table"]

_M = TypeVar("_M", bound=MemoryEntry)


def _decode_name(raw: bytes, report: Report, index: int, offset: int) -> str:
    nul = raw.find(b"\0")
    if nul < 0:
        report(f"name has no NUL terminator within {NAME_LEN} bytes", index=index, offset=offset)
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
        self.report = Report(strict)
        self.handlers = handlers
        self.rules = TableRules(self.report)

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
        array_end = RSC_TABLE_HDR.size + U32.size * num
        if array_end > size:
            report(
                f"num {num}: the offset array would end at {array_end:#x}, "
                f"past the end of the {size}-byte table",
                offset=4,
            )
            return ResourceTable(version=ver, entries=())
        offsets = [U32.unpack_from(mem, RSC_TABLE_HDR.size + 4 * i)[0] for i in range(num)]
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
        if rtype == ResourceType.CARVEOUT:
            return self.memory(i, off, body, Carveout)
        if rtype == ResourceType.DEVMEM:
            return self.memory(i, off, body, Devmem)
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

    def memory(self, i: int, off: int, body: int, cls: type[_M]) -> _M | None:
        """A carveout or devmem entry (one layout)."""
        end = body + FW_RSC_CARVEOUT.size
        if not self.fits(i, off, end, f"{cls.kind} entry"):
            return None
        self.rules.claim(i, off, end)
        da, pa, length, flags, reserved, raw_name = FW_RSC_CARVEOUT.unpack_from(self.mem, body)
        if reserved:
            where = body + MEMORY_FIELDS["reserved"]
            self.report(f"reserved is {reserved:#x}, expected 0", index=i, offset=where)
        name = _decode_name(raw_name, self.report, i, body + MEMORY_FIELDS["name"])
        if length == 0:
            self.report(f"zero-length {cls.kind}", index=i, offset=body + MEMORY_FIELDS["len"])
        self.rules.region(cls.kind, i, da, length, body)
        return cls(da=da, pa=pa, len=length, flags=flags, name=name, offset=off)

    def trace(self, i: int, off: int, body: int) -> Trace | None:
        end = body + FW_RSC_TRACE.size
        if not self.fits(i, off, end, "trace entry"):
            return None
        self.rules.claim(i, off, end)
        da, length, reserved, raw_name = FW_RSC_TRACE.unpack_from(self.mem, body)
        if reserved:
            self.report(
                f"reserved is {reserved:#x}, expected 0",
                index=i,
                offset=body + TRACE_FIELDS["reserved"],
            )
        name = _decode_name(raw_name, self.report, i, body + TRACE_FIELDS["name"])
        if length == 0:
            self.report("zero-length trace", index=i, offset=body + TRACE_FIELDS["len"])
        self.rules.region("trace", i, da, length, body)
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
                offset=body + VDEV_FIELDS["num_of_vrings"],
            )
            return None
        end = config_off + config_len
        if end > self.size:
            self.report(
                f"config_len {config_len} runs past the end of the table "
                f"({self.size - config_off} bytes remain)",
                index=i,
                offset=body + VDEV_FIELDS["config_len"],
            )
            return None
        self.rules.claim(i, off, end)
        if reserved != b"\0\0":
            self.report(
                f"reserved bytes are {reserved.hex()}, expected 0000",
                index=i,
                offset=body + VDEV_FIELDS["reserved"],
            )
        self.rules.notifyid("vdev", i, nid, body + VDEV_FIELDS["notifyid"])
        vrings = []
        for j in range(nvr):
            base = vrings_off + FW_RSC_VDEV_VRING.size * j
            da, align, num, vnid, pa = FW_RSC_VDEV_VRING.unpack_from(self.mem, base)
            if num == 0 or num & (num - 1) or num > MAX_VRING_NUM:
                self.report(
                    f"vring {j}: num {num} is not a power of two <= {MAX_VRING_NUM}",
                    index=i,
                    offset=base + VRING_FIELDS["num"],
                )
            if align == 0 or align & (align - 1):
                self.report(
                    f"vring {j}: align {align:#x} is not a power of two",
                    index=i,
                    offset=base + VRING_FIELDS["align"],
                )
            self.rules.notifyid(f"vring {j}", i, vnid, base + VRING_FIELDS["notifyid"])
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
        self.rules.claim(i, off, off + RSC_HDR.size + len(data))
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
    handlers = VENDOR_HANDLERS if vendor_handlers is None else vendor_handlers
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
    handlers = VENDOR_HANDLERS if vendor_handlers is None else vendor_handlers
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
