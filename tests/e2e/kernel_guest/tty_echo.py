"""Guest program: /dev/ttyRPMSGN of aioamp's ``rpmsg-tty`` service (the kernel's rpmsg_tty
driver; the node found through sysfs), in raw mode: SIZE bytes written (the tty splits them
into messages of at most the MTU) come back as the same byte stream.

Usage (in the guest): python tty_echo.py SIZE. Exit status 0 only if the stream matched.
"""

from __future__ import annotations

import os
import sys
import tty

from platforms.uml.guest_rpmsg import channel_tty, wait_channel


def main(size: int) -> int:
    channel = wait_channel("rpmsg-tty")
    dev = channel_tty(channel)
    fd = os.open(dev, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)  # no echo, no line discipline, no signals: bytes as they are
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    echoed = bytearray()
    while len(echoed) < size:
        echoed += os.read(fd, 4096)
    os.close(fd)
    if echoed != data:
        print(f"guest: {dev}: the echoed stream differs", flush=True)
        return 1
    print(f"guest: {dev}: {size} bytes echoed through rpmsg-tty", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
