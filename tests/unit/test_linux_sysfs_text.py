"""What sysfs files and uevent datagrams say (platforms.linux.sysfs_text), in the formats the
kernel prints them; the datagrams are those a UML guest's kernel sent."""

from __future__ import annotations

import struct

import pytest

from platforms.linux.sysfs_text import (
    ADDR_ANY,
    UDEV_MAGIC,
    RpmsgDevice,
    pack_kernel_uevent,
    parse_address,
    parse_bool,
    parse_driver_override,
    parse_uevent_file,
    parse_uevent_message,
)

#: Recorded from the UML guest (Linux 6.12) when rpmsg_chrdev was bound to a service.
BIND = (
    b"bind@/devices/virtio-uml-cmdline/virtio-uml.0/virtio0/virtio0.guest-svc.1100.-1\0"
    b"ACTION=bind\0DEVPATH=/devices/virtio-uml-cmdline/virtio-uml.0/virtio0/"
    b"virtio0.guest-svc.1100.-1\0SUBSYSTEM=rpmsg\0DRIVER=rpmsg_chrdev\0"
    b"MODALIAS=rpmsg:guest-svc\0SEQNUM=275\0"
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x400\n", 0x400),  # rpmsg_core.c: "0x%x"
        ("0xffffffff\n", ADDR_ANY),
        ("1024\n", 1024),  # rpmsg_char.c: "%d"
        ("-1\n", ADDR_ANY),  # a u32 printed with %d
        ("-2147483648\n", 0x80000000),
    ],
)
def test_addresses_in_both_formats(text: str, value: int) -> None:
    assert parse_address(text) == value


@pytest.mark.parametrize("text", ["", "x", "0x100000000", "-2147483649"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_announce_and_driver_override() -> None:
    assert parse_bool("true\n") is True and parse_bool("false\n") is False
    with pytest.raises(ValueError):
        parse_bool("yes")
    assert parse_driver_override("(null)\n") is None
    assert parse_driver_override("\n") is None
    assert parse_driver_override("rpmsg_chrdev\n") == "rpmsg_chrdev"


def test_uevent_file() -> None:
    assert parse_uevent_file("MAJOR=254\nMINOR=0\nDEVNAME=rpmsg0\nnoise\n") == {
        "MAJOR": "254",
        "MINOR": "0",
        "DEVNAME": "rpmsg0",
    }


def test_a_kernel_uevent() -> None:
    event = parse_uevent_message(BIND)
    assert event is not None
    assert (event.action, event.subsystem, event.name) == (
        "bind",
        "rpmsg",
        "virtio0.guest-svc.1100.-1",
    )
    assert event.env["DRIVER"] == "rpmsg_chrdev" and event.devname is None


def test_a_udev_uevent() -> None:
    props = b"ACTION=add\0DEVPATH=/devices/x/rpmsg/rpmsg3\0SUBSYSTEM=rpmsg\0DEVNAME=/dev/rpmsg3\0"
    header = struct.pack(">I", UDEV_MAGIC) + struct.pack("=IIIIIII", 40, 40, len(props), 0, 0, 0, 0)
    event = parse_uevent_message(b"libudev\0" + header + props)
    assert event is not None
    assert (event.action, event.devpath, event.devname) == (
        "add",
        "/devices/x/rpmsg/rpmsg3",
        "/dev/rpmsg3",
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no separator",
        b"add /devices/x\0ACTION=add\0",  # no '@' in the header line
        b"add@/devices/x\0SUBSYSTEM=rpmsg\0",  # no ACTION/DEVPATH
        b"libudev\0\x00\x00",  # truncated header
        b"libudev\0" + b"\xde\xad\xbe\xef" + bytes(28),  # wrong magic
        b"libudev\0" + struct.pack(">I", UDEV_MAGIC) + struct.pack("=III", 40, 40, 999) + bytes(16),
    ],
)
def test_foreign_or_broken_datagrams_are_skipped(data: bytes) -> None:
    assert parse_uevent_message(data) is None


def test_packed_kernel_uevents_read_back() -> None:
    raw = pack_kernel_uevent("change", "/devices/platform/r/remoteproc/remoteproc0", {"A": "1"})
    event = parse_uevent_message(raw)
    assert event is not None and event.action == "change" and event.env["A"] == "1"


def test_which_devices_are_channels() -> None:
    def dev(name: str, announce: bool) -> RpmsgDevice:
        return RpmsgDevice("d", "/sys/devices/v/d", name, 1024, 1025, announce, None, None)

    assert dev("echo", False).is_channel
    assert not dev("echo", True).is_channel  # one of ours (RPMSG_CREATE_DEV_IOCTL)
    assert not dev("rpmsg_ctrl", False).is_channel
    assert not dev("rpmsg_ns", False).is_channel
