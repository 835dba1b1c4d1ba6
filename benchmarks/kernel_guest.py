"""The guest half of the kernel benchmark (:mod:`benchmarks.kernel`): runs inside the UML guest
as ``python -m benchmarks.kernel_guest COUNT SIZE...``.

For each size, ``COUNT`` round trips (after a warm-up) from this guest process through the
``/dev/rpmsgN`` of aioamp's ``rpmsg-raw`` echo service (bound by the kernel's rpmsg_chrdev,
found through sysfs) to the aioamp remote and back; then, as the baseline measured in the same
kernel, a ping-pong of the same size and count over two pipes with a forked guest process.
Prints one line: :data:`MARKER` and the JSON ``{"SIZE": {"rpmsg": {...}, "pipe": {...}}}``
(median and p99 in microseconds, by the guest's clock).
"""

from __future__ import annotations

import json
import os
import sys
import time

from platforms.uml.guest_rpmsg import channel_chardev, wait_channel

from .common import ECHO, payload, rtt_stats

MARKER = "aioamp-bench-kernel: "
_WARMUP = 50


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the pipe closed")
        data += chunk
    return data


def rpmsg_rtt(dev: str, size: int, count: int) -> dict[str, float]:
    """Round trips through ``dev``: one write is one message, one read its echo."""
    data = payload(ECHO, size)
    fd = os.open(dev, os.O_RDWR)
    samples = []
    try:
        for i in range(count + _WARMUP):
            t0 = time.perf_counter()
            os.write(fd, data)
            echo = os.read(fd, 4096)
            if i >= _WARMUP:
                samples.append(time.perf_counter() - t0)
            if echo != data:
                raise RuntimeError(f"{dev}: the echo of {size} bytes differs")
    finally:
        os.close(fd)
    return rtt_stats(samples)


def pipe_rtt(size: int, count: int) -> dict[str, float]:
    """Round trips to a forked guest process over two pipes (it echoes what it reads)."""
    data = payload(ECHO, size)
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo process
        os.close(from_parent)
        os.close(to_parent)
        try:
            while True:
                os.write(from_child, _read_exactly(to_child, size))
        except EOFError:
            os._exit(0)
    os.close(to_child)
    os.close(from_child)
    samples = []
    try:
        for i in range(count + _WARMUP):
            t0 = time.perf_counter()
            os.write(from_parent, data)
            _read_exactly(to_parent, size)
            if i >= _WARMUP:
                samples.append(time.perf_counter() - t0)
    finally:
        os.close(from_parent)  # EOF: the child exits
        os.close(to_parent)
        os.waitpid(pid, 0)
    return rtt_stats(samples)


def main(argv: list[str]) -> int:
    count, sizes = int(argv[0]), [int(a) for a in argv[1:]]
    dev = str(channel_chardev(wait_channel("rpmsg-raw")))
    results = {
        str(size): {"rpmsg": rpmsg_rtt(dev, size, count), "pipe": pipe_rtt(size, count)}
        for size in sizes
    }
    print(MARKER + json.dumps({"device": dev, "sizes": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
