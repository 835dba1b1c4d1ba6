"""rpmsg wire codecs and the address allocator, against the kernel's structures (no event loop).

Golden bytes are written by hand from drivers/rpmsg/virtio_rpmsg_bus.c and
include/linux/rpmsg/ns.h (little-endian)::

    struct rpmsg_hdr    { u32 src; u32 dst; u32 reserved; u16 len; u16 flags; u8 data[]; }
    struct rpmsg_ns_msg { char name[32]; u32 addr; u32 flags; }   /* flags: 0 CREATE, 1 DESTROY */
"""

from __future__ import annotations

import pytest

from rpmsg import ADDR_ANY, HDR_SIZE, NS_ADDR, RESERVED_ADDRESSES, NsFlags
from rpmsg.addresses import MAX_ADDR, AddressAllocator
from rpmsg.errors import AddressInUseError, InvalidAddressError
from rpmsg.wire import (
    NS_MSG_SIZE,
    RPMSG_NAME_SIZE,
    encode_name,
    pack_header,
    pack_ns,
    unpack_header,
    unpack_ns,
)

# src 0x400, dst 0x35, reserved 0, len 40, flags 0
HDR_0x400_TO_NS = bytes.fromhex("00040000 35000000 00000000 2800 0000")

# "rpmsg-client-sample" NUL-padded to 32 bytes, addr 0x400, flags 0 (CREATE)
NS_CLIENT_SAMPLE_CREATE = bytes.fromhex(
    "72706d73 672d636c 69656e74 2d73616d 706c6500 00000000 00000000 00000000"  # name[32]
    "00040000"  # addr
    "00000000"  # flags
)


def test_constants_match_the_kernel() -> None:
    assert (HDR_SIZE, NS_MSG_SIZE, RPMSG_NAME_SIZE) == (16, 40, 32)
    assert (NS_ADDR, ADDR_ANY, RESERVED_ADDRESSES) == (53, 0xFFFFFFFF, 1024)
    assert (int(NsFlags.CREATE), int(NsFlags.DESTROY)) == (0, 1)


# -- struct rpmsg_hdr --------------------------------------------------------------------------


def test_pack_header_golden_bytes() -> None:
    buf = bytearray(b"\xff" * 16)  # reserved must be written as zero, not left alone
    pack_header(buf, 0x400, 0x35, 40, 0)
    assert bytes(buf) == HDR_0x400_TO_NS


def test_pack_header_all_fields_and_only_16_bytes() -> None:
    buf = bytearray(b"\xee" * 20)
    pack_header(memoryview(buf), 0x12345678, 0x9ABCDEF0, 0x1F0, 0xBEEF)
    assert bytes(buf) == bytes.fromhex("78563412 f0debc9a 00000000 f001 efbe eeeeeeee")


def test_unpack_header_golden_bytes() -> None:
    assert unpack_header(HDR_0x400_TO_NS) == (0x400, 0x35, 40, 0)
    assert unpack_header(bytes.fromhex("78563412 f0debc9a 00000000 f001 efbe")) == (
        0x12345678,
        0x9ABCDEF0,
        0x1F0,
        0xBEEF,
    )


def test_unpack_header_ignores_reserved_and_trailing_payload() -> None:
    # OpenAMP keeps private state in `reserved`; the payload follows the header.
    raw = bytes.fromhex("00040000 35000000 efbeadde 0300 0100") + b"abc"
    assert unpack_header(raw) == (0x400, 0x35, 3, 1)
    assert unpack_header(memoryview(raw)) == (0x400, 0x35, 3, 1)


def test_header_round_trip() -> None:
    buf = bytearray(16)
    for src, dst, length, flags in [(0, 0, 0, 0), (1024, 53, 496, 0), (MAX_ADDR, 7, 1, 0xFFFF)]:
        pack_header(buf, src, dst, length, flags)
        assert unpack_header(buf) == (src, dst, length, flags)


# -- struct rpmsg_ns_msg ------------------------------------------------------------------------


def test_pack_ns_golden_bytes() -> None:
    msg = pack_ns("rpmsg-client-sample", 0x400, NsFlags.CREATE)
    assert len(msg) == 40
    assert msg == NS_CLIENT_SAMPLE_CREATE


def test_pack_ns_destroy_golden_bytes() -> None:
    assert pack_ns("a", 0x12345678, NsFlags.DESTROY) == bytes.fromhex(
        "61" + "00" * 31 + "78563412" + "01000000"
    )


def test_unpack_ns_golden_bytes() -> None:
    assert unpack_ns(NS_CLIENT_SAMPLE_CREATE) == ("rpmsg-client-sample", 0x400, 0)
    assert unpack_ns(memoryview(NS_CLIENT_SAMPLE_CREATE)) == ("rpmsg-client-sample", 0x400, 0)


def test_unpack_ns_ignores_garbage_after_first_nul() -> None:
    name = b"svc\0garbage\xff\x80" + b"\x01" * 19
    assert len(name) == 32
    raw = name + bytes.fromhex("35000000 01000000")
    assert unpack_ns(raw) == ("svc", 0x35, 1)


def test_unpack_ns_full_31_char_name_and_unterminated_32() -> None:
    assert unpack_ns(pack_ns("x" * 31, 1, NsFlags.CREATE)) == ("x" * 31, 1, 0)
    # A peer that fills all 32 bytes without a NUL: the kernel bounds the compare at 32.
    assert unpack_ns(b"y" * 32 + bytes(8)) == ("y" * 32, 0, 0)


@pytest.mark.parametrize("length", [0, 16, 39, 41, 80])
def test_unpack_ns_wrong_length_is_malformed(length: int) -> None:
    raw = (NS_CLIENT_SAMPLE_CREATE + bytes(40))[:length]
    assert unpack_ns(raw) is None


@pytest.mark.parametrize(
    "name_field",
    [
        bytes(32),  # empty name
        b"\0svc" + bytes(28),  # empty before the first NUL
        b"caf\xe9" + bytes(28),  # not ASCII
        b"\xff" * 32,
    ],
)
def test_unpack_ns_bad_name_is_malformed(name_field: bytes) -> None:
    assert unpack_ns(name_field + bytes.fromhex("00040000 00000000")) is None


def test_encode_name_limits() -> None:
    assert encode_name("a") == b"a"
    assert encode_name("n" * 31) == b"n" * 31


@pytest.mark.parametrize("bad", ["", "n" * 32, "n" * 40, "a\0b", "\0", "caf\u00e9"])
def test_encode_name_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        encode_name(bad)
    with pytest.raises(ValueError):
        pack_ns(bad, 0x400, NsFlags.CREATE)


# -- AddressAllocator ----------------------------------------------------------------------------


def test_dynamic_addresses_start_at_1024() -> None:
    a = AddressAllocator()
    assert [a.allocate() for _ in range(3)] == [1024, 1025, 1026]
    assert a.allocate(ADDR_ANY) == 1027
    assert len(a) == 4 and 1024 in a and 1028 not in a


def test_lowest_free_first_after_releases() -> None:
    a = AddressAllocator()
    for _ in range(6):
        a.allocate()  # 1024..1029
    a.release(1027)
    a.release(1025)
    a.release(1028)
    assert [a.allocate() for _ in range(4)] == [1025, 1027, 1028, 1030]
    a.release(1024)
    assert a.allocate() == 1024


def test_release_is_idempotent_and_unknown_is_ignored() -> None:
    a = AddressAllocator()
    a.allocate()
    a.release(1024)
    a.release(1024)
    a.release(4242)
    a.release(53)
    assert len(a) == 0
    assert [a.allocate(), a.allocate()] == [1024, 1025]  # 1024 handed out once, not twice


def test_reserved_addresses_only_when_asked() -> None:
    a = AddressAllocator()
    assert a.allocate(NS_ADDR) == 53
    assert a.allocate(0) == 0
    assert a.allocate(1023) == 1023
    assert a.allocate() == 1024  # ANY never returns a reserved address
    a.release(53)
    assert a.allocate() == 1025  # a released reserved address is not reused dynamically
    assert a.allocate(53) == 53


def test_explicit_dynamic_addresses_are_skipped_by_any() -> None:
    a = AddressAllocator()
    assert a.allocate(1024) == 1024
    assert a.allocate(1026) == 1026
    assert [a.allocate(), a.allocate()] == [1025, 1027]
    a.release(1025)
    assert a.allocate(1025) == 1025  # explicitly re-bound while on the free list
    assert a.allocate() == 1028


@pytest.mark.parametrize("addr", [0, 53, 1024, 5000, MAX_ADDR])
def test_address_in_use(addr: int) -> None:
    a = AddressAllocator()
    a.allocate(addr)
    with pytest.raises(AddressInUseError):
        a.allocate(addr)
    assert issubclass(AddressInUseError, ValueError)


def test_any_skips_taken_and_in_use_is_not_any() -> None:
    a = AddressAllocator()
    assert a.allocate() == 1024
    with pytest.raises(AddressInUseError):
        a.allocate(1024)
    assert a.allocate(ADDR_ANY) == 1025


@pytest.mark.parametrize("addr", [-1, -1024, 0x1_0000_0000, 2**40])
def test_out_of_range(addr: int) -> None:
    a = AddressAllocator()
    with pytest.raises(InvalidAddressError):
        a.allocate(addr)
    assert len(a) == 0


def test_highest_address_is_bindable() -> None:
    a = AddressAllocator()
    assert MAX_ADDR == 0xFFFFFFFE
    assert a.allocate(MAX_ADDR) == MAX_ADDR
