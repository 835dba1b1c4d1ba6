"""``aioamp fw``: inspect firmware images and build a sample one.

``inspect`` loads an ELF with :func:`remoteproc.firmware.load_firmware_file`, decodes its
resource table with :func:`remoteproc.rsc_table.inspect_resource_table` (collect-all mode, so a
broken table still shows every entry that decodes) and prints the lot as aligned text or one
JSON object. Exit status: 0 valid, 1 invalid image or table (reason on stderr), 2 unreadable file
(also a FIFO or device, or a file over ``MAX_FIRMWARE_SIZE``: they are refused, not read).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from platforms.sim import MAX_PROGRAM_NAME
from platforms.sim.images import build_sample_image
from remoteproc.errors import FirmwareError, FirmwareFileError, ResourceTableError
from remoteproc.firmware import MAX_FIRMWARE_SIZE, FirmwareImage, load_firmware_file
from remoteproc.rsc_table import (
    Carveout,
    Devmem,
    Entry,
    ResourceTable,
    Trace,
    Vdev,
    entry_to_dict,
    inspect_resource_table,
)
from transports.virtio.constants import ENDIAN
from transports.virtio.vdev import RSC_TABLE_HDR

from .exits import CommandError, UsageError

__all__ = [
    "Inspection",
    "add_fw_parser",
    "inspect_image",
    "to_json",
    "to_text",
]

EXIT_OK = 0
_U32 = struct.Struct(ENDIAN + "I")
_NO_TABLE = "no resource table (no vdevs)"


# -- inspect: the data ----------------------------------------------------------------------------


def _table_header(data: bytes) -> tuple[int, int] | None:
    """``(ver, num)`` as stored in the header, or None if the table is too short for one."""
    if len(data) < RSC_TABLE_HDR.size:
        return None
    ver, num, _, _ = RSC_TABLE_HDR.unpack_from(data, 0)
    return int(ver), int(num)


def _entry_indices(data: bytes, entries: Sequence[Entry]) -> list[int | None]:
    """The offset-array index of each decoded entry (entries come back in index order)."""
    header = _table_header(data)
    num = header[1] if header is not None else 0
    count = min(num, max(len(data) - RSC_TABLE_HDR.size, 0) // _U32.size)
    offsets = [_U32.unpack_from(data, RSC_TABLE_HDR.size + 4 * i)[0] for i in range(count)]
    out: list[int | None] = []
    nxt = 0
    for entry in entries:
        found = next((i for i in range(nxt, count) if offsets[i] == entry.offset), None)
        out.append(found)
        if found is not None:
            nxt = found + 1
    return out


class Inspection(NamedTuple):
    """What ``inspect`` learned: the image, its decoded table (None if absent) and findings."""

    file: str
    image: FirmwareImage
    table: ResourceTable | None
    indices: list[int | None]  # offset-array index of each decoded entry
    findings: list[ResourceTableError]

    @property
    def valid(self) -> bool:
        return not self.findings


def inspect_image(image: FirmwareImage, file: str) -> Inspection:
    """Decode the image's resource table in collect-all-findings mode."""
    loc = image.resource_table
    if loc is None:
        return Inspection(file, image, None, [], [])
    table, findings = inspect_resource_table(loc.data)
    return Inspection(file, image, table, _entry_indices(loc.data, table.entries), findings)


def to_json(ins: Inspection) -> dict[str, Any]:
    """The ``--json`` object."""
    image, loc = ins.image, ins.image.resource_table
    rsc: dict[str, Any] | None = None
    if loc is not None and ins.table is not None:
        header = _table_header(loc.data)
        rsc = {
            "addr": loc.addr,
            "size": loc.size,
            # The header's own fields: a broken table may hold entries that do not decode.
            "ver": header[0] if header is not None else None,
            "num": header[1] if header is not None else None,
            "entries": [
                {"index": index, **entry_to_dict(entry)}
                for index, entry in zip(ins.indices, ins.table.entries, strict=True)
            ],
        }
    return {
        "file": ins.file,
        "entry": image.entry,
        "elf_class": image.elf_class,
        "machine": image.machine,
        "segments": [s.header_dict() for s in image.segments],
        "program": image.program,
        "resource_table": rsc,
        "findings": [
            {"index": f.index, "offset": f.offset, "reason": f.reason} for f in ins.findings
        ],
        "valid": ins.valid,
    }


# -- inspect: the text ----------------------------------------------------------------------------


def _columns(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns two spaces apart (the last column is not padded)."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _x32(value: int) -> str:
    return f"{value:#010x}"


def _quote(name: str) -> str:
    return json.dumps(name)  # double quotes, escapes for control and undecodable bytes


def _entry_text(entry: Entry) -> tuple[str, str, list[str]]:
    """``(type, fields, continuation lines)`` for one decoded entry."""
    if isinstance(entry, Carveout | Devmem):
        kind = "carveout" if isinstance(entry, Carveout) else "devmem"
        fields = (
            f"da {_x32(entry.da)}  pa {_x32(entry.pa)}  len {_x32(entry.len)}  "
            f"flags {entry.flags:#x}  name {_quote(entry.name)}"
        )
        return kind, fields, []
    if isinstance(entry, Trace):
        return "trace", f"da {_x32(entry.da)}  len {_x32(entry.len)}  name {_quote(entry.name)}", []
    if isinstance(entry, Vdev):
        fields = (
            f"id {entry.id}  notifyid {_x32(entry.notifyid)}  dfeatures {_x32(entry.dfeatures)}  "
            f"gfeatures {_x32(entry.gfeatures)}"
        )
        extra = [
            f"config_len {entry.config_len}  status {entry.status:#04x}  "
            f"num_of_vrings {entry.num_of_vrings}"
        ]
        rows = [["vring", "da", "align", "num", "notifyid", "pa"]] + [
            [str(j), _x32(v.da), f"{v.align:#x}", str(v.num), _x32(v.notifyid), _x32(v.pa)]
            for j, v in enumerate(entry.vrings)
        ]
        if entry.vrings:
            extra += _columns(rows, indent="")
        if entry.config:
            extra.append(f"config {entry.config.hex()}")
        return "vdev", fields, extra
    fields = f"type {entry.type}  data {len(entry.data)} bytes"
    if entry.parsed is not None:
        fields += f"  parsed {entry.parsed!r}"
    return "vendor", fields, []


def _table_lines(ins: Inspection, x: Callable[[int], str]) -> list[str]:
    loc, table = ins.image.resource_table, ins.table
    if loc is None or table is None:
        return [_NO_TABLE]
    header = _table_header(loc.data)
    ver, num = (str(header[0]), str(header[1])) if header is not None else ("?", "?")
    lines = [
        f"resource table: addr {x(loc.addr)}, size {loc.size:#x}, ver {ver}, num {num}"
        f" ({len(table.entries)} decoded)"
    ]
    if not table.entries:
        return lines
    rows = [["index", "offset", "type", "fields"]]
    extras: list[list[str]] = []
    for index, entry in zip(ins.indices, table.entries, strict=True):
        kind, fields, extra = _entry_text(entry)
        offset = "?" if entry.offset is None else f"{entry.offset:#06x}"
        rows.append(["?" if index is None else str(index), offset, kind, fields])
        extras.append(extra)
    head, *body = _columns(rows)
    lines.append(head)
    pad = " " * head.index("fields")  # continuation lines sit under the "fields" column
    for line, extra in zip(body, extras, strict=True):
        lines.append(line)
        lines.extend(pad + e for e in extra)
    return lines


def _finding_lines(findings: Sequence[ResourceTableError]) -> list[str]:
    if not findings:
        return ["findings: none"]
    rows = [["index", "offset", "reason"]] + [
        [
            "-" if f.index is None else str(f.index),
            "-" if f.offset is None else f"{f.offset:#06x}",
            f.reason,
        ]
        for f in findings
    ]
    return [f"findings ({len(findings)}):", *_columns(rows)]


def to_text(ins: Inspection) -> str:
    """The human-readable report: header, segments, resource table, findings, verdict."""
    image = ins.image
    digits = 8 if image.elf_class == 32 else 16

    def x(value: int) -> str:
        return f"{value:#0{digits + 2}x}"

    lines = [
        f"file:     {ins.file}",
        f"format:   ELF{image.elf_class}, machine {image.machine}",
        f"entry:    {x(image.entry)}",
        f"program:  {image.program if image.program is not None else '-'}",
        "",
        "segments:",
    ]
    seg_rows = [["index", "paddr", "vaddr", "filesz", "memsz", "flags"]] + [
        [str(s.index), x(s.paddr), x(s.vaddr), x(s.filesz), x(s.memsz), f"{s.perms} ({s.flags:#x})"]
        for s in image.segments
    ]
    lines += _columns(seg_rows)
    lines += ["", *_table_lines(ins, x), "", *_finding_lines(ins.findings)]
    lines.append("valid" if ins.valid else f"INVALID ({len(ins.findings)} findings)")
    return "\n".join(lines)


# -- commands -------------------------------------------------------------------------------------


def inspect_main(args: argparse.Namespace) -> int:
    """``aioamp fw inspect``: print the image; exit 0 valid, 1 invalid, 2 unreadable."""
    path: str = args.firmware
    try:
        image = load_firmware_file(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except FirmwareFileError as exc:  # a FIFO, a device, over MAX_FIRMWARE_SIZE
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except FirmwareError as exc:
        raise CommandError(f"{path}: invalid firmware image: {exc}") from None
    ins = inspect_image(image, path)
    print(json.dumps(to_json(ins), indent=2) if args.json else to_text(ins))
    if ins.valid:
        return EXIT_OK
    more = f" (and {len(ins.findings) - 1} more)" if len(ins.findings) > 1 else ""
    raise CommandError(f"{path}: invalid {ins.findings[0]}{more}")


def build_sample_main(args: argparse.Namespace) -> int:
    """``aioamp fw build-sample``: write the sample image (``platforms.sim.images``)."""
    try:
        image = build_sample_image(args.program)
    except ValueError as exc:  # a program name check_program_name refuses
        raise UsageError(f"cannot build the sample: {exc}") from None
    try:
        with open(args.output, "wb") as f:
            f.write(image)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {len(image)} bytes to {os.fspath(args.output)} (program {args.program})")
    return EXIT_OK


def add_fw_parser(sub: Any) -> None:
    """Register ``aioamp fw`` and its actions on the top-level subparsers."""
    p = sub.add_parser("fw", help="inspect or build firmware images")
    actions = p.add_subparsers(dest="fw_command", required=True, metavar="ACTION")
    ins = actions.add_parser(
        "inspect",
        help="print segments, resource table and validation findings",
        description="Exit status: 0 valid, 1 invalid image or table, 2 unreadable file. Only "
        f"regular files of at most {MAX_FIRMWARE_SIZE >> 20} MiB are read (not a FIFO or a "
        "device).",
    )
    ins.add_argument("firmware", metavar="FIRMWARE", help="ELF firmware image")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.set_defaults(func=inspect_main)
    bld = actions.add_parser("build-sample", help="write a sample rpmsg firmware image")
    bld.add_argument("output", metavar="OUTPUT", help="file to write")
    bld.add_argument(
        "--program",
        default="rpmsg-client-sample",
        help=f"simulated program name (.aioamp.program): 1..{MAX_PROGRAM_NAME} visible ASCII "
        "characters",
    )
    bld.set_defaults(func=build_sample_main)
