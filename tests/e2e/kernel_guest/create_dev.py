"""Guest program: RPMSG_CREATE_DEV_IOCTL on /dev/rpmsg_ctrl0 creates channel NAME at local
address SRC; the kernel's rpmsg_chrdev binds it and the kernel announces it to aioamp (NS
CREATE). Reads COUNT messages from the channel's /dev/rpmsgN (aioamp's driver, probed on the
announcement, sends them), then RPMSG_RELEASE_DEV_IOCTL withdraws the channel (NS DESTROY).
Last, asks aioamp's service SYNC what it saw: that question travels the same ring after the
NS DESTROY, so the answer reports aioamp's state after it handled the withdrawal.

Usage (in the guest): python create_dev.py NAME SRC COUNT SYNC.
"""

from __future__ import annotations

import os
import sys

from platforms.uml.guest_rpmsg import (
    channel_chardev,
    create_device,
    create_endpoint,
    find_channel,
    poll_until,
    read_attr,
    release_device,
    wait_channel,
)


def main(name: str, src: int, count: int, sync: str) -> int:
    create_device(name, src)
    channel = wait_channel(name, src=src)
    dev = channel_chardev(channel)
    print(f"guest: created {channel.name}: {dev}", flush=True)
    fd = os.open(dev, os.O_RDWR)
    try:
        for _ in range(count):
            print(f"guest: read {os.read(fd, 4096).decode()}", flush=True)
    finally:
        os.close(fd)
    release_device(name, src)
    poll_until(lambda: True if find_channel(name, src=src) is None else None, "the release")
    print(f"guest: released {channel.name}", flush=True)
    ask = create_endpoint("guest-sync", int(read_attr(wait_channel(sync), "dst"), 0))
    fd = os.open(ask, os.O_RDWR)
    os.write(fd, b"what did you see?")
    print(f"guest: aioamp says {os.read(fd, 4096).decode()}", flush=True)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3]), sys.argv[4]))
