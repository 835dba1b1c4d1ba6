"""Your own firmware program on a simulated core: ``program_modules=`` names the modules that
register it, imported by the host at each start and by a core process (``process=True``),
which sees the host's ``sys.path``. Each way of getting it wrong fails with an error that
says what to do."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from platforms.runtime import programs
from platforms.sim import FirmwareContext, SimPlatform, build_sample_image, register_program
from remoteproc import BootError, CrashedError, RemoteProc, RemoteprocManager

pytestmark = [
    pytest.mark.trio,
    pytest.mark.usefixtures("isolated_registry"),
    pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs POSIX shm"),
]

#: A program module as a user writes one, next to their script: it registers ``NAME``.
PROGRAM_MODULE = """
from platforms.sim import register_program

async def shout(ctx):
    async with ctx.rpmsg() as bus:
        ep = await bus.create_service("shout")
        async for msg in ep:
            await ep.send_to(msg.src, bytes(msg.payload).upper())

register_program(NAME, shout)
"""


def program_module(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A fresh program module in ``folder`` (on ``sys.path`` for this test only) and the
    program name it registers: ``(module, program)``."""
    tag = uuid.uuid4().hex[:8]
    module, program = f"user_fw_{tag}", f"test-shout-{tag}"
    (folder / f"{module}.py").write_text(f"NAME = {program!r}\n{PROGRAM_MODULE}")
    monkeypatch.syspath_prepend(str(folder))
    return module, program


@pytest.mark.parametrize("process", [True, False], ids=["process", "in-process"])
async def test_program_modules_register_your_program_on_both_sides(
    process: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, program = program_module(tmp_path, monkeypatch)
    assert programs.get_program(program) is None  # nothing imported it yet: the start does
    sim = SimPlatform("m3", process=process, program_modules=(module,))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image(program), recovery=False)
        async with rp.powered():
            channel = await rp.wait_for_service("shout", timeout=20)
            await channel.send(b"hello")
            assert (await channel.recv(timeout=20)).payload == b"HELLO"
            assert (sim.pid is not None) == process


def add_process_core(mgr: RemoteprocManager, program: str) -> RemoteProc:
    """A core in its own process, told of no program module, booting an image of
    ``program``; no recovery, so a crash stays one."""
    platform = SimPlatform("m3", process=True)
    return mgr.add(platform, firmware=build_sample_image(program), recovery=False)


async def test_a_program_of_the_script_itself_needs_program_modules() -> None:
    async def program(ctx: FirmwareContext) -> None:
        raise AssertionError("never runs")

    program.__module__ = "__main__"  # as defined by `python my_script.py`
    register_program("test-from-main", program)
    async with RemoteprocManager() as mgr:
        rp = add_process_core(mgr, "test-from-main")
        with pytest.raises(BootError, match=r"registered by __main__.*program_modules="):
            await rp.boot()
        assert rp.state_name == "offline"


async def test_a_program_the_core_process_cannot_see_is_a_crash_that_says_why() -> None:
    """Registered in the host by a module the core process is not told about: the core
    reports it, naming ``program_modules=``."""

    async def program(ctx: FirmwareContext) -> None:
        raise AssertionError("never runs")

    register_program("test-host-only", program)
    async with RemoteprocManager() as mgr:
        rp = add_process_core(mgr, "test-host-only")
        await rp.boot()
        with pytest.raises(CrashedError) as caught:
            await rp.wait_for_service("anything", timeout=20)
        detail = str(caught.value.__cause__)
        assert "'test-host-only' is not registered in the core process" in detail
        assert "program_modules=" in detail
        await rp.shutdown()


async def test_a_program_module_that_does_not_import_fails_the_boot() -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(
            SimPlatform("m3", process=True, program_modules=("no_such_module_here",)),
            firmware=build_sample_image(),
            recovery=False,
        )
        with pytest.raises(BootError, match="cannot import program module 'no_such_module_here'"):
            await rp.boot()
        assert rp.state_name == "offline"
