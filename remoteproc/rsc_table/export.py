"""Resource tables as JSON-ready dicts with Linux's field names (``aioamp fw inspect --json``)."""

from __future__ import annotations

import attrs

from .entries import Entry, MemoryEntry, ResourceTable, Trace, Vdev

__all__ = ["entry_to_dict", "table_to_dict"]


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    if attrs.has(type(value)):
        return attrs.asdict(value)  # type: ignore[arg-type]
    return repr(value)


def entry_to_dict(entry: Entry) -> dict[str, object]:
    """A JSON-ready dict with Linux field names (``type`` is "carveout", "devmem", ...)."""
    out: dict[str, object]
    if isinstance(entry, MemoryEntry):
        out = {
            "type": entry.kind,
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
