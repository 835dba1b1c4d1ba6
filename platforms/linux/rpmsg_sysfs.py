"""The rpmsg devices of one virtio rpmsg bus, as sysfs shows them, and binding them to
``rpmsg_chrdev``.

Theory of operation (Linux 6.12; paths as a UML guest shows them):

* One virtio rpmsg device (``virtio0``: a remote processor's vdev) has one control device,
  ``/sys/class/rpmsg/rpmsg_ctrl0`` -> ``/sys/devices/.../virtio0/virtio0.rpmsg_ctrl.0.0/
  rpmsg/rpmsg_ctrl0`` (``rpmsg_virtio_add_ctrl_dev``). The bus of a ``linux:`` URL is that
  virtio device: its channels are the devices of ``/sys/bus/rpmsg/devices`` whose real path is
  right below it (``virtio0.NAME.SRC.DST``, named when registered, so a remote's channel reads
  ``.-1.`` there while its ``src`` attribute has the address assigned at probe).
* A channel announced by the remote has ``announce`` false; one created with
  RPMSG_CREATE_DEV_IOCTL and an explicit source address has it true (virtio_rpmsg_bus.c,
  ``__rpmsg_create_channel``: ``rpdev->announce = rpdev->src != RPMSG_ADDR_ANY``). The bus's
  own ``rpmsg_ctrl`` and ``rpmsg_ns`` devices are neither.
* A channel bound to ``rpmsg_chrdev`` (``rpmsg-raw`` binds by itself, rpmsg_char.c's id table;
  any other name after ``driver_override`` and a ``bind``) has a char device below it:
  ``.../virtio0.NAME.-1.1024/rpmsg/rpmsgN``. Endpoints made with RPMSG_CREATE_EPT_IOCTL are
  children of the control device: ``.../rpmsg_ctrl0/rpmsgN``. Each one's ``uevent`` file names
  its /dev node (``DEVNAME=rpmsgN``): found, not guessed.
"""

from __future__ import annotations

import errno
import os
import re

from rpmsg.errors import RpmsgError
from rpmsg.wire import RESERVED_ADDRESSES

from .errors import rpmsg_error
from .files import KernelFiles
from .sysfs_text import (
    ADDR_ANY,
    RpmsgDevice,
    parse_address,
    parse_bool,
    parse_driver_override,
    parse_uevent_file,
)

RPMSG_CLASS = "/sys/class/rpmsg"
RPMSG_DEVICES = "/sys/bus/rpmsg/devices"
RPMSG_DRIVERS = "/sys/bus/rpmsg/drivers"
CHRDEV_DRIVER = "rpmsg_chrdev"
_CTRL = re.compile(r"rpmsg_ctrl(\d+)")
_EPT = re.compile(r"rpmsg(\d+)")


class ChannelBoundError(RpmsgError, RuntimeError):
    """The channel is bound to another kernel driver (a kernel client such as rpmsg_tty):
    user space cannot reach it through a char device until it is unbound."""


def ctrl_index(name: str) -> int:
    found = _CTRL.fullmatch(name)
    return int(found.group(1)) if found else -1


class RpmsgSysfs:
    """The sysfs view of the virtio rpmsg bus that ``ctrl`` (``rpmsg_ctrlN``) controls."""

    def __init__(self, files: KernelFiles, ctrl: str) -> None:
        self.files = files
        self.ctrl = ctrl
        #: The control device's real path; its parent's parent's parent is the virtio device.
        self.ctrl_path = files.realpath(f"{RPMSG_CLASS}/{ctrl}")
        self.virtio_path = os.path.dirname(os.path.dirname(os.path.dirname(self.ctrl_path)))

    def _attr(self, path: str, name: str) -> str:
        return self.files.read(f"{path}/{name}")

    def device(self, device: str) -> RpmsgDevice | None:
        """The bus device ``device`` if it still exists and belongs to this bus."""
        entry = f"{RPMSG_DEVICES}/{device}"
        try:
            path = self.files.realpath(entry)
            if os.path.dirname(path) != self.virtio_path:
                return None
            driver = None
            if self.files.exists(f"{entry}/driver"):
                driver = os.path.basename(self.files.realpath(f"{entry}/driver"))
            override = None
            if self.files.exists(f"{entry}/driver_override"):
                override = parse_driver_override(self._attr(entry, "driver_override"))
            return RpmsgDevice(
                device=device,
                path=path,
                name=self._attr(entry, "name").strip(),
                src=parse_address(self._attr(entry, "src")),
                dst=parse_address(self._attr(entry, "dst")),
                announce=parse_bool(self._attr(entry, "announce")),
                driver=driver,
                driver_override=override,
            )
        except FileNotFoundError:
            return None  # removed meanwhile

    def devices(self) -> list[RpmsgDevice]:
        """Every bus device of this virtio device, in sysfs order."""
        found = []
        for device in self.files.listdir(RPMSG_DEVICES):
            info = self.device(device)
            if info is not None:
                found.append(info)
        return found

    def channels(self, name: str | None = None) -> list[RpmsgDevice]:
        """The remote's channels (named ``name``, if given)."""
        return [d for d in self.devices() if d.is_channel and name in (None, d.name)]

    def node_of(self, classdev: str) -> str:
        """The /dev node of the class device at real path ``classdev`` (its DEVNAME)."""
        env = parse_uevent_file(self.files.read(f"{classdev}/uevent"))
        devname = env.get("DEVNAME")
        if not devname:
            raise FileNotFoundError(errno.ENOENT, "no DEVNAME in its uevent", classdev)
        return f"/dev/{devname}"

    def chrdev_of(self, dev: RpmsgDevice) -> str | None:
        """The /dev node of the char device ``rpmsg_chrdev`` made for ``dev``, if bound."""
        directory = f"{dev.path}/rpmsg"
        try:
            for entry in self.files.listdir(directory):
                if _EPT.fullmatch(entry):
                    return self.node_of(f"{directory}/{entry}")
        except FileNotFoundError:
            pass
        return None

    def tty_of(self, dev: RpmsgDevice) -> str | None:
        """The /dev node of the tty rpmsg_tty made for ``dev`` (``.../tty/ttyRPMSGN``)."""
        directory = f"{dev.path}/tty"
        try:
            for entry in self.files.listdir(directory):
                return self.node_of(f"{directory}/{entry}")
        except FileNotFoundError:
            pass
        return None

    def endpoint_devices(self) -> dict[str, tuple[str, int, int]]:
        """The control device's endpoint devices: ``{"rpmsgN": (name, src, dst)}``."""
        found = {}
        for entry in self.files.listdir(self.ctrl_path):
            if _EPT.fullmatch(entry):
                path = f"{self.ctrl_path}/{entry}"
                try:
                    found[entry] = (
                        self._attr(path, "name").strip(),
                        parse_address(self._attr(path, "src")),
                        parse_address(self._attr(path, "dst")),
                    )
                except FileNotFoundError:
                    continue
        return found

    def used_addresses(self) -> set[int]:
        """Local addresses sysfs shows as taken: every bus device's ``src`` and the explicit
        ``src`` of every endpoint device (one created with ADDR_ANY hides its address)."""
        used = {d.src for d in self.devices()}
        used.update(src for _name, src, _dst in self.endpoint_devices().values())
        used.discard(ADDR_ANY)
        return used

    def free_addresses(self, also_used: set[int], count: int = 16) -> list[int]:
        """The ``count`` lowest dynamic addresses (from 1024) neither sysfs nor ``also_used``
        shows as taken."""
        used = self.used_addresses() | also_used
        free: list[int] = []
        addr = RESERVED_ADDRESSES
        while len(free) < count:
            if addr not in used:
                free.append(addr)
            addr += 1
        return free

    def bind(self, dev: RpmsgDevice) -> None:
        """Bind ``dev`` to ``rpmsg_chrdev``: ``driver_override``, then the driver's ``bind``
        (rpmsg_core.c matches an override first). Does nothing if it is bound already.

        Raises:
            ChannelBoundError: it is bound to another driver.
            RpmsgPermissionError: a file this process may not write (the message names the
                udev rule).
            KernelError: the probe failed (e.g. ENOMEM: its address is taken).
        """
        if dev.driver == CHRDEV_DRIVER:
            return
        if dev.driver is not None:
            raise ChannelBoundError(
                f"rpmsg channel {dev.device} ({dev.name!r}) is bound to the kernel driver "
                f"{dev.driver!r}; unbind it first: echo {dev.device} > "
                f"{RPMSG_DRIVERS}/{dev.driver}/unbind"
            )
        entry = f"{RPMSG_DEVICES}/{dev.device}"
        if dev.driver_override != CHRDEV_DRIVER:
            self._write(f"{entry}/driver_override", CHRDEV_DRIVER)
        try:
            self._write(f"{RPMSG_DRIVERS}/{CHRDEV_DRIVER}/bind", dev.device)
        except RpmsgError:
            now = self.device(dev.device)
            if now is None or now.driver != CHRDEV_DRIVER:  # not a lost race with udev
                raise

    def _write(self, path: str, text: str) -> None:
        try:
            self.files.write(path, text)
        except OSError as exc:
            raise rpmsg_error(exc.errno or 0, path, "write") from None

    def ctrl_devices(self) -> list[str]:
        return list_ctrl_devices(self.files)


def list_ctrl_devices(files: KernelFiles) -> list[str]:
    """Every ``rpmsg_ctrlN`` of the system, by number."""
    try:
        names = [n for n in files.listdir(RPMSG_CLASS) if ctrl_index(n) >= 0]
    except FileNotFoundError:
        return []
    return sorted(names, key=ctrl_index)


def ctrl_of_remoteproc(files: KernelFiles, rproc: str) -> list[str]:
    """The control devices below the remote processor whose ``name`` is ``rproc`` (or whose
    device is ``rproc``, e.g. ``remoteproc0``): a name that does not change between boots,
    unlike ``rpmsg_ctrlN``'s number."""
    base = "/sys/class/remoteproc"
    paths = []
    try:
        for entry in files.listdir(base):
            name = files.read(f"{base}/{entry}/name").strip()
            if rproc in (entry, name):
                paths.append(files.realpath(f"{base}/{entry}") + "/")
    except FileNotFoundError:
        return []
    return [
        ctrl
        for ctrl in list_ctrl_devices(files)
        if any(files.realpath(f"{RPMSG_CLASS}/{ctrl}").startswith(p) for p in paths)
    ]
