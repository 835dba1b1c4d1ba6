"""The kernel's rpmsg char devices from inside a UML guest: what a guest program (a test's, the
benchmark's, yours) needs to reach aioamp's services through Linux. Standard library only and
blocking: it runs in the guest's Python, not under an event loop.

Theory of operation: Linux's rpmsg_char and rpmsg_ctrl (drivers/rpmsg/rpmsg_char.c,
rpmsg_ctrl.c) give userspace an endpoint three ways:

* a channel the remote announces as ``rpmsg-raw`` is bound by the ``rpmsg_chrdev`` driver,
  which creates ``/dev/rpmsgN`` on the channel's own endpoint (:func:`channel_chardev`);
* ``RPMSG_CREATE_EPT_IOCTL`` on ``/dev/rpmsg_ctrlN`` creates ``/dev/rpmsgN`` for a new local
  endpoint that sends to a given address (:func:`create_endpoint`);
* ``RPMSG_CREATE_DEV_IOCTL`` creates a channel on the kernel's side; once a driver binds it
  (``rpmsg_chrdev`` for ``rpmsg-raw``) the kernel announces it to the remote with an NS
  CREATE (:func:`create_device`; ``RPMSG_RELEASE_DEV_IOCTL`` withdraws it, NS DESTROY).

On such a ``/dev/rpmsgN`` one ``read()`` returns one message and one ``write()`` sends one.
Device numbers are never guessed: each node is found through sysfs, the channel devices under
``/sys/bus/rpmsg/devices`` (``name``, ``src``, ``dst`` as ``0x%x``) and the endpoint devices
under ``/sys/class/rpmsg`` (``name``, ``src``, ``dst`` as ``%d``, so ANY reads ``-1``). sysfs
has no change notification here, so the waits poll it every few milliseconds.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: include/uapi/linux/rpmsg.h: RPMSG_ADDR_ANY.
RPMSG_ADDR_ANY = 0xFFFFFFFF
#: struct rpmsg_endpoint_info { char name[32]; __u32 src; __u32 dst; } (include/uapi/linux/
#: rpmsg.h), 40 bytes, in the machine's byte order: an ioctl argument, not a wire layout.
ENDPOINT_INFO = struct.Struct("=32sII")
#: include/uapi/asm-generic/ioctl.h: _IOC_NRSHIFT 0, _IOC_TYPESHIFT 8, _IOC_SIZESHIFT 16,
#: _IOC_DIRSHIFT 30; _IOC_NONE 0, _IOC_WRITE 1.
_IOC_NONE, _IOC_WRITE = 0, 1


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (kind << 8) | nr


#: ``_IOW(0xb5, 0x1, struct rpmsg_endpoint_info)`` = 0x4028b501.
RPMSG_CREATE_EPT_IOCTL = _ioc(_IOC_WRITE, 0xB5, 0x1, ENDPOINT_INFO.size)
#: ``_IO(0xb5, 0x2)`` = 0xb502 (on the endpoint's /dev/rpmsgN).
RPMSG_DESTROY_EPT_IOCTL = _ioc(_IOC_NONE, 0xB5, 0x2, 0)
#: ``_IOW(0xb5, 0x3, struct rpmsg_endpoint_info)`` = 0x4028b503.
RPMSG_CREATE_DEV_IOCTL = _ioc(_IOC_WRITE, 0xB5, 0x3, ENDPOINT_INFO.size)
#: ``_IOW(0xb5, 0x4, struct rpmsg_endpoint_info)`` = 0x4028b504.
RPMSG_RELEASE_DEV_IOCTL = _ioc(_IOC_WRITE, 0xB5, 0x4, ENDPOINT_INFO.size)

SYS_DEVICES = Path("/sys/bus/rpmsg/devices")
SYS_CLASS = Path("/sys/class/rpmsg")
DEFAULT_CTRL = Path("/dev/rpmsg_ctrl0")


def endpoint_info(name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> bytes:
    """A ``struct rpmsg_endpoint_info``; the name is at most 31 ASCII characters."""
    raw = name.encode("ascii")
    if not 0 < len(raw) < 32:
        raise ValueError(f"rpmsg name {name!r} is not 1..31 characters")
    return ENDPOINT_INFO.pack(raw, src, dst)


def poll_until(find: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """``find()``'s first result that is not None, polling every 5 ms.

    Raises:
        TimeoutError: none within ``timeout`` seconds; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.005)


def read_attr(device: Path, name: str) -> str:
    return (device / name).read_text().strip()


def _addr(text: str) -> int:
    return int(text, 0) & 0xFFFFFFFF  # "0x400", "1024" or "-1" (ANY)


def find_channels(name: str, *, dst: int | None = None, src: int | None = None) -> list[Path]:
    """The sysfs directories of the channel devices called ``name`` (with that ``dst`` /
    ``src`` if given), in sysfs order."""
    found = []
    for device in sorted(SYS_DEVICES.glob("*")):
        try:
            if read_attr(device, "name") != name:
                continue
            if dst is not None and _addr(read_attr(device, "dst")) != dst:
                continue
            if src is not None and _addr(read_attr(device, "src")) != src:
                continue
        except OSError:
            continue  # removed meanwhile
        found.append(device)
    return found


def find_channel(name: str, *, dst: int | None = None, src: int | None = None) -> Path | None:
    """The first of :func:`find_channels`, or None."""
    return next(iter(find_channels(name, dst=dst, src=src)), None)


def wait_channel(
    name: str, *, dst: int | None = None, src: int | None = None, timeout: float = 10.0
) -> Path:
    """Wait for :func:`find_channel` to find one."""
    return poll_until(lambda: find_channel(name, dst=dst, src=src), f"channel {name!r}", timeout)


def _node(sysdir: Path, timeout: float) -> Path:
    """``/dev/<name>`` of a class device (devtmpfs names the node after the device)."""
    node = Path("/dev") / sysdir.name
    return poll_until(lambda: node if node.exists() else None, str(node), timeout)


def channel_chardev(channel: Path, timeout: float = 10.0) -> Path:
    """``/dev/rpmsgN`` that ``rpmsg_chrdev`` created for the channel device ``channel``."""

    def find() -> Path | None:
        return next(iter(sorted((channel / "rpmsg").glob("rpmsg[0-9]*"))), None)

    return _node(poll_until(find, f"rpmsg char device of {channel.name}", timeout), timeout)


def channel_tty(channel: Path, timeout: float = 10.0) -> Path:
    """``/dev/ttyRPMSGN`` that ``rpmsg_tty`` created for the channel device ``channel``."""

    def find() -> Path | None:
        return next(iter(sorted((channel / "tty").glob("ttyRPMSG*"))), None)

    return _node(poll_until(find, f"tty of {channel.name}", timeout), timeout)


def _endpoints() -> set[str]:
    return {p.name for p in SYS_CLASS.glob("rpmsg[0-9]*")}


def create_endpoint(
    name: str, dst: int, src: int = RPMSG_ADDR_ANY, ctrl: Path = DEFAULT_CTRL
) -> Path:
    """``RPMSG_CREATE_EPT_IOCTL``: a local endpoint sending to ``dst``; its ``/dev/rpmsgN``
    (the new class device of that name and addresses)."""
    before = _endpoints()
    _ctrl_ioctl(ctrl, RPMSG_CREATE_EPT_IOCTL, endpoint_info(name, src, dst))

    def find() -> Path | None:
        for new in sorted(_endpoints() - before):
            device = SYS_CLASS / new
            try:
                attrs = [read_attr(device, a) for a in ("name", "src", "dst")]
            except OSError:
                continue
            if attrs[0] == name and (_addr(attrs[1]), _addr(attrs[2])) == (src, dst):
                return device
        return None

    return _node(poll_until(find, f"endpoint device {name!r}"), 10.0)


def create_device(
    name: str, src: int, dst: int = RPMSG_ADDR_ANY, ctrl: Path = DEFAULT_CTRL
) -> None:
    """``RPMSG_CREATE_DEV_IOCTL``: a channel on the kernel's side, announced to the remote once
    a driver binds it (``src`` must be a fixed address: the kernel announces only those)."""
    _ctrl_ioctl(ctrl, RPMSG_CREATE_DEV_IOCTL, endpoint_info(name, src, dst))


def release_device(
    name: str, src: int, dst: int = RPMSG_ADDR_ANY, ctrl: Path = DEFAULT_CTRL
) -> None:
    """``RPMSG_RELEASE_DEV_IOCTL``: remove the channel :func:`create_device` made."""
    _ctrl_ioctl(ctrl, RPMSG_RELEASE_DEV_IOCTL, endpoint_info(name, src, dst))


def _ctrl_ioctl(ctrl: Path, request: int, arg: bytes) -> None:
    fd = os.open(ctrl, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, request, arg)
    finally:
        os.close(fd)
