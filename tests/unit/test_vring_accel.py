"""The C accelerator (transports._vring_accel) against the pure classes, which are its spec.

* Differential: a pure ring and a C ring (driver and device each), every one over its own
  bytearray, go through the same random operations, hostile writes of the shared words and
  hostile arguments. After every step: equal return values, equal exceptions (type, message,
  ``head``, ``consumed``), the same region_check calls, equal counters, and byte-identical memory
  including guard bytes around the ring (so nothing outside it was touched).
* The C object holds its memory (a buffer export) for exactly its lifetime.
* Reference cycles through region_check (a bound method of the ring's owner) are collected.
* ``AIOAMP_PURE_PYTHON`` selects the pure classes; the public signatures are the same.
* The per-message rpmsg methods (add_message, get_message, take_message, put_message), of the
  pure classes (their reference) and of the C classes alike: golden bytes written and read by
  hand, argument errors that change nothing, and a differential test of each implementation
  against the equivalent sequence of plain ring calls plus the header glue (pure_* below)
  under hostile ring and pool contents.

Known, deliberate differences (documented by tests below): the C classes take any writable
buffer and need it writable at construction (the pure ones want a memoryview and fail only when
they first write to a read-only one), and they refuse a layout object whose offsets are not a
legacy split vring's (a real VringLayout always is).
"""

from __future__ import annotations

import array
import gc
import importlib.util
import inspect
import operator
import os
import re
import struct
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCEL_MISSING, ACCEL_VRING, PURE_VRING, VRING_IMPLS, VringImpl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports.errors import RemoteProtocolError, RingFullError
from transports.virtio.vring import (
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    PyVringDevice,
    PyVringDriver,
    VringLayout,
)

ROOT = Path(__file__).resolve().parents[2]
GUARD = 0x5A
PAD = 16

# The region check's buffer pool, and addresses at which it misbehaves on purpose.
POOL = (0x1000, 0x40000)
RAISES_RPE = 0xDEAD0  # raises RemoteProtocolError itself (take marks it consumed only in _walk)
RAISES_OTHER = 0xDEAD1  # raises LookupError
BAD_BOOL = 0xDEAD2  # returns an object whose truth value raises
TRUTHY = 0xDEAD3  # returns 1, not True
FALSY = 0xDEAD4  # returns "", not False
MAGIC = [RAISES_RPE, RAISES_OTHER, BAD_BOOL, TRUTHY, FALSY]


@pytest.fixture(scope="module")
def accel() -> VringImpl:
    """The C classes; every test using them is skipped where the accelerator is missing."""
    if ACCEL_VRING is None:
        pytest.skip(ACCEL_MISSING)
    return ACCEL_VRING


class _BadBool:
    def __bool__(self) -> bool:
        raise ZeroDivisionError("no truth value")


class Idx:
    """Not an int, but struct (and list / bytearray indexing) accept it through __index__.

    The pure driver keeps such an object as posted and hands it back (and compares and
    formats it); the C driver must do the same."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def _v(self, other: object) -> int:
        return other.value if isinstance(other, Idx) else other  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        return bool(self.value == self._v(other))

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: object) -> bool:
        return bool(self.value < self._v(other))

    def __gt__(self, other: object) -> bool:
        return bool(self.value > self._v(other))

    def __le__(self, other: object) -> bool:
        return bool(self.value <= self._v(other))

    def __ge__(self, other: object) -> bool:
        return bool(self.value >= self._v(other))

    def __format__(self, spec: str) -> str:
        return f"Idx({self.value})"

    def __repr__(self) -> str:
        return f"Idx({self.value})"


class Side:
    """One implementation's driver and device on their own memory, with a logging check."""

    def __init__(
        self,
        impl: VringImpl,
        layout: VringLayout,
        *,
        misalign: int,
        prefill: bytes,
        reset: bool,
        start: int,
    ) -> None:
        size = layout.size
        self.layout = layout
        self.buf = bytearray([GUARD]) * (size + 2 * PAD + 1)
        self.lo = PAD + misalign
        self.buf[self.lo : self.lo + size] = (prefill * (size // max(1, len(prefill)) + 1))[:size]
        self.mem = memoryview(self.buf)[self.lo : self.lo + size]
        self.calls: list[tuple[int, int]] = []
        self.bumped: dict[int, int] = {}  # offset -> the u16 there before the peer bumped it
        self.driver = impl.driver(self.mem, layout, reset=reset, start_index=start)
        self.device = impl.device(self.mem, layout, region_check=self.check, start_index=start)

    def check(self, addr: int, length: int) -> object:
        self.calls.append((addr, length))
        if addr == RAISES_RPE:
            raise RemoteProtocolError("the check itself refuses", head=99)
        if addr == RAISES_OTHER:
            raise LookupError("the check failed")
        if addr == BAD_BOOL:
            return _BadBool()
        if addr == TRUTHY:
            return 1
        if addr == FALSY:
            return ""
        return POOL[0] <= addr and addr + length <= POOL[1]

    def counters(self) -> tuple[int, int, int, int, int]:
        return (
            self.driver.num,
            self.driver.num_free,
            self.driver.num_in_flight,
            self.device.num,
            self.device.num_taken,
        )


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("returned", fn())
    except Exception as exc:
        return (
            "raised",
            type(exc),
            str(exc),
            getattr(exc, "head", "-"),
            getattr(exc, "consumed", "-"),
        )


# -- operations --------------------------------------------------------------------------------

in_pool_addr = st.integers(POOL[0], POOL[1] - 1)
addrs = st.one_of(
    in_pool_addr,
    in_pool_addr,
    st.sampled_from([0, POOL[1], 2**64 - 1, 2**64, -1, 2**70, *MAGIC]),
    st.booleans(),
    st.builds(Idx, st.one_of(in_pool_addr, st.sampled_from([-1, 2**64]))),
    st.sampled_from([1.5, None, "0x1000"]),
)
lengths = st.one_of(
    st.integers(0, 0x2000),
    st.integers(0, 0x2000),
    st.sampled_from([2**32 - 1, 2**32, -1, 2**64]),
    st.booleans(),
    st.builds(Idx, st.one_of(st.integers(0, 0x2000), st.just(2**32))),
    st.sampled_from([2.0, None]),
)
writables = st.one_of(
    st.booleans(),
    st.booleans(),
    st.sampled_from([0, 1, 2, 255, 256, -1, None, "yes", 1.0, _BadBool()]),
)
heads = st.one_of(
    st.integers(-10, 10),
    st.integers(-10, 10),
    st.sampled_from([2**31, 2**63, 2**70, -(2**70), 1.0, None, "0"]),
    st.booleans(),
    st.builds(Idx, st.integers(-10, 10)),
)
flags_args = st.one_of(st.booleans(), st.sampled_from([0, 1, 2, None, "", "x", _BadBool()]))
u16_delta = st.one_of(st.integers(-3, 3), st.sampled_from([9, 17, 0x7FFF, 0x8000, 0xFFFF]))

valid_post = st.tuples(
    st.just("post"),
    st.one_of(in_pool_addr, in_pool_addr, in_pool_addr, st.sampled_from(MAGIC)),
    st.integers(0, 0x800),
    st.booleans(),
)
# A head the device took (when one is): k % num, so the same k names a valid head for any num.
give_valid = st.tuples(st.just("give_mod"), st.integers(0, 7), st.integers(0, 0x900))
slot_values = st.one_of(st.integers(0, 9), st.sampled_from([0xFFFF, 0xFFFFFFFF, 0x10000, 0x2001]))
desc_values = st.one_of(
    st.integers(0, 9),
    st.sampled_from([1, 2, 3, 4, 5, 7, 0x8003, 0xFFFF]),
    st.sampled_from([POOL[0], POOL[1] - 8, POOL[1], 2**64 - 16, *MAGIC]),
    st.sampled_from([0x10, 0x40000, 0xFFFFFFFF]),
)


def peer_pokes(desc_values: st.SearchStrategy[Any], used_lens: st.SearchStrategy[int]) -> Any:
    """The hostile peer's writes: bump a shared index (and repair it), rewrite a ring slot, a
    used length, a descriptor field (of a head likely in flight: k % num), make a descriptor
    the head of a chain (NEXT set, next = nxt, out of range at times, and the next one's flags:
    longer chains, loops), or scribble any bytes at all."""
    return st.one_of(
        st.tuples(
            st.just("bump"),
            st.sampled_from(["avail_idx", "used_idx", "avail_flags", "used_flags"]),
            u16_delta,
        ),
        st.tuples(st.just("unbump")),
        st.tuples(st.just("unbump")),
        st.tuples(
            st.just("slot"),
            st.sampled_from(["avail", "used_id", "used_len"]),
            st.integers(0, 15),
            slot_values,
        ),
        st.tuples(st.just("slot"), st.just("used_len"), st.integers(0, 15), used_lens),
        st.tuples(
            st.just("desc"),
            st.integers(0, 15),
            st.sampled_from(["addr", "len", "flags", "next"]),
            desc_values,
        ),
        st.tuples(
            st.just("desc"), st.integers(0, 15), st.just("flags"), st.sampled_from([1, 3, 4])
        ),
        st.tuples(
            st.just("chain"),
            st.integers(0, 15),
            st.one_of(st.integers(0, 9), st.just(0xFFFF)),
            st.sampled_from([0, 1, 2, 3, 4]),
        ),
        st.tuples(st.just("scribble"), st.integers(0, 4096), st.binary(min_size=1, max_size=12)),
    )


ops = st.one_of(
    # Well-formed traffic, weighted up so that rings fill, drain and wrap.
    valid_post,
    valid_post,
    st.tuples(st.just("take")),
    st.tuples(st.just("take")),
    st.tuples(st.just("take_chain")),
    give_valid,
    give_valid,
    st.tuples(st.just("get_used")),
    st.tuples(st.just("get_used")),
    st.tuples(st.just("has_used")),
    st.tuples(st.just("has_avail")),
    st.tuples(st.just("kick_needed")),
    st.tuples(st.just("interrupt_needed")),
    st.tuples(st.just("set_interrupts"), flags_args),
    st.tuples(st.just("set_notifications"), flags_args),
    # Hostile arguments.
    st.tuples(st.just("post"), addrs, lengths, writables),
    st.tuples(st.just("give"), heads, lengths),
    st.tuples(st.just("buffer_of"), heads),
    # The hostile peer (see peer_pokes), plus descriptor flags/next from the same values.
    peer_pokes(desc_values, st.integers(0, 0x1000)),
    st.tuples(st.just("desc"), st.integers(0, 15), st.sampled_from(["flags", "next"]), desc_values),
)

_FIELD = {"addr": ("<Q", 0), "len": ("<I", 8), "flags": ("<H", 12), "next": ("<H", 14)}


def poke(side: Side | FusedSide, op: tuple[Any, ...]) -> None:
    """Apply the hostile peer's write (the same bytes on both sides: memory is identical)."""
    lay, mem = side.layout, side.mem
    kind = op[0]
    if kind == "bump":
        off = {
            "avail_flags": lay.avail,
            "avail_idx": lay.avail + 2,
            "used_flags": lay.used,
            "used_idx": lay.used + 2,
        }[op[1]]
        (cur,) = struct.unpack_from("<H", mem, off)
        side.bumped.setdefault(off, cur)
        struct.pack_into("<H", mem, off, (cur + op[2]) & 0xFFFF)
    elif kind == "unbump":
        for off, value in side.bumped.items():
            struct.pack_into("<H", mem, off, value)
        side.bumped.clear()
    elif kind == "slot":
        k, value = op[2] % lay.num, op[3]
        if op[1] == "avail":
            struct.pack_into("<H", mem, lay.avail_ring + 2 * k, value & 0xFFFF)
        else:
            off = lay.used_ring + 8 * k + (0 if op[1] == "used_id" else 4)
            struct.pack_into("<I", mem, off, value & 0xFFFFFFFF)
    elif kind == "desc":
        fmt, field_off = _FIELD[op[2]]
        mask = (1 << (8 * struct.calcsize(fmt))) - 1
        struct.pack_into(fmt, mem, 16 * (op[1] % lay.num) + field_off, op[3] & mask)
    elif kind == "chain":
        k, nxt, second = op[1] % lay.num, op[2], op[3]
        struct.pack_into("<HH", mem, 16 * k + 12, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, nxt)
        if nxt < lay.num and nxt != k:
            struct.pack_into("<H", mem, 16 * nxt + 12, second)
    else:  # scribble
        off = op[1] % lay.size
        data = op[2][: lay.size - off]
        mem[off : off + len(data)] = data


def call(side: Side, op: tuple[Any, ...]) -> tuple[Any, ...]:
    drv, dev = side.driver, side.device
    name, args = op[0], op[1:]
    if name == "post":
        addr, length, writable = args
        return outcome(lambda: drv.post(addr, length, writable=writable))
    if name in ("get_used", "has_used", "kick_needed"):
        return outcome(getattr(drv, name))
    if name in ("buffer_of", "set_interrupts"):
        return outcome(lambda: getattr(drv, name)(*args))
    if name in ("take", "take_chain", "has_avail", "interrupt_needed"):
        return outcome(getattr(dev, name))
    if name in ("give", "set_notifications"):
        return outcome(lambda: getattr(dev, name)(*args))
    if name == "give_mod":
        return outcome(lambda: dev.give(args[0] % side.layout.num, args[1]))
    poke(side, op)
    return ("poked",)


def assert_same(pure: Side, accel: Side, what: object) -> None:
    assert accel.buf == pure.buf, f"ring memory differs after {what!r}"
    assert accel.calls == pure.calls, f"region_check calls differ after {what!r}"
    assert accel.counters() == pure.counters(), f"counters differ after {what!r}"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num=st.sampled_from([1, 2, 4, 8]),
    align=st.sampled_from([2, 4, 16, 64]),
    misalign=st.sampled_from([0, 0, 0, 1]),  # 1: the ring starts at an odd address
    reset=st.sampled_from([True, True, True, False]),  # False: the memory's garbage stays
    prefill=st.binary(min_size=1, max_size=8),
    start=st.one_of(st.just(0), st.integers(0xFFF0, 0xFFFF), st.integers(-5, 2**17)),
    steps=st.lists(ops, min_size=10, max_size=100),
)
def test_c_ring_behaves_exactly_like_the_pure_ring(
    num: int,
    align: int,
    misalign: int,
    reset: bool,
    prefill: bytes,
    start: int,
    steps: list[tuple[Any, ...]],
    accel: VringImpl,
) -> None:
    layout = VringLayout(num, align)
    kw = {"misalign": misalign, "prefill": prefill, "reset": reset, "start": start}
    py_side = Side(PURE_VRING, layout, **kw)
    c_side = Side(accel, layout, **kw)
    assert_same(py_side, c_side, "construction")
    for step in steps:
        expected = call(py_side, step)
        got = call(c_side, step)
        assert got == expected, f"{step!r}: C gave {got!r}, pure gave {expected!r}"
        assert_same(py_side, c_side, step)
    for head in range(num):
        assert c_side.driver.buffer_of(head) == py_side.driver.buffer_of(head)
    assert c_side.driver.layout is layout and c_side.device.layout is layout


# -- targeted cases of the differential contract --------------------------------------------


@pytest.mark.parametrize(
    ("addr", "length"),
    [(2**64, 1), (-1, 1), (0x1000, 2**32), (0x1000, -1), (1.5, 1), (0x1000, None)],
)
def test_out_of_range_arguments_raise_struct_error_like_the_pure_class(
    addr: object, length: object, accel: VringImpl
) -> None:
    """post() packs with struct in the pure class, so struct.error it is, with the same partial
    write (struct zeroes the descriptor, then fills fields until the bad one), and the
    descriptor id it popped stays lost, exactly as in the pure class."""
    layout = VringLayout(4, 16)
    results = []
    for impl in (PURE_VRING, accel):
        buf = bytearray(b"\xee") * layout.size
        drv = impl.driver(memoryview(buf), layout, reset=False)
        with pytest.raises(struct.error) as info:
            drv.post(addr, length, writable=True)
        results.append((str(info.value), bytes(buf), drv.num_free, drv.num_in_flight))
    assert results[0] == results[1]
    assert results[1][2:] == (3, 1)


def test_used_length_check_uses_the_posted_objects(accel: VringImpl) -> None:
    """A bool or __index__ length is kept as posted: compared and formatted like the pure
    class does (``True-byte buffer``)."""
    layout = VringLayout(2, 16)
    messages = []
    for impl in (PURE_VRING, accel):
        mem = memoryview(bytearray(layout.size))
        drv, dev = impl.driver(mem, layout), impl.device(mem, layout)
        addr = Idx(0x2000)
        assert drv.post(addr, True, writable=True) == 0
        assert dev.take() == (0, 0x2000, 1, 2)
        dev.give(0, 2)
        with pytest.raises(RemoteProtocolError) as info:
            drv.get_used()
        assert (info.value.head, info.value.consumed) == (0, True)
        messages.append(str(info.value))
        assert drv.post(addr, Idx(8), writable=True) == 0
        assert drv.buffer_of(0)[0] is addr
        assert dev.take() == (0, 0x2000, 8, 2)
        dev.give(0, 9)
        with pytest.raises(RemoteProtocolError) as info:
            drv.get_used()
        messages.append(str(info.value))
    assert messages[:2] == messages[2:]
    assert messages[0] == (
        "used entry 0: device wrote 2 bytes into the True-byte buffer of descriptor 0"
    )
    assert messages[1].endswith("into the Idx(8)-byte buffer of descriptor 0")


def test_region_check_calls_match_on_the_fast_path_and_in_the_walk(accel: VringImpl) -> None:
    """A single descriptor failing the check is checked twice (fast path, then the walk), and an
    error raised by the check is marked consumed only inside the walk."""
    layout = VringLayout(4, 16)
    seen = []
    for impl in (PURE_VRING, accel):
        side = Side(impl, layout, misalign=0, prefill=b"\0", reset=True, start=0)
        side.driver.post(0x10, 0x10, writable=False)  # outside the pool
        first = outcome(side.device.take)
        side.driver.post(RAISES_RPE, 1, writable=False)  # fast path: propagated untouched
        second = outcome(side.device.take)
        seen.append((first, second, side.calls))
    assert seen[0] == seen[1]
    first, second, calls = seen[1]
    assert first[3:] == (0, True)
    assert second[1:] == (RemoteProtocolError, "the check itself refuses", 99, False)
    assert calls == [(0x10, 0x10), (0x10, 0x10), (RAISES_RPE, 1)]


BAD_CALLS = [
    ("driver", "post", (1, 2, True), {}),  # writable is keyword-only
    ("driver", "post", (1, 2), {}),
    ("driver", "post", (1, 2), {"writable": True, "extra": 1}),
    ("driver", "post", (1,), {"addr": 1, "length": 2, "writable": True}),
    ("driver", "buffer_of", (), {}),
    ("driver", "set_interrupts", (), {"on": True}),
    ("device", "give", (0,), {}),
    ("device", "give", (0, 1, 2), {}),
    ("device", "take", (1,), {}),
]


@pytest.mark.parametrize("which", ["pure", "accel"])
def test_argument_binding_matches(which: str, accel: VringImpl) -> None:
    """Keywords work where the pure signatures allow them; TypeError where they do not."""
    impl = PURE_VRING if which == "pure" else accel
    layout = VringLayout(4, 16)
    mem = memoryview(bytearray(layout.size))
    drv = impl.driver(mem=mem, layout=layout, reset=True, start_index=3)
    dev = impl.device(mem=mem, layout=layout, start_index=3)
    assert drv.post(addr=0x1000, length=16, writable=True) == 0
    assert drv.buffer_of(head=0) == (0x1000, 16)
    drv.set_interrupts(enabled=False)
    dev.set_notifications(enabled=False)
    assert dev.take() == (0, 0x1000, 16, 2)
    dev.give(head=0, length=4)
    assert drv.get_used() == (0, 0x1000, 4)
    for kind, name, args, kwargs in BAD_CALLS:
        method = getattr(drv if kind == "driver" else dev, name)
        with pytest.raises(TypeError):
            method(*args, **kwargs)
    with pytest.raises(TypeError):
        impl.driver(mem, layout, False)  # reset is keyword-only
    with pytest.raises(TypeError):
        impl.device(mem, layout, region_check=None, start=0)


def _params(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(
    ("cls", "methods"),
    [
        (
            "driver",
            [
                "post",
                "has_used",
                "get_used",
                "buffer_of",
                "kick_needed",
                "set_interrupts",
                "add_message",
                "get_message",
            ],
        ),
        (
            "device",
            [
                "has_avail",
                "take",
                "take_chain",
                "give",
                "interrupt_needed",
                "set_notifications",
                "take_message",
                "put_message",
            ],
        ),
    ],
)
def test_signatures_match(cls: str, methods: list[str], accel: VringImpl) -> None:
    pure, accel = getattr(PURE_VRING, cls), getattr(accel, cls)
    layout = VringLayout(4, 16)
    mem = memoryview(bytearray(layout.size))
    pure_obj, accel_obj = pure(mem, layout), accel(mem, layout)
    for name in methods:
        assert _params(getattr(accel_obj, name)) == _params(getattr(pure_obj, name)), name
    # The constructors: the same parameters; region_check's default (_anywhere) has no C form.
    ctor_pure = [p[:2] if p[0] == "region_check" else p for p in _params(pure)]
    ctor_accel = [p[:2] if p[0] == "region_check" else p for p in _params(accel)]
    assert ctor_accel == ctor_pure
    public = {n for n in dir(pure) if not n.startswith("_")}
    assert public <= set(dir(accel))
    assert accel_obj.layout is layout and accel_obj.num == pure_obj.num == 4


# -- memory lifetime, GC -----------------------------------------------------------------------


def test_memory_is_held_for_the_objects_lifetime(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    buf = bytearray(layout.size)
    drv = accel.driver(memoryview(buf), layout)  # nobody else keeps the memoryview
    dev = accel.device(memoryview(buf), layout)
    with pytest.raises(BufferError):
        buf.extend(b"x")  # exported: the ring memory cannot move under the C object
    assert drv.post(0x1000, 0x10, writable=True) == 0
    assert dev.take() == (0, 0x1000, 0x10, 2)
    dev.give(0, 1)
    assert drv.get_used() == (0, 0x1000, 1)
    del drv
    with pytest.raises(BufferError):
        buf.extend(b"x")  # the device still holds it
    del dev  # released by deallocation, no collection needed
    buf.extend(b"x")
    assert len(buf) == layout.size + 1


def test_memory_owner_is_kept_alive(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    arr = array.array("B", bytes(layout.size))
    owner = weakref.ref(arr)
    drv = accel.driver(memoryview(arr), layout)
    del arr
    gc.collect()
    assert owner() is not None
    assert drv.post(0x1000, 0x10, writable=False) == 0
    assert owner().tobytes()[layout.avail + 2] == 1  # type: ignore[union-attr]
    del drv
    assert owner() is None


def test_reference_cycle_through_region_check_is_collected(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    buf = bytearray(layout.size)

    class Owner:
        def __init__(self) -> None:
            self.device = accel.device(memoryview(buf), layout, region_check=self.ok)

        def ok(self, addr: int, length: int) -> bool:
            return True

    gc.collect()
    gc.disable()
    try:
        owner = Owner()
        ref = weakref.ref(owner)
        assert any(getattr(r, "__self__", None) is owner for r in gc.get_referents(owner.device))
        del owner
        assert ref() is not None  # only the cycle keeps it now
    finally:
        gc.enable()
    gc.collect()
    assert ref() is None
    buf.extend(b"x")  # and the ring's buffer export went with it


def test_reference_cycle_through_posted_objects_is_collected(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    buf = bytearray(layout.size)

    class Addr(Idx):
        __slots__ = ("__weakref__", "ring")

    addr = Addr(0x1000)
    addr.ring = accel.driver(memoryview(buf), layout)  # the ring keeps addr as posted
    addr.ring.post(addr, 0x10, writable=True)
    ref = weakref.ref(addr)
    del addr
    assert ref() is not None  # only the cycle keeps it now
    gc.collect()
    assert ref() is None
    buf.extend(b"x")


# -- deliberate differences ---------------------------------------------------------------------


def test_read_only_memory_is_refused_at_construction(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    ro = memoryview(bytes(layout.size))
    with pytest.raises(BufferError):
        accel.driver(ro, layout)
    with pytest.raises(BufferError):
        accel.device(ro, layout)
    # The pure classes accept it until their first write.
    PyVringDevice(ro, layout)
    with pytest.raises(TypeError):
        PyVringDriver(ro, layout)


class _FakeLayout:
    """Duck-typed VringLayout(4, 16) with one offset overridden."""

    def __init__(self, **override: int) -> None:
        real = VringLayout(4, 16)
        for name in ("num", "align", "avail", "avail_ring", "used", "used_ring", "size"):
            setattr(self, name, override.get(name, getattr(real, name)))


@pytest.mark.parametrize(
    "override",
    [{"num": 3}, {"num": 0}, {"avail": 0x30}, {"used": 0x1000}, {"used_ring": 0x70}, {"align": 3}],
)
def test_layout_offsets_are_validated(override: dict[str, int], accel: VringImpl) -> None:
    """The C halves never trust a layout's offsets: anything but a legacy split vring's geometry
    is refused before the memory is touched."""
    buf = bytearray(b"\x77") * 0x2000
    for cls in (accel.driver, accel.device):
        with pytest.raises(ValueError, match="does not describe a legacy split vring"):
            cls(memoryview(buf), _FakeLayout(**override))
    assert buf == bytearray(b"\x77") * 0x2000


def test_memory_size_error_matches(accel: VringImpl) -> None:
    layout = VringLayout(4, 16)
    short = memoryview(bytearray(layout.size - 2))
    for cls in (PyVringDriver, PyVringDevice, accel.driver, accel.device):
        with pytest.raises(ValueError, match=r"^vring memory of 116 bytes < layout size 118$"):
            cls(short, layout)


# -- selection ------------------------------------------------------------------------------------

_BUILT = importlib.util.find_spec("transports._vring_accel") is not None


@pytest.mark.parametrize(
    ("value", "forced_pure"),
    [(None, False), ("", False), ("0", False), ("1", True), ("yes", True), ("00", True)],
)
def test_environment_variable_selects_the_implementation(
    value: str | None, forced_pure: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIOAMP_PURE_PYTHON"}
    if value is not None:
        env["AIOAMP_PURE_PYTHON"] = value
    code = (
        "import transports, transports.virtio.vring as v; "
        "print(v.ACCELERATED, v.VringDriver is v.PyVringDriver, v.VringDevice is v.PyVringDevice,"
        " transports.VringDriver is v.VringDriver, v.VringDriver.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    accelerated = _BUILT and not forced_pure
    module = "transports._vring_accel" if accelerated else "transports.virtio.vring_driver"
    assert out == [str(accelerated), str(not accelerated), str(not accelerated), "True", module]


# -- per-message rpmsg methods (pure reference and C) --------------------------------------------
#
# add_message / get_message (driver) and take_message / put_message (device) do one side's whole
# per-message work (ring operation + rpmsg header + payload copy) in one call. Their
# specification is the equivalent sequence of plain ring calls plus the header glue, written out
# below (pure_*), and the differential tests hold both implementations to it under hostile ring
# and pool contents. The header layout is spelled out here on purpose (not imported from
# rpmsg.wire): struct rpmsg_hdr { u32 src; u32 dst; u32 reserved; u16 len; u16 flags; },
# little-endian, 16 bytes.


@pytest.fixture(scope="module", params=VRING_IMPLS)
def msg_impl(request: pytest.FixtureRequest) -> VringImpl:
    """Each implementation of the per-message methods: the pure reference, then the C twin."""
    impl: VringImpl = request.param
    return impl


RPMSG_HDR_FMT = "<IIIHH"
SLOT = 64  # bytes per pool buffer: the MTU is SLOT - 16
NSLOTS = 6
POOL_LEN = SLOT * NSLOTS
POOL_DA = 0x20000  # device address of the pool's first byte
MTU = SLOT - 16


def raw_payload(payload: Any) -> bytes | memoryview:
    """What the fused methods take of a payload: its raw bytes, whatever its format and shape,
    sized in bytes (never len()); a strided buffer or one over the u16 header len is refused."""
    view = memoryview(payload)
    if not view.c_contiguous and view.nbytes:  # PyBuffer_IsContiguous: no bytes is contiguous
        raise BufferError("payload is not C-contiguous: its bytes are not one run of memory")
    if view.nbytes > 0xFFFF:
        raise ValueError(
            f"payload of {view.nbytes} bytes does not fit an rpmsg message (at most 65535 bytes)"
        )
    return view.cast("B") if view.nbytes else b""


def pure_add_message(
    drv: Any, addr: Any, post_len: Any, mem: memoryview, off: int, src: int, dst: int, flags: int,
    payload: Any,
) -> bool:  # fmt: skip
    if drv.num_free == 0:
        raise RingFullError(f"all {drv.num} descriptors are in flight")
    raw = raw_payload(payload)
    n = len(raw)
    if off < 0 or off + 16 + n > len(mem):
        raise ValueError(
            f"message of {16 + n} bytes at offset {off!r} does not fit the {len(mem)}-byte "
            "buffer pool"
        )
    header = struct.pack(RPMSG_HDR_FMT, src, dst, 0, n, flags)
    struct.pack("<Q", addr)  # post()'s argument errors, before anything is written
    (length,) = struct.unpack("<I", struct.pack("<I", post_len))
    if 16 + n > length:  # never write past the buffer the peer is told about
        raise ValueError(f"message of {16 + n} bytes does not fit the posted length {length}")
    mem[off : off + 16] = header
    mem[off + 16 : off + 16 + n] = raw
    drv.post(addr, post_len, writable=False)
    return bool(drv.kick_needed())


def _parse(mem: memoryview, off: int, length: int) -> tuple[int, int, int, bytes] | int:
    if length < 16:
        return 1
    src, dst, _reserved, n, flags = struct.unpack_from(RPMSG_HDR_FMT, mem, off)
    if n > length - 16:
        return 2
    return src, dst, flags, bytes(mem[off + 16 : off + 16 + n])


def pure_get_message(
    drv: Any, mem: memoryview, base_da: int, repost_len: Any
) -> tuple[int, int, int, bytes] | int | None:
    used = drv.get_used()
    if used is None:
        return None
    _head, addr, used_len = used
    a = operator.index(addr)  # posted as an __index__ object: its value
    need = max(used_len, 16)
    off = a - base_da
    if off < 0 or off + need > len(mem):
        # Not reposted: the descriptor is free again, the buffer is not.
        raise ValueError(
            f"used buffer [{a:#x}, +{need:#x}) is outside the buffer pool "
            f"[{base_da:#x}, +{len(mem):#x})"
        )
    result = _parse(mem, off, used_len)
    drv.post(addr, repost_len, writable=True)
    return result


def pure_take_message(
    dev: Any, mem: memoryview, base_da: int
) -> tuple[int, int, int, bytes] | int | None:
    # dev's region_check is pool_check(base_da, mem): the bounds take_message uses.
    taken = dev.take()
    if taken is None:
        return None
    head, addr, length, _flags = taken
    result = _parse(mem, addr - base_da, length)
    dev.give(head, length)
    return result


def pure_put_message(
    dev: Any, mem: memoryview, base_da: int, src: int, dst: int, flags: int, payload: Any,
) -> int:  # fmt: skip
    raw = raw_payload(payload)
    n = len(raw)
    taken = dev.take()
    if taken is None:
        return -1
    head, addr, length, dflags = taken
    if length < 16 + n or not dflags & VRING_DESC_F_WRITE:
        dev.give(head, 0)
        return 2
    off = addr - base_da
    struct.pack_into(RPMSG_HDR_FMT, mem, off, src, dst, 0, n, flags)
    mem[off + 16 : off + 16 + n] = raw
    dev.give(head, 16 + n)
    return 1 if dev.interrupt_needed() else 0


def pool_check(base_da: int, mem: memoryview) -> Callable[[int, int], bool]:
    """The region check take_message and put_message apply instead of calling region_check."""

    def check(addr: int, length: int) -> bool:
        return base_da <= addr and addr + length <= base_da + len(mem)

    return check


class FusedSide:
    """A ring and a buffer pool inside one guarded bytearray; the half under test (an
    implementation's per-message methods, or the pure classes with the equivalent sequences
    when ``impl`` is None) and a pure peer half on the same ring, which plays the other side
    honestly while the hostile pokes corrupt things."""

    def __init__(
        self,
        role: str,
        impl: VringImpl | None,
        layout: VringLayout,
        *,
        misalign: int,
        pool_misalign: int,
        start: int,
        reset: bool = True,
        prefill: bytes = b"\0",
    ) -> None:
        self.fused = impl is not None
        self.layout = layout
        size = layout.size
        self.buf = bytearray([GUARD]) * (PAD + size + PAD + POOL_LEN + PAD + 2)
        lo = PAD + misalign
        self.mem = memoryview(self.buf)[lo : lo + size]
        self.mem[:] = (prefill * (size // len(prefill) + 1))[:size]
        plo = lo + size + PAD + pool_misalign
        self.pool = memoryview(self.buf)[plo : plo + POOL_LEN]
        self.pool[:] = bytes(range(256))[:POOL_LEN] * 2 if POOL_LEN <= 256 else bytes(POOL_LEN)
        self.bumped: dict[int, int] = {}
        self.peer_taken: list[int] = []  # heads the peer device took (host role)
        self.err_heads: list[int] = []  # heads a RemoteProtocolError left taken (remote role)
        self.region_calls: list[tuple[int, int]] = []
        if role == "host":
            cls = impl.driver if impl is not None else PyVringDriver
            self.driver = cls(self.mem, layout, reset=reset, start_index=start)
            self.peer = PyVringDevice(self.mem, layout, start_index=start)
        else:
            self.peer_driver = PyVringDriver(self.mem, layout, reset=reset, start_index=start)
            if impl is not None:
                self.device = impl.device(
                    self.mem, layout, region_check=self.forbidden, start_index=start
                )
            else:
                self.device = PyVringDevice(
                    self.mem, layout, region_check=pool_check(POOL_DA, self.pool),
                    start_index=start,
                )  # fmt: skip

    def forbidden(self, addr: int, length: int) -> bool:
        self.region_calls.append((addr, length))
        return True

    def payload(self, spec: tuple[Any, ...]) -> Any:
        if spec[0] == "bytes":
            data: bytes = spec[1]
            return data
        if spec[0] == "typed":
            return typed_payload(*spec[1:])
        # A view of the pool itself (possibly overlapping where the message goes).
        start = spec[1] % POOL_LEN
        return self.pool[start : start + spec[2]]


CAST_FORMATS = "bBhHiIlLqQfd?cP"  # memoryview.cast's native single-character formats


def typed_payload(kind: str, fmt: str, nbytes: int, seed: int) -> Any:
    """A buffer of ``nbytes`` (rounded down to whole items) whose len() is not its size in
    bytes: an array.array, a memoryview cast to a multi-byte format, a 2-D view, or a strided
    (non-contiguous) view. ``fmt`` is an array typecode for "array", a cast format otherwise."""
    size = (array.array(fmt) if kind == "array" else memoryview(b"").cast(fmt)).itemsize
    items = nbytes // size
    data = bytes((seed + i) % 256 for i in range(items * size))
    if kind == "array":
        return array.array(fmt, data)
    if kind == "2d" and items >= 2 and items % 2 == 0:
        return memoryview(data).cast(fmt, (2, items // 2))
    if kind == "strided":
        return memoryview(bytes(2 * len(data))).cast(fmt)[::2]
    return memoryview(data).cast(fmt)


def fused_outcome(side: FusedSide, fused: Callable[[], Any], pure: Callable[[], Any]) -> Any:
    return outcome(fused if side.fused else pure)


slot_addr = st.integers(0, NSLOTS - 1).map(lambda k: POOL_DA + k * SLOT)
host_addrs = st.one_of(
    slot_addr,
    slot_addr,
    slot_addr,
    st.integers(POOL_DA, POOL_DA + POOL_LEN - 1),
    st.sampled_from([POOL_DA - SLOT, POOL_DA - 1, POOL_DA + POOL_LEN - 8, POOL_DA + POOL_LEN]),
    st.sampled_from([0, 2**64 - 1, True]),
    st.builds(Idx, slot_addr),
)
u32s = st.one_of(st.integers(0, 3), st.just(0xFFFFFFFF), st.integers(0, 2**32 - 1))
u16s = st.one_of(st.integers(0, 3), st.just(0xFFFF), st.integers(0, 0xFFFF))
# Sizes in bytes around the MTU and small ones; for multi-byte formats len() is not the size.
typed_sizes = st.one_of(st.integers(MTU - 8, MTU + 8), st.integers(0, 24), st.just(SLOT + 8))
typed_payloads = st.one_of(
    st.tuples(
        st.just("typed"), st.just("array"), st.sampled_from(array.typecodes), typed_sizes,
        st.integers(0, 255),
    ),
    st.tuples(
        st.just("typed"), st.sampled_from(["cast", "2d", "strided"]),
        st.sampled_from(CAST_FORMATS), typed_sizes, st.integers(0, 255),
    ),
)  # fmt: skip
payloads = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=MTU + 2)),
    st.tuples(st.just("bytes"), st.sampled_from([b"", bytes(MTU), b"\xff" * (MTU + 1)])),
    st.tuples(st.just("alias"), st.integers(0, POOL_LEN), st.integers(0, MTU + 1)),
    typed_payloads,
)
lengths_16 = st.one_of(
    st.sampled_from([0, 1, 15, 16, 17, 20, MTU, SLOT - 1, SLOT, SLOT + 1, 0x1000, 0xFFFFFFFF]),
    st.integers(0, SLOT + 2),
)
# The peer's message in pool buffer k: a header (any reserved, any len) and payload bytes.
peer_msg = st.tuples(
    st.just("peer_msg"),
    st.integers(0, NSLOTS - 1),
    u32s,
    u32s,
    u32s,
    st.one_of(st.integers(0, SLOT + 2), st.sampled_from([MTU, MTU + 1, 0xFFFF])),
    u16s,
    st.binary(max_size=SLOT),
)
# The peer's message as it would really send one: header (len n, any reserved) and data.
peer_message = st.tuples(
    u32s,
    u32s,
    u32s,
    st.one_of(st.integers(0, MTU), st.sampled_from([MTU + 1, 0xFFFF])),
    u16s,
    st.binary(max_size=MTU),
)
# Host role, the peer device in one go: take a buffer, write a message into it (when it is in
# the pool), give it back with used length 16 + n ("auto") or any other.
peer_reply = st.tuples(
    st.just("peer_reply"), peer_message, st.one_of(st.just("auto"), st.just("auto"), lengths_16)
)
# Remote role, the peer driver in one go: write a message into pool buffer k and post it
# (read-only, as rpmsg tx) with length 16 + n ("auto") or any other.
peer_send = st.tuples(
    st.just("peer_send"),
    st.integers(0, NSLOTS - 1),
    peer_message,
    st.one_of(st.just("auto"), st.just("auto"), lengths_16),
)
pool_scribble = st.tuples(
    st.just("pool_scribble"), st.integers(0, POOL_LEN - 1), st.binary(min_size=1, max_size=20)
)
fused_desc_values = st.one_of(
    st.integers(0, 9),
    st.sampled_from([VRING_DESC_F_WRITE, VRING_DESC_F_NEXT, 3, 4, 6, 0xFFFF]),
    st.sampled_from([POOL_DA, POOL_DA - 1, POOL_DA + POOL_LEN - 16, POOL_DA + POOL_LEN]),
    st.sampled_from([2**64 - 16, 15, 16, SLOT, POOL_LEN, POOL_LEN + 1, 0xFFFFFFFF]),
)
ring_pokes = peer_pokes(fused_desc_values, lengths_16)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, with these relative weights (st.one_of flattens and
    deduplicates its alternatives, so repeating one there does not weight it)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


host_ops = weighted(
    (
        4,
        st.tuples(
            st.just("add"),
            host_addrs,
            st.one_of(lengths_16, st.just(True), st.builds(Idx, st.integers(0, SLOT))),
            st.one_of(
                st.integers(0, NSLOTS - 1).map(lambda k: k * SLOT),
                st.integers(0, NSLOTS - 1).map(lambda k: k * SLOT),
                st.integers(-2, POOL_LEN + 2),
                st.sampled_from([2**70, -(2**70)]),
            ),
            u32s,
            u32s,
            u16s,
            payloads,
        ),
    ),
    (
        5,
        st.tuples(
            st.just("get"), st.sampled_from([SLOT, SLOT, SLOT, 16, 0, 0xFFFFFFFF, True, Idx(SLOT)])
        ),
    ),
    (3, st.tuples(st.just("post"), host_addrs, st.one_of(st.just(SLOT), lengths_16))),
    (1, st.tuples(st.just("get_used"))),
    (1, st.tuples(st.just("peer_take"))),
    (1, st.tuples(st.just("peer_give"), st.integers(0, 15), lengths_16)),
    (6, peer_reply),
    (1, peer_msg),
    (1, pool_scribble),
    (3, ring_pokes),
)

remote_ops = weighted(
    (5, st.tuples(st.just("take_msg"))),
    (5, st.tuples(st.just("put_msg"), u32s, u32s, u16s, payloads)),
    (1, st.tuples(st.just("give_err"), st.integers(0, 15), lengths_16)),
    (1, st.tuples(st.just("give_any"), st.integers(0, 15), lengths_16)),
    (2, st.tuples(st.just("peer_post"), host_addrs, lengths_16, st.booleans())),
    (2, st.tuples(st.just("peer_post"), slot_addr, st.just(SLOT), st.just(True))),
    (2, st.tuples(st.just("peer_get_used"))),
    (5, peer_send),
    (1, peer_msg),
    (1, pool_scribble),
    (3, ring_pokes),
)


def write_message(side: FusedSide, off: int, message: tuple[Any, ...]) -> int:
    """The peer writes a message at pool offset off (clipped to the pool); returns 16 + n."""
    src, dst, reserved, n, flags, data = message
    raw = struct.pack(RPMSG_HDR_FMT, src, dst, reserved, n, flags) + data
    if 0 <= off < POOL_LEN:
        raw = raw[: POOL_LEN - off]
        side.pool[off : off + len(raw)] = raw
    return 16 + int(n)


def pool_poke(side: FusedSide, op: tuple[Any, ...]) -> None:
    pool = side.pool
    if op[0] == "peer_msg":
        _, k, src, dst, reserved, n, flags, data = op
        raw = struct.pack(RPMSG_HDR_FMT, src, dst, reserved, n, flags) + data
        off = k * SLOT
        raw = raw[: POOL_LEN - off]
        pool[off : off + len(raw)] = raw
    else:
        _, off, data = op
        data = data[: POOL_LEN - off]
        pool[off : off + len(data)] = data


def host_step(side: FusedSide, op: tuple[Any, ...]) -> Any:
    drv, pool = side.driver, side.pool
    kind = op[0]
    if kind == "add":
        _, addr, post_len, off, src, dst, flags, spec = op
        payload = side.payload(spec)
        return fused_outcome(
            side,
            lambda: drv.add_message(addr, post_len, pool, off, src, dst, flags, payload),
            lambda: pure_add_message(drv, addr, post_len, pool, off, src, dst, flags, payload),
        )
    if kind == "get":
        repost_len = op[1]
        return fused_outcome(
            side,
            lambda: drv.get_message(pool, POOL_DA, repost_len),
            lambda: pure_get_message(drv, pool, POOL_DA, repost_len),
        )
    if kind == "post":
        return outcome(lambda: drv.post(op[1], op[2], writable=True))
    if kind == "get_used":
        return outcome(drv.get_used)
    if kind == "peer_take":
        result = outcome(side.peer.take)
        if result[0] == "returned" and result[1] is not None:
            side.peer_taken.append(result[1][0])
        return result
    if kind == "peer_give":
        if not side.peer_taken:
            return ("nothing taken",)
        head = side.peer_taken.pop(op[1] % len(side.peer_taken))
        return outcome(lambda: side.peer.give(head, op[2]))
    if kind == "peer_reply":
        result = outcome(side.peer.take)
        if result[0] == "returned" and result[1] is not None:
            head, addr, _length, _flags = result[1]
            used_len = write_message(side, addr - POOL_DA, op[1])
            side.peer.give(head, used_len if op[2] == "auto" else op[2])
        return result
    if kind in ("peer_msg", "pool_scribble"):
        pool_poke(side, op)
    else:
        poke(side, op)
    return ("poked",)


def remote_step(side: FusedSide, op: tuple[Any, ...]) -> Any:
    dev, pool = side.device, side.pool
    kind = op[0]
    if kind == "take_msg":
        result = fused_outcome(
            side,
            lambda: dev.take_message(pool, POOL_DA),
            lambda: pure_take_message(dev, pool, POOL_DA),
        )
    elif kind == "put_msg":
        _, src, dst, flags, spec = op
        payload = side.payload(spec)
        result = fused_outcome(
            side,
            lambda: dev.put_message(pool, POOL_DA, src, dst, flags, payload),
            lambda: pure_put_message(dev, pool, POOL_DA, src, dst, flags, payload),
        )
    elif kind == "give_err":  # what the engine does with a RemoteProtocolError's head
        if not side.err_heads:
            return ("no error head",)
        head = side.err_heads.pop(op[1] % len(side.err_heads))
        return outcome(lambda: dev.give(head, op[2]))
    elif kind == "give_any":
        return outcome(lambda: dev.give(op[1] % side.layout.num, op[2]))
    elif kind == "peer_post":
        return outcome(lambda: side.peer_driver.post(op[1], op[2], writable=op[3]))
    elif kind == "peer_get_used":
        return outcome(side.peer_driver.get_used)
    elif kind == "peer_send":
        _, k, message, length = op
        used = write_message(side, k * SLOT, message)
        return outcome(
            lambda: side.peer_driver.post(
                POOL_DA + k * SLOT, used if length == "auto" else length, writable=False
            )
        )
    else:
        if kind in ("peer_msg", "pool_scribble"):
            pool_poke(side, op)
        else:
            poke(side, op)
        return ("poked",)
    if result[0] == "raised" and result[1] is RemoteProtocolError and result[3] is not None:
        side.err_heads.append(result[3])
    return result


fused_geometry = {
    "num": st.sampled_from([1, 2, 4, 8]),
    "align": st.sampled_from([4, 16, 64]),
    "misalign": st.sampled_from([0, 0, 0, 1]),
    "pool_misalign": st.sampled_from([0, 0, 1]),
    "start": st.one_of(st.just(0), st.integers(0xFFF0, 0xFFFF), st.integers(0, 0xFFFF)),
}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(host_ops, min_size=10, max_size=80), **fused_geometry)
def test_add_message_and_get_message_behave_exactly_like_the_plain_sequences(
    num: int,
    align: int,
    misalign: int,
    pool_misalign: int,
    start: int,
    steps: list[tuple[Any, ...]],
    msg_impl: VringImpl,
) -> None:
    layout = VringLayout(num, align)
    kw: dict[str, Any] = {"misalign": misalign, "pool_misalign": pool_misalign, "start": start}
    pure, fused = FusedSide("host", None, layout, **kw), FusedSide("host", msg_impl, layout, **kw)
    for step in steps:
        expected = host_step(pure, step)
        got = host_step(fused, step)
        assert got == expected, f"{step!r}: {msg_impl.name} gave {got!r}, spec {expected!r}"
        assert fused.buf == pure.buf, f"memory differs after {step!r}"
        assert (fused.driver.num_free, fused.driver.num_in_flight, fused.peer.num_taken) == (
            pure.driver.num_free,
            pure.driver.num_in_flight,
            pure.peer.num_taken,
        ), f"counters differ after {step!r}"
        assert fused.driver.has_used() == pure.driver.has_used()
    for head in range(num):
        assert fused.driver.buffer_of(head) == pure.driver.buffer_of(head)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(remote_ops, min_size=10, max_size=80),
    reset=st.sampled_from([True, True, True, False]),
    prefill=st.binary(min_size=1, max_size=8),
    **fused_geometry,
)
def test_take_message_and_put_message_behave_exactly_like_the_plain_sequences(
    num: int,
    align: int,
    misalign: int,
    pool_misalign: int,
    start: int,
    reset: bool,
    prefill: bytes,
    steps: list[tuple[Any, ...]],
    msg_impl: VringImpl,
) -> None:
    layout = VringLayout(num, align)
    kw: dict[str, Any] = {
        "misalign": misalign,
        "pool_misalign": pool_misalign,
        "start": start,
        "reset": reset,
        "prefill": prefill,
    }
    pure = FusedSide("remote", None, layout, **kw)
    fused = FusedSide("remote", msg_impl, layout, **kw)
    for step in steps:
        expected = remote_step(pure, step)
        got = remote_step(fused, step)
        assert got == expected, f"{step!r}: {msg_impl.name} gave {got!r}, spec {expected!r}"
        assert fused.buf == pure.buf, f"memory differs after {step!r}"
        assert (fused.device.num_taken, fused.peer_driver.num_free) == (
            pure.device.num_taken,
            pure.peer_driver.num_free,
        ), f"counters differ after {step!r}"
        assert fused.device.has_avail() == pure.device.has_avail()
    assert fused.region_calls == []  # the fused methods never call region_check


# -- golden bytes -------------------------------------------------------------------------------


class Rig:
    """A ring and a pool, each inside guard bytes, for byte-exact checks."""

    def __init__(self, layout: VringLayout, pool_len: int = POOL_LEN) -> None:
        self.layout = layout
        self.ring_buf = bytearray([GUARD]) * (layout.size + 2 * PAD)
        self.ring = memoryview(self.ring_buf)[PAD : PAD + layout.size]
        self.ring[:] = bytes(layout.size)
        self.pool_buf = bytearray([GUARD]) * (pool_len + 2 * PAD)
        self.pool = memoryview(self.pool_buf)[PAD : PAD + pool_len]
        self.pool[:] = b"\xee" * pool_len

    def snapshot(self) -> tuple[bytes, bytes]:
        return bytes(self.ring_buf), bytes(self.pool_buf)

    def u16(self, off: int, value: int) -> None:
        self.ring[off : off + 2] = value.to_bytes(2, "little")

    def desc(self, i: int, raw: bytes) -> None:
        assert len(raw) == 16
        self.ring[16 * i : 16 * i + 16] = raw


def test_add_message_golden_bytes(msg_impl: VringImpl) -> None:
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    ring0, pool0 = rig.snapshot()
    assert drv.add_message(POOL_DA + SLOT, 21, rig.pool, SLOT, 0x11223344, 0x55667788, 0xA5B6,
                           b"hello") is True  # fmt: skip
    header = bytes.fromhex("4433221188776655000000000500b6a5")
    assert header == struct.pack("<IIIHH", 0x11223344, 0x55667788, 0, 5, 0xA5B6)
    expected_pool = bytearray(pool0)
    expected_pool[PAD + SLOT : PAD + SLOT + 21] = header + b"hello"
    assert rig.pool_buf == expected_pool  # nothing else in the pool, nothing around it
    expected_ring = bytearray(ring0)
    # desc 0 = {addr POOL_DA + 64, len 21, flags 0 (read-only), next 0}
    expected_ring[PAD : PAD + 16] = bytes.fromhex("40000200000000001500000000000000")
    expected_ring[PAD + layout.avail + 2 : PAD + layout.avail + 4] = b"\x01\x00"  # avail.idx
    assert rig.ring_buf == expected_ring  # avail.ring[0] = 0 already
    assert (drv.num_free, drv.buffer_of(0)) == (3, (POOL_DA + SLOT, 21))

    # The device asked not to be kicked: False; the next descriptor (1) and avail slot.
    rig.u16(layout.used, 1)
    assert drv.add_message(POOL_DA, 512, rig.pool, 0, 1, 2, 0, b"") is False
    assert bytes(rig.pool[:16]) == bytes.fromhex("01000000020000000000000000000000")
    assert bytes(rig.pool[16:SLOT]) == b"\xee" * (SLOT - 16)
    assert bytes(rig.ring[16:32]) == bytes.fromhex("00000200000000000002000000000000")
    assert bytes(rig.ring[layout.avail : layout.avail + 8]) == bytes.fromhex("0000020000000100")


def test_get_message_golden_bytes(msg_impl: VringImpl) -> None:
    """Messages written by hand into the pool and the used ring, as a hostile peer would."""
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    for k in range(4):
        assert drv.post(POOL_DA + k * SLOT, SLOT, writable=True) == k
    # Buffer 0: a 4-byte message (reserved is ignored); 1: used length 15; 2: header len 49
    # (> 64 - 16); 3: header len 48, exactly the MTU.
    rig.pool[0:20] = bytes.fromhex("3500000000040000deadbeef04000100") + b"ping"
    rig.pool[SLOT : SLOT + 16] = struct.pack("<IIIHH", 1, 2, 0, 0, 0)
    rig.pool[2 * SLOT : 2 * SLOT + 16] = struct.pack("<IIIHH", 1, 2, 0, 49, 0)
    rig.pool[3 * SLOT : 4 * SLOT] = struct.pack("<IIIHH", 7, 8, 0, 48, 9) + bytes(range(48))
    used = [(0, 20), (1, 15), (2, 64), (3, 64)]
    for i, (head, length) in enumerate(used):
        rig.ring[layout.used_ring + 8 * i : layout.used_ring + 8 * i + 8] = struct.pack(
            "<II", head, length
        )
    rig.u16(layout.used + 2, 4)
    assert drv.get_message(rig.pool, POOL_DA, 100) == (0x35, 0x400, 1, b"ping")
    assert drv.get_message(rig.pool, POOL_DA, 101) == 1
    assert drv.get_message(rig.pool, POOL_DA, 102) == 2
    assert drv.get_message(rig.pool, POOL_DA, 103) == (7, 8, 9, bytes(range(48)))
    assert drv.get_message(rig.pool, POOL_DA, 104) is None
    # Each buffer reposted as post(addr, repost_len, writable=True): descriptor ids come back
    # in the order reclaimed (the free list is a stack), avail slots 4..7 (= 0..3), idx 8.
    for k in range(4):
        assert bytes(rig.ring[16 * k : 16 * k + 16]) == struct.pack(
            "<QIHH", POOL_DA + k * SLOT, 100 + k, VRING_DESC_F_WRITE, 0
        )
    avail = bytes(rig.ring[layout.avail : layout.avail + 12])
    assert avail == bytes.fromhex("000008000000010002000300")
    assert drv.num_free == 0


def test_take_message_golden_bytes(msg_impl: VringImpl) -> None:
    layout = VringLayout(4, 16)
    rig = Rig(layout)

    def never(addr: int, length: int) -> bool:
        raise AssertionError("take_message called region_check")

    dev = msg_impl.device(rig.ring, layout, region_check=never)
    # Driver side, by hand: four buffers (read-only ones: rpmsg tx) in avail slots 0..3.
    descs = [(POOL_DA, 24), (POOL_DA + SLOT, 12), (POOL_DA + 2 * SLOT, 20), (POOL_DA + 3 * SLOT, 0)]
    for i, (addr, length) in enumerate(descs):
        rig.desc(i, struct.pack("<QIHH", addr, length, 0, 0))
        rig.u16(layout.avail_ring + 2 * i, i)
    rig.u16(layout.avail + 2, 4)
    rig.pool[0:24] = bytes.fromhex("0004000035000000000000000800ffff") + b"8 bytes!"
    rig.pool[2 * SLOT : 2 * SLOT + 16] = bytes.fromhex("01000000020000000000000005000000")
    assert dev.take_message(rig.pool, POOL_DA) == (0x400, 0x35, 0xFFFF, b"8 bytes!")
    assert dev.take_message(rig.pool, POOL_DA) == 1  # 12 bytes: no room for a header
    assert dev.take_message(rig.pool, POOL_DA) == 2  # len 5 > 20 - 16
    assert dev.take_message(rig.pool, POOL_DA) == 1  # 0 bytes at the pool's end... of slot 3
    assert dev.take_message(rig.pool, POOL_DA) is None
    # Given back with their own lengths, in order.
    used = bytes(rig.ring[layout.used : layout.used + 4 + 32])
    assert used == bytes.fromhex(
        "000004000000000018000000010000000c00000002000000140000000300000000000000"
    )
    assert dev.num_taken == 0
    # A buffer ending one byte past the pool is refused with take()'s message; nothing read.
    rig.desc(0, struct.pack("<QIHH", POOL_DA + POOL_LEN - 15, 16, 0, 0))
    rig.u16(layout.avail + 2, 5)
    with pytest.raises(RemoteProtocolError) as info:
        dev.take_message(rig.pool, POOL_DA)
    assert str(info.value) == (
        f"descriptor 0: buffer [{POOL_DA + POOL_LEN - 15:#x}, +0x10) is outside the buffer region"
    )
    assert (info.value.head, info.value.consumed, dev.num_taken) == (0, True, 1)


def test_put_message_golden_bytes(msg_impl: VringImpl) -> None:
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    dev = msg_impl.device(rig.ring, layout)
    # Writable buffers 0 (64 bytes) and 1 (19 bytes), read-only 2, writable 3 (18 bytes).
    descs = [(SLOT, 2), (19, 2), (SLOT, 0), (18, 2)]
    for i, (length, flags) in enumerate(descs):
        rig.desc(i, struct.pack("<QIHH", POOL_DA + i * SLOT, length, flags, 0))
        rig.u16(layout.avail_ring + 2 * i, i)
    rig.u16(layout.avail + 2, 4)
    pool0 = bytes(rig.pool_buf)
    assert dev.put_message(rig.pool, POOL_DA, 0x400, 0x35, 0, b"\x01\x02\x03") == 1
    assert bytes(rig.pool[:19]) == bytes.fromhex("00040000350000000000000003000000") + (
        b"\x01\x02\x03"
    )
    rig.u16(layout.avail, 1)  # VRING_AVAIL_F_NO_INTERRUPT
    assert dev.put_message(rig.pool, POOL_DA, 1, 2, 0x8001, b"abc") == 0  # 19 bytes: fits
    assert bytes(rig.pool[SLOT : SLOT + 19]) == struct.pack("<IIIHH", 1, 2, 0, 3, 0x8001) + b"abc"
    assert dev.put_message(rig.pool, POOL_DA, 1, 2, 0, b"abc") == 2  # read-only
    assert dev.put_message(rig.pool, POOL_DA, 1, 2, 0, b"abc") == 2  # 18 < 16 + 3
    assert dev.put_message(rig.pool, POOL_DA, 1, 2, 0, b"abc") == -1
    expected_pool = bytearray(pool0)
    expected_pool[PAD : PAD + 19] = rig.pool[:19]
    expected_pool[PAD + SLOT : PAD + SLOT + 19] = rig.pool[SLOT : SLOT + 19]
    assert rig.pool_buf == expected_pool  # the refused buffers were not written
    used = bytes(rig.ring[layout.used : layout.used + 4 + 32])
    assert used == bytes.fromhex(
        "000004000000000013000000010000001300000002000000000000000300000000000000"
    )


def test_payload_limits(msg_impl: VringImpl) -> None:
    """A payload of exactly the MTU and an empty one work; 0xFFFF is the header's limit."""
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    last = POOL_LEN - SLOT
    drv.add_message(POOL_DA + last, SLOT, rig.pool, last, 1, 2, 3, b"m" * MTU)  # ends at the end
    assert bytes(rig.pool[last:]) == struct.pack("<IIIHH", 1, 2, 0, MTU, 3) + b"m" * MTU
    assert rig.pool_buf[-PAD:] == bytearray([GUARD]) * PAD
    with pytest.raises(ValueError, match="does not fit the 384-byte buffer pool"):
        drv.add_message(POOL_DA + last, SLOT, rig.pool, last, 1, 2, 3, b"m" * (MTU + 1))
    drv.add_message(POOL_DA, 16, rig.pool, 0, 1, 2, 3, b"")
    assert bytes(rig.pool[:16]) == struct.pack("<IIIHH", 1, 2, 0, 0, 3)

    dev = msg_impl.device(rig.ring, layout)
    assert dev.take_message(rig.pool, POOL_DA) == (1, 2, 3, b"m" * MTU)
    assert dev.take_message(rig.pool, POOL_DA) == (1, 2, 3, b"")

    rig2 = Rig(layout)
    drv2, dev2 = msg_impl.driver(rig2.ring, layout), msg_impl.device(rig2.ring, layout)
    for k in range(3):
        drv2.post(POOL_DA + k * SLOT, SLOT, writable=True)
    assert dev2.put_message(rig2.pool, POOL_DA, 5, 6, 7, b"x" * MTU) == 1
    assert dev2.put_message(rig2.pool, POOL_DA, 5, 6, 7, b"x" * (MTU + 1)) == 2
    assert dev2.put_message(rig2.pool, POOL_DA, 5, 6, 7, b"") == 1
    assert drv2.get_message(rig2.pool, POOL_DA, SLOT) == (5, 6, 7, b"x" * MTU)
    assert drv2.get_used() == (1, POOL_DA + SLOT, 0)
    assert drv2.get_message(rig2.pool, POOL_DA, SLOT) == (5, 6, 7, b"")

    big = Rig(layout, pool_len=0x20000)
    drv3, dev3 = msg_impl.driver(big.ring, layout), msg_impl.device(big.ring, layout)
    assert drv3.add_message(0, 0x10010, big.pool, 0, 1, 2, 3, b"\xab" * 0xFFFF) is True
    assert dev3.take_message(big.pool, 0) == (1, 2, 3, b"\xab" * 0xFFFF)
    too_long = b"\0" * 0x10000
    message = "payload of 65536 bytes does not fit an rpmsg message (at most 65535 bytes)"
    before = big.snapshot()
    with pytest.raises(ValueError, match=re.escape(message)):
        drv3.add_message(0, 0x10010, big.pool, 0, 1, 2, 3, too_long)
    drv3.post(0x10000, 0x10010 + 8, writable=True)
    before = big.snapshot()
    with pytest.raises(ValueError, match=re.escape(message)):
        dev3.put_message(big.pool, 0, 1, 2, 3, too_long)
    assert big.snapshot() == before and dev3.has_avail()


def test_fused_methods_size_a_payload_in_bytes(msg_impl: VringImpl) -> None:
    """A payload is its raw bytes, sized in bytes, whatever its format or shape, and a message
    never spills past the buffer it is posted in. Regression: an array("d") of 6 items posted
    as 16 + len() = 22 bytes was written whole (16 + 48 bytes), into the next pool buffer."""
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    doubles = array.array("d", [1.5, -2.0, 3.25, 0.0, 1e300, -0.5])  # 48 bytes = the MTU
    before = rig.snapshot()
    with pytest.raises(ValueError, match="message of 64 bytes does not fit the posted length 22"):
        drv.add_message(POOL_DA, 16 + len(doubles), rig.pool, 0, 1, 2, 0, doubles)
    assert rig.snapshot() == before and drv.num_free == 4
    drv.add_message(POOL_DA, SLOT, rig.pool, 0, 1, 2, 0, doubles)
    grid = memoryview(bytes(range(24))).cast("i", (2, 3))
    drv.add_message(POOL_DA + SLOT, 16 + grid.nbytes, rig.pool, SLOT, 1, 2, 0, grid)
    dev = msg_impl.device(rig.ring, layout)
    assert dev.take_message(rig.pool, POOL_DA) == (1, 2, 0, doubles.tobytes())
    assert dev.take_message(rig.pool, POOL_DA) == (1, 2, 0, bytes(range(24)))

    rig2 = Rig(layout)
    drv2, dev2 = msg_impl.driver(rig2.ring, layout), msg_impl.device(rig2.ring, layout)
    drv2.post(POOL_DA, SLOT, writable=True)
    drv2.post(POOL_DA + SLOT, SLOT, writable=True)
    too_big = array.array("q", range(7))  # 56 bytes, len() 7
    assert dev2.put_message(rig2.pool, POOL_DA, 5, 6, 0, too_big) == 2  # given back empty
    assert dev2.put_message(rig2.pool, POOL_DA, 5, 6, 0, grid) == 1
    assert drv2.get_message(rig2.pool, POOL_DA, SLOT) == 1  # used length 0: short
    assert drv2.get_message(rig2.pool, POOL_DA, SLOT) == (5, 6, 0, bytes(range(24)))


# -- argument errors: raised before anything changes --------------------------------------------

_NONCONTIGUOUS = memoryview(bytearray(64))[::2]
# Each integer argument's struct format: a bad value raises what struct says of it.
_INT_FORMATS = {
    "src": "<I",
    "dst": "<I",
    "flags": "<H",
    "addr": "<Q",
    "base_da": "<Q",
    "post_len": "<I",
    "repost_len": "<I",
}
_INT_ARGS = {
    "add_message": ["addr", "post_len", "src", "dst", "flags"],
    "get_message": ["base_da", "repost_len"],
    "take_message": ["base_da"],
    "put_message": ["base_da", "src", "dst", "flags"],
}


def _struct_message(fmt: str, value: Any) -> str:
    try:
        struct.pack(fmt, value)
    except struct.error as exc:
        return "^" + re.escape(str(exc)) + "$"
    raise AssertionError(f"struct accepts {value!r} for {fmt}")


def _arg_error_cases() -> list[Any]:
    cases: list[Any] = []

    def add(
        method: str, name: str, value: Any, exc: type[BaseException], match: str | None = None
    ) -> None:
        cases.append(pytest.param(method, name, value, exc, match, id=f"{method}-{name}-{value!r}"))

    for method, names in _INT_ARGS.items():
        for name in names:
            fmt = _INT_FORMATS[name]
            too_big = 1 << (8 * struct.calcsize(fmt))
            for value in (-1, too_big, 2**70, 1.5, None, "1"):
                add(method, name, value, struct.error, _struct_message(fmt, value))
    for value in (-1, POOL_LEN - 16 - 3, POOL_LEN, 2**70, -(2**70)):
        add("add_message", "off", value, ValueError, "does not fit the 384-byte buffer pool")
    for value in (1.5, None, "0"):
        add("add_message", "off", value, TypeError)
    for value in (0, 19, Idx(19)):  # the message is 20 bytes
        add("add_message", "post_len", value, ValueError, "does not fit the posted length")
    for method in ("add_message", "put_message"):
        add(method, "payload", b"\0" * 0x10000, ValueError, "does not fit an rpmsg message")
        add(method, "payload", "text", TypeError)
        add(method, "payload", 5, TypeError)
        add(method, "payload", _NONCONTIGUOUS, BufferError, "payload is not C-contiguous")
        add(method, "payload", memoryview(bytes(0x10000)).cast("i"), ValueError, "65536 bytes")
        add(method, "mem", b"\0" * POOL_LEN, BufferError)  # read-only
        add(method, "mem", memoryview(b"\0" * POOL_LEN), BufferError)
    for method in ("add_message", "get_message", "take_message", "put_message"):
        add(method, "mem", 5, TypeError)
        add(method, "mem", _NONCONTIGUOUS, BufferError)
    return cases


@pytest.mark.parametrize(("method", "name", "value", "exc", "match"), _arg_error_cases())
def test_argument_errors_change_nothing(
    method: str,
    name: str,
    value: Any,
    exc: type[BaseException],
    match: str | None,
    msg_impl: VringImpl,
) -> None:
    """With work pending on every ring (a used entry, an avail entry), a bad argument raises
    before any of it is consumed: ring, pool and the counters are untouched."""
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    peer = PyVringDevice(rig.ring, layout)
    drv.post(POOL_DA, SLOT, writable=True)
    drv.post(POOL_DA + SLOT, SLOT, writable=True)
    head, _addr, _length, _flags = peer.take()
    rig.pool[:20] = struct.pack("<IIIHH", 1, 2, 0, 4, 0) + b"ping"
    peer.give(head, 20)  # drv: a used entry pending; dev: an avail entry pending
    dev = msg_impl.device(rig.ring, layout, start_index=1)
    kwargs: dict[str, Any] = {
        "add_message": {
            "addr": POOL_DA + 2 * SLOT, "post_len": 20, "mem": rig.pool, "off": 2 * SLOT,
            "src": 1, "dst": 2, "flags": 0, "payload": b"pong",
        },
        "get_message": {"mem": rig.pool, "base_da": POOL_DA, "repost_len": SLOT},
        "take_message": {"mem": rig.pool, "base_da": POOL_DA},
        "put_message": {
            "mem": rig.pool, "base_da": POOL_DA, "src": 1, "dst": 2, "flags": 0, "payload": b"x",
        },
    }[method]  # fmt: skip
    kwargs[name] = value
    obj = drv if method in ("add_message", "get_message") else dev
    before = (rig.snapshot(), drv.num_free, drv.has_used(), dev.num_taken, dev.has_avail())
    with pytest.raises(exc, match=match):
        getattr(obj, method)(**kwargs)
    after = (rig.snapshot(), drv.num_free, drv.has_used(), dev.num_taken, dev.has_avail())
    assert after == before
    assert (drv.has_used(), dev.has_avail()) == (True, True)
    # Positionally, the same error.
    with pytest.raises(exc, match=match):
        getattr(obj, method)(*kwargs.values())


def test_add_message_on_a_full_ring_writes_nothing(msg_impl: VringImpl) -> None:
    layout = VringLayout(2, 16)
    rig = Rig(layout)
    drv = msg_impl.driver(rig.ring, layout)
    for k in range(2):
        drv.add_message(POOL_DA + k * SLOT, 20, rig.pool, k * SLOT, 1, 2, 0, b"abcd")
    before = rig.snapshot()
    with pytest.raises(RingFullError, match=r"^all 2 descriptors are in flight$"):
        drv.add_message(POOL_DA + 2 * SLOT, 20, rig.pool, 2 * SLOT, 1, 2, 0, b"abcd")
    with pytest.raises(RingFullError):  # checked before the other arguments
        drv.add_message(-1, 20, rig.pool, -1, 1, 2, 0, b"abcd")
    assert rig.snapshot() == before and drv.num_free == 0


def test_get_message_refuses_a_buffer_outside_the_pool(msg_impl: VringImpl) -> None:
    """A caller bug: the descriptor is reclaimed (free again) but not reposted, and nothing is
    read; the ring is otherwise fine."""
    layout = VringLayout(4, 16)
    rig = Rig(layout)
    drv, dev = msg_impl.driver(rig.ring, layout), msg_impl.device(rig.ring, layout)
    drv.post(POOL_DA + POOL_LEN - 8, 8, writable=True)  # its header would end past the pool
    head, _addr, _length, _flags = dev.take()
    dev.give(head, 4)
    before = rig.snapshot()
    with pytest.raises(ValueError) as info:
        drv.get_message(rig.pool, POOL_DA, SLOT)
    assert str(info.value) == (
        f"used buffer [{POOL_DA + POOL_LEN - 8:#x}, +0x10) is outside the buffer pool "
        f"[{POOL_DA:#x}, +{POOL_LEN:#x})"
    )
    assert rig.snapshot() == before  # not reposted
    assert (drv.num_free, drv.has_used(), drv.get_message(rig.pool, POOL_DA, SLOT)) == (
        4,
        False,
        None,
    )


def test_buffers_are_held_only_during_the_call(msg_impl: VringImpl) -> None:
    layout = VringLayout(4, 16)
    ring = memoryview(bytearray(layout.size))
    drv, dev = msg_impl.driver(ring, layout), msg_impl.device(ring, layout)
    pool, payload = bytearray(POOL_LEN), bytearray(b"data")
    drv.add_message(POOL_DA, 20, pool, 0, 1, 2, 0, payload)
    assert dev.take_message(pool, POOL_DA) == (1, 2, 0, b"data")
    drv.get_used()
    drv.post(POOL_DA, SLOT, writable=True)
    assert dev.put_message(pool, POOL_DA, 1, 2, 0, payload) == 1
    assert drv.get_message(pool, POOL_DA, SLOT) == (1, 2, 0, b"data")
    with pytest.raises(ValueError):
        drv.add_message(POOL_DA, 20, pool, POOL_LEN, 1, 2, 0, payload)
    with pytest.raises(struct.error):
        dev.put_message(pool, POOL_DA, -1, 2, 0, payload)
    pool.extend(b"x")  # no export left behind
    payload.extend(b"x")


def test_fused_signatures_and_keywords(msg_impl: VringImpl) -> None:
    layout = VringLayout(4, 16)
    ring = memoryview(bytearray(layout.size))
    drv, dev = msg_impl.driver(ring, layout), msg_impl.device(ring, layout)
    expected = {
        drv.add_message: ["addr", "post_len", "mem", "off", "src", "dst", "flags", "payload"],
        drv.get_message: ["mem", "base_da", "repost_len"],
        dev.take_message: ["mem", "base_da"],
        dev.put_message: ["mem", "base_da", "src", "dst", "flags", "payload"],
    }
    for method, names in expected.items():
        params = inspect.signature(method).parameters.values()
        assert [(p.name, p.kind) for p in params] == [
            (n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names
        ]
    pool = bytearray(POOL_LEN)
    assert drv.add_message(
        payload=b"kw", flags=0, dst=2, src=1, off=0, mem=pool, post_len=18, addr=POOL_DA
    )
    assert dev.take_message(base_da=POOL_DA, mem=pool) == (1, 2, 0, b"kw")
    drv.post(POOL_DA, SLOT, writable=True)
    assert dev.put_message(pool, POOL_DA, payload=b"k", flags=1, dst=2, src=3) == 1
    drv.get_used()
    assert drv.get_message(pool, repost_len=SLOT, base_da=POOL_DA) == (3, 2, 1, b"k")
    with pytest.raises(TypeError):
        drv.get_message(pool, POOL_DA)
    with pytest.raises(TypeError):
        dev.take_message(pool, POOL_DA, 0)
    with pytest.raises(TypeError):
        dev.put_message(pool, POOL_DA, 1, 2, 0, b"", base_da=0)
