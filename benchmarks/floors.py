"""The floors under every two-process figure (issue 15): what two processes on this machine
can do at best without an event loop, measured in the same run as rpmsg.

* ``blocking``: a bare blocking socketpair ping-pong (unix stream socket, both sides in
  blocking ``recv``/``sendall``, no event loop): the cost of a wake-up from sleep.
* ``spin``: a spinning shared-memory ping-pong (both sides busy-wait on a sequence number in
  one shared page, the payload copied each way): no wake-up at all, what busy polling
  approaches.

Both are round trips only, through the same ``_rtt`` loop as every other client (their
``send``/``recv`` never suspend, so the loop adds only a coroutine call). The peer side runs
:func:`serve` in its own process.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import time

#: The spin page: u32 request sequence at 0, u32 reply sequence at 4, u32 size at 8, the
#: request payload from 64, the reply payload from 64 + _SLOT.
_SEQ = struct.Struct("<I")
_SLOT = 4096
_STOP = 0xFFFFFFFF
_SIZE = 64 + 2 * _SLOT


class BlockingClient:
    """The measuring side of the blocking floor: serves the socket, then blocks."""

    async def open(self, address: str) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(1)
        self.sock, _ = server.accept()
        server.close()

    async def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    async def recv(self, size: int) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            chunk = self.sock.recv(size - len(buf))
            if not chunk:
                raise EOFError("the blocking peer went away")
            buf += chunk
        return bytes(buf)

    async def aclose(self) -> None:
        self.sock.close()


class SpinClient:
    """The measuring side of the spinning floor: creates the shared page (a file mapped by
    both: no POSIX shm object to track)."""

    async def open(self, address: str) -> None:
        with open(address, "wb") as f:
            f.truncate(_SIZE)
        with open(address, "r+b") as f:
            self.map = mmap.mmap(f.fileno(), _SIZE)
        self.buf = memoryview(self.map)
        self.seq = 0
        _SEQ.pack_into(self.buf, 4, 0)
        deadline = time.monotonic() + 30
        while _SEQ.unpack_from(self.buf, 12)[0] != 1:  # the peer says it is there
            if time.monotonic() > deadline:
                raise TimeoutError("the spinning peer never came")
            time.sleep(0.001)

    async def send(self, data: bytes) -> None:
        buf = self.buf
        n = len(data)
        buf[64 : 64 + n] = data
        _SEQ.pack_into(buf, 8, n)
        self.seq = (self.seq + 1) % _STOP
        _SEQ.pack_into(buf, 0, self.seq)

    async def recv(self, size: int) -> bytes:
        buf, seq, unpack = self.buf, self.seq, _SEQ.unpack_from
        while unpack(buf, 4)[0] != seq:
            pass
        return bytes(buf[64 + _SLOT : 64 + _SLOT + size])

    async def aclose(self) -> None:
        _SEQ.pack_into(self.buf, 0, _STOP)
        self.buf.release()
        self.map.close()


def serve(kind: str, address: str) -> None:
    """The peer of a floor (multiprocessing target): echo until the measuring side stops."""
    if kind == "blocking":
        _serve_blocking(address)
    else:
        _serve_spin(address)


def _serve_blocking(address: str) -> None:
    deadline = time.monotonic() + 30
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            sock.connect(address)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    with sock:
        while data := sock.recv(65536):
            sock.sendall(data)


def _serve_spin(address: str) -> None:
    deadline = time.monotonic() + 30
    while not (os.path.exists(address) and os.path.getsize(address) == _SIZE):
        if time.monotonic() > deadline:
            raise TimeoutError("the measuring side never made the page")
        time.sleep(0.01)
    with open(address, "r+b") as f:
        page = mmap.mmap(f.fileno(), _SIZE)
    buf, unpack, pack = memoryview(page), _SEQ.unpack_from, _SEQ.pack_into
    seen = 0
    pack(buf, 12, 1)
    try:
        while True:
            seq = unpack(buf, 0)[0]
            if seq == seen:
                continue
            if seq == _STOP:
                return
            n = unpack(buf, 8)[0]
            buf[64 + _SLOT : 64 + _SLOT + n] = buf[64 : 64 + n]
            pack(buf, 4, seq)
            seen = seq
    finally:
        buf.release()
        page.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/PID/stat``, fields 14-15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
