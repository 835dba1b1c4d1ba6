"""Running a simulated core's firmware program in its own OS process.

Theory of operation: with ``SimPlatform(process=True)`` the simulated DDR (and internal
memories) live in a POSIX shared-memory object instead of a bytearray. The host creates it,
maps it and unlinks its name at once (the memory lives as long as a mapping or descriptor does,
so nothing can be left behind in /dev/shm), then starts ``python -m platforms.sim.child`` for
each boot, handing it the object's descriptor and one end of a socketpair. The child maps the
memory at the device addresses the host programmed (the simulated IOMMU) and runs the program:
host and remote share only memory and a doorbell, as on a real SoC.

The doorbell carries frames ``<BI`` (kind, value): KICK with a notify id in either direction;
CRASH with the length of a JSON ``{"kind", "detail"}`` that follows. The child exiting without
being stopped (a crash, ``kill -9``) is seen as EOF and reported as a crash.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

FRAME = struct.Struct("<BI")
KICK = 1
CRASH = 2


def kick_frame(notifyid: int) -> bytes:
    return FRAME.pack(KICK, notifyid)


def crash_frame(kind: str, detail: str) -> bytes:
    body = json.dumps({"kind": kind, "detail": detail}).encode()
    return FRAME.pack(CRASH, len(body)) + body


class FrameReader:
    """Splits a byte stream into frames; calls ``on_kick(notifyid)`` / ``on_crash(kind,
    detail)``. Malformed input is counted, never raised."""

    MAX_BODY = 4096

    def __init__(
        self, on_kick: Callable[[int], None], on_crash: Callable[[str, str], None]
    ) -> None:
        self._buf = bytearray()
        self._on_kick = on_kick
        self._on_crash = on_crash
        self.malformed = 0

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= FRAME.size:
            kind, value = FRAME.unpack_from(buf, 0)
            if kind == KICK:
                del buf[: FRAME.size]
                self._on_kick(value)
            elif kind == CRASH and value <= self.MAX_BODY:
                if len(buf) < FRAME.size + value:
                    return
                body = bytes(buf[FRAME.size : FRAME.size + value])
                del buf[: FRAME.size + value]
                try:
                    doc = json.loads(body)
                    self._on_crash(str(doc["kind"]), str(doc["detail"]))
                except (ValueError, KeyError, TypeError):
                    self.malformed += 1
            else:
                self.malformed += 1
                buf.clear()
