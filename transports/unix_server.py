"""Unix stream sockets at a path, for the transports whose ends meet on one (``shm://`` and
``openamp:``'s doorbell, ``vhost-user:``): who serves a path, stale sockets, connecting.

Theory of operation: whoever serves ``SOCKET`` holds ``SOCKET.lock`` (``flock``) for as long as
it serves, so a second server for the same path is refused instead of destroying a live
session. The holder removes the lock file while it still holds the lock, and a taker checks
after locking that the file it locked is still the one at the path (else it raced with a holder
leaving, and retries), so no lock file is left behind and no two servers can both win.

Stale sockets. A server that ends in order removes its socket, then its lock file. A server
killed with SIGKILL (or crashed) cannot: it leaves both behind, and they are *stale*, because
its ``flock`` died with it. Nobody but the next server for the path cleans them up: it takes the
lock (so no live server holds it), replaces the stale socket, and removes both when it closes.
:func:`remove_stale_socket` does the same cleanup without serving. A path that holds anything
but a socket is never replaced. A client that finds a stale socket gets ECONNREFUSED, as if no
server listened, and keeps retrying until its deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import time
from pathlib import Path

import anyio

from .errors import TransportError


class ServerLock:
    """``SOCKET.lock``, held with ``flock`` by the side that serves ``SOCKET``."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, sock_path: Path) -> ServerLock | None:
        """The lock, or None if another server holds it."""
        path = f"{sock_path}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, path):
                    return cls(path, fd)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed it between our open and our flock: retry

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the file while still holding the lock, then let go (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if _same_file(fd, self.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _remove_stale(sock_path: Path) -> None:
    """Remove the socket at ``sock_path`` (the caller holds its lock: no live server uses it).

    Raises:
        TransportError: something other than a socket is there; it is left alone.
    """
    try:
        mode = sock_path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise TransportError(f"{sock_path} exists and is not a socket: not replaced")
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()


def bind_server(sock_path: Path, lock: ServerLock, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``sock_path``, whose ``lock`` the caller holds: a
    stale socket there is replaced (module doc).

    Raises:
        TransportError: a file that is not a socket is in the way, or binding failed.
    """
    assert lock.held, "bind_server needs the path's lock held"
    _remove_stale(sock_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        server.bind(str(sock_path))
        server.listen(backlog)
        server.setblocking(False)
    except OSError as exc:
        server.close()
        raise TransportError(f"cannot listen on {sock_path}: {exc}") from exc
    return server


def remove_stale_socket(sock_path: str | os.PathLike[str]) -> bool:
    """Clean up after a server that was killed: remove the stale socket at ``sock_path`` and its
    lock file, as the next server would. False (nothing removed) if a live server holds the
    path.

    Raises:
        TransportError: something other than a socket is at the path; it is left alone.
    """
    path = Path(sock_path)
    lock = ServerLock.take(path)
    if lock is None:
        return False
    try:
        _remove_stale(path)
    finally:
        lock.release()
    return True


def try_connect(sock_path: Path) -> socket.socket | None:
    """A non-blocking connection to a server listening on ``sock_path`` now, or None (no
    socket, or a stale one)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(str(sock_path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def connect(sock_path: Path, connect_timeout: float) -> socket.socket:
    """Connect to ``sock_path``, retrying until ``connect_timeout``.

    Raises:
        TransportError: no server accepted within the deadline.
    """
    deadline = time.monotonic() + connect_timeout
    while True:
        sock = try_connect(sock_path)
        if sock is not None:
            return sock
        if time.monotonic() >= deadline:
            raise TransportError(f"could not connect to {sock_path} within {connect_timeout} s")
        await anyio.sleep(0.02)
