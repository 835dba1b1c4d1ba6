"""The remoteproc sysfs model (platforms.linux.model) against remoteproc_sysfs.c's semantics,
through the KernelFiles interface the backend uses: every EBUSY, EINVAL and EACCES case, the
power refcount, crashes with and without recovery, and the uevents that really happen."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from platforms.linux.model import Credentials, RemoteprocModel
from platforms.linux.sysfs_text import parse_uevent_message
from remoteproc.states import State

STATE = "/sys/class/remoteproc/remoteproc0/state"
FIRMWARE = "/sys/class/remoteproc/remoteproc0/firmware"
RECOVERY = "/sys/class/remoteproc/remoteproc0/recovery"
COREDUMP = "/sys/class/remoteproc/remoteproc0/coredump"
NAME = "/sys/class/remoteproc/remoteproc0/name"
USER = Credentials(uid=1000, gids=frozenset({1000}))


@pytest.fixture
def model(tmp_path: Path) -> RemoteprocModel:
    m = RemoteprocModel(tmp_path)
    m.add("m4", firmware="m4.elf")
    (tmp_path / "lib/firmware/m4.elf").write_bytes(b"\x7fELF")
    return m


def refused(model: RemoteprocModel, path: str, value: str) -> int:
    with pytest.raises(OSError) as info:
        model.write(path, value)
    assert info.value.errno is not None
    return info.value.errno


def read(model: RemoteprocModel, path: str) -> str:
    return model.read(path).strip()


def test_start_and_stop_count_power_references(model: RemoteprocModel) -> None:
    """rproc_boot counts: a second start only takes a reference, one stop then stops
    nothing (the trap aioamp's own refcount avoids)."""
    proc = model.processor("m4")
    model.write(STATE, "start\n")  # sysfs_streq: one trailing newline is fine
    model.write(STATE, "start")
    assert (read(model, STATE), proc.power) == ("running", 2)
    model.write(STATE, "stop")
    assert (read(model, STATE), proc.power) == ("running", 1)
    model.write(STATE, "stop")
    assert (read(model, STATE), proc.power) == ("offline", 0)


@pytest.mark.parametrize(
    ("value", "err"),
    [("stop", errno.EINVAL), ("detach", errno.EINVAL), ("reboot", errno.EINVAL)],
)
def test_state_writes_the_kernel_refuses_while_offline(
    model: RemoteprocModel, value: str, err: int
) -> None:
    assert refused(model, STATE, value) == err
    assert read(model, STATE) == "offline"


def test_start_without_the_firmware_file_is_enoent(model: RemoteprocModel) -> None:
    model.write(FIRMWARE, "absent.elf")
    assert refused(model, STATE, "start") == errno.ENOENT
    assert (read(model, STATE), model.processor("m4").power) == ("offline", 0)
    model.write(FIRMWARE, "../m4.elf")
    assert refused(model, STATE, "start") == errno.EINVAL  # name_contains_dotdot


def test_firmware_is_writable_only_while_offline(model: RemoteprocModel) -> None:
    assert refused(model, FIRMWARE, "\n") == errno.EINVAL
    model.write(FIRMWARE, "m4.elf\nignored")
    assert read(model, FIRMWARE) == "m4.elf"
    model.write(STATE, "start")
    assert refused(model, FIRMWARE, "other.elf") == errno.EBUSY
    assert read(model, FIRMWARE) == "m4.elf"


def test_recovery_and_coredump_values(model: RemoteprocModel) -> None:
    for value, shown in [("disabled", "disabled"), ("enabled", "enabled")]:
        model.write(RECOVERY, value)
        assert read(model, RECOVERY) == shown
    assert refused(model, RECOVERY, "maybe") == errno.EINVAL
    for value in ("inline", "disabled", "enabled"):
        model.write(COREDUMP, value)
        assert read(model, COREDUMP) == value
    assert refused(model, COREDUMP, "default") == errno.EINVAL  # 6.12 says "enabled"


def test_a_crash_with_recovery_restarts_with_the_uevents_of_a_restart(
    model: RemoteprocModel,
) -> None:
    model.write(STATE, "start")
    start = len(model.uevents)
    model.report_crash("m4")
    assert read(model, STATE) == "running"
    base = "/devices/platform/m4-rproc/remoteproc/remoteproc0/rproc-virtio.0.auto"
    assert model.uevents[start:] == [
        ("remove", f"{base}/virtio0"),
        ("add", "/devices/virtual/devcoredump/devcd1"),
        ("add", f"{base}/virtio1"),
    ]
    assert model.realpath("/sys/class/devcoredump/devcd1/failing_device").endswith("/remoteproc0")
    assert model.processor("m4").crashes == 1


def test_a_crash_without_recovery_is_silent_until_recover(model: RemoteprocModel) -> None:
    model.write(STATE, "start")
    model.write(RECOVERY, "disabled")
    start = len(model.uevents)
    model.report_crash("m4")
    model.report_crash("m4")  # only the first crash is handled
    assert read(model, STATE) == "crashed" and model.uevents[start:] == []
    assert model.processor("m4").crashes == 1
    assert refused(model, COREDUMP, "inline") == errno.EBUSY
    model.write(RECOVERY, "recover")
    assert read(model, STATE) == "running" and read(model, RECOVERY) == "disabled"


def test_enabling_recovery_recovers_a_crashed_processor(model: RemoteprocModel) -> None:
    model.write(STATE, "start")
    model.write(RECOVERY, "disabled")
    model.report_crash("m4")
    model.write(RECOVERY, "enabled")
    assert read(model, STATE) == "running"


def test_a_crashed_processor_can_be_stopped(model: RemoteprocModel) -> None:
    model.write(STATE, "start")
    model.write(RECOVERY, "disabled")
    model.report_crash("m4")
    model.write(STATE, "stop")
    assert read(model, STATE) == "offline"
    model.report_crash("m4")  # a stopped processor is not recovered
    assert read(model, STATE) == "offline"


def test_recovery_without_its_firmware_leaves_it_offline(
    model: RemoteprocModel, tmp_path: Path
) -> None:
    model.write(STATE, "start")
    (tmp_path / "lib/firmware/m4.elf").unlink()
    model.report_crash("m4")
    assert read(model, STATE) == "offline"


def test_a_detached_processor_attaches_and_detaches(tmp_path: Path) -> None:
    model = RemoteprocModel(tmp_path)
    model.add("dsp", state=State.DETACHED)
    state = "/sys/class/remoteproc/remoteproc0/state"
    model.write(state, "start")  # attach: nothing is loaded
    assert read(model, state) == "attached"
    assert read(model, "/sys/class/remoteproc/remoteproc0/firmware") == "unknown"
    model.write(state, "detach")
    assert read(model, state) == "detached"
    assert refused(model, state, "detach") == errno.EINVAL


def test_older_kernels_refuse_start_while_running(tmp_path: Path) -> None:
    model = RemoteprocModel(tmp_path)
    (tmp_path / "lib/firmware/fw").write_bytes(b"x")
    model.add("m4", firmware="fw", state=State.RUNNING, legacy=True)  # auto_boot
    assert refused(model, STATE, "start") == errno.EBUSY
    assert model.processor("m4").power == 1


def test_name_is_read_only_even_for_root(model: RemoteprocModel) -> None:
    assert read(model, NAME) == "m4"
    assert refused(model, NAME, "other") == errno.EACCES


def test_sysfs_read_only_makes_every_attribute_read_only(tmp_path: Path) -> None:
    model = RemoteprocModel(tmp_path)
    model.add("m4", sysfs_read_only=True)
    for path in (STATE, FIRMWARE, RECOVERY, COREDUMP):
        assert refused(model, path, "x") == errno.EACCES
    assert read(model, STATE) == "offline"


def test_a_user_needs_the_group_a_udev_rule_gives(model: RemoteprocModel) -> None:
    model.user = USER
    assert read(model, STATE) == "offline"  # 0644: anyone reads
    assert refused(model, STATE, "start") == errno.EACCES
    model.grant(STATE, 1000)
    model.write(STATE, "start")
    assert read(model, STATE) == "running"


def test_traces_are_in_debugfs_while_loaded(model: RemoteprocModel) -> None:
    trace = "/sys/kernel/debug/remoteproc/remoteproc0/trace0"
    model.set_trace("m4", "hello\0garbage")
    with pytest.raises(FileNotFoundError):
        model.read(trace)  # offline: no trace buffer
    model.write(STATE, "start")
    assert model.read(trace) == "hello\0garbage"
    model.user = USER
    with pytest.raises(PermissionError):
        model.read(trace)  # debugfs is mounted root-only
    model.debugfs_gid = 1000
    assert model.read(trace).startswith("hello")


def test_uevents_reach_every_open_socket_in_the_kernels_format(model: RemoteprocModel) -> None:
    sock = model.open_uevents(1)
    model.write(STATE, "start")
    events = [parse_uevent_message(sock.recv(4096)) for _ in range(2)]
    assert [(e.action, e.subsystem) for e in events if e] == [
        ("add", "platform"),
        ("add", "virtio"),
    ]
    sock.close()
    model.write(STATE, "stop")  # a closed reader is dropped, nothing raises


def test_listing_and_links(model: RemoteprocModel) -> None:
    assert model.listdir("/sys/class/remoteproc") == ["remoteproc0"]
    real = model.realpath("/sys/class/remoteproc/remoteproc0")
    assert real == "/sys/devices/platform/m4-rproc/remoteproc/remoteproc0"
    assert "state" in model.listdir(real)
    assert model.exists(STATE) and not model.exists("/sys/class/remoteproc/remoteproc1")
