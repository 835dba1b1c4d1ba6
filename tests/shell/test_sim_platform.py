"""The simulated platform: program registry, simulated IOMMU, kicks, stop and crash reporting."""

from __future__ import annotations

import re

import anyio
import pytest
from conftest import WaitUntil, boot_watching

from platforms.sim import (
    MAX_PROGRAM_NAME,
    FirmwareContext,
    ProgramNameError,
    SimPlatform,
    check_program_name,
    get_program,
    program_names,
    register_program,
)
from platforms.sim.images import DATA_DA, RSC_TABLE_DA, build_sample_image
from remoteproc.errors import ArgumentTypeError, BootError, RemoteprocError
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from remoteproc.platform import CrashKind
from remoteproc.rsc_table import parse_resource_table
from transports.errors import MemoryAccessError

DDR = 0x8000_0000
MARKER_DA = DATA_DA + 0x8000  # in the data carveout, past the trace buffer and .data
MARKER = b"AIOAMP-SIM-MARKER"


# Programs registered by a test disappear afterwards (shell/conftest.py).
pytestmark = [pytest.mark.trio, pytest.mark.usefixtures("isolated_registry")]


# -- registry ----------------------------------------------------------------------------------


async def _idle(ctx: FirmwareContext) -> None:
    await anyio.sleep_forever()


async def _other(ctx: FirmwareContext) -> None:
    await anyio.sleep_forever()


def test_builtin_programs_are_registered() -> None:
    names = program_names()
    assert "rpmsg-client-sample" in names
    assert "rpmsg-echo" in names
    assert names == sorted(names)


def test_register_get_duplicate_replace_unknown() -> None:
    assert get_program("test-idle") is None
    register_program("test-idle", _idle)
    assert get_program("test-idle") is _idle
    assert "test-idle" in program_names()
    with pytest.raises(ValueError, match="'test-idle' is already registered"):
        register_program("test-idle", _other)
    assert get_program("test-idle") is _idle  # the refused registration changed nothing
    register_program("test-idle", _other, replace=True)
    assert get_program("test-idle") is _other
    assert get_program("no-such-program") is None


BAD_NAMES = [
    pytest.param("", "1..63 bytes", id="empty"),
    pytest.param("x" * 64, "64 bytes", id="64-bytes"),
    pytest.param("caf\u00e9", "visible ASCII", id="non-ascii"),
    pytest.param("a\0b", "visible ASCII", id="nul"),  # would end the name early in the image
    pytest.param("a\nb", "visible ASCII", id="control"),
    pytest.param("my program", "no spaces", id="space"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_register_bad_names(name: str, why: str) -> None:
    before = program_names()
    with pytest.raises(ProgramNameError, match=re.escape(why)) as info:
        register_program(name, _idle)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RemoteprocError)
    assert get_program(name) is None and program_names() == before


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_the_image_builder_refuses_what_the_registry_refuses(name: str, why: str) -> None:
    """One rule for both: no image is built whose program could never be registered (or
    whose name the firmware parser would read differently)."""
    with pytest.raises(ProgramNameError, match=re.escape(why)):
        build_sample_image(name)


def test_the_longest_name_builds_registers_and_round_trips() -> None:
    name = "p" * MAX_PROGRAM_NAME
    assert check_program_name(name) == name
    register_program(name, _idle)
    assert load_firmware(build_sample_image(name)).program == name


def test_program_name_and_program_types_are_checked() -> None:
    with pytest.raises(ArgumentTypeError, match="a program name is a str, not bytes"):
        register_program(b"bytes-name", _idle)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="async callable, not int"):
        register_program("test-int", 42)  # type: ignore[arg-type]
    assert get_program("test-int") is None


def test_registry_is_isolated_between_tests() -> None:
    assert get_program("test-idle") is None  # registered by the previous test only


# -- memory and the simulated IOMMU --------------------------------------------------------------


def test_firmware_view_reflects_map_and_unmap() -> None:
    sim = SimPlatform("v", internal=((0x0010_0000, 0x1000),))
    view = sim.firmware_view()
    assert [(r.da, r.size) for r in view] == [(0x0010_0000, 0x1000)]  # internal SRAM only

    alloc = sim.physical.allocate(0x2000, name="c")
    sim.map(0x4000, alloc.pa, 0x2000)
    assert sim.iommu == {0x4000: (alloc.pa, 0x2000)}
    view = sim.firmware_view()
    assert view.contains(0x4000, 0x2000)
    assert not view.contains(0x4000, 0x2001)
    view.view(0x4000 + 0x10, 4)[:] = b"abcd"
    # The core's write lands in the DDR bytes at the mapped pa.
    off = alloc.pa - DDR + 0x10
    assert bytes(sim.ddr[off : off + 4]) == b"abcd"
    assert bytes(alloc.mem[0x10:0x14]) == b"abcd"
    # ...and a host write is seen by the core.
    alloc.mem[0x100:0x103] = b"xyz"
    assert bytes(sim.firmware_view().view(0x4100, 3)) == b"xyz"

    sim.unmap(0x4000, 0x2000)
    assert sim.iommu == {}
    view = sim.firmware_view()
    assert not view.contains(0x4000, 1)
    with pytest.raises(MemoryAccessError, match="outside shared memory"):
        view.view(0x4000, 4)
    assert view.contains(0x0010_0000, 0x1000)


def test_map_outside_ddr_is_refused() -> None:
    sim = SimPlatform("v", ddr_size=0x10000)
    with pytest.raises(BootError, match=r"cannot map pa 0x1000 .*not in DDR"):
        sim.map(0x0, 0x1000, 0x100)
    with pytest.raises(BootError, match="not in DDR"):
        sim.map(0x0, DDR + 0xF000, 0x2000)  # runs past the end of the window
    assert sim.iommu == {}


def test_devmem_mapping_is_recorded_but_not_in_the_ddr_view() -> None:
    sim = SimPlatform("v")
    assert sim.map_devmem(0x6000_0000, 0x4A00_0000, 0x1000) is None
    assert sim.iommu == {0x6000_0000: (0x4A00_0000, 0x1000)}
    assert not sim.firmware_view().contains(0x6000_0000, 1)


async def test_start_without_image_or_binding() -> None:
    sim = SimPlatform("v")
    with pytest.raises(BootError, match="start without a loaded image"):
        await sim.start(0)
    assert sim.starts == 0
    assert not sim.running


# -- running programs ------------------------------------------------------------------------------


async def test_kicks_to_unknown_notify_ids_are_counted() -> None:
    sim = SimPlatform("k")
    sim.kick(0)  # not running: nobody to deliver to
    assert sim.dropped_kicks == 1
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("rpmsg-echo"))
        await rp.boot()
        await rp.wait_for_service("rpmsg-echo", timeout=5)
        before = sim.dropped_kicks
        sim.kick(99)
        sim.kick(2)
        assert sim.dropped_kicks == before + 2
        sim.kick(0)  # vring 0 and 1 belong to the running program's vdev
        sim.kick(1)
        assert sim.dropped_kicks == before + 2
        # The other direction: the host counts interrupts for notify ids it does not own.
        stats = rp.statistics()
        rp.vq_interrupt(77)
        assert rp.statistics().unknown_interrupts == stats.unknown_interrupts + 1
        assert rp.statistics().vq_interrupts == stats.vq_interrupts
        await rp.shutdown()
        sim.kick(0)
        assert sim.dropped_kicks == before + 3


async def test_stop_cancels_the_program(wait_until: WaitUntil) -> None:
    seen: list[str] = []

    async def sleeper(ctx: FirmwareContext) -> None:
        seen.append("started")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    register_program("test-sleeper", sleeper)
    sim = SimPlatform("s")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("test-sleeper"))
        await rp.boot()
        await wait_until(lambda: seen == ["started"])
        assert sim.running
        assert sim.context is not None
        await rp.shutdown()
        assert seen == ["started", "cancelled"]
        assert (sim.starts, sim.stops) == (1, 1)
        assert not sim.running
        assert sim.context is None
        assert rp.state_name == "offline"
        assert sim.physical.in_use == 0
        assert rp.statistics().crash_reports == 0  # a reset is not a crash


async def test_stop_reports_a_program_that_does_not_unwind() -> None:
    release = anyio.Event()

    async def stubborn(ctx: FirmwareContext) -> None:
        with anyio.CancelScope(shield=True):
            await release.wait()

    register_program("test-stubborn", stubborn)
    sim = SimPlatform("s", stop_timeout=0.1)
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("test-stubborn"))
        await rp.boot()
        await anyio.sleep(0.01)
        with pytest.raises(BootError, match="s: firmware program did not stop in time"):
            await sim.stop()
        release.set()
        await rp.shutdown()
        assert rp.state_name == "offline"
        assert sim.physical.in_use == 0


async def test_program_exception_is_a_fatal_error_crash() -> None:
    async def faulty(ctx: FirmwareContext) -> None:
        ctx.log("about to fail")
        raise RuntimeError("boom 42")

    register_program("test-faulty", faulty)
    sim = SimPlatform("f")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("test-faulty"), recovery=False)
        boot, crash = await boot_watching(rp, 2)
        assert (boot.old.label, boot.new.label, boot.cause) == ("offline", "running", "boot")
        assert (crash.old.label, crash.new.label) == ("running", "crashed")
        assert crash.cause == "crash: fatal error: program raised RuntimeError('boom 42')"
        assert rp.last_crash == "fatal error: program raised RuntimeError('boom 42')"
        assert rp.state_name == "crashed"
        assert not sim.running
        assert rp.trace(0) == "about to fail\n"
        stats = rp.statistics()
        assert (stats.crash_reports, stats.lifecycle.crashes) == (1, 1)
        await rp.shutdown()
        assert rp.state_name == "offline"
        assert sim.physical.in_use == 0


async def test_firmware_crash_kind_is_reported(wait_until: WaitUntil) -> None:
    async def mmu(ctx: FirmwareContext) -> None:
        ctx.crash(CrashKind.MMUFAULT, "bad access at 0xdead0000")

    register_program("test-mmu", mmu)
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("m"), firmware=build_sample_image("test-mmu"), recovery=False)
        await rp.boot()
        await wait_until(lambda: rp.state_name == "crashed")
        assert rp.last_crash == "mmu fault: bad access at 0xdead0000"
        await rp.shutdown()


async def test_custom_program_sees_its_memory_and_table(wait_until: WaitUntil) -> None:
    seen: dict[str, object] = {}

    async def marker(ctx: FirmwareContext) -> None:
        table = ctx.resource_table()
        seen["carveouts"] = [(c.name, c.da, c.pa) for c in table.carveouts]
        seen["table_da"] = ctx.table_da
        seen["args"] = dict(ctx.args)
        ctx.memory.view(MARKER_DA, len(MARKER))[:] = MARKER
        ctx.log(f"marker written at {MARKER_DA:#x}")
        await anyio.sleep_forever()

    register_program("test-marker", marker)
    sim = SimPlatform("c", args={"color": "blue"})
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("test-marker"))
        await rp.boot()
        await wait_until(lambda: "marker written" in rp.trace(0))
        assert rp.trace(0) == "marker written at 0x28000\n"
        assert seen["table_da"] == RSC_TABLE_DA
        assert seen["args"] == {"color": "blue"}
        assert seen["carveouts"] == [("text", 0, DDR), ("data", DATA_DA, DDR + 0x10000)]
        # The host sees the marker at the same device address, and in DDR at the carveout's pa.
        loaded = rp.loaded
        assert loaded is not None
        assert bytes(loaded.memory.view(MARKER_DA, len(MARKER))) == MARKER
        off = 0x10000 + (MARKER_DA - DATA_DA)
        assert bytes(sim.ddr[off : off + len(MARKER)]) == MARKER
        # The table the program parsed is the live one the host wrote back.
        assert loaded.table_view is not None
        host = parse_resource_table(loaded.table_view)
        assert [(c.name, c.da, c.pa) for c in host.carveouts] == seen["carveouts"]
        await rp.shutdown()
        assert sim.physical.in_use == 0
