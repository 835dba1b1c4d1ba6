"""UIO: finding devices by name in sysfs, maps, interrupts (count reads, unmask), mmap."""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

import anyio
import pytest

from platforms.pandaboard.hw import UioDevice, UioError, find_uio, uio_maps
from platforms.pandaboard.model import FakeUio, build_sysfs

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


def test_find_by_name_and_parse_maps(tmp_path: Path) -> None:
    sysfs = build_sysfs(
        tmp_path,
        [
            ("mmu_ipu", [("regs", 0x55082000, 0x1000)]),
            ("mailbox", [("regs", 0x4A0F4000, 0x200), ("extra", 0x4A0F5000, 0x1000)]),
        ],
    )
    assert find_uio("mailbox", sysfs) == "uio1"
    maps = uio_maps("uio1", sysfs)
    assert [(m.index, m.name, m.addr, m.size) for m in maps] == [
        (0, "regs", 0x4A0F4000, 0x200),
        (1, "extra", 0x4A0F5000, 0x1000),
    ]
    with pytest.raises(UioError, match="no UIO device named 'dsp'"):
        find_uio("dsp", sysfs)


def test_map_is_mmapped_at_index_times_pagesize(tmp_path: Path) -> None:
    sysfs = build_sysfs(tmp_path, [("dev", [("a", 0x1000, 0x100), ("b", 0x2000, 0x100)])])
    node = tmp_path / "uio0"
    page = mmap.PAGESIZE
    node.write_bytes(bytes(page) + struct.pack("<I", 0xCAFEF00D) + bytes(page - 4))
    dev = UioDevice(str(node), opener=lambda p: os.open(p, os.O_RDWR), sysfs=sysfs)
    try:
        window = dev.map(1)
        assert window.read32(0) == 0xCAFEF00D
        window.write32(4, 0x12345678)
        window.close()
        assert node.read_bytes()[page + 4 : page + 8] == struct.pack("<I", 0x12345678)
        with pytest.raises(UioError):
            dev.map(2)
    finally:
        dev.close()


async def test_interrupt_count_unmask_and_refire() -> None:
    fake = FakeUio("mailbox")
    dev = UioDevice("/dev/uio0", opener=fake.opener)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fake.serve)
            fake.set_line(True)
            with anyio.fail_after(1):
                assert await dev.wait() == 1
            assert not fake.enabled  # the kernel masked it
            dev.unmask()  # still asserted: fires again on unmask
            with anyio.fail_after(1):
                assert await dev.wait() == 2
            fake.set_line(False)
            dev.unmask()
            fake.skip(4)
            fake.set_line(True)
            with anyio.fail_after(1):
                assert await dev.wait() == 7
            assert dev.missed == 4 and dev.interrupts == 3
            tg.cancel_scope.cancel()
    finally:
        dev.close()
        fake.close()


async def test_wait_blocks_on_the_event_loop() -> None:
    fake = FakeUio("mailbox")
    dev = UioDevice("/dev/uio0", opener=fake.opener)
    try:
        with anyio.move_on_after(0.1) as scope:
            await dev.wait()
        assert scope.cancelled_caught and dev.interrupts == 0
    finally:
        dev.close()
        fake.close()


def test_open_failure_is_a_uio_error(tmp_path: Path) -> None:
    with pytest.raises(UioError, match="cannot open"):
        UioDevice(str(tmp_path / "missing"))
