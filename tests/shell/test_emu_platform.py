"""The ``emu`` platform: the project's firmware on the aioamp virtual board (doorbell, UART,
RAM windows), through RemoteprocManager: boot, echo, logs, crash reports that name the PC
and address, recovery, and nothing left running (platforms.emu.platform)."""

from __future__ import annotations

import re

import pytest
from conftest import echo_round_trip, labels
from emu_support import constant, emulator_threads, function_at, need_unicorn

need_unicorn()

from platforms.emu import EmuPlatform, Limits, project_firmware  # noqa: E402
from remoteproc.firmware import load_firmware  # noqa: E402
from remoteproc.manager import RemoteprocManager  # noqa: E402
from remoteproc.platform import CrashKind  # noqa: E402
from remoteproc.rproc import RemoteProc  # noqa: E402

IMAGE = "vboard-m3.elf"
PC = re.compile(r" at pc (0x[0-9a-f]+)")


def platform() -> EmuPlatform:
    return EmuPlatform("vb", limits=Limits(watchdog=1.0, halt_after=1.0))


async def boot(mgr: RemoteprocManager, plat: EmuPlatform) -> RemoteProc:
    image = load_firmware(project_firmware("vboard").read_bytes(), name=IMAGE)
    rp = mgr.add(plat, firmware=image)
    await rp.boot()
    await echo_round_trip(rp)
    return rp


async def test_boot_echo_uart_and_shutdown_leave_nothing_running() -> None:
    plat = platform()
    async with RemoteprocManager() as mgr:
        rp = await boot(mgr, plat)
        for name, addr in (("rpmsg-client-sample", 0x400), ("rpmsg-fault", 0x402)):
            assert (await rp.wait_for_service(name, timeout=10)).dst == addr
        assert plat.uart_lines[0] == "aioamp firmware on aioamp virtual board: up"
        assert "rpmsg-echo: announced at 0x00000401" in plat.uart_lines
        assert "rpmsg-echo: announced at 0x00000401" in rp.trace(0)  # the same log, traced
        stats = plat.statistics()
        assert stats.core is not None and stats.core.entries >= 1 and stats.core.returns >= 1
        assert stats.core.mmio > 0 and stats.crashes == 0
        await rp.shutdown()
        assert not plat.is_running()
    assert emulator_threads() == []


#: request -> (crash kind, function at the faulting PC, fault address in the report or None).
FAULTS = {
    "mmu": (CrashKind.MMUFAULT, "fault_read", "board_unmapped_address"),
    "write": (CrashKind.MMUFAULT, "fault_write", "board_unmapped_address"),
    "undefined": (CrashKind.FATAL_ERROR, "fault_undefined", None),
    "hang": (CrashKind.WATCHDOG, "fault_hang", None),
}


@pytest.mark.parametrize("request_", sorted(FAULTS))
async def test_a_fault_is_a_crash_report_naming_pc_and_address_then_recovery(
    request_: str,
) -> None:
    kind, function, address = FAULTS[request_]
    plat = platform()
    async with RemoteprocManager() as mgr:
        rp = await boot(mgr, plat)
        channel = await rp.wait_for_service("rpmsg-fault", timeout=10)
        async with rp.transitions() as stream:
            await channel.send(request_.encode())
            seen = [await anext(stream), await anext(stream)]
        assert labels(seen) == [("running", "crashed"), ("crashed", "running")]
        cause = seen[0].cause
        assert cause.startswith(f"crash: {kind.value}:"), cause
        match = PC.search(cause)
        assert match is not None and function_at(IMAGE, int(match[1], 16)) == function, cause
        if address is not None:
            assert f"address {constant(IMAGE, address):#010x}" in cause
        await echo_round_trip(rp)  # the recovered core serves again
        assert plat.statistics().crashes == 1 and plat.statistics().starts == 2
        await rp.shutdown()
    assert emulator_threads() == []


def test_the_registry_makes_emu_platforms() -> None:
    from platforms import create_platform, platform_kinds

    plat = create_platform("emu", name="m4", model="cortex-m4")
    assert isinstance(plat, EmuPlatform) and (plat.name, plat.model) == ("m4", "cortex-m4")
    assert "emu" in platform_kinds()


async def test_the_firmware_honours_the_hosts_notification_suppression() -> None:
    """The host asks for no interrupt on its tx ring (VRING_AVAIL_F_NO_INTERRUPT on vring 1)
    while no sender waits for a buffer: the firmware returns those buffers without a kick,
    and kicks vring 0 for its replies, whose interrupts the host wants when it is idle."""
    plat = platform()
    async with RemoteprocManager() as mgr:
        rp = await boot(mgr, plat)
        assert rp.loaded is not None
        view = rp.loaded.vdevs[0].view
        assert view is not None
        rx_id, tx_id = view.vring(0).notifyid, view.vring(1).notifyid
        channel = await rp.wait_for_service("rpmsg-echo", timeout=10)
        before = plat.statistics().notifications_by_id
        for i in range(200):
            await channel.send(i.to_bytes(2, "little"))
            assert (await channel.recv(timeout=10)).payload == i.to_bytes(2, "little")
        after = plat.statistics().notifications_by_id
        assert after.get(tx_id, 0) == before.get(tx_id, 0)  # 200 buffers returned, no kick
        assert after.get(rx_id, 0) > before.get(rx_id, 0)
        await rp.shutdown()
