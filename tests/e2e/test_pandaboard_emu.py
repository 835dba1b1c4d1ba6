"""The real PandaBoard driver boots the project's C firmware (firmware/ipu-m3.elf) on the
register-level OMAP4 model, every instruction executed by the emulated Cortex-M3: PRCM,
the L2 MMU the driver programs (the core's device addresses go through it), the mailbox,
ECHO_REQUEST, the name service, the client sample, echo, faults -> crash -> recovery."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from conftest import WaitUntil, client_sample_completes, echo_round_trip, labels
from emu_support import constant, emulator_threads, function_at, need_unicorn

need_unicorn()

from platforms.emu import AttachedCore, FaultKind, Limits, project_firmware  # noqa: E402
from platforms.pandaboard import PandaBoardPlatform  # noqa: E402
from platforms.pandaboard.config import PANDABOARD  # noqa: E402
from platforms.pandaboard.model import OmapModel  # noqa: E402
from remoteproc.firmware import FirmwareImage, load_firmware  # noqa: E402
from remoteproc.manager import RemoteprocManager  # noqa: E402
from remoteproc.rproc import RemoteProc  # noqa: E402
from rpmsg import Channel  # noqa: E402
from rpmsg.samples import ClientResult, client_driver  # noqa: E402

IMAGE = "ipu-m3.elf"
#: A core that spins is stopped quickly (the "hang" fault); nothing else comes near this.
LIMITS = Limits(watchdog=1.0, halt_after=1.0)
#: The driver's 50 ms wait for a reset to complete, made patient: on a loaded 2-core machine a
#: boot once failed there (the event loop polls RSTST while the emulated core's threads run).
CONFIG = PANDABOARD.with_reset_timeout(2.0)
CRASH_LINE = re.compile(r"crash: (?P<what>[\w ]+) at pc (?P<pc>0x[0-9a-f]+), address (?P<a>0x\w+)")


def firmware() -> FirmwareImage:
    return load_firmware(project_firmware("omap4").read_bytes(), name=IMAGE)


@asynccontextmanager
async def emulated_ipu() -> AsyncIterator[tuple[AttachedCore, PandaBoardPlatform, RemoteProc]]:
    """The model with an emulated M3 in its IPU socket, the driver and a manager around it."""
    image = firmware()
    async with OmapModel(CONFIG, cores={"ipu": AttachedCore.factory(limits=LIMITS)}) as model:
        core = model.plugged["ipu"]
        assert isinstance(core, AttachedCore)
        plat = model.board().platform("ipu")
        async with RemoteprocManager() as mgr:
            yield core, plat, mgr.add(plat, firmware=image)
    assert emulator_threads() == [], "an emulated core's threads outlived the model"


async def test_boot_echo_request_ns_client_sample_and_shutdown() -> None:
    async with emulated_ipu() as (core, plat, rp):
        probe, result = client_driver(count=100)
        rp.register_driver("rpmsg-client-sample", probe)
        await rp.boot()
        await plat.wait_echo_reply(2)  # the firmware's mailbox driver answered ECHO_REQUEST
        for name, addr in (("rpmsg-echo", 0x401), ("rpmsg-fault", 0x402)):
            assert (await rp.wait_for_service(name, timeout=10)).dst == addr
        await client_sample_completes(rp, plat, result)  # NS at 0x400, then 100 exchanges
        trace = rp.trace(0)
        assert "aioamp firmware on OMAP4 IPU" in trace and "vdev0: DRIVER_OK" in trace
        assert core.current is not None and core.current.stats.mmio > 0
        await rp.shutdown()
        assert core.current is None and core.starts == 1 and core.faults == []


async def test_echo_at_every_size_from_1_to_496() -> None:
    async with emulated_ipu() as (_, _, rp):
        await rp.boot()
        channel = await rp.wait_for_service("rpmsg-echo", timeout=10)
        for size in range(1, 497):
            payload = bytes((size + i) & 0xFF for i in range(size))
            await channel.send(payload)
            assert (await channel.recv(timeout=10)).payload == payload
        await rp.shutdown()


async def test_ten_thousand_messages_come_back_in_order() -> None:
    async with emulated_ipu() as (_, _, rp):
        await rp.boot()
        channel = await rp.wait_for_service("rpmsg-echo", timeout=10)
        window = 64  # in flight at once: fewer than the 256 buffers each way
        sent = received = 0
        while received < 10_000:
            while sent < 10_000 and sent - received < window:
                await channel.send(sent.to_bytes(4, "little"))
                sent += 1
            message = await channel.recv(timeout=10)
            assert int.from_bytes(message.payload, "little") == received
            received += 1
        await rp.shutdown()


#: fault request -> (the crash's words, the firmware function at the faulting PC, address).
FAULTS = {
    "undefined": ("HardFault", "fault_undefined", None),
    "svc": ("HardFault", "fault_svc_masked", None),
    "bus": ("HardFault", "fault_read", "board_hole_address"),
    "hang": ("watchdog", "fault_hang", None),
}


@pytest.mark.parametrize("request_", sorted(FAULTS))
async def test_a_fault_request_is_a_crash_naming_pc_and_address_then_recovery(
    request_: str,
) -> None:
    what, function, address = FAULTS[request_]
    async with emulated_ipu() as (core, _, rp):
        await echo_round_trip_after_boot(rp)
        seen = await fault_and_recover(rp, request_)
        (line,) = CRASH_LINE.findall(seen[0].cause) or [None]
        assert line is not None, seen[0].cause
        kind, pc, where = line[0], int(line[1], 16), line[2]
        assert kind == what and function_at(IMAGE, pc) == function, seen[0].cause
        if address is not None:
            assert int(where, 16) == board_constant(address)
        await echo_round_trip(rp)  # the service is back on the recovered core
        assert core.starts == 2 and core.faults and core.faults[0].pc == pc
        await rp.shutdown()


@pytest.mark.parametrize("request_", ["mmu", "write"])
async def test_an_access_the_mmu_has_no_entry_for_is_an_mmu_fault_crash(request_: str) -> None:
    """The core's device address goes through the L2 MMU the driver programmed: no entry
    stalls the core and raises the MMU's fault line, as on OMAP4."""
    async with emulated_ipu() as (core, plat, rp):
        await echo_round_trip_after_boot(rp)
        seen = await fault_and_recover(rp, request_)
        address = board_constant("board_unmapped_address")
        assert f"MMU fault at device address {address:#010x}" in seen[0].cause
        assert plat.statistics().mmu_faults == 1
        await echo_round_trip(rp)
        assert core.starts == 2
        # The emulator's own record of the stalled access, even though the driver reset the
        # core (on the MMU's fault line) before the core thread got to look at it.
        (stall,) = core.faults
        assert stall.kind is FaultKind.STALL and stall.address == address
        assert function_at(IMAGE, stall.pc) == (
            "fault_read" if request_ == "mmu" else "fault_write"
        )
        await rp.shutdown()


async def echo_round_trip_after_boot(rp: RemoteProc) -> None:
    async with rp.transitions() as stream:
        await rp.boot()
        assert labels([await anext(stream)]) == [("offline", "running")]
    await echo_round_trip(rp)


async def fault_and_recover(rp: RemoteProc, request_: str) -> list[object]:
    """Ask the fault service for ``request_``; the crash and the recovery transitions."""
    channel = await rp.wait_for_service("rpmsg-fault", timeout=10)
    async with rp.transitions() as stream:
        await channel.send(request_.encode())
        seen = []
        with anyio.fail_after(20):
            while len(seen) < 2:
                seen.append(await anext(stream))
    assert labels(seen) == [("running", "crashed"), ("crashed", "running")]
    return seen


def board_constant(name: str) -> int:
    """The value of the firmware's ``const uint32_t name``."""
    return constant(IMAGE, name)


@pytest.mark.slow
async def test_boot_and_the_client_sample_a_hundred_times(wait_until: WaitUntil) -> None:
    """100 boots of the same processor, each a fresh core that runs the sample to its end."""
    results: list[ClientResult] = []

    async def probe(channel: Channel) -> None:
        inner, result = client_driver(count=100)
        results.append(result)
        await inner(channel)

    async with emulated_ipu() as (core, _, rp):
        rp.register_driver("rpmsg-client-sample", probe)
        for run in range(1, 101):
            await rp.boot()
            await wait_until(lambda: len(results) == run and results[-1].finished)  # noqa: B023
            await rp.shutdown()
        assert all(r.replies == 100 and r.payloads_ok for r in results)
        assert core.starts == 100 and core.faults == []
