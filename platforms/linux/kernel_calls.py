"""The ioctls and sysfs writes behind the Linux bus's endpoints, services and channels.

Theory of operation: each method makes one kind of kernel endpoint and opens its char device,
or undoes that. The control device's ioctls (rpmsg_ctrl.c) create endpoint devices
(CREATE_EPT) and channel devices (CREATE_DEV, RELEASE_DEV); an endpoint device is destroyed
through its own fd (DESTROY_EPT, rpmsg_char.c). Which ``/dev/rpmsgN`` a call made is read from
sysfs (:mod:`.rpmsg_sysfs`). A failure half way undoes what was made: a service's device is
released before the error propagates.

One kernel limitation cannot be undone: an endpoint device whose open fails (EINVAL: the
kernel holds its address, for an endpoint another program created with ADDR_ANY) can only be
destroyed through an open fd, so it stays until the rpmsg device goes away. The addresses
sysfs shows as taken are refused before the ioctl, which leaves only that invisible case.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import Literal

import attrs

from rpmsg.errors import AddressInUseError, EndpointClosedError, RpmsgError

from .chardev import CharDev, checked_ioctl
from .errors import KernelError, kernel_error
from .rpmsg_sysfs import RpmsgSysfs
from .sysfs_text import RpmsgDevice
from .uapi import ADDR_ANY, NAME_SIZE, flow_control_supported, ioctl_numbers, pack_endpoint_info

log = logging.getLogger("aioamp.platform.linux")

#: What a kernel endpoint of the bus is: an endpoint device (RPMSG_CREATE_EPT_IOCTL), a local
#: service (RPMSG_CREATE_DEV_IOCTL) or a channel the remote announced.
Kind = Literal["endpoint", "service", "channel"]


@attrs.frozen
class Opened:
    """A kernel endpoint with its char device open: local ``addr`` (ADDR_ANY: the kernel's
    secret), the ``dst`` it sends to, the rpmsg bus ``device`` it belongs to (if any)."""

    dev: CharDev
    addr: int
    dst: int
    device: str | None = None


class KernelCalls:
    """The calls on one control device (``ctrl``) and the bus ``sysfs`` shows."""

    def __init__(self, sysfs: RpmsgSysfs, ctrl: CharDev, machine: str | None = None) -> None:
        self.sysfs = sysfs
        self.ctrl = ctrl
        self.ioctls = ioctl_numbers(machine or os.uname().machine)

    def _open(self, node: str) -> CharDev:
        return CharDev.open(node, self.sysfs.files.host_path(node))

    # -- endpoint devices (RPMSG_CREATE_EPT_IOCTL) -------------------------------------------
    def create_endpoint(self, name: str, src: int, dst: int) -> Opened:
        sysfs = self.sysfs
        if src != ADDR_ANY and src in sysfs.used_addresses():
            raise AddressInUseError(f"address {src:#x} is in use on {sysfs.ctrl}'s bus")
        before = set(sysfs.endpoint_devices())
        checked_ioctl(
            self.ctrl,
            self.ioctls.create_ept,
            pack_endpoint_info(name, src, dst),
            "RPMSG_CREATE_EPT_IOCTL",
        )
        after = sysfs.endpoint_devices()
        label = name[: NAME_SIZE - 1]
        new = sorted(
            (k for k in after.keys() - before if after[k] == (label, src, dst)),
            key=lambda k: int(k[len("rpmsg") :]),
        )
        if not new:
            raise kernel_error(errno.ENOENT, f"{sysfs.ctrl_path}/rpmsg*", "find the new endpoint")
        node = sysfs.node_of(f"{sysfs.ctrl_path}/{new[0]}")
        try:
            dev = self._open(node)
        except KernelError as exc:
            if exc.errno != errno.EINVAL:
                raise
            log.warning("%s: left behind (the kernel allows no destroy without an open)", node)
            raise AddressInUseError(
                f"address {src:#x} is held by an endpoint of the kernel ({node} refused to open)"
            ) from None
        return Opened(dev, src, dst)

    # -- local services (RPMSG_CREATE_DEV_IOCTL) ---------------------------------------------
    def create_service(self, name: str, src: int, *, last_try: bool) -> Opened | None:
        """The announced service ``name`` at ``src``, its char device open; None when
        ``src`` proved taken and this is not the ``last_try``."""
        info = pack_endpoint_info(name, src, ADDR_ANY)
        try:
            self.ctrl.ioctl(self.ioctls.create_dev, info)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # rpmsg_ctrl.c: the channel could not be created
                err = exc.errno or 0
                raise kernel_error(err, self.ctrl.path, "RPMSG_CREATE_DEV_IOCTL") from None
            if last_try:
                raise AddressInUseError(f"a service {name!r} at {src:#x} exists already") from None
            return None
        try:
            return self._bind_service(name, src)
        except RpmsgError as exc:
            self._release_service(name, src)
            if isinstance(exc, KernelError | EndpointClosedError) and not last_try:
                log.debug("service %r at %#x: %s; trying another address", name, src, exc)
                return None
            raise

    def _bind_service(self, name: str, src: int) -> Opened:
        sysfs = self.sysfs
        mine = [d for d in sysfs.devices() if d.announce and d.name == name and d.src == src]
        if not mine:
            raise kernel_error(errno.ENOENT, f"service {name!r} at {src:#x}", "find")
        sysfs.bind(mine[0])
        now = sysfs.device(mine[0].device)
        node = sysfs.chrdev_of(now) if now is not None else None
        if node is None:  # the probe failed: the kernel holds this address
            raise kernel_error(errno.EADDRINUSE, mine[0].device, "bind")
        return Opened(self._open(node), src, ADDR_ANY, mine[0].device)

    def _release_service(self, name: str, src: int) -> None:
        try:
            self.ctrl.ioctl(self.ioctls.release_dev, pack_endpoint_info(name, src, ADDR_ANY))
        except OSError as exc:
            log.warning("RPMSG_RELEASE_DEV_IOCTL for %r at %#x: %s", name, src, exc)

    # -- the remote's channels ---------------------------------------------------------------
    def open_channel(self, info: RpmsgDevice, *, bind: bool) -> Opened:
        """The char device of the remote's channel ``info``, bound to rpmsg_chrdev first if
        needed (and ``bind`` allows)."""
        sysfs = self.sysfs
        if info.driver != "rpmsg_chrdev":
            if not bind:
                raise RpmsgError(
                    f"channel {info.device} ({info.name!r}) is not bound to rpmsg_chrdev and "
                    "binding is off (bind=0)"
                )
            sysfs.bind(info)
        now = sysfs.device(info.device)
        node = sysfs.chrdev_of(now) if now is not None else None
        if now is None or node is None:
            raise EndpointClosedError(f"channel {info.device} went away while being opened")
        return Opened(self._open(node), now.src, now.dst, info.device)

    # -- undoing -----------------------------------------------------------------------------
    def release(
        self, kind: Kind, dev: CharDev, addr: int, name: str | None, device: str | None
    ) -> None:
        """Before ``dev`` is closed: destroy an endpoint device, withdraw a service (the
        kernel's NS DESTROY); a channel stays as it is. Best effort: the device may be gone."""
        if kind == "endpoint" and not dev.closed:
            try:
                dev.ioctl(self.ioctls.destroy_ept)
            except OSError as exc:
                log.debug("%s: RPMSG_DESTROY_EPT_IOCTL: %s", dev.path, exc)
        elif kind == "service" and name is not None:
            dev.close()  # the kernel removes the device: no reader may hold its fd
            self._release_service(name, addr)

    # -- flow control (newer kernels) --------------------------------------------------------
    def get_flow_control(self, dev: CharDev) -> bool | None:
        value = bytearray(4)
        try:
            dev.ioctl(self.ioctls.get_outgoing_flowcontrol, value)
        except OSError as exc:
            if flow_control_supported(exc.errno or 0):
                err = exc.errno or 0
                raise kernel_error(err, dev.path, "RPMSG_GET_OUTGOING_FLOWCONTROL") from None
            return None
        return int.from_bytes(value, sys.byteorder) != 0

    def set_flow_control(self, dev: CharDev, paused: bool) -> bool:
        try:
            dev.ioctl(self.ioctls.set_incoming_flowcontrol, int(paused))
        except OSError as exc:
            if flow_control_supported(exc.errno or 0):
                err = exc.errno or 0
                raise kernel_error(err, dev.path, "RPMSG_SET_INCOMING_FLOWCONTROL") from None
            return False
        return True
