"""LinuxRemoteProc (platforms.linux.remoteproc) on the remoteproc sysfs model: aioamp's
refcounts over the kernel's, crashes seen and reported, recovery, firmware, traces and the
permission errors' udev rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from platforms.linux.errors import RemoteprocPermissionError
from platforms.linux.firmware import FirmwareConflictError, FirmwareStore
from platforms.linux.model import Credentials, RemoteprocModel
from platforms.linux.remoteproc import LinuxRemoteProc
from remoteproc.errors import BootError, CrashedError, ProcessorNotFoundError, StateError
from remoteproc.states import State, Transition

USER = Credentials(uid=1000, gids=frozenset({1000}))


@pytest.fixture
def model(tmp_path: Path) -> RemoteprocModel:
    m = RemoteprocModel(tmp_path)
    m.add("m4", firmware="m4.elf")
    (tmp_path / "lib/firmware/m4.elf").write_bytes(b"\x7fELF vendor")
    return m


async def next_transitions(stream: AsyncIterator[Transition], n: int) -> list[Transition]:
    with anyio.fail_after(10):  # a hang guard
        return [await anext(stream) for _ in range(n)]


async def test_a_second_boot_does_not_write_start_again(model: RemoteprocModel) -> None:
    proc = model.processor("m4")
    rproc = LinuxRemoteProc("m4", files=model)
    await rproc.boot()
    await rproc.boot()
    assert (rproc.power, proc.power, rproc.state) == (2, 1, State.RUNNING)
    await rproc.shutdown()
    assert (proc.power, rproc.state) == (1, State.RUNNING)
    await rproc.shutdown()
    assert (proc.power, rproc.state) == (0, State.OFFLINE)
    with pytest.raises(StateError, match="power 0"):
        await rproc.shutdown()
    assert [(t.old, t.new, t.cause) for t in rproc.history] == [
        (State.OFFLINE, State.RUNNING, "boot"),
        (State.RUNNING, State.OFFLINE, "shutdown"),
    ]


async def test_someone_elses_reference_keeps_it_running(tmp_path: Path) -> None:
    """auto_boot: the kernel holds a reference; aioamp's boot and shutdown take and give back
    one of their own, and the processor stays up."""
    model = RemoteprocModel(tmp_path)
    (tmp_path / "lib/firmware/fw").write_bytes(b"x")
    proc = model.add("m4", firmware="fw", state=State.RUNNING)
    rproc = LinuxRemoteProc("remoteproc0", files=model)
    async with rproc.powered():
        assert proc.power == 2
    assert (proc.power, rproc.state) == (1, State.RUNNING)


async def test_older_kernels_ebusy_means_no_reference_and_no_stop(tmp_path: Path) -> None:
    model = RemoteprocModel(tmp_path)
    (tmp_path / "lib/firmware/fw").write_bytes(b"x")
    proc = model.add("m4", firmware="fw", state=State.RUNNING, legacy=True)
    rproc = LinuxRemoteProc("m4", files=model)
    await rproc.boot()
    assert rproc.statistics().kernel_reference is False
    await rproc.shutdown()
    assert (proc.power, rproc.state) == (1, State.RUNNING)


async def test_a_boot_that_finds_no_firmware_fails_and_holds_nothing(
    model: RemoteprocModel,
) -> None:
    rproc = LinuxRemoteProc("m4", files=model)
    await rproc.set_firmware("absent.elf")
    with pytest.raises(BootError, match=r"could not load firmware 'absent.elf'.*/lib/firmware"):
        await rproc.boot()
    assert (rproc.power, model.processor("m4").power, rproc.state) == (0, 0, State.OFFLINE)


@pytest.mark.parametrize("coredump", ["enabled", "disabled"])
async def test_a_crash_the_kernel_recovers_is_reported(
    model: RemoteprocModel, coredump: str
) -> None:
    """Seen through the uevents (a coredump, or the vdevs restarting) although the state reads
    running again by then; no poll needed."""
    rproc = LinuxRemoteProc("m4", files=model, poll_interval=None)
    await rproc.set_coredump(coredump)
    async with rproc, rproc.powered(), rproc.transitions() as stream:
        model.report_crash("m4")
        crash, recovery = await next_transitions(stream, 2)
    seen = "a coredump" if coredump == "enabled" else "its vdevs restarting without a stop"
    assert (crash.old, crash.new, crash.cause) == (
        State.RUNNING,
        State.CRASHED,
        f"crash: seen as {seen}",
    )
    assert (recovery.new, recovery.cause) == (State.RUNNING, "recovery by the kernel")
    assert rproc.last_crash is not None and rproc.last_crash.detail == f"seen as {seen}"
    assert rproc.statistics().crashes_seen == 1


async def test_a_silent_crash_is_seen_by_the_poll_and_recovered_by_hand(
    model: RemoteprocModel,
) -> None:
    rproc = LinuxRemoteProc("m4", files=model, poll_interval=0.01)
    async with rproc, rproc.powered():
        await rproc.set_recovery(False)
        async with rproc.transitions() as stream:
            model.report_crash("m4")  # recovery disabled: no uevent at all
            (crash,) = await next_transitions(stream, 1)
            assert crash.cause == "crash: the kernel reports it crashed"
            with pytest.raises(CrashedError) as info:
                await rproc.wait_for_state(State.RUNNING, timeout=10)
            assert info.value.__cause__ is rproc.last_crash
            await rproc.recover()
            (back,) = await next_transitions(stream, 1)
    assert (back.old, back.new, back.cause) == (State.CRASHED, State.RUNNING, "recovery")


async def test_our_own_stop_and_start_are_not_crashes(model: RemoteprocModel) -> None:
    rproc = LinuxRemoteProc("m4", files=model, poll_interval=None)
    async with rproc:
        for _ in range(3):
            async with rproc.powered():
                pass
        await anyio.wait_all_tasks_blocked()
    assert [t.cause for t in rproc.history] == ["boot", "shutdown"] * 3
    assert rproc.last_crash is None


async def test_a_stop_outside_aioamp_is_reported(model: RemoteprocModel) -> None:
    rproc = LinuxRemoteProc("m4", files=model, poll_interval=0.01)
    async with rproc, rproc.transitions() as stream:
        await rproc.boot()
        await next_transitions(stream, 1)
        model.write("/sys/class/remoteproc/remoteproc0/state", "stop")  # another program
        (t,) = await next_transitions(stream, 1)
    assert (t.new, t.cause) == (
        State.OFFLINE,
        "went offline outside aioamp (stopped, or recovery failed)",
    )


async def test_firmware_changes_only_while_offline(model: RemoteprocModel) -> None:
    rproc = LinuxRemoteProc("m4", files=model)
    async with rproc.powered():
        with pytest.raises(StateError, match="refused while running"):
            await rproc.set_firmware("other.elf")
        with pytest.raises(StateError):
            await rproc.install_firmware(b"new image")
    assert rproc.firmware == "m4.elf"


async def test_installing_firmware_never_overwrites_a_file(
    model: RemoteprocModel, tmp_path: Path
) -> None:
    rproc = LinuxRemoteProc("m4", files=model)
    name = await rproc.install_firmware(b"\x7fELF mine", name="m4.elf")
    assert name.startswith("aioamp/") and name.endswith("-m4.elf")
    assert rproc.firmware == name
    assert (tmp_path / "lib/firmware" / name).read_bytes() == b"\x7fELF mine"
    assert (tmp_path / "lib/firmware/m4.elf").read_bytes() == b"\x7fELF vendor"  # untouched
    assert await rproc.install_firmware(b"\x7fELF mine", name="m4.elf") == name  # idempotent
    (tmp_path / "lib/firmware" / name).write_bytes(b"tampered")
    with pytest.raises(FirmwareConflictError):
        FirmwareStore(model).install(b"\x7fELF mine", "m4.elf")
    assert (tmp_path / "lib/firmware" / name).read_bytes() == b"tampered"
    async with rproc.powered():
        assert rproc.state is State.RUNNING  # the kernel found it


async def test_a_custom_firmware_path_is_claimed_only_when_free(model: RemoteprocModel) -> None:
    store = FirmwareStore(model, "/srv/fw")
    with pytest.raises(ValueError, match="does not look for firmware in /srv/fw"):
        store.install(b"x")
    store.claim_custom_path()
    assert store.install(b"x").startswith("aioamp/")
    with pytest.raises(ValueError, match="not ours to change"):
        FirmwareStore(model, "/opt/fw").claim_custom_path()
    assert model.firmware_path == "/srv/fw"


async def test_permissions_name_the_file_and_the_udev_rule(model: RemoteprocModel) -> None:
    model.user = USER
    rproc = LinuxRemoteProc("m4", files=model)
    with pytest.raises(RemoteprocPermissionError) as info:
        await rproc.boot()
    text = str(info.value)
    assert "/sys/class/remoteproc/remoteproc0/state" in text
    assert 'SUBSYSTEM=="remoteproc", ACTION=="add", RUN+="/bin/chgrp rproc' in text
    assert rproc.power == 0
    for attr in ("state", "firmware", "recovery", "coredump"):
        model.grant(f"/sys/class/remoteproc/remoteproc0/{attr}", 1000)
    async with rproc.powered():
        with pytest.raises(RemoteprocPermissionError, match="mode=0750,gid=rproc"):
            rproc.trace()


async def test_traces(model: RemoteprocModel) -> None:
    model.set_trace("m4", "booted\nrunning\n\0junk")
    rproc = LinuxRemoteProc("m4", files=model)
    with pytest.raises(LookupError, match="no trace buffer 0"):
        rproc.trace()
    async with rproc.powered():
        assert rproc.trace() == "booted\nrunning\n"
        with pytest.raises(LookupError):
            rproc.trace(1)


def test_unknown_processors_list_those_there_are(model: RemoteprocModel) -> None:
    with pytest.raises(ProcessorNotFoundError, match=r"remoteproc0 \(m4\)"):
        LinuxRemoteProc("dsp", files=model)


def test_the_rpmsg_url_names_the_processor(model: RemoteprocModel) -> None:
    assert LinuxRemoteProc("m4", files=model).rpmsg_url() == "linux:?rproc=remoteproc0"
