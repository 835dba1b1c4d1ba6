"""Guest program: an endpoint of its own through /dev/rpmsg_ctrl0 (RPMSG_CREATE_EPT_IOCTL), to
aioamp's echo service SERVICE (found through sysfs): every payload size 1..496 byte for byte,
then COUNT numbered messages (WINDOW in flight) checked in order.

Usage (in the guest): python ctrl_echo.py SERVICE COUNT WINDOW. Prints ``guest: ...`` lines;
exit status 0 only if every echo matched.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys

from platforms.uml.guest_rpmsg import (
    RPMSG_DESTROY_EPT_IOCTL,
    create_endpoint,
    read_attr,
    wait_channel,
)

MTU = 496  # 512-byte buffers (virtio_rpmsg_bus) less the 16-byte header
SEQ = struct.Struct("<I")


def sized(size: int) -> bytes:
    """``size`` bytes that differ from every other size's (a shifted echo shows)."""
    return bytes((size * 7 + i) & 0xFF for i in range(size))


def numbered(seq: int) -> bytes:
    return SEQ.pack(seq) + bytes(seq % 29)


def main(service: str, count: int, window: int) -> int:
    channel = wait_channel(service)
    dst = int(read_attr(channel, "dst"), 0)
    dev = create_endpoint("aioamp-guest", dst)
    print(f"guest: {channel.name}: aioamp's {service} at {dst:#x}; endpoint {dev}", flush=True)
    fd = os.open(dev, os.O_RDWR)
    for size in range(1, MTU + 1):
        os.write(fd, sized(size))  # one write is one message
        echo = os.read(fd, 4096)  # one read is one message
        if echo != sized(size):
            print(f"guest: size {size}: echo of {len(echo)} bytes differs", flush=True)
            return 1
    print(f"guest: every size 1..{MTU} echoed byte for byte", flush=True)
    sent = received = 0
    while received < count:
        while sent < count and sent - received < window:
            os.write(fd, numbered(sent))
            sent += 1
        echo = os.read(fd, 4096)
        if echo != numbered(received):
            print(f"guest: message {received} out of order: {echo[:8].hex()}", flush=True)
            return 1
        received += 1
    print(f"guest: {count} messages echoed in order", flush=True)
    fcntl.ioctl(fd, RPMSG_DESTROY_EPT_IOCTL)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
