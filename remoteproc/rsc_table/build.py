"""Building a resource table, and writing host-assigned addresses back into one in place.

:func:`build_resource_table` lays out a table from entries (simulated firmware, tests); it
validates its own output with the parser, so it never emits a table the parser rejects. The
loader allocates carveouts and vrings, then writes the assigned addresses back *in place* in
the table copy the remote will read (:func:`write_carveout_addresses`, :func:`write_vring_da`,
:func:`write_vring_notifyid`), and wraps each VDEV body in a
:class:`transports.virtio.vdev.VdevView`
at :func:`vdev_entry_view_offset` for live negotiation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

import attrs

from transports.virtio.vdev import FW_RSC_VDEV, FW_RSC_VDEV_VRING, RSC_HDR, RSC_TABLE_HDR

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
    U32_LIMIT,
    VDEV_FIELDS,
    VRING_FIELDS,
    Carveout,
    Entry,
    MemoryEntry,
    Trace,
    Vdev,
    VendorEntry,
    VendorHandler,
)
from .parse import parse_resource_table

__all__ = [
    "build_resource_table",
    "vdev_entry_view_offset",
    "write_carveout_addresses",
    "write_vring_da",
    "write_vring_notifyid",
]


def _encode_name(name: str, index: int, offset: int) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise ResourceTableError(f"name {name!r} contains a NUL", index=index, offset=offset)
    if len(raw) >= NAME_LEN:
        raise ResourceTableError(
            f"name {name!r} is {len(raw)} bytes; at most {NAME_LEN - 1} fit with the NUL",
            index=index,
            offset=offset,
        )
    return raw


def _pack_entry(entry: Entry, index: int, offset: int) -> bytes:
    body = offset + RSC_HDR.size
    if isinstance(entry, MemoryEntry):
        name = _encode_name(entry.name, index, body + MEMORY_FIELDS["name"])
        fields = (entry.da, entry.pa, entry.len, entry.flags, 0, name)
        return RSC_HDR.pack(entry.type) + FW_RSC_CARVEOUT.pack(*fields)
    if isinstance(entry, Trace):
        name = _encode_name(entry.name, index, body + TRACE_FIELDS["name"])
        return RSC_HDR.pack(entry.type) + FW_RSC_TRACE.pack(entry.da, entry.len, 0, name)
    if isinstance(entry, Vdev):
        return RSC_HDR.pack(entry.type) + _pack_vdev(entry, index, body)
    if isinstance(entry, VendorEntry):
        if not RSC_VENDOR_START <= entry.type <= RSC_VENDOR_END:
            raise ResourceTableError(
                f"vendor type {entry.type} is outside {RSC_VENDOR_START}..{RSC_VENDOR_END}",
                index=index,
                offset=offset,
            )
        return RSC_HDR.pack(entry.type) + entry.data
    raise TypeError(f"not a resource table entry: {entry!r}")


def _pack_vdev(entry: Vdev, index: int, body: int) -> bytes:
    """``fw_rsc_vdev`` with its vrings and config space, after the type word."""
    if entry.num_of_vrings > 0xFF:
        raise ResourceTableError(
            f"{entry.num_of_vrings} vrings do not fit the u8 num_of_vrings",
            index=index,
            offset=body + VDEV_FIELDS["num_of_vrings"],
        )
    out = FW_RSC_VDEV.pack(
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
    pos = RSC_TABLE_HDR.size + U32.size * len(items)
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
        out += U32.pack(off)
    out += body
    result = bytes(out)
    parse_resource_table(result, vendor_handlers=vendor_handlers)  # never emit what we reject
    return result


# -- in-place write-back -------------------------------------------------------------------------


def _check_u32(what: str, value: int) -> None:
    if not 0 <= value < U32_LIMIT:
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
    body = off + RSC_HDR.size
    U32.pack_into(table_mem, body + MEMORY_FIELDS["da"], da)
    U32.pack_into(table_mem, body + MEMORY_FIELDS["pa"], pa)
    return attrs.evolve(entry, da=da, pa=pa)


def write_vring_da(table_mem: memoryview, vdev_entry: Vdev, index: int, da: int, pa: int) -> Vdev:
    """Write the allocated ring address of vring ``index`` in place; returns the updated entry."""
    _check_u32("da", da)
    _check_u32("pa", pa)
    field = _vring_field(table_mem, vdev_entry, index)
    U32.pack_into(table_mem, field + VRING_FIELDS["da"], da)
    U32.pack_into(table_mem, field + VRING_FIELDS["pa"], pa)
    vrings = list(vdev_entry.vrings)
    vrings[index] = attrs.evolve(vrings[index], da=da, pa=pa)
    return attrs.evolve(vdev_entry, vrings=tuple(vrings))


def write_vring_notifyid(
    table_mem: memoryview, vdev_entry: Vdev, index: int, notifyid: int
) -> Vdev:
    """Write a host-assigned notify id for vring ``index`` in place; returns the updated entry."""
    _check_u32("notifyid", notifyid)
    field = _vring_field(table_mem, vdev_entry, index)
    U32.pack_into(table_mem, field + VRING_FIELDS["notifyid"], notifyid)
    vrings = list(vdev_entry.vrings)
    vrings[index] = attrs.evolve(vrings[index], notifyid=notifyid)
    return attrs.evolve(vdev_entry, vrings=tuple(vrings))


def vdev_entry_view_offset(entry: Vdev) -> int:
    """Where the ``fw_rsc_vdev`` body starts (after the type word): wrap
    ``table_mem[vdev_entry_view_offset(e):]`` in :class:`transports.virtio.vdev.VdevView`."""
    if entry.offset is None:
        raise ValueError("Vdev has no table offset (not from a parsed table)")
    return entry.offset + RSC_HDR.size
