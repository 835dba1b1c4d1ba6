"""``aioamp doctor``'s probe against a fake root file system: /proc, /sys, /dev and /lib laid
out as a PandaBoard's (OMAP4, kernel 6.1) with the kernel's own file formats, sysfs class
entries as relative symlinks into /sys/devices, and permissions judged for a user who is not
the files' owner."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from aioamp.doctor import Status, diagnose, probe
from aioamp.doctor.facts import User, Vrings

RELEASE = "6.1.83-armv7-lpae-x22"
CONFIG = """#
# Automatically generated file; DO NOT EDIT.
# Linux/arm 6.1.83 Kernel Configuration
#
CONFIG_REMOTEPROC=y
CONFIG_OMAP_REMOTEPROC=m
CONFIG_RPMSG=y
CONFIG_RPMSG_CHAR=m
CONFIG_RPMSG_CTRL=m
CONFIG_RPMSG_NS=y
# CONFIG_RPMSG_TTY is not set
CONFIG_RPMSG_VIRTIO=y
CONFIG_UIO=y
CONFIG_UIO_PDRV_GENIRQ=m
CONFIG_EXTRA_FIRMWARE=""
"""
PROC_MODULES = """rpmsg_ctrl 16384 0 - Live 0xbf0a4000
rpmsg_char 20480 1 rpmsg_ctrl, Live 0xbf09c000
omap_remoteproc 28672 0 - Live 0xbf090000
uio_pdrv_genirq 16384 0 - Live 0xbf080000
"""
MODULES_BUILTIN = """kernel/drivers/rpmsg/rpmsg_core.ko
kernel/drivers/rpmsg/rpmsg_ns.ko
kernel/drivers/rpmsg/virtio_rpmsg_bus.ko
kernel/drivers/uio/uio.ko
"""
MODULES_DEP = """kernel/drivers/rpmsg/rpmsg_char.ko.xz:
kernel/drivers/rpmsg/rpmsg_ctrl.ko.xz: kernel/drivers/rpmsg/rpmsg_char.ko.xz
kernel/drivers/remoteproc/omap_remoteproc.ko.xz:
kernel/drivers/uio/uio_pdrv_genirq.ko.xz:
"""
MiB = 1 << 20


def write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def device_dir(root: Path, klass: str, device: str, parent: str) -> Path:
    """``/sys/devices/.../<klass>/<device>`` and the relative ``/sys/class/<klass>/<device>``
    symlink to it, as sysfs lays them out."""
    real = root / "sys/devices/platform/ocp" / parent / klass / device
    real.mkdir(parents=True)
    link = root / "sys/class" / klass / device
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(real, link.parent))
    return real


def pandaboard(root: Path) -> Path:
    write(root, "/proc/sys/kernel/osrelease", RELEASE + "\n")
    (root / "proc/config.gz").write_bytes(gzip.compress(CONFIG.encode()))
    write(root, "/proc/modules", PROC_MODULES, 0o444)
    write(root, f"/lib/modules/{RELEASE}/modules.builtin", MODULES_BUILTIN)
    write(root, f"/lib/modules/{RELEASE}/modules.dep", MODULES_DEP)
    for module in ("rpmsg_char", "rpmsg_ctrl"):
        write(root, f"/sys/module/{module}/initstate", "live\n", 0o444)
    write(root, "/sys/module/firmware_class/parameters/path", "\n")
    for device, parent, state, firmware in [
        ("remoteproc0", "55020000.ipu", "offline", "omap4-ipu-fw.xem3"),
        ("remoteproc1", "40800000.dsp", "crashed", "omap4-dsp-fw.xe64T"),
        ("remoteproc2", "4b000000.ipu", "offline", "missing-fw.elf"),
    ]:
        real = device_dir(root, "remoteproc", device, parent)
        write(real, "name", parent + "\n", 0o444)
        write(real, "state", state + "\n", 0o644)
        write(real, "firmware", firmware + "\n", 0o644)
        write(real, "recovery", "enabled\n", 0o644)
    write(root, "/lib/firmware/omap4-ipu-fw.xem3", "\x7fELF")
    write(root, "/lib/firmware/omap4-dsp-fw.xe64T", "\x7fELF")
    write(root, "/dev/rpmsg_ctrl0", "", 0o600)
    write(root, "/dev/rpmsg0", "", 0o660)
    uio = device_dir(root, "uio", "uio0", "4a0f4000.mailbox")
    write(uio, "name", "mailbox\n", 0o444)
    write(uio, "version", "devicetree\n", 0o444)
    for attr, value in [("name", "mailbox"), ("addr", "0x4a0f4000"), ("size", "0x00001000")]:
        write(uio, f"maps/map0/{attr}", value + "\n", 0o444)
    write(uio, "maps/map0/offset", "0x0\n", 0o444)
    write(root, "/dev/uio0", "", 0o660)
    shm = root / "dev/shm"
    shm.mkdir()
    shm.chmod(0o1777)
    return root


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return pandaboard(tmp_path / "rootfs")


def stranger(*gids: int) -> User:
    """A user who owns none of the fake files (they belong to whoever runs the tests)."""
    return User(os.getuid() + 4242, frozenset(gids), "alice")


ACCEL = Vrings(accelerated=True, built=True, forced_pure=None)


def test_the_facts_of_a_pandaboard(board: Path) -> None:
    facts = probe(board, user=stranger(), vrings=ACCEL)
    kernel = facts.kernel
    assert kernel.release == RELEASE and kernel.config_source == "/proc/config.gz"
    assert kernel.config is not None and kernel.config["CONFIG_RPMSG_CHAR"] == "m"
    assert "CONFIG_RPMSG_TTY" not in kernel.config  # "is not set"
    assert kernel.builtin == {"rpmsg_core", "rpmsg_ns", "virtio_rpmsg_bus", "uio"}
    assert kernel.available == {"rpmsg_char", "rpmsg_ctrl", "omap_remoteproc", "uio_pdrv_genirq"}
    assert {"rpmsg_char", "rpmsg_ctrl", "omap_remoteproc"} <= kernel.loaded
    assert kernel.in_sysfs == {"rpmsg_char", "rpmsg_ctrl"}
    procs = {(r.device, r.name, r.state, r.firmware, r.firmware_path) for r in facts.remoteprocs}
    assert procs == {
        ("remoteproc0", "55020000.ipu", "offline", "omap4-ipu-fw.xem3",
         "/lib/firmware/omap4-ipu-fw.xem3"),
        ("remoteproc1", "40800000.dsp", "crashed", "omap4-dsp-fw.xe64T",
         "/lib/firmware/omap4-dsp-fw.xe64T"),
        ("remoteproc2", "4b000000.ipu", "offline", "missing-fw.elf", None),
    }  # fmt: skip
    assert [n.path for n in facts.rpmsg_nodes] == ["/dev/rpmsg0", "/dev/rpmsg_ctrl0"]
    assert facts.firmware.custom_path == ""
    assert facts.firmware.dirs[-1] == ("/lib/firmware", True)
    assert facts.firmware.dirs[0] == (f"/lib/firmware/updates/{RELEASE}", False)
    (uio,) = facts.uio
    assert (uio.device, uio.name, uio.maps) == (
        "uio0",
        "mailbox",
        ((0x4A0F4000, 0x1000, "mailbox"),),
    )
    assert uio.node is not None and uio.node.path == "/dev/uio0"
    assert facts.shm.node is not None and facts.shm.free is not None and facts.shm.free > 0


def _by_check(
    board: Path, user: User, vrings: Vrings = ACCEL, **shm: int
) -> dict[str, tuple[Status, str]]:
    findings = diagnose(probe(board, user=user, vrings=vrings), shm.get("needed", MiB))
    for f in findings:
        assert f.status is Status.OK or f.fix or f.status is Status.INFO, f
    return {f.check: (f.status, f.summary) for f in findings}


def test_findings_for_a_group_member(board: Path) -> None:
    found = _by_check(board, stranger(os.getgid()))
    assert found["kernel.virtio_rpmsg_bus"][0] is Status.OK  # modules.builtin
    assert found["kernel.rpmsg_char"] == (Status.OK, found["kernel.rpmsg_char"][1])
    assert "is loaded" in found["kernel.rpmsg_char"][1]
    # Not set, and remote processors exist: optional, so only a note.
    assert found["kernel.rpmsg_tty"][0] is Status.INFO
    assert found["remoteproc.remoteproc0"][0] is Status.INFO  # offline, firmware found
    assert found["remoteproc.remoteproc1"][0] is Status.WARN  # crashed
    assert found["remoteproc.remoteproc2"] == (
        Status.FAIL,
        "remoteproc2 (4b000000.ipu) is offline: its firmware 'missing-fw.elf' is not in the "
        "search path",
    )
    assert found["dev.rpmsg0"][0] is Status.OK  # 0660, our group
    assert found["dev.rpmsg_ctrl0"][0] is Status.FAIL  # 0600, not ours
    assert found["uio.mailbox"][0] is Status.OK
    assert found["firmware.path"][0] is Status.OK
    assert found["dev.shm"][0] is Status.OK and found["vrings"][0] is Status.OK


def test_findings_for_a_user_outside_the_group(board: Path) -> None:
    found = _by_check(board, stranger())
    assert found["dev.rpmsg0"][0] is Status.FAIL
    assert found["uio.mailbox"][0] is Status.FAIL  # the PandaBoard route needs it
    assert found["dev.shm"][0] is Status.OK  # 1777


def test_a_kernel_without_rpmsg_char_fails_where_remote_processors_exist(board: Path) -> None:
    config = CONFIG.replace("CONFIG_RPMSG_CHAR=m", "# CONFIG_RPMSG_CHAR is not set")
    (board / "proc/config.gz").write_bytes(gzip.compress(config.encode()))
    (board / "proc/modules").write_text("")
    dep = board / f"lib/modules/{RELEASE}/modules.dep"
    dep.write_text(
        "".join(
            line + "\n"
            for line in MODULES_DEP.splitlines()
            if "rpmsg_char" not in line.split(":")[0]
        )
    )
    for module in ("rpmsg_char", "rpmsg_ctrl"):  # neither is loaded any more
        os.rename(board / "sys/module" / module, board / "sys/module" / f"{module}.gone")
    found = _by_check(board, stranger())
    assert found["kernel.rpmsg_char"][0] is Status.FAIL
    assert found["kernel.rpmsg_ctrl"][0] is Status.INFO  # a module, not loaded now
    for device in ("remoteproc0", "remoteproc1", "remoteproc2"):
        (board / "sys/class/remoteproc" / device).unlink()
    assert _by_check(board, stranger())["kernel.rpmsg_char"][0] is Status.WARN


def test_without_config_the_module_lists_decide(board: Path) -> None:
    (board / "proc/config.gz").unlink()
    found = _by_check(board, stranger())
    assert found["kernel.virtio_rpmsg_bus"][0] is Status.OK  # modules.builtin
    assert found["kernel.rpmsg_tty"][0] is Status.INFO
    write(board, f"/boot/config-{RELEASE}", CONFIG)  # Debian's place for it
    assert (
        probe(board, user=stranger(), vrings=ACCEL).kernel.config_source
        == f"/boot/config-{RELEASE}"
    )


def test_an_empty_root_is_all_unknowns_and_no_crash(tmp_path: Path) -> None:
    facts = probe(tmp_path, user=stranger(), vrings=Vrings(False, False, None))
    assert facts.kernel.release is None and facts.kernel.config is None
    found = {f.check: f for f in diagnose(facts, MiB)}
    assert (
        found["kernel.rpmsg_char"].status is Status.INFO
        and "cannot tell" in found["kernel.rpmsg_char"].summary
    )
    assert found["remoteproc"].status is Status.INFO and found["dev.rpmsg"].status is Status.INFO
    assert found["firmware.path"].status is Status.WARN
    assert found["dev.shm"].status is Status.FAIL and found["vrings"].status is Status.WARN


def test_a_custom_firmware_path_is_searched_first(board: Path) -> None:
    write(board, "/sys/module/firmware_class/parameters/path", "/opt/fw\n")
    write(board, "/opt/fw/missing-fw.elf", "\x7fELF")
    facts = probe(board, user=stranger(), vrings=ACCEL)
    assert facts.firmware.dirs[0] == ("/opt/fw", True)
    proc = next(r for r in facts.remoteprocs if r.device == "remoteproc2")
    assert proc.firmware_path == "/opt/fw/missing-fw.elf"


def test_dev_shm_too_small(board: Path) -> None:
    found = _by_check(board, stranger(), needed=1 << 62)
    assert found["dev.shm"][0] is Status.FAIL and "need" in found["dev.shm"][1]
