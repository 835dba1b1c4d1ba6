"""Resource-table codec: golden vectors from the C layout, malformed tables, round trips.

Golden bytes are written by hand from include/linux/remoteproc.h (little-endian u32 words via
``int.to_bytes``), never produced by :func:`build_resource_table`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remoteproc.errors import ResourceTableError
from remoteproc.rsc_table import (
    FW_RSC_ADDR_ANY,
    FW_RSC_CARVEOUT,
    FW_RSC_DEVMEM,
    RSC_NOTIFY_ID_ANY,
    RSC_VENDOR_END,
    RSC_VENDOR_START,
    Carveout,
    Devmem,
    Entry,
    Trace,
    Vdev,
    VendorEntry,
    build_resource_table,
    entry_to_dict,
    inspect_resource_table,
    parse_resource_table,
    register_vendor_handler,
    table_to_dict,
    unregister_vendor_handler,
    validate_resource_table,
    vdev_entry_view_offset,
    write_carveout_addresses,
    write_vring_da,
    write_vring_notifyid,
)
from remoteproc.rsc_table.entries import (
    MEMORY_FIELDS,
    TRACE_FIELDS,
    VDEV_FIELDS,
    VRING_FIELDS,
    field_offsets,
)
from transports.virtio.vdev import VdevView, VringInfo

ANY = 0xFFFFFFFF


def u32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in values)


def name32(name: bytes) -> bytes:
    return name.ljust(32, b"\0")


# The exact table OpenAMP's Linux port places in shared memory: one rpmsg VDEV, two vrings.
OPENAMP = bytes.fromhex(
    "01000000 01000000 00000000 00000000"  # ver 1, num 1, reserved[2]
    "14000000"  # offset[0] = 0x14
    "03000000"  # type VDEV
    "07000000 00000000 01000000 00000000 00000000"  # id, notifyid, dfeatures, gfeatures, cfglen
    "00 02 0000"  # status, num_of_vrings, reserved[2]
    "00400000 00100000 00010000 01000000 00000000"  # vring0 da, align, num, notifyid, pa
    "00800000 00100000 00010000 02000000 00000000"  # vring1
)

# One entry of every kind; offsets 0x24, 0x5c, 0x94, 0xc4, 0x10c; 0x118 bytes.
MULTI = (
    u32(1, 5, 0, 0, 0x24, 0x5C, 0x94, 0xC4, 0x10C)
    + u32(0, 0x0, ANY, 0x10000, 0, 0)  # CARVEOUT da 0, pa ANY, len 64 KiB
    + name32(b"text")
    + u32(1, 0x4A000000, 0x4A000000, 0x1000, 0, 0)  # DEVMEM
    + name32(b"regs")
    + u32(2, 0x8000, 0x1000, 0)  # TRACE inside the carveout
    + name32(b"trace:r5")
    + u32(3, 7, 0, 1, 0, 4)  # VDEV id 7, notifyid 0, dfeatures 1, gfeatures 0, config_len 4
    + bytes([0, 2, 0, 0])
    + u32(ANY, 0x1000, 256, 1, 0)
    + u32(ANY, 0x1000, 256, 2, 0)
    + bytes.fromhex("aabbccdd")
    + u32(128)  # vendor type 128, 8 opaque bytes
    + bytes.fromhex("0102030405060708")
)


def patch(data: bytes, offset: int, value: int, size: int = 4) -> bytes:
    out = bytearray(data)
    out[offset : offset + size] = value.to_bytes(size, "little")
    return bytes(out)


def table(*raw_entries: bytes) -> bytes:
    """Hand layout: header, offset array, then the raw entries back to back."""
    pos = 16 + 4 * len(raw_entries)
    offsets = []
    for raw in raw_entries:
        offsets.append(pos)
        pos += len(raw)
    return u32(1, len(raw_entries), 0, 0, *offsets) + b"".join(raw_entries)


def carveout(da: int, length: int, *, reserved: int = 0, name: bytes = b"c", t: int = 0) -> bytes:
    return u32(t, da, ANY, length, 0, reserved) + name.ljust(32, b"\0")


def devmem(da: int, length: int) -> bytes:
    return carveout(da, length, t=1, name=b"d")


def trace(da: int, length: int, *, reserved: int = 0, name: bytes = b"t") -> bytes:
    return u32(2, da, length, reserved) + name.ljust(32, b"\0")


@pytest.fixture
def vendor_registry() -> Iterator[None]:
    yield
    for t in (128, 200, 512):
        unregister_vendor_handler(t)


# -- golden vectors -----------------------------------------------------------------------------


def test_openamp_table_every_field() -> None:
    assert len(OPENAMP) == 88
    t = parse_resource_table(OPENAMP)
    assert t.version == 1
    assert len(t.entries) == 1
    (v,) = t.entries
    assert isinstance(v, Vdev)
    assert (v.offset, v.id, v.notifyid, v.dfeatures, v.gfeatures) == (0x14, 7, 0, 1, 0)
    assert (v.config_len, v.status, v.num_of_vrings, v.config) == (0, 0, 2, b"")
    assert v.vrings == (
        VringInfo(da=0x4000, align=0x1000, num=256, notifyid=1, pa=0),
        VringInfo(da=0x8000, align=0x1000, num=256, notifyid=2, pa=0),
    )
    assert vdev_entry_view_offset(v) == 0x18
    assert build_resource_table(t.entries) == OPENAMP
    assert entry_to_dict(v) == {
        "type": "vdev",
        "id": 7,
        "notifyid": 0,
        "dfeatures": 1,
        "gfeatures": 0,
        "config_len": 0,
        "status": 0,
        "num_of_vrings": 2,
        "vrings": [
            {"da": 0x4000, "align": 0x1000, "num": 256, "notifyid": 1, "pa": 0},
            {"da": 0x8000, "align": 0x1000, "num": 256, "notifyid": 2, "pa": 0},
        ],
        "config": "",
        "offset": 0x14,
    }


def test_openamp_table_accepts_memoryview_and_matches_vdev_view() -> None:
    mem = memoryview(bytearray(OPENAMP))
    (v,) = parse_resource_table(mem).vdevs
    view = VdevView(mem[vdev_entry_view_offset(v) :])
    assert (view.id, view.notifyid, view.dfeatures, view.num_of_vrings) == (7, 0, 1, 2)
    assert (view.vring(0), view.vring(1)) == v.vrings


def test_multi_table_every_entry_type() -> None:
    assert len(MULTI) == 0x118
    t = parse_resource_table(MULTI)
    assert t.entries == (
        Carveout(da=0, pa=ANY, len=0x10000, flags=0, name="text"),
        Devmem(da=0x4A000000, pa=0x4A000000, len=0x1000, flags=0, name="regs"),
        Trace(da=0x8000, len=0x1000, name="trace:r5"),
        Vdev(
            id=7,
            notifyid=0,
            dfeatures=1,
            vrings=(VringInfo(ANY, 0x1000, 256, 1, 0), VringInfo(ANY, 0x1000, 256, 2, 0)),
            config=bytes.fromhex("aabbccdd"),
        ),
        VendorEntry(type=128, data=bytes.fromhex("0102030405060708")),
    )
    assert [e.offset for e in t.entries] == [0x24, 0x5C, 0x94, 0xC4, 0x10C]
    assert (t.carveouts, t.devmems, t.traces) == (t.entries[:1], t.entries[1:2], t.entries[2:3])
    assert (t.vdevs, t.vendor_entries) == (t.entries[3:4], t.entries[4:])
    assert build_resource_table(t.entries) == MULTI
    assert validate_resource_table(MULTI) == []
    d = table_to_dict(t)
    assert d["ver"] == 1 and d["num"] == 5
    assert json.loads(json.dumps(d)) == d
    assert entry_to_dict(t.entries[0]) == {
        "type": "carveout",
        "da": 0,
        "pa": ANY,
        "len": 0x10000,
        "flags": 0,
        "name": "text",
        "offset": 0x24,
    }
    assert entry_to_dict(t.entries[2]) == {
        "type": "trace",
        "da": 0x8000,
        "len": 0x1000,
        "name": "trace:r5",
        "offset": 0x94,
    }
    assert entry_to_dict(t.entries[4]) == {
        "type": "vendor",
        "vendor_type": 128,
        "data": "0102030405060708",
        "offset": 0x10C,
    }


def test_constants_match_linux() -> None:
    assert FW_RSC_ADDR_ANY == RSC_NOTIFY_ID_ANY == ANY
    assert (RSC_VENDOR_START, RSC_VENDOR_END) == (128, 512)


def test_empty_table() -> None:
    assert parse_resource_table(u32(1, 0, 0, 0)).entries == ()
    assert build_resource_table([]) == u32(1, 0, 0, 0)


def test_vendor_entry_ends_at_next_offset_in_any_order() -> None:
    # offset[0] points at the carveout placed *after* the vendor entry of offset[1].
    data = u32(1, 2, 0, 0, 0x28, 0x18) + u32(300) + b"\x11" * 12 + carveout(0x1000, 0x100)
    t = parse_resource_table(data)
    assert isinstance(t.entries[0], Carveout)
    assert t.entries[1] == VendorEntry(type=300, data=b"\x11" * 12)
    assert t.entries[1].offset == 0x18


@pytest.mark.parametrize("rsc_type", [128, 512])
def test_vendor_range_is_inclusive(rsc_type: int) -> None:
    assert parse_resource_table(table(u32(rsc_type))).entries == (VendorEntry(rsc_type, b""),)


def test_allowed_address_layouts() -> None:
    # A trace inside a devmem, carveouts with da ANY overlapping anything, notify ids ANY reused.
    data = table(
        devmem(0x1000, 0x1000),
        trace(0x1800, 0x100),
        carveout(ANY, 0x1000),
        carveout(ANY, 0x1000),
        u32(3, 7, ANY, 0, 0, 0) + bytes([0, 2, 0, 0]) + u32(0, 16, 16, ANY, 0) * 2,
    )
    assert len(parse_resource_table(data).entries) == 5


# -- malformed tables ---------------------------------------------------------------------------

OA_VRING0 = 0x30
OA_VRING1 = 0x44

MALFORMED = [
    ("empty", b"", None, 0, "shorter than its 16-byte header"),
    ("short header", OPENAMP[:15], None, 0, "table is 15 bytes"),
    ("version 2", patch(OPENAMP, 0, 2), None, 0, "version 2 is not supported"),
    ("version 0", patch(OPENAMP, 0, 0), None, 0, "version 0 is not supported"),
    ("reserved0", patch(OPENAMP, 8, 1), None, 8, "header reserved[0] is 0x1"),
    ("reserved1", patch(OPENAMP, 12, 0x80), None, 12, "header reserved[1] is 0x80"),
    ("num huge", patch(OPENAMP, 4, 0x40000000), None, 4, "num 1073741824: the offset array"),
    ("num 2", patch(OPENAMP, 4, 2), 0, 0x10, "points into the header/offset array"),
    ("offset in hdr", patch(OPENAMP, 0x10, 8), 0, 0x10, "offset 0x8 points into the header"),
    ("offset at end", patch(OPENAMP, 0x10, 88), 0, 0x10, "offset 0x58 is outside the 88-byte"),
    ("offset max", patch(OPENAMP, 0x10, ANY), 0, 0x10, "offset 0xffffffff is outside"),
    ("type cut", patch(OPENAMP, 0x10, 0x56), 0, 0x56, "type word runs past the end"),
    ("vdev cut", OPENAMP[:0x28], 0, 0x14, "vdev entry runs past the end of the table"),
    ("3 vrings", patch(OPENAMP, 0x2D, 3, 1), 0, 0x2D, "num_of_vrings 3 needs 60 bytes"),
    ("vring cut", OPENAMP[:87], 0, 0x2D, "num_of_vrings 2 needs 40 bytes of vrings, 39 remain"),
    ("config_len", patch(OPENAMP, 0x28, 4), 0, 0x28, "config_len 4 runs past the end"),
    ("type 4", patch(OPENAMP, 0x14, 4), 0, 0x14, "unknown resource type 4"),
    ("type 127", patch(OPENAMP, 0x14, 127), 0, 0x14, "unknown resource type 127"),
    ("type 513", patch(OPENAMP, 0x14, 513), 0, 0x14, "unknown resource type 513"),
    ("num 255", patch(OPENAMP, OA_VRING0 + 8, 255), 0, 0x38, "vring 0: num 255 is not a power"),
    ("num 0", patch(OPENAMP, OA_VRING1 + 8, 0), 0, 0x4C, "vring 1: num 0 is not a power"),
    (
        "num 65536",
        patch(OPENAMP, OA_VRING0 + 8, 65536),
        0,
        0x38,
        "num 65536 is not a power of two <= 32768",
    ),
    ("align", patch(OPENAMP, OA_VRING1 + 4, 0x1001), 0, 0x48, "vring 1: align 0x1001 is not"),
    ("align 0", patch(OPENAMP, OA_VRING0 + 4, 0), 0, 0x34, "vring 0: align 0x0 is not"),
    (
        "dup vring ids",
        patch(OPENAMP, OA_VRING1 + 12, 1),
        0,
        0x50,
        "vring 1 notifyid 1 is already used by entry 0 vring 0",
    ),
    (
        "vdev id dup",
        patch(OPENAMP, 0x1C, 1),
        0,
        0x3C,
        "vring 0 notifyid 1 is already used by entry 0 vdev",
    ),
    (
        "dup across vdevs",
        table(OPENAMP[0x14:], OPENAMP[0x14:]),
        1,
        0x64,
        "vdev notifyid 0 is already used by entry 0 vdev",
    ),
    ("vdev reserved", patch(OPENAMP, 0x2F, 1, 1), 0, 0x2E, "reserved bytes are 0001"),
    ("cv reserved", table(carveout(0, 0x100, reserved=1)), 0, 0x28, "reserved is 0x1, expected"),
    ("cv name", table(carveout(0, 0x100, name=b"N" * 32)), 0, 0x2C, "no NUL terminator"),
    ("cv zero", table(carveout(0, 0)), 0, 0x20, "zero-length carveout"),
    ("devmem zero", table(devmem(0, 0)), 0, 0x20, "zero-length devmem"),
    ("cv cut", table(carveout(0, 0x100))[:0x40], 0, 0x14, "carveout entry runs past the end"),
    ("trace zero", table(trace(0x100, 0)), 0, 0x1C, "zero-length trace"),
    ("trace rsvd", table(trace(0x100, 4, reserved=7)), 0, 0x20, "reserved is 0x7"),
    ("trace name", table(trace(0x100, 4, name=b"x" * 32)), 0, 0x24, "no NUL terminator"),
    ("trace cut", table(trace(0x100, 4))[:0x30], 0, 0x14, "trace entry runs past the end"),
    ("wrap", table(carveout(0xFFFFF000, 0x2000)), 0, 0x18, "wraps past 4 GiB"),
    (
        "cv overlap",
        table(carveout(0x1000, 0x2000), carveout(0x2000, 0x1000)),
        1,
        0x54,
        "carveout da range [0x2000, 0x3000) overlaps carveout entry 0 at [0x1000, 0x3000)",
    ),
    (
        "devmem overlap",
        table(carveout(0x1000, 0x1000), devmem(0x1FFF, 0x10)),
        1,
        0x54,
        "devmem da range [0x1fff, 0x200f) overlaps carveout entry 0",
    ),
    (
        "trace straddles",
        table(carveout(0, 0x10000), trace(0xF800, 0x1000)),
        1,
        0x54,
        "trace da range [0xf800, 0x10800) overlaps carveout entry 0",
    ),
    (
        "carveout straddles trace",
        table(trace(0xF800, 0x1000), carveout(0, 0x10000)),
        1,
        0x4C,
        "carveout da range [0x0, 0x10000) overlaps trace entry 0",
    ),
    (
        "traces overlap",
        table(trace(0x8000, 0x1000), trace(0x8800, 0x1000)),
        1,
        0x4C,
        "trace da range [0x8800, 0x9800) overlaps trace entry 0",
    ),
    (
        "shared bytes",
        u32(1, 2, 0, 0, 0x18, 0x18) + carveout(ANY, 0x100),
        1,
        0x18,
        "entry bytes [0x18, 0x50) overlap entry 0 at [0x18, 0x50)",
    ),
    (
        # A VDEV owns its vrings and config space too, not only its fixed header.
        "vdev vrings under next entry",
        u32(1, 2, 0, 0, 0x18, 0x34)
        + u32(3, 7, 0, 0, 0, 0)  # VDEV at 0x18, one vring: [0x18, 0x48)
        + bytes([0, 1, 0, 0])
        + u32(0, 0x1000, 16, 0x100, 0, 0)  # CARVEOUT at 0x34 (also vring 0: align 4K, num 16)
        + name32(b"c"),
        1,
        0x34,
        "entry bytes [0x34, 0x6c) overlap entry 0 at [0x18, 0x48)",
    ),
    (
        "vdev config under earlier entry",
        u32(1, 2, 0, 0, 0x34, 0x18)
        + u32(3, 7, 0, 0, 0, 8)  # VDEV at 0x18, no vrings, 8 config bytes: [0x18, 0x3c)
        + bytes([0, 0, 0, 0])
        + carveout(0x1000, 0x100),  # CARVEOUT at 0x34, entry 0
        1,
        0x18,
        "entry bytes [0x18, 0x3c) overlap entry 0 at [0x34, 0x6c)",
    ),
]


@pytest.mark.parametrize(
    ("data", "index", "offset", "reason"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed(data: bytes, index: int | None, offset: int, reason: str) -> None:
    with pytest.raises(ResourceTableError) as info:
        parse_resource_table(data)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.index, err.offset) == (index, offset)
    assert reason in err.reason
    assert str(err).startswith("resource table ")
    # The collecting mode reports the same first finding.
    findings = validate_resource_table(data)
    assert findings and str(findings[0]) == str(err)


def test_at_least_25_malformed_cases() -> None:
    assert len({case[0] for case in MALFORMED}) >= 25


def test_inspect_collects_every_finding() -> None:
    data = patch(
        table(
            carveout(0, 0, reserved=2),  # zero length + reserved
            u32(7),  # unknown type: entry skipped
            trace(0x100, 0x10, name=b"z" * 32),  # name without NUL
        ),
        8,
        1,  # header reserved[0]
    )
    tbl, findings = inspect_resource_table(data)
    assert [(f.index, f.offset) for f in findings] == [
        (None, 8),
        (0, 0x30),
        (0, 0x28),
        (1, 0x54),
        (2, 0x68),
    ]
    assert [type(e) for e in tbl.entries] == [Carveout, Trace]
    assert tbl.entries[1] == Trace(da=0x100, len=0x10, name="z" * 32)


# -- vendor handlers ----------------------------------------------------------------------------


@attrs.frozen
class Pair:
    a: int
    b: int


def decode_pair(data: bytes) -> Pair:
    if len(data) != 8:
        raise ValueError(f"expected 8 bytes, got {len(data)}")
    return Pair(int.from_bytes(data[:4], "little"), int.from_bytes(data[4:], "little"))


@pytest.mark.usefixtures("vendor_registry")
def test_vendor_handler_registry() -> None:
    register_vendor_handler(128, decode_pair)
    (entry,) = parse_resource_table(MULTI).vendor_entries
    assert entry.parsed == Pair(0x04030201, 0x08070605)
    assert entry_to_dict(entry)["parsed"] == {"a": 0x04030201, "b": 0x08070605}
    with pytest.raises(ValueError, match="already has a handler"):
        register_vendor_handler(128, decode_pair)
    register_vendor_handler(128, lambda data: len(data), replace=True)
    assert parse_resource_table(MULTI).vendor_entries[0].parsed == 8
    for bad in (127, 513):
        with pytest.raises(ValueError, match=r"outside 128\.\.512"):
            register_vendor_handler(bad, decode_pair)


@pytest.mark.usefixtures("vendor_registry")
def test_vendor_handler_rejection_is_a_finding() -> None:
    register_vendor_handler(128, decode_pair)
    data = MULTI[:-4]  # vendor payload cut to 4 bytes
    data = patch(data, 0, 1)
    with pytest.raises(ResourceTableError) as info:
        parse_resource_table(data)
    assert (info.value.index, info.value.offset) == (4, 0x10C)
    assert info.value.reason == "vendor type 128: expected 8 bytes, got 4"
    tbl, findings = inspect_resource_table(data)
    assert len(findings) == 1 and tbl.vendor_entries[0].parsed is None


def test_vendor_handlers_argument_overrides_registry() -> None:
    def reject(data: bytes) -> object:
        raise ResourceTableError("magic mismatch", index=99, offset=99)

    with pytest.raises(ResourceTableError, match="vendor type 128: magic mismatch") as info:
        parse_resource_table(MULTI, vendor_handlers={128: reject})
    assert (info.value.index, info.value.offset) == (4, 0x10C)
    assert parse_resource_table(MULTI, vendor_handlers={}).vendor_entries[0].parsed is None


# -- building -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "index", "offset", "reason"),
    [
        ([Carveout(0, 0, 16, name="n" * 32)], 0, 0x2C, "at most 31 fit with the NUL"),
        ([Trace(0, 16), Trace(64, 16, name="a\0b")], 1, 0x58, "contains a NUL"),
        ([Carveout(1 << 32, 0, 16)], 0, 0x14, "a field does not fit"),
        ([VendorEntry(5, b"")], 0, 0x14, "vendor type 5 is outside"),
        ([Vdev(7, 0, 0, vrings=(VringInfo(0, 16, 16, ANY),) * 256)], 0, 0x2D, "u8 num_of_vrings"),
        ([Carveout(0, 0, 16), Devmem(8, 0, 16)], 1, 0x54, "overlaps carveout entry 0"),
        ([Vdev(7, 0, 0, vrings=(VringInfo(0, 16, 3, 1),))], 0, 0x38, "num 3 is not a power"),
    ],
)
def test_build_rejects(entries: list[Entry], index: int, offset: int, reason: str) -> None:
    with pytest.raises(ResourceTableError) as info:
        build_resource_table(entries)
    assert (info.value.index, info.value.offset) == (index, offset)
    assert reason in info.value.reason


def test_build_pads_entries_to_four_bytes() -> None:
    data = build_resource_table([Vdev(7, 0, 1, config=b"\x01"), Carveout(0, 0, 16, name="c")])
    assert data[16:24] == u32(0x18, 0x38)  # vdev of 29 bytes padded to 32
    assert data[0x35:0x38] == bytes(3)


# -- in-place write-back ------------------------------------------------------------------------


def test_write_back_in_place() -> None:
    mem = memoryview(bytearray(MULTI))
    t = parse_resource_table(mem)
    cv = write_carveout_addresses(mem, t.carveouts[0], 0x1000, 0x9F000000)
    assert bytes(mem[0x28:0x30]) == u32(0x1000, 0x9F000000)
    v = write_vring_da(mem, t.vdevs[0], 1, 0x20000, 0x9F020000)
    assert bytes(mem[0xF4:0xF8]) == u32(0x20000)  # vring1 starts at 0xf4 with its da
    assert bytes(mem[0x104:0x108]) == u32(0x9F020000)  # vring1 pa
    v = write_vring_notifyid(mem, v, 0, 5)
    assert bytes(mem[0xEC:0xF0]) == u32(5)
    again = parse_resource_table(mem)
    assert again.carveouts[0] == cv and again.vdevs[0] == v
    assert v.vrings[1] == VringInfo(0x20000, 0x1000, 256, 2, 0x9F020000)
    view = VdevView(mem[vdev_entry_view_offset(v) :])
    assert view.vring(0).notifyid == 5 and view.config_len == 4


def test_write_back_refuses_mismatches() -> None:
    mem = memoryview(bytearray(MULTI))
    t = parse_resource_table(mem)
    (v,) = parse_resource_table(OPENAMP).vdevs  # at 0x14, where MULTI holds offset[1]
    with pytest.raises(ResourceTableError, match="type word is"):
        write_vring_da(mem, v, 0, 0, 0)
    with pytest.raises(ValueError, match="no table offset"):
        write_carveout_addresses(mem, Carveout(0, 0, 16), 0, 0)
    with pytest.raises(ValueError, match="no table offset"):
        vdev_entry_view_offset(Vdev(7, 0, 0))
    with pytest.raises(IndexError):
        write_vring_da(mem, t.vdevs[0], 2, 0, 0)
    with pytest.raises(ValueError, match="does not fit in a u32"):
        write_carveout_addresses(mem, t.carveouts[0], 1 << 32, 0)
    with pytest.raises(ResourceTableError, match="does not fit a 32-byte table"):
        write_carveout_addresses(mem[:32], t.carveouts[0], 0, 0)
    assert bytes(mem) == MULTI  # nothing written by a refused call


# -- properties ---------------------------------------------------------------------------------

u32s = st.integers(0, 0xFFFFFFFF)
names = st.text(max_size=31).filter(lambda s: "\0" not in s and len(s.encode()) < 32)
notify_ids = st.integers(0, 0xFFFFFFFE)


@st.composite
def entry_lists(draw: st.DrawFn, *, vendor_align: bool = True) -> list[Entry]:
    kinds = draw(st.lists(st.sampled_from("cdtvx"), max_size=8))
    used: set[int] = set()
    cursor = 0
    out: list[Entry] = []

    def region() -> tuple[int, int]:
        nonlocal cursor
        length = draw(st.integers(1, 0x10000))
        if draw(st.booleans()):
            return ANY, length
        da = cursor + draw(st.integers(0, 0x10000))
        cursor = da + length
        return da, length

    def nid() -> int:
        value = draw(st.one_of(st.just(ANY), notify_ids.filter(lambda n: n not in used)))
        used.add(value)
        return value

    for kind in kinds:
        if kind in "cd":
            da, length = region()
            cls = Carveout if kind == "c" else Devmem
            out.append(cls(da, draw(u32s), length, draw(u32s), draw(names)))
        elif kind == "t":
            da, length = region()
            out.append(Trace(da, length, draw(names)))
        elif kind == "v":
            vdev_nid = nid()
            vrings = tuple(
                VringInfo(
                    draw(u32s),
                    1 << draw(st.integers(0, 31)),
                    1 << draw(st.integers(0, 15)),
                    nid(),
                    draw(u32s),
                )
                for _ in range(draw(st.integers(0, 4)))
            )
            out.append(
                Vdev(
                    draw(u32s),
                    vdev_nid,
                    draw(u32s),
                    draw(u32s),
                    draw(st.integers(0, 255)),
                    vrings,
                    draw(st.binary(max_size=12)),
                )
            )
        else:
            data = draw(st.binary(max_size=24))
            if vendor_align:
                data += bytes(-len(data) % 4)
            out.append(VendorEntry(draw(st.integers(128, 512)), data))
    return draw(st.permutations(out))


# Generation draws many values per example; keep a loaded CI machine from flaking the run.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(entry_lists())
def test_round_trip_entries(entries: list[Entry]) -> None:
    data = build_resource_table(entries)
    t = parse_resource_table(data)
    assert t.entries == tuple(entries)
    assert build_resource_table(t.entries) == data
    json.dumps(table_to_dict(t))


@relaxed
@given(entry_lists(vendor_align=False))
def test_round_trip_bytes(entries: list[Entry]) -> None:
    data = build_resource_table(entries)
    assert build_resource_table(parse_resource_table(data).entries) == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_tables_fail_cleanly(data: st.DataObject) -> None:
    blob = bytearray(data.draw(st.sampled_from([OPENAMP, MULTI])))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    findings = validate_resource_table(blob)
    try:
        parse_resource_table(blob)
    except ResourceTableError as err:
        assert findings and str(findings[0]) == str(err)
    else:
        assert findings == []


@given(st.binary(max_size=200))
def test_arbitrary_bytes_fail_cleanly(blob: bytes) -> None:
    try:
        parse_resource_table(blob)
    except ResourceTableError:
        assert validate_resource_table(blob)


def test_parse_releases_the_callers_buffer() -> None:
    buf = bytearray(patch(OPENAMP, 0, 2))
    with pytest.raises(ResourceTableError):
        parse_resource_table(buf)
    buf.append(0)  # would raise BufferError if a view were still exported
    inspect_resource_table(buf)
    buf.append(0)


def test_field_offsets_follow_the_c_layouts() -> None:
    """Offsets are derived from the struct formats; these are counted by hand from
    include/linux/remoteproc.h (after the type word)."""
    assert MEMORY_FIELDS == {"da": 0, "pa": 4, "len": 8, "flags": 12, "reserved": 16, "name": 20}
    assert TRACE_FIELDS == {"da": 0, "len": 4, "reserved": 8, "name": 12}
    assert VDEV_FIELDS == {
        "id": 0,
        "notifyid": 4,
        "dfeatures": 8,
        "gfeatures": 12,
        "config_len": 16,
        "status": 20,
        "num_of_vrings": 21,
        "reserved": 22,
    }
    assert VRING_FIELDS == {"da": 0, "align": 4, "num": 8, "notifyid": 12, "pa": 16}
    assert field_offsets(struct.Struct("<H2xI3B"), "a b c d e") == {
        "a": 0,
        "b": 4,
        "c": 8,
        "d": 9,
        "e": 10,
    }
    with pytest.raises(ValueError, match="has 6 fields, not 2"):
        field_offsets(FW_RSC_DEVMEM, "da pa")


def test_carveouts_and_devmems_share_one_layout_but_never_compare_equal() -> None:
    assert FW_RSC_CARVEOUT is FW_RSC_DEVMEM
    assert Carveout(0, 1, 16, name="x") != Devmem(0, 1, 16, name="x")
    data = build_resource_table([Carveout(0, 1, 16, name="c"), Devmem(64, 2, 16, name="d")])
    assert [type(e) for e in parse_resource_table(data).entries] == [Carveout, Devmem]
