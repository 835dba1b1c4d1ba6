"""The split vring against the virtio spec and the kernel's structures, not against itself.

Every expected offset and byte below is written by hand from include/uapi/linux/virtio_ring.h:

    struct vring_desc       { __le64 addr; __le32 len; __le16 flags; __le16 next; };   16 bytes
    struct vring_avail      { __le16 flags; __le16 idx; __le16 ring[num]; __le16 used_event; }
    struct vring_used_elem  { __le32 id; __le32 len; };                                8 bytes
    struct vring_used       { __le16 flags; __le16 idx; vring_used_elem ring[num];
                              __le16 avail_event; }

    vring_size(num, align) = ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1))
                             + 2 * 3 + 8 * num

Every test that builds a ring runs twice, through the ``vring_impl`` fixture (tests/conftest.py):
with the pure classes (PyVringDriver / PyVringDevice) and with the C accelerator's; the state
machine has one TestCase per implementation.

For num=4, align=16 (the geometry used by most tests here):

    desc[i]        0x00 + 16 * i
    avail.flags    0x40          avail.idx   0x42     avail.ring[k]  0x44 + 2 * k
    used_event     0x4C
    used.flags     0x50          used.idx    0x52     used.ring[k]   0x54 + 8 * k
    avail_event    0x74          size        0x76
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ACCEL_MISSING, ACCEL_VRING, PURE_VRING, VringImpl
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from transports.errors import RemoteProtocolError, RingFullError
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vring import VRING_DESC_F_WRITE, VringLayout, vring_size

# Hand-computed offsets for num=4, align=16 (see the module docstring).
NUM = 4
ALIGN = 16
DESC = 0x00
AVAIL_FLAGS = 0x40
AVAIL_IDX = 0x42
AVAIL_RING = 0x44
USED_EVENT = 0x4C
USED_FLAGS = 0x50
USED_IDX = 0x52
USED_RING = 0x54
AVAIL_EVENT = 0x74
SIZE = 0x76

GUARD = 0xA5
PAD = 32


def kernel_vring_size(num: int, align: int) -> int:
    """include/uapi/linux/virtio_ring.h vring_size(), transcribed."""
    return ((16 * num + 2 * (3 + num) + align - 1) & ~(align - 1)) + 2 * 3 + 8 * num


def desc_bytes(addr: int, length: int, flags: int, nxt: int) -> bytes:
    return struct.pack("<QIHH", addr, length, flags, nxt)


def u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def used_elem(head: int, length: int) -> bytes:
    return head.to_bytes(4, "little") + length.to_bytes(4, "little")


@dataclass
class Ring:
    """A num=4, align=16 ring inside a bytearray with guard bytes on both sides."""

    buf: bytearray
    mem: memoryview
    layout: VringLayout
    driver: Any  # PyVringDriver or the C VringDriver
    device: Any  # PyVringDevice or the C VringDevice

    def poke(self, off: int, data: bytes) -> None:
        """The hostile peer writes raw bytes into the ring."""
        self.mem[off : off + len(data)] = data

    def peek(self, off: int, n: int) -> bytes:
        return bytes(self.mem[off : off + n])

    def guards_intact(self) -> bool:
        size = self.layout.size
        return (
            self.buf[:PAD] == bytes([GUARD]) * PAD
            and self.buf[PAD + size :] == bytes([GUARD]) * PAD
            and len(self.buf) == size + 2 * PAD
        )


def make_ring(
    impl: VringImpl,
    num: int = NUM,
    align: int = ALIGN,
    *,
    region_check=None,
    start_index: int = 0,
) -> Ring:
    layout = VringLayout(num, align)
    buf = bytearray([GUARD]) * (layout.size + 2 * PAD)
    mem = memoryview(buf)[PAD : PAD + layout.size]
    driver = impl.driver(mem, layout, start_index=start_index)
    kwargs = {} if region_check is None else {"region_check": region_check}
    device = impl.device(mem, layout, start_index=start_index, **kwargs)
    return Ring(buf, mem, layout, driver, device)


@pytest.fixture
def ring(vring_impl: VringImpl) -> Ring:
    return make_ring(vring_impl)


# -- 1. layout ---------------------------------------------------------------------------------


def test_layout_256_4096_matches_kernel_vring_size() -> None:
    lay = VringLayout(256, 4096)
    assert lay.desc == 0
    assert lay.avail == 0x1000
    assert lay.avail_ring == 0x1004
    assert lay.used_event == 0x1204
    assert lay.used == 0x2000
    assert lay.used_ring == 0x2004
    assert lay.avail_event == 0x2804
    assert lay.size == 0x2806
    assert kernel_vring_size(256, 4096) == 0x2806
    assert vring_size(256, 4096) == 0x2806


def test_layout_4_16_by_hand() -> None:
    # ((16*4 + 2*(3+4) + 15) & ~15) + 2*3 + 8*4 = (93 & ~15) + 6 + 32 = 80 + 38 = 118 = 0x76
    assert kernel_vring_size(4, 16) == 0x76
    lay = VringLayout(4, 16)
    assert (lay.desc, lay.avail, lay.avail_ring, lay.used_event) == (0, 0x40, 0x44, 0x4C)
    assert (lay.used, lay.used_ring, lay.avail_event, lay.size) == (0x50, 0x54, 0x74, 0x76)
    assert vring_size(4, 16) == 0x76


@pytest.mark.parametrize(
    ("num", "align"), [(1, 2), (2, 4), (8, 4096), (16, 64), (512, 4096), (32768, 4096)]
)
def test_layout_size_equals_kernel_formula(num: int, align: int) -> None:
    assert VringLayout(num, align).size == kernel_vring_size(num, align)


def test_layout_with_align_smaller_than_avail_end() -> None:
    # num=1, align=2: avail at 16, avail ends at 16 + 2*4 = 24 (already 2-aligned) -> used at 24.
    lay = VringLayout(1, 2)
    assert (lay.avail, lay.used_event, lay.used, lay.avail_event, lay.size) == (
        16,
        22,
        24,
        36,
        38,
    )


@pytest.mark.parametrize("num", [0, 3, 6, 255, 257, 65536, -4])
def test_layout_rejects_bad_num(num: int) -> None:
    with pytest.raises(ValueError, match="num"):
        VringLayout(num, 16)


@pytest.mark.parametrize("align", [0, 3, 24, 4095, -16])
def test_layout_rejects_bad_align(align: int) -> None:
    with pytest.raises(ValueError, match="align"):
        VringLayout(4, align)


def test_halves_reject_memory_smaller_than_layout(vring_impl: VringImpl) -> None:
    lay = VringLayout(4, 16)
    short = memoryview(bytearray(SIZE - 1))
    with pytest.raises(ValueError):
        vring_impl.driver(short, lay)
    with pytest.raises(ValueError):
        vring_impl.device(short, lay)


# -- 2. golden ring memory ---------------------------------------------------------------------


def test_driver_reset_zeroes_ring_and_writes_start_index(vring_impl: VringImpl) -> None:
    lay = VringLayout(NUM, ALIGN)
    buf = bytearray(b"\xff") * SIZE
    vring_impl.driver(memoryview(buf), lay, start_index=0x1FFFE)  # masked to 0xFFFE
    expected = bytearray(SIZE)
    expected[AVAIL_IDX : AVAIL_IDX + 2] = b"\xfe\xff"
    expected[USED_IDX : USED_IDX + 2] = b"\xfe\xff"
    assert buf == expected


def test_driver_without_reset_leaves_memory_alone(vring_impl: VringImpl) -> None:
    lay = VringLayout(NUM, ALIGN)
    buf = bytearray(range(SIZE))
    vring_impl.driver(memoryview(buf), lay, reset=False)
    assert buf == bytearray(range(SIZE))


def test_golden_ring_memory_full_cycle(ring: Ring) -> None:
    drv, dev = ring.driver, ring.device
    assert drv.post(0x1000, 0x200, writable=True) == 0
    assert drv.post(0x1200, 0x200, writable=False) == 1

    expected = bytearray(SIZE)
    expected[0x00:0x10] = struct.pack("<QIHH", 0x1000, 0x200, 2, 0)
    expected[0x10:0x20] = struct.pack("<QIHH", 0x1200, 0x200, 0, 0)
    expected[0x42:0x44] = b"\x02\x00"  # avail.idx = 2
    expected[0x44:0x46] = b"\x00\x00"  # avail.ring[0] = 0
    expected[0x46:0x48] = b"\x01\x00"  # avail.ring[1] = 1
    assert ring.peek(0, SIZE) == bytes(expected)
    assert drv.num_free == 2
    assert drv.num_in_flight == 2

    assert dev.has_avail()
    assert dev.take() == (0, 0x1000, 0x200, VRING_DESC_F_WRITE)
    assert dev.take() == (1, 0x1200, 0x200, 0)
    assert dev.take() is None
    assert not dev.has_avail()
    assert dev.num_taken == 2
    # Taking writes nothing into shared memory (no EVENT_IDX).
    assert ring.peek(0, SIZE) == bytes(expected)

    dev.give(1, 0)
    dev.give(0, 0x20)
    expected[0x52:0x54] = b"\x02\x00"  # used.idx = 2
    expected[0x54:0x5C] = b"\x01\x00\x00\x00" + b"\x00\x00\x00\x00"  # used.ring[0] = {1, 0}
    expected[0x5C:0x64] = b"\x00\x00\x00\x00" + b"\x20\x00\x00\x00"  # used.ring[1] = {0, 0x20}
    assert ring.peek(0, SIZE) == bytes(expected)
    assert dev.num_taken == 0

    assert drv.has_used()
    assert drv.get_used() == (1, 0x1200, 0)
    assert drv.get_used() == (0, 0x1000, 0x20)
    assert drv.get_used() is None
    assert not drv.has_used()
    assert drv.num_free == NUM
    assert ring.peek(0, SIZE) == bytes(expected)  # reclaiming writes nothing either

    # Descriptor 0 was freed last, so it is reused first (the kernel's free_head list).
    assert drv.post(0x1400, 0x100, writable=True) == 0
    expected[0x00:0x10] = struct.pack("<QIHH", 0x1400, 0x100, 2, 0)
    expected[0x42:0x44] = b"\x03\x00"  # avail.idx = 3
    expected[0x48:0x4A] = b"\x00\x00"  # avail.ring[2] = 0
    assert ring.peek(0, SIZE) == bytes(expected)

    assert drv.post(0x1600, 0x80, writable=False) == 1
    expected[0x10:0x20] = struct.pack("<QIHH", 0x1600, 0x80, 0, 0)
    expected[0x42:0x44] = b"\x04\x00"  # avail.idx = 4
    expected[0x4A:0x4C] = b"\x01\x00"  # avail.ring[3] = 1
    assert ring.peek(0, SIZE) == bytes(expected)

    # The fifth post lands in avail.ring[4 % 4] = slot 0 and takes descriptor 2.
    assert drv.post(0x1800, 0x10, writable=True) == 2
    expected[0x20:0x30] = struct.pack("<QIHH", 0x1800, 0x10, 2, 0)
    expected[0x42:0x44] = b"\x05\x00"
    expected[0x44:0x46] = b"\x02\x00"
    assert ring.peek(0, SIZE) == bytes(expected)
    assert ring.guards_intact()


def test_indices_wrap_at_u16(vring_impl: VringImpl) -> None:
    r = make_ring(vring_impl, start_index=0xFFFF)
    assert r.peek(AVAIL_IDX, 2) == b"\xff\xff"
    assert r.peek(USED_IDX, 2) == b"\xff\xff"
    assert r.driver.post(0xA000, 8, writable=True) == 0
    assert r.peek(AVAIL_IDX, 2) == b"\x00\x00"
    # 0xFFFF % 4 == 3: the first entry goes into the last avail slot.
    assert r.peek(AVAIL_RING + 6, 2) == b"\x00\x00"
    assert r.driver.post(0xB000, 8, writable=False) == 1
    assert r.peek(AVAIL_IDX, 2) == b"\x01\x00"
    assert r.peek(AVAIL_RING + 0, 2) == b"\x01\x00"
    assert r.device.take() == (0, 0xA000, 8, VRING_DESC_F_WRITE)
    assert r.device.take() == (1, 0xB000, 8, 0)
    r.device.give(0, 3)
    assert r.peek(USED_IDX, 2) == b"\x00\x00"
    assert r.peek(USED_RING + 3 * 8, 8) == used_elem(0, 3)
    r.device.give(1, 0)
    assert r.peek(USED_IDX, 2) == b"\x01\x00"
    assert r.peek(USED_RING, 8) == used_elem(1, 0)
    assert r.driver.get_used() == (0, 0xA000, 3)
    assert r.driver.get_used() == (1, 0xB000, 0)
    assert r.driver.get_used() is None


def test_ring_full_and_caller_errors(ring: Ring) -> None:
    for i in range(NUM):
        assert ring.driver.post(0x100 * i, 0x10, writable=True) == i
    assert ring.driver.num_free == 0
    with pytest.raises(RingFullError):
        ring.driver.post(0x9000, 0x10, writable=True)
    assert ring.peek(AVAIL_IDX, 2) == u16(4)  # the refused post published nothing
    with pytest.raises(ValueError, match="not taken"):
        ring.device.give(0, 0)  # never taken
    with pytest.raises(ValueError, match="not taken"):
        ring.device.give(NUM, 0)
    with pytest.raises(ValueError, match="not taken"):
        ring.device.give(-1, 0)
    assert ring.device.take() is not None
    ring.device.give(0, 0)
    with pytest.raises(ValueError, match="not taken"):
        ring.device.give(0, 0)  # given twice
    assert ring.peek(USED_IDX, 2) == u16(1)
    assert ring.driver.buffer_of(0) == (0, 0x10)
    assert ring.driver.buffer_of(3) == (0x300, 0x10)


def test_take_chain_of_exactly_num_descriptors(ring: Ring) -> None:
    # A hand-built chain 0 -> 1 -> 2 -> 3 (the driver only posts single descriptors).
    for i in range(NUM):
        last = i == NUM - 1
        ring.poke(16 * i, desc_bytes(0x1000 * (i + 1), 0x10 + i, 2 | (0 if last else 1), i + 1))
    ring.poke(AVAIL_RING, u16(0))
    ring.poke(AVAIL_IDX, u16(1))
    assert ring.device.take_chain() == (
        0,
        [(0x1000, 0x10, 3), (0x2000, 0x11, 3), (0x3000, 0x12, 3), (0x4000, 0x13, 2)],
    )
    assert ring.device.take_chain() is None


# -- 3. notification suppression flags ---------------------------------------------------------


def test_flags_at_their_offsets(ring: Ring) -> None:
    drv, dev = ring.driver, ring.device
    assert drv.kick_needed() and dev.interrupt_needed()

    drv.set_interrupts(False)
    assert ring.peek(AVAIL_FLAGS, 2) == b"\x01\x00"
    assert ring.peek(USED_FLAGS, 2) == b"\x00\x00"
    assert not dev.interrupt_needed()
    assert drv.kick_needed()

    dev.set_notifications(False)
    assert ring.peek(USED_FLAGS, 2) == b"\x01\x00"
    assert not drv.kick_needed()

    drv.set_interrupts(True)
    assert ring.peek(AVAIL_FLAGS, 2) == b"\x00\x00"
    assert dev.interrupt_needed()
    dev.set_notifications(True)
    assert ring.peek(USED_FLAGS, 2) == b"\x00\x00"
    assert drv.kick_needed()

    # Only bit 0 means anything in the legacy layout; the peer's other bits are ignored.
    ring.poke(USED_FLAGS, b"\xfe\xff")
    ring.poke(AVAIL_FLAGS, b"\xfe\xff")
    assert drv.kick_needed() and dev.interrupt_needed()
    ring.poke(USED_FLAGS, b"\x01\x80")
    ring.poke(AVAIL_FLAGS, b"\x01\x80")
    assert not drv.kick_needed() and not dev.interrupt_needed()

    # Nothing else in the ring moved.
    rest = bytearray(ring.peek(0, SIZE))
    rest[AVAIL_FLAGS : AVAIL_FLAGS + 2] = b"\0\0"
    rest[USED_FLAGS : USED_FLAGS + 2] = b"\0\0"
    assert rest == bytearray(SIZE)
    assert ring.guards_intact()


# -- 4. hostile peers --------------------------------------------------------------------------


def _cycle(ring: Ring, addr: int, length: int, used: int) -> None:
    """A valid post / take / give / get_used round trip: the ring still works."""
    head = ring.driver.post(addr, length, writable=True)
    took = ring.device.take()
    assert took == (head, addr, length, VRING_DESC_F_WRITE)
    ring.device.give(head, used)
    assert ring.driver.get_used() == (head, addr, used)
    assert ring.driver.get_used() is None


def _given(ring: Ring, n: int) -> None:
    """Post n writable 0x100-byte buffers at 0x1000 + 0x100*i, take and give each with 0x10."""
    for i in range(n):
        assert ring.driver.post(0x1000 + 0x100 * i, 0x100, writable=True) == i
    for i in range(n):
        assert ring.device.take() == (i, 0x1000 + 0x100 * i, 0x100, VRING_DESC_F_WRITE)
        ring.device.give(i, 0x10)


@pytest.mark.parametrize("bad_id", [NUM, 5, 0xFFFF, 0xFFFFFFFF])
def test_used_id_out_of_range(ring: Ring, bad_id: int) -> None:
    _given(ring, 2)
    ring.poke(USED_RING, bad_id.to_bytes(4, "little"))
    with pytest.raises(RemoteProtocolError) as info:
        ring.driver.get_used()
    assert info.value.consumed is True
    assert info.value.head is None
    assert ring.driver.get_used() == (1, 0x1100, 0x10)  # the next entry is fine
    assert ring.driver.num_free == NUM - 1  # descriptor 0 is lost, not double-freed
    _cycle(ring, 0x2000, 0x40, 0x40)
    assert ring.guards_intact()


def test_used_double_return(ring: Ring) -> None:
    _given(ring, 2)
    assert ring.driver.get_used() == (0, 0x1000, 0x10)
    ring.poke(USED_RING + 8, used_elem(0, 0x10))  # entry 1 returns descriptor 0 again
    with pytest.raises(RemoteProtocolError) as info:
        ring.driver.get_used()
    assert info.value.consumed is True
    assert info.value.head is None
    assert ring.driver.num_free == NUM - 1  # descriptor 0 freed once, 1 still in flight
    # Descriptor 0 is reused (LIFO) and the ring carries on.
    _cycle(ring, 0x3000, 0x20, 0x8)
    assert ring.driver.buffer_of(0) == (0x3000, 0x20)
    assert ring.guards_intact()


def test_used_return_of_never_posted_descriptor(ring: Ring) -> None:
    _given(ring, 1)
    ring.poke(USED_RING, used_elem(3, 0))  # 3 was never posted
    with pytest.raises(RemoteProtocolError) as info:
        ring.driver.get_used()
    assert (info.value.consumed, info.value.head) == (True, None)
    assert ring.driver.num_free == NUM - 1
    _cycle(ring, 0x3000, 0x20, 0x8)
    assert ring.guards_intact()


@pytest.mark.parametrize("jump", [NUM + 1, 0x8000, 0xFFFF])
def test_used_idx_jump(ring: Ring, jump: int) -> None:
    _given(ring, 1)
    assert ring.peek(USED_IDX, 2) == u16(1)
    ring.poke(USED_IDX, u16(jump & 0xFFFF))  # moved by > num since last_used = 0
    for _ in range(2):  # the entry stays in place: asking again fails again
        with pytest.raises(RemoteProtocolError) as info:
            ring.driver.get_used()
        assert (info.value.consumed, info.value.head) == (False, None)
    assert ring.driver.num_in_flight == 1
    ring.poke(USED_IDX, u16(1))  # the peer repairs its index
    assert ring.driver.get_used() == (0, 0x1000, 0x10)
    assert ring.driver.get_used() is None
    _cycle(ring, 0x3000, 0x20, 0x20)
    assert ring.guards_intact()


def test_used_idx_jump_of_exactly_num_is_accepted(ring: Ring) -> None:
    _given(ring, NUM)
    assert ring.peek(USED_IDX, 2) == u16(NUM)
    assert [ring.driver.get_used() for _ in range(NUM)] == [
        (i, 0x1000 + 0x100 * i, 0x10) for i in range(NUM)
    ]


def test_used_len_larger_than_writable_buffer(ring: Ring) -> None:
    _given(ring, 2)
    ring.poke(USED_RING + 4, (0x101).to_bytes(4, "little"))  # buffer 0 holds 0x100
    with pytest.raises(RemoteProtocolError) as info:
        ring.driver.get_used()
    assert info.value.consumed is True
    assert info.value.head == 0
    assert ring.driver.num_free == NUM - 1  # descriptor 0 reclaimed, 1 still in flight
    assert ring.driver.get_used() == (1, 0x1100, 0x10)
    assert ring.driver.num_free == NUM
    _cycle(ring, 0x3000, 0x100, 0x100)  # exactly the buffer length is fine
    assert ring.guards_intact()


def test_used_len_on_read_only_buffer_is_not_checked(ring: Ring) -> None:
    # The kernel ignores the used length of a device-readable buffer (rpmsg tx buffers).
    assert ring.driver.post(0x1000, 0x10, writable=False) == 0
    assert ring.device.take() == (0, 0x1000, 0x10, 0)
    ring.device.give(0, 0x1000)
    assert ring.driver.get_used() == (0, 0x1000, 0x1000)


@pytest.mark.parametrize("jump", [NUM + 1, 0x8000, 0xFFFF])
def test_avail_idx_jump(ring: Ring, jump: int) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(AVAIL_IDX, u16(jump))
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as info:
            ring.device.take()
        assert (info.value.consumed, info.value.head) == (False, None)
    assert ring.device.num_taken == 0
    ring.poke(AVAIL_IDX, u16(1))
    assert ring.device.take() == (0, 0x1000, 0x100, VRING_DESC_F_WRITE)
    ring.device.give(0, 1)
    assert ring.driver.get_used() == (0, 0x1000, 1)
    _cycle(ring, 0x3000, 0x20, 0x20)
    assert ring.guards_intact()


@pytest.mark.parametrize("bad_head", [NUM, 0x7FFF, 0xFFFF])
def test_avail_head_out_of_range(ring: Ring, bad_head: int) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(AVAIL_RING, u16(bad_head))
    with pytest.raises(RemoteProtocolError) as info:
        ring.device.take()
    assert (info.value.consumed, info.value.head) == (True, None)
    assert ring.device.num_taken == 0
    assert ring.device.take() is None
    _cycle(ring, 0x3000, 0x20, 0x20)  # descriptor 1 (0 is lost to the driver)
    assert ring.guards_intact()


def test_avail_offers_descriptor_already_taken(ring: Ring) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    assert ring.device.take() is not None
    ring.poke(AVAIL_RING + 2, u16(0))
    ring.poke(AVAIL_IDX, u16(2))
    with pytest.raises(RemoteProtocolError) as info:
        ring.device.take()
    assert (info.value.consumed, info.value.head) == (True, None)
    assert ring.device.num_taken == 1  # the first take still owns descriptor 0
    ring.device.give(0, 4)
    assert ring.driver.get_used() == (0, 0x1000, 4)


def _take_fails_with_head(ring: Ring, head: int, *, chain: bool = False) -> None:
    """take() (or take_chain()) raises with head set and consumed; giving head back works."""
    with pytest.raises(RemoteProtocolError) as info:
        ring.device.take_chain() if chain else ring.device.take()
    assert info.value.consumed is True
    assert info.value.head == head
    assert ring.device.num_taken == 1
    ring.device.give(head, 0)
    assert ring.driver.get_used() == (head, *ring.driver.buffer_of(head)[:1], 0)
    assert ring.driver.num_free == NUM
    _cycle(ring, 0x3000, 0x20, 0x20)
    assert ring.guards_intact()


@pytest.mark.parametrize("chain", [False, True])
def test_descriptor_chain_loop(ring: Ring, chain: bool) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(DESC + 0, desc_bytes(0x1000, 0x100, 2 | 1, 1))
    ring.poke(DESC + 16, desc_bytes(0x1100, 0x100, 2 | 1, 0))
    _take_fails_with_head(ring, 0, chain=chain)


def test_descriptor_chain_longer_than_num(ring: Ring) -> None:
    # 0 -> 1 -> 2 -> 3 -> 0 ...: num + 1 descriptors (a chain longer than num must revisit one).
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    for i in range(NUM):
        ring.poke(16 * i, desc_bytes(0x1000 + 0x100 * i, 0x100, 2 | 1, (i + 1) % NUM))
    _take_fails_with_head(ring, 0, chain=True)


def test_descriptor_chain_self_loop(ring: Ring) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(DESC, desc_bytes(0x1000, 0x100, 2 | 1, 0))
    _take_fails_with_head(ring, 0)


@pytest.mark.parametrize("nxt", [NUM, 0xFFFF])
def test_descriptor_next_out_of_range(ring: Ring, nxt: int) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(DESC, desc_bytes(0x1000, 0x100, 2 | 1, nxt))
    _take_fails_with_head(ring, 0)


def test_descriptor_next_out_of_range_deeper_in_chain(ring: Ring) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(DESC, desc_bytes(0x1000, 0x100, 2 | 1, 2))
    ring.poke(DESC + 32, desc_bytes(0x1100, 0x100, 2 | 1, 9))
    _take_fails_with_head(ring, 0, chain=True)


@pytest.mark.parametrize("flags", [4, 4 | 2, 4 | 1])
def test_indirect_descriptor_refused(ring: Ring, flags: int) -> None:
    assert ring.driver.post(0x1000, 0x100, writable=True) == 0
    ring.poke(DESC, desc_bytes(0x1000, 0x100, flags, 1))
    _take_fails_with_head(ring, 0)


POOL_DA = 0x10000
POOL_SIZE = 0x1000


@pytest.fixture
def pool_ring(vring_impl: VringImpl) -> Ring:
    """A ring whose device only accepts buffers inside a 4 KiB pool at da 0x10000."""
    pool = bytearray(POOL_SIZE)
    dm = DeviceMemory([Region(POOL_DA, memoryview(pool), "pool")])
    return make_ring(vring_impl, region_check=dm.contains)


@pytest.mark.parametrize(
    ("addr", "length"),
    [
        (POOL_DA - 1, 0x10),  # starts before the pool
        (0, 0x10),
        (POOL_DA + POOL_SIZE, 1),  # starts at the end
        (POOL_DA + POOL_SIZE - 0x10, 0x11),  # runs one byte past the end
        (POOL_DA + 0x800, 0x900),  # addr + len past the end
        (POOL_DA, 0xFFFFFFFF),  # huge length
        (0xFFFFFFFFFFFFFFF0, 0x20),  # addr + len wraps around 2**64 in C
        (0xFFFFFFFFFFFFFFFF, 1),
    ],
)
def test_descriptor_outside_region(pool_ring: Ring, addr: int, length: int) -> None:
    ring = pool_ring
    assert ring.driver.post(addr, length, writable=True) == 0
    with pytest.raises(RemoteProtocolError) as info:
        ring.device.take()
    assert (info.value.consumed, info.value.head) == (True, 0)
    ring.device.give(0, 0)
    assert ring.driver.get_used() == (0, addr, 0)
    _cycle(ring, POOL_DA + POOL_SIZE - 0x20, 0x20, 0x20)  # exactly up to the end is fine
    _cycle(ring, POOL_DA, POOL_SIZE, 0)
    assert ring.guards_intact()


def test_second_descriptor_of_chain_outside_region(pool_ring: Ring) -> None:
    ring = pool_ring
    assert ring.driver.post(POOL_DA, 0x10, writable=True) == 0
    ring.poke(DESC, desc_bytes(POOL_DA, 0x10, 2 | 1, 1))
    ring.poke(DESC + 16, desc_bytes(POOL_DA + POOL_SIZE, 0x10, 2, 0))
    with pytest.raises(RemoteProtocolError) as info:
        ring.device.take_chain()
    assert (info.value.consumed, info.value.head) == (True, 0)


def test_huge_length_with_default_region_check(ring: Ring) -> None:
    # Without a region check every address is acceptable; the numbers are reported verbatim.
    assert ring.driver.post(0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF, writable=False) == 0
    assert ring.device.take() == (0, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF, 0)
    ring.device.give(0, 0)
    assert ring.driver.get_used() == (0, 0xFFFFFFFFFFFFFFFF, 0)


# -- 5. state machine -------------------------------------------------------------------------


class VringMachine(RuleBasedStateMachine):
    """A driver and a device on the same memory, with a model of where every buffer is."""

    impl: VringImpl = PURE_VRING

    def __init__(self) -> None:
        super().__init__()
        self.r: Ring | None = None

    @initialize(
        num=st.sampled_from([1, 2, 4, 8, 16]),
        align=st.sampled_from([2, 16, 64]),
        start=st.one_of(st.just(0), st.integers(65500, 65535), st.integers(65528, 65535)),
    )
    def setup(self, num: int, align: int, start: int) -> None:
        self.r = make_ring(self.impl, num, align, start_index=start)
        self.num = num
        self.start = start
        self.next_addr = 0x1000
        self.posted: deque[tuple[int, int, int, bool]] = deque()  # not yet taken, FIFO
        self.taken: dict[int, tuple[int, int, bool]] = {}  # head -> (addr, len, writable)
        self.given: deque[tuple[int, int]] = deque()  # (head, len) not yet reclaimed, FIFO
        self.in_flight: dict[int, tuple[int, int]] = {}  # head -> (addr, len)
        self.returned = 0
        self.total_posted = 0

    @rule(length=st.integers(0, 0x800), writable=st.booleans())
    def post(self, length: int, writable: bool) -> None:
        assert self.r is not None
        if len(self.in_flight) == self.num:
            with pytest.raises(RingFullError):
                self.r.driver.post(self.next_addr, length, writable=writable)
            return
        addr = self.next_addr
        self.next_addr += 0x1000
        head = self.r.driver.post(addr, length, writable=writable)
        assert 0 <= head < self.num
        assert head not in self.in_flight
        self.in_flight[head] = (addr, length)
        self.posted.append((head, addr, length, writable))
        self.total_posted += 1
        if self.start + self.total_posted == 0x10000:
            event("avail.idx wrapped past 65535")

    @rule(whole_chain=st.booleans())
    def take(self, whole_chain: bool) -> None:
        assert self.r is not None
        dev = self.r.device
        got = dev.take_chain() if whole_chain else dev.take()
        if not self.posted:
            assert got is None
            return
        head, addr, length, writable = self.posted.popleft()
        flags = VRING_DESC_F_WRITE if writable else 0
        if whole_chain:
            assert got == (head, [(addr, length, flags)])
        else:
            assert got == (head, addr, length, flags)
        self.taken[head] = (addr, length, writable)

    @rule(data=st.data())
    def give(self, data: st.DataObject) -> None:
        assert self.r is not None
        if not self.taken:
            return
        head = data.draw(st.sampled_from(sorted(self.taken)), label="head")
        _addr, length, _w = self.taken.pop(head)
        used = data.draw(st.integers(0, length), label="used_len")
        self.r.device.give(head, used)
        self.given.append((head, used))

    @rule()
    def get_used(self) -> None:
        assert self.r is not None
        got = self.r.driver.get_used()
        if not self.given:
            assert got is None
            return
        head, used = self.given.popleft()
        addr, _length = self.in_flight.pop(head)
        assert got == (head, addr, used)
        self.returned += 1

    @rule(enabled=st.booleans())
    def driver_interrupts(self, enabled: bool) -> None:
        assert self.r is not None
        self.r.driver.set_interrupts(enabled)
        assert self.r.device.interrupt_needed() is enabled

    @rule(enabled=st.booleans())
    def device_notifications(self, enabled: bool) -> None:
        assert self.r is not None
        self.r.device.set_notifications(enabled)
        assert self.r.driver.kick_needed() is enabled

    @rule()
    def drain(self) -> None:
        """Everything outstanding comes back exactly once."""
        assert self.r is not None
        while self.posted:
            self.take(whole_chain=False)
        for head in sorted(self.taken):
            _addr, length, _w = self.taken.pop(head)
            self.r.device.give(head, length)
            self.given.append((head, length))
        while self.given:
            self.get_used()
        assert self.r.driver.get_used() is None
        assert not self.in_flight
        assert self.r.driver.num_free == self.num
        assert self.returned == self.total_posted

    @invariant()
    def consistent(self) -> None:
        if self.r is None:
            return
        drv, dev = self.r.driver, self.r.device
        assert drv.num_free + len(self.in_flight) == self.num
        assert drv.num_in_flight == len(self.in_flight)
        assert dev.num_taken == len(self.taken) <= self.num
        assert len(self.posted) + len(self.taken) + len(self.given) == len(self.in_flight)
        assert dev.has_avail() is bool(self.posted)
        assert drv.has_used() is bool(self.given)
        avail_idx = int.from_bytes(self.r.peek(self.r.layout.avail + 2, 2), "little")
        used_idx = int.from_bytes(self.r.peek(self.r.layout.used + 2, 2), "little")
        assert avail_idx == (self.start + self.total_posted) & 0xFFFF
        assert used_idx == (self.start + self.returned + len(self.given)) & 0xFFFF
        assert self.r.guards_intact()


VringMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVringMachinePure = VringMachine.TestCase


class AccelVringMachine(VringMachine):
    impl = ACCEL_VRING or PURE_VRING  # never run with PURE_VRING: skipped below


AccelVringMachine.TestCase.settings = VringMachine.TestCase.settings
TestVringMachineAccel = pytest.mark.skipif(ACCEL_VRING is None, reason=ACCEL_MISSING)(
    AccelVringMachine.TestCase
)
