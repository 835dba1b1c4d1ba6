"""What sysfs files and uevent messages say, parsed. Pure: text and bytes in, values out.

Theory of operation: the kernel prints each attribute with its own format, and the same field
differs between drivers, so every parser here cites the line that prints it:

* rpmsg bus devices (``drivers/rpmsg/rpmsg_core.c``, ``rpmsg_show_attr``): ``name`` "%s",
  ``src`` and ``dst`` "0x%x", ``announce`` "true"/"false"; ``driver_override`` (the driver
  core's, ``drivers/base/bus.c``) "%s", which prints "(null)" when unset.
* rpmsg char devices (``drivers/rpmsg/rpmsg_char.c``): ``name`` "%s", ``src`` and ``dst``
  "%d": a signed print of a u32, so RPMSG_ADDR_ANY reads "-1".
* every device's ``uevent`` file: ``KEY=VALUE`` lines (MAJOR, MINOR, DEVNAME, DRIVER...).
* uevent messages on a NETLINK_KOBJECT_UEVENT socket, two formats:

  - the kernel's (group 1, ``lib/kobject_uevent.c``): ``ACTION@DEVPATH\\0`` then
    ``KEY=VALUE\\0`` pairs;
  - udevd's re-broadcast (group 2, systemd ``src/libudev/libudev-monitor.c``, ``struct
    monitor_netlink_header``): the 8 bytes ``libudev\\0``, a big-endian magic 0xfeedcafe,
    then native-endian ``header_size``, ``properties_off``, ``properties_len`` and four
    filter words; the properties are ``KEY=VALUE\\0`` pairs at ``properties_off``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import attrs

#: RPMSG_ADDR_ANY.
ADDR_ANY = 0xFFFFFFFF
#: The bus's own devices (rpmsg_virtio_add_ctrl_dev, rpmsg_ns): never channels.
INTERNAL = frozenset({"rpmsg_ctrl", "rpmsg_ns"})
#: struct monitor_netlink_header after its 8-byte prefix: magic (big-endian), then 7 unsigned.
_UDEV_PREFIX = b"libudev\0"
_UDEV_MAGIC = struct.Struct(">I")
_UDEV_FIELDS = struct.Struct("=III")  # header_size, properties_off, properties_len
UDEV_MAGIC = 0xFEEDCAFE


@attrs.frozen
class RpmsgDevice:
    """One device of ``/sys/bus/rpmsg/devices`` (rpmsg_core.c's attributes)."""

    device: str  # its kernel name, e.g. "virtio0.echo.-1.1025"
    path: str  # its real path under /sys/devices
    name: str
    src: int
    dst: int
    announce: bool
    driver: str | None
    driver_override: str | None

    @property
    def is_channel(self) -> bool:
        """Announced by the remote (not one of ours, not the bus's own)."""
        return not self.announce and self.name not in INTERNAL


def parse_address(text: str) -> int:
    """An rpmsg address as sysfs prints it: "0x400" (rpmsg_core.c) or "1024" / "-1"
    (rpmsg_char.c prints a u32 with %d). Returns the u32 (-1 is ADDR_ANY).

    Raises:
        ValueError: not a number, or outside 32 bits.
    """
    value = int(text.strip(), 0)
    if value < 0:
        value &= ADDR_ANY
        if value < 0x80000000:
            raise ValueError(f"address {text.strip()!r} is below -2**31")
    if value > ADDR_ANY:
        raise ValueError(f"address {text.strip()!r} is not a 32-bit value")
    return value


def parse_bool(text: str) -> bool:
    """rpmsg_core.c's ``announce``: "true" or "false"."""
    value = text.strip()
    if value not in ("true", "false"):
        raise ValueError(f"{value!r} is neither 'true' nor 'false'")
    return value == "true"


def parse_driver_override(text: str) -> str | None:
    """``driver_override``: the driver name, or None when unset (printed "(null)" or empty)."""
    value = text.strip()
    return None if value in ("", "(null)") else value


def parse_uevent_file(text: str) -> dict[str, str]:
    """A device's ``uevent`` file: ``KEY=VALUE`` lines (lines without "=" are skipped)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            env[key] = value
    return env


@attrs.frozen
class Uevent:
    """One uevent: what happened (``add``, ``remove``, ``bind``, ``unbind``, ``change``...)
    to which device (``devpath``, under /sys), and the rest of its environment."""

    action: str
    devpath: str
    subsystem: str
    env: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def devname(self) -> str | None:
        """The /dev node's name, for devices that have one (e.g. ``rpmsg3``)."""
        return self.env.get("DEVNAME")

    @property
    def name(self) -> str:
        """The device's kernel name: the last component of its devpath."""
        return self.devpath.rstrip("/").rpartition("/")[2]


def _pairs(blob: bytes) -> dict[str, str]:
    env: dict[str, str] = {}
    for field in blob.split(b"\0"):
        key, sep, value = field.partition(b"=")
        if sep and key:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def _event(env: dict[str, str]) -> Uevent | None:
    action, devpath = env.get("ACTION"), env.get("DEVPATH")
    if not action or not devpath:
        return None
    return Uevent(action, devpath, env.get("SUBSYSTEM", ""), env)


def parse_uevent_message(data: bytes) -> Uevent | None:
    """A NETLINK_KOBJECT_UEVENT datagram, in the kernel's or udevd's format; None for
    anything else (a truncated or foreign message is not an error: the socket is shared)."""
    if data.startswith(_UDEV_PREFIX):
        head = len(_UDEV_PREFIX)
        if len(data) < head + _UDEV_MAGIC.size + _UDEV_FIELDS.size:
            return None
        (magic,) = _UDEV_MAGIC.unpack_from(data, head)
        if magic != UDEV_MAGIC:
            return None
        _size, off, length = _UDEV_FIELDS.unpack_from(data, head + _UDEV_MAGIC.size)
        if off + length > len(data):
            return None
        return _event(_pairs(data[off : off + length]))
    first, sep, rest = data.partition(b"\0")
    if not sep or b"@" not in first:
        return None
    return _event(_pairs(rest))


def pack_kernel_uevent(action: str, devpath: str, env: Mapping[str, str]) -> bytes:
    """A uevent in the kernel's netlink format (``lib/kobject_uevent.c``): what a model of
    the kernel sends, and what :func:`parse_uevent_message` reads back."""
    fields = {"ACTION": action, "DEVPATH": devpath, **env}
    body = b"".join(f"{k}={v}".encode() + b"\0" for k, v in fields.items())
    return f"{action}@{devpath}".encode() + b"\0" + body
