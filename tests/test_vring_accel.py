"""The C accelerator (transports._vring_accel) against the pure classes, which are its spec.

* Differential: a pure ring and a C ring (driver and device each), every one over its own
  bytearray, go through the same random operations, hostile writes of the shared words and
  hostile arguments. After every step: equal return values, equal exceptions (type, message,
  ``head``, ``consumed``), the same region_check calls, equal counters, and byte-identical memory
  including guard bytes around the ring (so nothing outside it was touched).
* The C object holds its memory (a buffer export) for exactly its lifetime.
* Reference cycles through region_check (a bound method of the ring's owner) are collected.
* ``AIOAMP_PURE_PYTHON`` selects the pure classes; the public signatures are the same.

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
import os
import struct
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ACCEL_MISSING, ACCEL_VRING, PURE_VRING, VringImpl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transports.errors import RemoteProtocolError
from transports.vring import (
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    PyVringDevice,
    PyVringDriver,
    VringLayout,
)

ROOT = Path(__file__).resolve().parent.parent
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
    # The hostile peer: bump a shared index, rewrite a ring slot, a descriptor field (of a head
    # likely in flight: k % num), a used element, or any bytes at all.
    st.tuples(
        st.just("bump"),
        st.sampled_from(["avail_idx", "used_idx", "avail_flags", "used_flags"]),
        u16_delta,
    ),
    st.tuples(st.just("unbump")),  # the peer repairs the indices it bumped
    st.tuples(st.just("unbump")),
    st.tuples(
        st.just("slot"),
        st.sampled_from(["avail", "used_id", "used_len"]),
        st.integers(0, 15),
        slot_values,
    ),
    st.tuples(
        st.just("desc"),
        st.integers(0, 15),
        st.sampled_from(["addr", "len", "flags", "next"]),
        desc_values,
    ),
    st.tuples(st.just("desc"), st.integers(0, 15), st.sampled_from(["flags", "next"]), desc_values),
    st.tuples(st.just("desc"), st.integers(0, 15), st.just("flags"), st.sampled_from([1, 3, 4])),
    st.tuples(st.just("slot"), st.just("used_len"), st.integers(0, 15), st.integers(0, 0x1000)),
    # Turn descriptor k % num into the head of a chain: NEXT set, next = nxt (out of range at
    # times), and the next descriptor's flags (NEXT again: longer chains, loops).
    st.tuples(
        st.just("chain"),
        st.integers(0, 15),
        st.one_of(st.integers(0, 9), st.just(0xFFFF)),
        st.sampled_from([0, 1, 2, 3, 4]),
    ),
    st.tuples(st.just("scribble"), st.integers(0, 4096), st.binary(min_size=1, max_size=12)),
)

_FIELD = {"addr": ("<Q", 0), "len": ("<I", 8), "flags": ("<H", 12), "next": ("<H", 14)}


def poke(side: Side, op: tuple[Any, ...]) -> None:
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
        ("driver", ["post", "has_used", "get_used", "buffer_of", "kick_needed", "set_interrupts"]),
        (
            "device",
            ["has_avail", "take", "take_chain", "give", "interrupt_needed", "set_notifications"],
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
        "import transports, transports.vring as v; "
        "print(v.ACCELERATED, v.VringDriver is v.PyVringDriver, v.VringDevice is v.PyVringDevice,"
        " transports.VringDriver is v.VringDriver, v.VringDriver.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    accelerated = _BUILT and not forced_pure
    module = "transports._vring_accel" if accelerated else "transports.vring"
    assert out == [str(accelerated), str(not accelerated), str(not accelerated), "True", module]
