"""PhysicalMemory: the first-fit carveout allocator every platform allocates from."""

from __future__ import annotations

import pytest

from remoteproc.errors import MemoryMapError, RemoteprocError
from remoteproc.memory import Allocation, PhysicalMemory

BASE = 0x8000_0000
SIZE = 0x10000


@pytest.fixture
def backing() -> bytearray:
    return bytearray(SIZE)


@pytest.fixture
def phys(backing: bytearray) -> PhysicalMemory:
    return PhysicalMemory(BASE, backing, "ddr")


def test_window_properties(phys: PhysicalMemory) -> None:
    assert phys.size == SIZE
    assert phys.in_use == 0
    assert phys.contains(BASE, SIZE)
    assert phys.contains(BASE + SIZE - 1, 1)
    assert not phys.contains(BASE - 1, 1)
    assert not phys.contains(BASE + SIZE - 1, 2)


def test_first_fit_in_address_order(phys: PhysicalMemory) -> None:
    a = phys.allocate(0x1000, name="a")
    b = phys.allocate(0x1000, name="b")
    c = phys.allocate(0x2000, name="c")
    assert (a.pa, b.pa, c.pa) == (BASE, BASE + 0x1000, BASE + 0x2000)
    assert (a.size, b.size, c.size) == (0x1000, 0x1000, 0x2000)
    assert a.name == "a"
    phys.free(b)
    # The hole left by b is the first fit for anything up to its size...
    d = phys.allocate(0x800, name="d")
    assert d.pa == BASE + 0x1000
    # ...but a larger block goes after c.
    e = phys.allocate(0x2000, name="e")
    assert e.pa == BASE + 0x4000
    assert phys.in_use == 0x1000 + 0x2000 + 0x800 + 0x2000


def test_alignment_is_on_physical_addresses() -> None:
    # A window that starts off a page boundary: alignment applies to pa, not to the offset.
    phys = PhysicalMemory(BASE + 0x100, bytearray(0x4000))
    small = phys.allocate(0x10, align=0x10)
    assert small.pa == BASE + 0x100
    page = phys.allocate(0x100, align=0x1000)
    assert page.pa == BASE + 0x1000
    assert page.pa % 0x1000 == 0
    # The gap below the page is still used by a later small allocation (first fit).
    again = phys.allocate(0x20, align=0x10)
    assert again.pa == BASE + 0x110


def test_default_alignment_is_a_page(phys: PhysicalMemory) -> None:
    phys.allocate(0x10)
    second = phys.allocate(0x10)
    assert second.pa == BASE + 0x1000


def test_fixed_pa(phys: PhysicalMemory) -> None:
    fixed = phys.allocate(0x1000, pa=BASE + 0x3000, name="fixed")
    assert fixed.pa == BASE + 0x3000
    # First fit works around the fixed block.
    first = phys.allocate(0x3000)
    assert first.pa == BASE
    nxt = phys.allocate(0x1000)
    assert nxt.pa == BASE + 0x4000


@pytest.mark.parametrize(
    ("pa", "size"),
    [
        (BASE + 0x2000, 0x1000),  # same block
        (BASE + 0x2800, 0x100),  # inside it
        (BASE + 0x1800, 0x1000),  # runs into its start
        (BASE + 0x2FFF, 0x10),  # starts at its last byte
        (BASE + 0x1000, 0x3000),  # covers it entirely
    ],
)
def test_fixed_pa_overlap_refused(phys: PhysicalMemory, pa: int, size: int) -> None:
    phys.allocate(0x1000, pa=BASE + 0x2000, name="taken")
    with pytest.raises(MemoryMapError, match="already allocated"):
        phys.allocate(size, pa=pa, name="x")
    assert phys.in_use == 0x1000


def test_fixed_pa_adjacent_allowed(phys: PhysicalMemory) -> None:
    phys.allocate(0x1000, pa=BASE + 0x2000)
    below = phys.allocate(0x1000, pa=BASE + 0x1000)
    above = phys.allocate(0x1000, pa=BASE + 0x3000)
    assert (below.pa, above.pa) == (BASE + 0x1000, BASE + 0x3000)
    assert phys.in_use == 0x3000


@pytest.mark.parametrize(
    ("pa", "size"),
    [(BASE - 0x1000, 0x1000), (BASE + SIZE, 0x1000), (BASE + SIZE - 0x800, 0x1000), (0, 0x10)],
)
def test_fixed_pa_outside_window(phys: PhysicalMemory, pa: int, size: int) -> None:
    with pytest.raises(MemoryMapError, match="is outside ddr"):
        phys.allocate(size, pa=pa, name="out")
    assert phys.in_use == 0


@pytest.mark.parametrize("size", [0, -1])
def test_size_must_be_positive(phys: PhysicalMemory, size: int) -> None:
    with pytest.raises(MemoryMapError, match=f"size {size} must be positive"):
        phys.allocate(size, name="empty")


def test_zeroing_and_zero_false(phys: PhysicalMemory, backing: bytearray) -> None:
    a = phys.allocate(0x100, name="a")
    a.mem[:] = b"\xa5" * 0x100
    assert backing[:0x100] == b"\xa5" * 0x100  # the view writes through to the window
    phys.free(a)
    b = phys.allocate(0x100, name="b")
    assert b.pa == a.pa
    assert bytes(b.mem) == bytes(0x100)  # zeroed on allocation
    b.mem[:4] = b"keep"
    phys.free(b)
    adopted = phys.allocate(0x100, pa=b.pa, zero=False, name="adopted")
    assert bytes(adopted.mem[:4]) == b"keep"  # adoption keeps the contents


def test_exhaustion(phys: PhysicalMemory) -> None:
    whole = phys.allocate(SIZE)
    assert phys.in_use == SIZE
    with pytest.raises(MemoryMapError, match=r"cannot allocate 0x1 bytes in ddr \(0x0 free"):
        phys.allocate(1, align=1)
    phys.free(whole)
    with pytest.raises(MemoryMapError, match="cannot allocate 0x10001 bytes"):
        phys.allocate(SIZE + 1)
    assert isinstance(MemoryMapError("x"), RemoteprocError | ValueError)


def test_fragmentation_is_reported(phys: PhysicalMemory) -> None:
    blocks = [phys.allocate(0x1000, name=f"b{i}") for i in range(SIZE // 0x1000)]
    for block in blocks[::2]:
        phys.free(block)
    assert phys.in_use == SIZE // 2
    # Half the window is free, but no two free pages are adjacent.
    with pytest.raises(MemoryMapError, match=r"\(0x8000 free, fragmented or too small\)"):
        phys.allocate(0x2000, name="big")
    assert phys.allocate(0x1000).pa == BASE


def test_free_of_foreign_allocation(phys: PhysicalMemory) -> None:
    mine = phys.allocate(0x1000, name="mine")
    # Same physical address and size, but from another window (two simulators share a pa).
    other = PhysicalMemory(BASE, bytearray(SIZE), "other")
    theirs = other.allocate(0x1000, name="theirs")
    assert (theirs.pa, theirs.size) == (mine.pa, mine.size)
    with pytest.raises(MemoryMapError, match="theirs: not an allocation of ddr"):
        phys.free(theirs)
    # Made-up allocations and wrong sizes are refused too.
    fake = Allocation(BASE + 0x8000, memoryview(bytearray(0x100)), "fake")
    with pytest.raises(MemoryMapError, match="fake: not an allocation of ddr"):
        phys.free(fake)
    truncated = Allocation(mine.pa, mine.mem[:0x800], "truncated")
    with pytest.raises(MemoryMapError, match="truncated: not an allocation"):
        phys.free(truncated)
    assert phys.in_use == 0x1000
    phys.free(mine)
    assert phys.in_use == 0
    with pytest.raises(MemoryMapError, match="mine: not an allocation"):
        phys.free(mine)  # double free


def test_in_use_accounting(phys: PhysicalMemory) -> None:
    sizes = [0x100, 0x2000, 0x10, 0x1000]
    allocs = []
    total = 0
    for size in sizes:
        allocs.append(phys.allocate(size, align=0x10))
        total += size
        assert phys.in_use == total
    for alloc in reversed(allocs):
        phys.free(alloc)
        total -= alloc.size
        assert phys.in_use == total
    assert phys.in_use == 0
    # After freeing everything the window is whole again.
    assert phys.allocate(SIZE).pa == BASE


def test_memoryview_backing_is_accepted() -> None:
    raw = bytearray(0x2000)
    phys = PhysicalMemory(0x1000, memoryview(raw), "mv")
    a = phys.allocate(0x10, align=1)
    a.mem[:2] = b"hi"
    assert raw[:2] == b"hi"
    phys.free(a)
