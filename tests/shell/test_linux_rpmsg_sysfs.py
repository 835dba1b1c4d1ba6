"""Finding the kernel's rpmsg devices through sysfs (platforms.linux.rpmsg_sysfs), on a directory
laid out like the sysfs of a board with two remote processors (the layout a UML guest and
Linux 6.12's remoteproc show: class and bus entries are symlinks into /sys/devices)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import anyio
import pytest

from platforms.linux.bus import LinuxRpmsgBus
from platforms.linux.files import HostFiles
from platforms.linux.model.files import UeventHub
from platforms.linux.rpmsg_sysfs import (
    ChannelBoundError,
    RpmsgSysfs,
    ctrl_of_remoteproc,
    list_ctrl_devices,
)
from platforms.linux.sysfs_text import ADDR_ANY, pack_kernel_uevent
from rpmsg.errors import BusClosedError


def put(root: Path, path: str, text: str) -> None:
    file = root / path.lstrip("/")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)


def link(root: Path, path: str, target: str) -> None:
    where = root / path.lstrip("/")
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(os.path.relpath(root / target.lstrip("/"), where.parent))


def rpmsg_device(root: Path, virtio: str, dev: str, attrs: dict[str, str]) -> str:
    path = f"{virtio}/{dev}"
    for key, value in attrs.items():
        put(root, f"{path}/{key}", value + "\n")
    link(root, f"/sys/bus/rpmsg/devices/{dev}", path)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for n, (rproc, parent) in enumerate([("m4", "soc/m4"), ("dsp", "soc/dsp")]):
        rp = f"/sys/devices/platform/{parent}/remoteproc/remoteproc{n}"
        put(tmp_path, f"{rp}/name", rproc + "\n")
        link(tmp_path, f"/sys/class/remoteproc/remoteproc{n}", rp)
        virtio = f"{rp}/rproc-virtio.{n}.auto/virtio{n}"
        ctrl = rpmsg_device(
            tmp_path,
            virtio,
            f"virtio{n}.rpmsg_ctrl.0.0",
            {"name": "rpmsg_ctrl", "src": "0x0", "dst": "0x0", "announce": "false"},
        )
        put(tmp_path, f"{ctrl}/rpmsg/rpmsg_ctrl{n}/uevent", f"DEVNAME=rpmsg_ctrl{n}\n")
        link(tmp_path, f"/sys/class/rpmsg/rpmsg_ctrl{n}", f"{ctrl}/rpmsg/rpmsg_ctrl{n}")
    v0 = "/sys/devices/platform/soc/m4/remoteproc/remoteproc0/rproc-virtio.0.auto/virtio0"
    put(tmp_path, "/sys/bus/rpmsg/drivers/rpmsg_chrdev/bind", "")
    put(tmp_path, "/sys/bus/rpmsg/drivers/rpmsg_tty/bind", "")
    raw = rpmsg_device(
        tmp_path,
        v0,
        "virtio0.rpmsg-raw.-1.1024",
        {"name": "rpmsg-raw", "src": "0x400", "dst": "0x400", "announce": "false"},
    )
    link(tmp_path, f"{raw}/driver", "/sys/bus/rpmsg/drivers/rpmsg_chrdev")
    put(tmp_path, f"{raw}/rpmsg/rpmsg0/uevent", "MAJOR=254\nMINOR=0\nDEVNAME=rpmsg0\n")
    attrs = {"src": "0xffffffff", "dst": "0x401", "announce": "false", "driver_override": "(null)"}
    rpmsg_device(tmp_path, v0, "virtio0.echo.-1.1025", {"name": "echo", **attrs})
    tty = rpmsg_device(
        tmp_path,
        v0,
        "virtio0.rpmsg-tty.-1.1026",
        {"name": "rpmsg-tty", "src": "0x402", "dst": "0x402", "announce": "false"},
    )
    link(tmp_path, f"{tty}/driver", "/sys/bus/rpmsg/drivers/rpmsg_tty")
    put(tmp_path, f"{tty}/tty/ttyRPMSG0/uevent", "DEVNAME=ttyRPMSG0\n")
    rpmsg_device(  # one of ours: created with RPMSG_CREATE_DEV_IOCTL, announced
        tmp_path,
        v0,
        "virtio0.mine.1100.-1",
        {"name": "mine", "src": "0x44c", "dst": "0xffffffff", "announce": "true"},
    )
    ept = "/sys/devices/platform/soc/m4/remoteproc/remoteproc0/rproc-virtio.0.auto/virtio0/"
    ept += "virtio0.rpmsg_ctrl.0.0/rpmsg/rpmsg_ctrl0/rpmsg3"
    for key, value in {
        "name": "app",
        "src": "1200",
        "dst": "-1",
        "uevent": "DEVNAME=rpmsg3",
    }.items():
        put(tmp_path, f"{ept}/{key}", value + "\n")
    for key, value in {"name": "x", "src": "-1", "dst": "-1"}.items():  # ADDR_ANY: hidden
        put(tmp_path, f"{ept[: ept.rindex('/')]}/rpmsg4/{key}", value + "\n")
    v1 = "/sys/devices/platform/soc/dsp/remoteproc/remoteproc1/rproc-virtio.1.auto/virtio1"
    rpmsg_device(  # on the other processor's bus
        tmp_path, v1, "virtio1.echo.-1.1024", {"name": "echo", **attrs}
    )
    return tmp_path


def test_control_devices_by_number_and_by_processor(root: Path) -> None:
    files = HostFiles(root)
    assert list_ctrl_devices(files) == ["rpmsg_ctrl0", "rpmsg_ctrl1"]
    assert ctrl_of_remoteproc(files, "dsp") == ["rpmsg_ctrl1"]
    assert ctrl_of_remoteproc(files, "remoteproc0") == ["rpmsg_ctrl0"]
    assert ctrl_of_remoteproc(files, "gpu") == []


def test_channels_are_the_remotes_devices_of_one_virtio_device(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    assert sysfs.virtio_path.endswith("/rproc-virtio.0.auto/virtio0")
    names = sorted(d.name for d in sysfs.channels())
    assert names == ["echo", "rpmsg-raw", "rpmsg-tty"]  # not ours, not rpmsg_ctrl, not virtio1
    (echo,) = sysfs.channels("echo")
    assert (echo.src, echo.dst, echo.driver, echo.driver_override) == (ADDR_ANY, 0x401, None, None)
    assert RpmsgSysfs(HostFiles(root), "rpmsg_ctrl1").channels("echo")[0].device == (
        "virtio1.echo.-1.1024"
    )


def test_nodes_are_read_from_each_devices_uevent(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    by_name = {d.name: d for d in sysfs.channels()}
    assert sysfs.chrdev_of(by_name["rpmsg-raw"]) == "/dev/rpmsg0"
    assert sysfs.chrdev_of(by_name["echo"]) is None  # not bound to rpmsg_chrdev
    assert sysfs.tty_of(by_name["rpmsg-tty"]) == "/dev/ttyRPMSG0"


def test_endpoint_devices_and_the_addresses_sysfs_shows_taken(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    assert sysfs.endpoint_devices() == {
        "rpmsg3": ("app", 1200, ADDR_ANY),
        "rpmsg4": ("x", ADDR_ANY, ADDR_ANY),
    }
    assert sysfs.used_addresses() == {0, 0x400, 0x402, 0x44C, 1200}


def test_binding_writes_driver_override_then_bind(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    (echo,) = sysfs.channels("echo")
    sysfs.bind(echo)
    entry = root / "sys/bus/rpmsg/devices/virtio0.echo.-1.1025"
    assert (entry / "driver_override").read_text() == "rpmsg_chrdev"
    assert (root / "sys/bus/rpmsg/drivers/rpmsg_chrdev/bind").read_text() == echo.device


def test_a_channel_of_another_kernel_driver_is_not_taken(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    (tty,) = sysfs.channels("rpmsg-tty")
    with pytest.raises(ChannelBoundError, match="rpmsg_tty/unbind"):
        sysfs.bind(tty)
    assert (root / "sys/bus/rpmsg/drivers/rpmsg_chrdev/bind").read_text() == ""


def test_free_addresses_skip_what_sysfs_and_the_bus_hold(root: Path) -> None:
    sysfs = RpmsgSysfs(HostFiles(root), "rpmsg_ctrl0")
    # 1024 (0x400) and 1026 (0x402) are channels', 1025 the bus's own endpoint's.
    assert sysfs.free_addresses({1025}, 3) == [1027, 1028, 1029]


class TreeWithUevents(HostFiles):
    """The tree's files, with uevents from a test instead of the host's netlink."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.hub = UeventHub()

    def open_uevents(self, group: int) -> socket.socket:
        return self.hub.open()


async def test_the_bus_waits_for_its_control_device_to_appear(root: Path) -> None:
    """Who speaks first: the bus opened before the remote processor's rpmsg device exists
    waits (ready_timeout) for the uevent that adds it, then finds it in sysfs."""
    files = TreeWithUevents(root)
    link_path = root / "sys/class/rpmsg/rpmsg_ctrl0"
    target = os.readlink(link_path)
    link_path.unlink()
    put(root, "/dev/rpmsg_ctrl0", "")  # a stand-in node: only opened, no ioctl here
    opened: list[LinuxRpmsgBus] = []

    async def open_bus() -> None:
        async with LinuxRpmsgBus(
            "rpmsg_ctrl0", files=files, ready_timeout=10, uevents="kernel"
        ) as bus:
            opened.append(bus)

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_bus)
        await anyio.wait_all_tasks_blocked()
        assert opened == []
        link_path.symlink_to(target)
        devpath = "/devices/platform/soc/m4/remoteproc/remoteproc0/rproc-virtio.0.auto/virtio0/"
        files.hub.send(
            pack_kernel_uevent(
                "add", devpath + "virtio0.rpmsg_ctrl.0.0/rpmsg/rpmsg_ctrl0", {"SUBSYSTEM": "rpmsg"}
            )
        )
    (bus,) = opened
    assert bus.sysfs is not None and bus.sysfs.ctrl == "rpmsg_ctrl0"
    assert sorted(c.name for c in bus.sysfs.channels()) == ["echo", "rpmsg-raw", "rpmsg-tty"]


async def test_no_control_device_in_time_is_a_clear_error(root: Path) -> None:
    files = TreeWithUevents(root)
    with pytest.raises(BusClosedError, match=r"no rpmsg control device \(rpmsg_ctrl7\)"):
        async with LinuxRpmsgBus("/dev/rpmsg_ctrl7", files=files, ready_timeout=0):
            pass
