"""The doorbell socket of the shared-memory transport: who serves, connecting, hello, goodbye.

Theory of operation: the two ends of ``shm://NAME`` meet on a unix stream socket. Whoever
serves holds ``SOCKET.lock`` for the whole session (:mod:`transports.unix_server`: who serves a
path, and what a killed server leaves behind).

Bytes on the socket (no C structure: OpenAMP's Linux port only sends ``char dummy = 1`` and
reads whatever arrives as one notification):

* ``KICK`` (0x01): "rescan the rings", as OpenAMP sends it.
* a hello, once, right after connecting: :data:`HELLO_MAGIC` then the sender's role byte
  (``H`` host, ``R`` remote). Two ends in the same role learn it at once and both refuse the
  link (:class:`RoleClashError`) instead of waiting for a DRIVER_OK nobody will set.
* ``GOODBYE`` (0x04, EOT): the last byte of an orderly close, so the other end can tell "the
  peer closed the link" from "the peer vanished" (EOF without it: killed, crashed).

The hello and the goodbye read as spurious notifications to OpenAMP's C code, which is harmless.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import anyio

from ...base import Role
from ...errors import RoleClashError, TransportClosedError, TransportError
from ...socket_doorbell import SocketDoorbell
from ...unix_server import ServerLock, bind_server

KICK = b"\x01"
GOODBYE = 0x04
HELLO_MAGIC = b"\x7faioamp\x01"  # never starts with KICK or GOODBYE; the last byte: version
HELLO_SIZE = len(HELLO_MAGIC) + 1
_ROLE_BYTE: dict[Role, int] = {"host": ord("H"), "remote": ord("R")}


def hello(role: Role) -> bytes:
    return HELLO_MAGIC + bytes([_ROLE_BYTE[role]])


def check_hello(data: bytes | bytearray, role: Role, where: str) -> None:
    """Check the peer's complete hello against our ``role``.

    Raises:
        RoleClashError: the peer took our role.
        TransportError: the bytes are not an aioamp hello of this version.
    """
    if bytes(data[: len(HELLO_MAGIC)]) != HELLO_MAGIC or data[-1] not in _ROLE_BYTE.values():
        raise TransportError(
            f"{where}: the peer is not an aioamp shm:// peer of this version (it sent "
            f"{bytes(data)!r}); OpenAMP's C code talks openamp:"
        )
    if data[-1] == _ROLE_BYTE[role]:
        raise RoleClashError(
            f"{where}: role clash, the peer also opened the link as {role} "
            "(one end must be host and the other remote)"
        )


def send_hello(bell: SocketDoorbell, role: Role) -> None:
    """Our hello, the first bytes we send (a fresh socket has room for it)."""
    if not bell.send(hello(role)):
        raise TransportError(f"could not send the hello: {bell.send_error or bell.close_reason}")


async def read_hello(bell: SocketDoorbell, role: Role, where: str, timeout: float) -> None:
    """Wait (at most ``timeout`` s) for the peer's hello and check it (:func:`check_hello`).
    Reads no byte past it: the kicks that follow stay in the socket."""
    buf = bytearray()
    with anyio.move_on_after(timeout):
        while len(buf) < HELLO_SIZE and buf[:1] in (b"", HELLO_MAGIC[:1]):
            try:
                count = await bell.receive(HELLO_SIZE - len(buf))
            except TransportClosedError as exc:
                raise TransportError(f"{exc} before its hello") from None
            buf += bell.buffer[:count]
        check_hello(buf, role, where)  # a kick first: not an aioamp peer
        return
    raise TransportError(
        f"{where}: the peer did not say hello within {timeout} s (not an aioamp shm:// peer? "
        "OpenAMP's C code talks openamp:)"
    )


class PeerHello:
    """``openamp:``: the peer's hello off the first bytes it sends, if it sends one (an
    aioamp peer does, OpenAMP's C code does not: then every byte is a kick)."""

    def __init__(self, role: Role, where: str) -> None:
        self.role = role
        self.where = where
        self.done = False
        self._buf = bytearray()

    def take(self, data: bytearray, count: int) -> int:
        """How many of the ``count`` bytes at the start of ``data`` were hello bytes.

        Raises:
            RoleClashError: the hello names our role.
        """
        take = min(count, HELLO_SIZE - len(self._buf))
        self._buf += data[:take]
        prefix = min(len(self._buf), len(HELLO_MAGIC))
        if self._buf[:prefix] != HELLO_MAGIC[:prefix]:
            self.done = True  # no hello: these were kicks
            return 0
        if len(self._buf) == HELLO_SIZE:
            self.done = True
            check_hello(self._buf, self.role, self.where)
        return take


async def serve(sock_path: Path, lock: ServerLock, accept_timeout: float | None) -> socket.socket:
    """Listen on ``sock_path``, whose ``lock`` we hold (a stale socket is replaced, any other
    file refused), and accept one peer; the socket file is removed again if none came."""
    server = bind_server(sock_path, lock, 1)
    try:
        deadline = None if accept_timeout is None else time.monotonic() + accept_timeout
        while True:
            try:
                conn, _ = server.accept()
                break
            except BlockingIOError:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TransportError(
                        f"no peer connected to {sock_path} within {accept_timeout} s"
                    ) from None
                with anyio.move_on_after(remaining if remaining is not None else float("inf")):
                    await anyio.wait_readable(server)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        raise
    finally:
        server.close()
    conn.setblocking(False)
    return conn
