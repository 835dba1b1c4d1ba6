"""The ARMv7-M exception model, as firmware sees it: firmware/selftest-m3.elf runs its
scenarios on the emulated core and leaves what happened in ``results`` (see its source)."""

from __future__ import annotations

import struct

import anyio
from emu_support import emulator_threads, need_unicorn, symbols

need_unicorn()

from platforms.emu import EmuPlatform, project_firmware  # noqa: E402
from remoteproc.firmware import load_firmware  # noqa: E402
from remoteproc.manager import RemoteprocManager  # noqa: E402

IMAGE = "selftest-m3.elf"
DONE = 0xD0E
#: struct results of selftest.c: done, log[12][8], then 14 words.
RESULTS = struct.Struct("<I96s14I")


async def run_selftest(model: str) -> tuple[int, ...]:
    address, size = symbols(IMAGE)["results"]
    assert size == RESULTS.size
    plat = EmuPlatform("selftest", model=model)
    async with RemoteprocManager() as mgr:
        rp = mgr.add(plat, firmware=load_firmware(project_firmware("selftest").read_bytes()))
        await rp.boot()
        window = plat.board.resolve(address & ~0xFFF)
        assert window is not None and window.ram is not None
        at = address - window.da
        with anyio.fail_after(10):
            while int.from_bytes(window.ram[at : at + 4], "little") != DONE:
                await anyio.sleep(0.005)
        fields = RESULTS.unpack(window.ram[at : at + size])
        await rp.shutdown()
    assert emulator_threads() == []
    return fields


async def test_the_exception_model_selftest_passes_on_m3_and_m4() -> None:
    for model in ("cortex-m3", "cortex-m4"):
        _, log, vectactive, psp_lr, psp_ok, *rest = await run_selftest(model)
        fault_exc, cfsr, hfsr, (bfar, systick_in_irq) = rest[0:3], rest[3:6], rest[6:9], rest[9:]
        letters = [log[i * 8 : i * 8 + 8].rstrip(b"\0").decode() for i in range(12)]
        assert letters[:8] == ["ABCDE", "BxAy", "WTE", "SPQ", "NR", "A", "BA", "AT"], model
        assert vectactive == 16 + 2  # IRQ 2's handler, nested in IRQ 1's
        assert psp_lr == 0xFFFF_FFFD and psp_ok == 1  # EXC_RETURN to thread mode, PSP
        assert systick_in_irq == 1
        # BusFault and UsageFault by their own handlers, then a BusFault escalated.
        assert fault_exc == [5, 6, 3]
        assert cfsr[0] & 0x8200 == 0x8200 and bfar == 0x7000_0000  # PRECISERR, BFARVALID
        assert cfsr[1] & 0x1_0000  # UNDEFINSTR
        assert hfsr[2] & 0x4000_0000 and cfsr[2] & 0x8200 == 0x8200  # FORCED
