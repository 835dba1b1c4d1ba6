"""Guest program: the ``rpmsg-raw`` channels aioamp announced, each bound by the kernel's
rpmsg_chrdev driver and reached through the /dev/rpmsgN that sysfs names for it. To each, one
message of each SIZE, starting with the channel's destination address, echoed byte for byte.

Usage (in the guest): python chrdev_raw.py CHANNELS SIZE... Exit status 0 only if every echo
matched.
"""

from __future__ import annotations

import os
import sys

from platforms.uml.guest_rpmsg import (
    channel_chardev,
    find_channels,
    poll_until,
    read_attr,
)


def addressed(dst: int, size: int) -> bytes:
    """``size`` bytes naming ``dst``: the remote can tell which channel a message came on."""
    return (f"{dst:#x};".encode() * size)[:size]


def main(expected: int, sizes: list[int]) -> int:
    channels = poll_until(
        lambda: found if len(found := find_channels("rpmsg-raw")) >= expected else None,
        f"{expected} rpmsg-raw channels",
    )
    for channel in channels:
        dst = int(read_attr(channel, "dst"), 0)
        dev = channel_chardev(channel)
        driver = (channel / "driver").resolve().name
        fd = os.open(dev, os.O_RDWR)
        try:
            for size in sizes:
                os.write(fd, addressed(dst, size))
                if os.read(fd, 4096) != addressed(dst, size):
                    print(f"guest: {dev}: the echo of {size} bytes differs", flush=True)
                    return 1
        finally:
            os.close(fd)
        print(f"guest: rpmsg-raw {dst:#x}: {dev} (driver {driver}) echoed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), [int(a) for a in sys.argv[2:]]))
