"""DeviceMemory bounds checks and the fw_rsc_vdev view against hand-written golden bytes.

The golden bytes follow include/linux/remoteproc.h (little-endian)::

    struct resource_table    { u32 ver; u32 num; u32 reserved[2]; u32 offset[num]; }
    struct fw_rsc_hdr        { u32 type; }                              RSC_VDEV = 3
    struct fw_rsc_vdev       { u32 id; u32 notifyid; u32 dfeatures; u32 gfeatures;
                               u32 config_len; u8 status; u8 num_of_vrings; u8 reserved[2];
                               struct fw_rsc_vdev_vring vring[]; }     24 bytes + vrings
    struct fw_rsc_vdev_vring { u32 da; u32 align; u32 num; u32 notifyid; u32 pa; }   20 bytes
"""

from __future__ import annotations

import array

import pytest

from transports.errors import MemoryAccessError, RemoteProtocolError, TransportError
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vdev import (
    VdevView,
    VringInfo,
    build_single_vdev_table,
    single_vdev_table_size,
    single_vdev_view,
)

# -- DeviceMemory ------------------------------------------------------------------------------

A_DA, A_SIZE = 0x1000, 0x100
B_DA, B_SIZE = 0x1100, 0x100  # adjacent to A
C_DA, C_SIZE = 0x4000, 0x40


@pytest.fixture
def backing() -> dict[str, bytearray]:
    return {"a": bytearray(A_SIZE), "b": bytearray(B_SIZE), "c": bytearray(C_SIZE)}


@pytest.fixture
def dm(backing: dict[str, bytearray]) -> DeviceMemory:
    # Added out of order on purpose: the map keeps them sorted.
    return DeviceMemory(
        [
            Region(C_DA, memoryview(backing["c"]), "c"),
            Region(A_DA, memoryview(backing["a"]), "a"),
            Region(B_DA, memoryview(backing["b"]), "b"),
        ]
    )


def test_regions_sorted_and_sized(dm: DeviceMemory) -> None:
    assert [(r.name, r.da, r.end, r.size) for r in dm] == [
        ("a", 0x1000, 0x1100, 0x100),
        ("b", 0x1100, 0x1200, 0x100),
        ("c", 0x4000, 0x4040, 0x40),
    ]


def test_view_inside_and_writes_land_in_backing(
    dm: DeviceMemory, backing: dict[str, bytearray]
) -> None:
    v = dm.view(0x1010, 4)
    assert v.nbytes == 4
    v[:] = b"abcd"
    assert backing["a"][0x10:0x14] == b"abcd"
    assert backing["a"].count(0) == A_SIZE - 4
    whole_b = dm.view(B_DA, B_SIZE)
    whole_b[-1] = 0x5A
    assert backing["b"][B_SIZE - 1] == 0x5A
    dm.view(0x403F, 1)[0] = 0x77
    assert backing["c"][0x3F] == 0x77
    # And reads see writes to the backing store (zero copy).
    backing["c"][0] = 0x42
    assert dm.view(C_DA, 1)[0] == 0x42


@pytest.mark.parametrize(
    ("da", "length"),
    [
        (A_DA - 1, 2),  # starts before the first region
        (A_DA - 1, 1),
        (0, 1),
        (0, 0),
        (0x10FF, 2),  # straddles a and b, although both are mapped
        (A_DA, A_SIZE + 1),  # runs from a into b
        (0x11FF, 2),  # ends after b
        (B_DA + B_SIZE, 1),  # starts right after b, in the gap
        (0x2000, 0x10),  # in the gap
        (0x403F, 2),  # ends after c
        (C_DA, -1),  # negative length
        (0x1010, -4),
        (C_DA + C_SIZE + 1, 0),  # zero-length beyond the end
        (1 << 64, 1),
    ],
)
def test_view_out_of_bounds(dm: DeviceMemory, da: int, length: int) -> None:
    with pytest.raises(MemoryAccessError):
        dm.view(da, length)
    assert dm.find(da, length) is None
    assert not dm.contains(da, length)


def test_memory_access_error_is_value_error(dm: DeviceMemory) -> None:
    with pytest.raises(ValueError, match="outside shared memory"):
        dm.view(0, 1)
    assert issubclass(MemoryAccessError, TransportError)


def test_zero_length_views(dm: DeviceMemory) -> None:
    # An empty range at a region's end is [end, end): inside, like a Python slice.
    assert dm.view(C_DA + C_SIZE, 0).nbytes == 0
    assert dm.view(C_DA, 0).nbytes == 0
    assert dm.view(B_DA, 0).nbytes == 0  # = end of a = start of b


def test_find(dm: DeviceMemory) -> None:
    a, b, c = list(dm)
    assert dm.find(A_DA) is a
    assert dm.find(0x10FF) is a
    assert dm.find(0x1100) is b
    assert dm.find(0x1000, 0x100) is a
    assert dm.find(0x1000, 0x101) is None
    assert dm.find(0x4000, 0x40) is c
    assert dm.find(0x0FFF) is None
    assert dm.find(0x1200) is None
    assert dm.find(0x4040) is None
    assert dm.contains(0x4000, 0x40)


@pytest.mark.parametrize(
    ("da", "size"),
    [
        (0x0FF0, 0x20),  # overlaps the start of a
        (0x10F0, 0x20),  # overlaps the end of a and the start of b
        (0x1080, 0x10),  # inside a
        (0x0F00, 0x1000),  # contains a, b (and c's neighbourhood)
        (0x403F, 1),  # last byte of c
    ],
)
def test_overlap_rejected(dm: DeviceMemory, da: int, size: int) -> None:
    before = [(r.name, r.da) for r in dm]
    with pytest.raises(MemoryAccessError, match="overlaps"):
        dm.add(Region(da, memoryview(bytearray(size)), "x"))
    assert [(r.name, r.da) for r in dm] == before


def test_adjacent_regions_allowed_and_remove(dm: DeviceMemory) -> None:
    d = dm.add(Region(0x0F00, memoryview(bytearray(0x100)), "d"))  # ends where a starts
    e = dm.add(Region(0x4040, memoryview(bytearray(0x10)), "e"))  # starts where c ends
    assert [r.name for r in dm] == ["d", "a", "b", "c", "e"]
    assert dm.find(0x0FFF) is d
    assert dm.find(0x4040) is e
    dm.remove(d)
    assert dm.find(0x0FFF) is None
    with pytest.raises(MemoryAccessError):
        dm.view(0x0F00, 1)


def test_empty_or_negative_region_rejected() -> None:
    dm = DeviceMemory()
    with pytest.raises(MemoryAccessError):
        dm.add(Region(0x1000, memoryview(bytearray(0)), "empty"))
    with pytest.raises(MemoryAccessError):
        dm.add(Region(-0x10, memoryview(bytearray(0x20)), "negative"))
    assert list(dm) == []


def test_region_of_wider_items_is_cast_to_bytes() -> None:
    words = array.array("I", [0, 0, 0, 0])
    dm = DeviceMemory()
    region = dm.add(Region(0x100, memoryview(words), "words"))
    assert region.mem.format == "B"
    assert region.size == 16
    assert region.end == 0x110
    dm.view(0x104, 4)[:] = b"\x78\x56\x34\x12"
    assert words[1] == 0x12345678


# -- VdevView ----------------------------------------------------------------------------------

# fw_rsc_vdev body (after the type word): id 7, notifyid 0, dfeatures 1, gfeatures 0,
# config_len 0, status 0, num_of_vrings 2, reserved, then two fw_rsc_vdev_vring.
VDEV_BODY = bytes.fromhex(
    "07000000"  # 0  id = VIRTIO_ID_RPMSG
    "00000000"  # 4  notifyid
    "01000000"  # 8  dfeatures = 1 << VIRTIO_RPMSG_F_NS
    "00000000"  # 12 gfeatures
    "00000000"  # 16 config_len
    "00"  # 20 status
    "02"  # 21 num_of_vrings
    "0000"  # 22 reserved[2]
    # vring[0] at 24: da 0x4000, align 0x1000, num 256, notifyid 1, pa 0
    "00400000 00100000 00010000 01000000 00000000"
    # vring[1] at 44: da 0x8000, align 0x1000, num 256, notifyid 2, pa 0
    "00800000 00100000 00010000 02000000 00000000"
)

# The whole table: ver 1, num 1, reserved 0 0, offset[0] = 0x14, then type 3 and the body.
GOLDEN_TABLE = (
    bytes.fromhex(
        "01000000"  # 0x00 ver
        "01000000"  # 0x04 num
        "00000000"  # 0x08 reserved[0]
        "00000000"  # 0x0C reserved[1]
        "14000000"  # 0x10 offset[0]
        "03000000"  # 0x14 fw_rsc_hdr.type = RSC_VDEV
    )
    + VDEV_BODY
)

VRINGS = [
    VringInfo(da=0x4000, align=0x1000, num=256, notifyid=1, pa=0),
    VringInfo(da=0x8000, align=0x1000, num=256, notifyid=2, pa=0),
]


def test_golden_sizes() -> None:
    assert len(VDEV_BODY) == 64
    assert len(GOLDEN_TABLE) == 88
    assert single_vdev_table_size(2, 0) == 88
    assert single_vdev_table_size(2, 8) == 96


def test_vdev_properties() -> None:
    view = VdevView(memoryview(bytearray(VDEV_BODY)))
    assert view.id == 7
    assert view.notifyid == 0
    assert view.dfeatures == 1
    assert view.gfeatures == 0
    assert view.config_len == 0
    assert view.status == 0
    assert view.num_of_vrings == 2
    assert view.nbytes == 64
    assert view.vring(0) == VRINGS[0]
    assert view.vring(1) == VRINGS[1]
    assert not view.has_feature(0)  # offered, not accepted


def test_vdev_rereads_memory_written_by_peer() -> None:
    body = bytearray(VDEV_BODY)
    view = VdevView(memoryview(body))
    body[8:12] = (0x80000003).to_bytes(4, "little")
    body[16:20] = (8).to_bytes(4, "little")
    body[20] = 0x0F
    assert view.dfeatures == 0x80000003
    assert view.config_len == 8
    assert view.nbytes == 72
    assert view.status == 0x0F


def test_vdev_setters_write_exact_bytes() -> None:
    body = bytearray(VDEV_BODY)
    view = VdevView(memoryview(body))

    view.status = 0x07
    expected = bytearray(VDEV_BODY)
    expected[20] = 0x07
    assert body == expected

    view.status = 0x18F  # a byte: masked
    expected[20] = 0x8F
    assert body == expected

    view.gfeatures = 1
    expected[12:16] = b"\x01\x00\x00\x00"
    assert body == expected
    assert view.has_feature(0)
    assert not view.has_feature(1)

    view.gfeatures = 0xA1B2C3D4
    expected[12:16] = b"\xd4\xc3\xb2\xa1"
    assert body == expected

    view.notifyid = 0x0102
    expected[4:8] = b"\x02\x01\x00\x00"
    assert body == expected

    view.dfeatures = 0x3
    expected[8:12] = b"\x03\x00\x00\x00"
    assert body == expected

    view.set_vring(1, VringInfo(da=0x12345678, align=0x40, num=16, notifyid=9, pa=0xCAFE0000))
    expected[44:64] = bytes.fromhex("78563412 40000000 10000000 09000000 0000feca")
    assert body == expected
    assert view.vring(1) == VringInfo(0x12345678, 0x40, 16, 9, 0xCAFE0000)
    assert view.vring(0) == VRINGS[0]


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (24 + 8, 3, "num"),  # vring[0].num not a power of two
        (24 + 8, 0, "num"),
        (24 + 8, 65536, "num"),  # a power of two, but > 32768
        (24 + 8, 0xFFFFFFFF, "num"),
        (24 + 4, 0, "align"),  # vring[0].align = 0
        (24 + 4, 0x1001, "align"),
    ],
)
def test_vdev_vring_validation(offset: int, value: int, match: str) -> None:
    body = bytearray(VDEV_BODY)
    body[offset : offset + 4] = value.to_bytes(4, "little")
    view = VdevView(memoryview(body))
    with pytest.raises(RemoteProtocolError, match=match):
        view.vring(0)
    assert view.vring(1) == VRINGS[1]


def test_vdev_vring_index_out_of_range() -> None:
    body = bytearray(VDEV_BODY)
    view = VdevView(memoryview(body))
    for index in (2, -1, 255):
        with pytest.raises(RemoteProtocolError, match="does not exist"):
            view.vring(index)
    with pytest.raises(RemoteProtocolError):
        view.set_vring(2, VRINGS[0])
    assert body == VDEV_BODY
    # The peer claims more vrings than the entry holds.
    body[21] = 3
    with pytest.raises(RemoteProtocolError, match="past the end"):
        view.vring(2)


def test_vdev_truncated() -> None:
    with pytest.raises(RemoteProtocolError, match="truncated"):
        VdevView(memoryview(VDEV_BODY[:23]))
    short = VdevView(memoryview(bytearray(VDEV_BODY[: 44 + 19])))
    assert short.vring(0) == VRINGS[0]
    with pytest.raises(RemoteProtocolError, match="past the end"):
        short.vring(1)


# -- the single-VDEV resource table -----------------------------------------------------------


def test_build_single_vdev_table_matches_golden() -> None:
    assert build_single_vdev_table(VRINGS) == GOLDEN_TABLE
    assert build_single_vdev_table(VRINGS, dfeatures=1, notifyid=0, device_id=7) == GOLDEN_TABLE


def test_build_single_vdev_table_with_config() -> None:
    table = build_single_vdev_table(VRINGS, config=b"\x01\x02\x03", dfeatures=5, notifyid=4)
    expected = bytearray(GOLDEN_TABLE)
    expected[0x18 + 4 : 0x18 + 8] = b"\x04\x00\x00\x00"  # notifyid
    expected[0x18 + 8 : 0x18 + 12] = b"\x05\x00\x00\x00"  # dfeatures
    expected[0x18 + 16 : 0x18 + 20] = b"\x03\x00\x00\x00"  # config_len
    expected += b"\x01\x02\x03"
    assert table == bytes(expected)
    assert len(table) == single_vdev_table_size(2, 3)


def test_single_vdev_view_parses_golden_in_place() -> None:
    table = bytearray(GOLDEN_TABLE)
    view = single_vdev_view(memoryview(table))
    assert (view.id, view.notifyid, view.dfeatures, view.gfeatures) == (7, 0, 1, 0)
    assert (view.config_len, view.status, view.num_of_vrings) == (0, 0, 2)
    assert [view.vring(0), view.vring(1)] == VRINGS
    view.status = 0x0F  # ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK
    view.gfeatures = 1
    expected = bytearray(GOLDEN_TABLE)
    expected[0x18 + 20] = 0x0F  # byte 44 of the table
    expected[0x18 + 12 : 0x18 + 16] = b"\x01\x00\x00\x00"
    assert table == expected
    assert table[44] == 0x0F


def _patched(offset: int, value: int) -> memoryview:
    table = bytearray(GOLDEN_TABLE)
    table[offset : offset + 4] = value.to_bytes(4, "little")
    return memoryview(table)


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (0x00, 2, "version"),  # ver 2
        (0x00, 0, "version"),
        (0x04, 0, "0 entries"),  # num 0
        (0x14, 4, "type 4"),  # fw_rsc_hdr.type = RSC_TRACE, not VDEV
        (0x14, 0, "type 0"),
        (0x10, 0x10, "offset"),  # points into the offset array
        (0x10, 0, "offset"),
        (0x10, 88, "offset"),  # past the end
        (0x10, 88 - 27, "offset"),  # the fixed vdev part would run past the end
        (0x10, 0xFFFFFFFF, "offset"),
        (0x04, 2, "offset"),  # two entries: offset[1] sits where offset[0] points
    ],
)
def test_single_vdev_view_rejects(offset: int, value: int, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        single_vdev_view(_patched(offset, value))


def test_single_vdev_view_truncated() -> None:
    with pytest.raises(RemoteProtocolError, match="truncated"):
        single_vdev_view(memoryview(GOLDEN_TABLE[:19]))
    with pytest.raises(RemoteProtocolError, match="offset"):
        single_vdev_view(memoryview(GOLDEN_TABLE[: 0x18 + 23]))
    # The fixed part fits: the view opens, the missing vring is refused on access.
    view = single_vdev_view(memoryview(GOLDEN_TABLE[: 0x18 + 44]))
    assert view.vring(0) == VRINGS[0]
    with pytest.raises(RemoteProtocolError, match="past the end"):
        view.vring(1)
