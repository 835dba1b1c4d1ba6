"""Shared-memory transport between processes: a POSIX shm object plus a unix-socket doorbell.

Theory of operation: the vrings, the buffer pool and the resource table (vdev config) live in
one POSIX shared-memory object (an mmap of ``/dev/shm/NAME``), laid out by
:class:`~transports.layout.SharedLayout`. Notifications travel over a unix stream socket: a
kick is one byte (0x01, as OpenAMP's Linux port sends it) and carries no queue id, so the
receiver rescans both rings; many kicks queued in the socket cost one wake-up. Kicks are
further suppressed with the ring flags while the peer is busy draining (the engine does that).
The socket is read through the event loop's reader (``anyio.wait_readable``): no threads, no
polling.

Whichever side is the socket *server* creates the shared object: it removes a stale object or
socket of the same name left by an earlier run, writes a fresh resource table (state is reset,
never trusted), then listens; it removes both on close. The *client* connects (retrying until
``connect_timeout``) and only then maps the object and reads the table, validating it. Which
side is server is independent of the host / remote role. By default the side that starts first
serves: a process connects if a server already listens, else it takes the lock file
``SOCKET.lock`` (``flock``) and serves; a second aioamp server for the same socket is refused
instead of destroying a live session.

The peer dying shows up as EOF or a reset on the socket: the transport closes, and the bus on
top fails every pending and later operation promptly. Everything read from the object is
validated by the ring code above, since the peer is another process and may be buggy.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import mmap
import os
import socket
import sys
import termios
import time
from pathlib import Path

import anyio

from .base import Role, Transport
from .doorbell import NotifyHandler
from .errors import TransportClosedError, TransportError, TransportURLError
from .layout import SharedLayout
from .memory import DeviceMemory, Region
from .vdev import LINUX_QUIRKS, VirtioQuirks, single_vdev_view

SHM_DIR = Path("/dev/shm")
_NAME_MAX = 255
KICK = b"\x01"
#: Linux SIOCOUTQ (== TIOCOUTQ): unread bytes of a unix stream socket; 0 where unknown.
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0) if sys.platform == "linux" else 0


def shm_path(name: str) -> Path:
    """``/dev/shm/NAME``; names are single path components."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if not 0 < size <= _NAME_MAX or "/" in name or "\0" in name or name in (".", ".."):
        raise TransportURLError(
            f"invalid shared-memory object name {name!r} (1..{_NAME_MAX} bytes, no '/' or NUL)"
        )
    return SHM_DIR / name


class ShmTransport(Transport):
    """One end of a shared-memory link. Create with :func:`open_shm`."""

    def __init__(
        self,
        *,
        role: Role,
        layout: SharedLayout,
        mapping: mmap.mmap,
        sock: socket.socket,
        owned_paths: tuple[Path, ...],
        name: str,
        lock_fd: int | None = None,
        quirks: VirtioQuirks = LINUX_QUIRKS,
    ) -> None:
        mem = memoryview(mapping)
        region = Region(layout.base_da, mem[: layout.total_size], name)
        memory = DeviceMemory([region])
        vdev = single_vdev_view(memory.view(layout.base_da, layout.table_size))
        pool = Region(
            layout.base_da + layout.pool_offset,
            mem[layout.pool_offset : layout.pool_offset + layout.pool_size],
            f"{name}-pool",
        )
        super().__init__(role=role, memory=memory, vdev=vdev, pool=pool)
        self.quirks = quirks
        self.layout = layout
        self.name = name
        self.buffer_size = layout.buffer_size
        self._mapping = mapping
        self._sock = sock
        self._owned = owned_paths
        self._lock_fd = lock_fd
        self._handler: NotifyHandler | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._outq: array.array[int] | None = array.array("i", [0]) if _SIOCOUTQ else None
        self._kick_buf = bytearray(4096)

    def kick(self, vq: int) -> None:
        self._check_open()
        self.stats.kicks_sent += 1
        try:
            self._sock.send(KICK)
        except BlockingIOError:
            pass  # the socket buffer is full of kicks the peer has not read: it will wake
        except OSError as exc:
            self._fail(f"{self.name}: peer unreachable: {exc}")

    def kick_pending(self) -> bool:
        """Whether the peer has not read our last kick byte yet (a new kick would coalesce).

        On Linux ``SIOCOUTQ`` of a unix stream socket counts the bytes sent and not yet read
        by the peer: one cheap ioctl instead of a send that wakes nobody new. The peer reads
        the socket before it rescans the rings, so anything we wrote before this check is
        seen. Elsewhere (or on error) this says False and every kick is sent.
        """
        if self._outq is None or self._closed:
            return False
        try:
            fcntl.ioctl(self._sock.fileno(), _SIOCOUTQ, self._outq, True)
        except OSError:
            self._outq = None
            return False
        return self._outq[0] != 0

    def _fail(self, reason: str) -> None:
        """The link broke: close, and make sure whoever waits for notifications hears it
        (a task in wait_notification, or the handler), also when a kick discovered it."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        handler, loop = self._handler, self._reader_loop
        with contextlib.suppress(Exception):
            anyio.notify_closing(self._sock)  # wakes a pending wait_readable
        self._release()
        if handler is not None and loop is not None and not loop.is_closed():
            loop.call_soon(handler, 0, reason)

    def _read_kicks(self) -> int:
        """Consume the kick bytes waiting on the socket: their count, 0 if none yet, -1 if
        the link broke (the transport is then closed, see :meth:`_fail`)."""
        try:
            count = self._sock.recv_into(self._kick_buf)  # no bytes object per notification
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._fail(f"{self.name}: peer connection lost: {exc}")
            return -1
        if not count:
            self._fail(f"{self.name}: the peer closed the connection (process gone?)")
            return -1
        self.stats.notifications_received += count
        return count

    async def wait_notification(self) -> int:
        while True:
            self._check_open()
            count = self._read_kicks()
            if count > 0:
                return count
            if count < 0:
                raise TransportClosedError(self._close_reason)
            try:
                await anyio.wait_readable(self._sock)
            except (anyio.ClosedResourceError, OSError, ValueError):
                self._check_open()
                raise

    def set_notify_handler(self, handler: NotifyHandler | None) -> bool:
        """Read kicks with ``loop.add_reader`` and call ``handler`` from the event loop (no
        task wake-up per notification). asyncio loops only."""
        if handler is None:
            self._remove_reader()
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._remove_reader()
        if self._closed:
            return False
        self._handler = handler
        self._reader_loop = loop
        loop.add_reader(self._sock.fileno(), self._on_readable)
        return True

    def _remove_reader(self) -> None:
        loop, self._reader_loop = self._reader_loop, None
        self._handler = None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(self._sock.fileno())

    def _on_readable(self) -> None:
        handler = self._handler
        if handler is not None:
            count = self._read_kicks()  # a broken link schedules the handler (see _fail)
            if count > 0:
                handler(count, None)

    def _release(self) -> None:
        self._remove_reader()
        with contextlib.suppress(OSError):
            self._sock.close()
        for path in self._owned:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = f"{self.name}: transport closed"
            self._release()
        # The mapping goes away with the last view of it (rings and endpoints may still hold
        # memoryviews); closing it now would raise BufferError.


def _create_object(path: Path, size: int) -> mmap.mmap:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale object from an earlier run is never trusted
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def _open_object(path: Path, size: int) -> mmap.mmap:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise TransportError(f"shared-memory object {path} does not exist") from None
    try:
        actual = os.fstat(fd).st_size
        if actual < size:
            raise TransportError(f"shared-memory object {path} is {actual:#x} bytes < {size:#x}")
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


async def _serve(sock_path: Path, accept_timeout: float | None) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()  # stale socket from an earlier run
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(sock_path))
        server.listen(1)
        server.setblocking(False)
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


def _try_connect(sock_path: Path) -> socket.socket | None:
    """A connection to a server listening on ``sock_path`` now, or None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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


def _take_lock(sock_path: Path) -> int | None:
    """Hold ``SOCKET.lock`` exclusively (the right to serve), or None if another holds it."""
    fd = os.open(f"{sock_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


async def _connect(sock_path: Path, connect_timeout: float) -> socket.socket:
    deadline = time.monotonic() + connect_timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(sock_path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise TransportError(
                    f"could not connect to {sock_path} within {connect_timeout} s: {exc}"
                ) from None
            await anyio.sleep(0.02)
            continue
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock


async def open_shm(
    name: str,
    *,
    role: Role,
    layout: SharedLayout | None = None,
    listen: bool | None = None,
    socket_path: str | os.PathLike[str] | None = None,
    connect_timeout: float = 10.0,
    accept_timeout: float | None = None,
    quirks: VirtioQuirks = LINUX_QUIRKS,
) -> ShmTransport:
    """Open one end of the shared-memory link ``name``.

    Args:
        name: the shared-memory object (``/dev/shm/NAME``).
        role: ``host`` or ``remote``.
        layout: the memory layout (both ends must agree); default :class:`SharedLayout`.
        listen: True: be the socket server (creates the object); False: connect to one;
            None (default): whichever side starts first serves.
        socket_path: the doorbell socket; default ``/tmp/aioamp-NAME.sock``.
        connect_timeout: how long a client retries connecting.
        accept_timeout: how long a server waits for its peer (None: forever).
        quirks: the virtio handshake variant of the peer.
    """
    layout = layout or SharedLayout()
    path = shm_path(name)
    sock_path = Path(socket_path) if socket_path is not None else Path(f"/tmp/aioamp-{name}.sock")
    size = layout.total_size
    lock_fd: int | None = None
    sock: socket.socket | None = None
    if listen is None:
        sock = _try_connect(sock_path)  # a server (ours or OpenAMP's) already listens
        if sock is None:
            lock_fd = _take_lock(sock_path)
    elif listen:
        lock_fd = _take_lock(sock_path)
        if lock_fd is None:
            raise TransportError(f"another aioamp process already serves {sock_path}")
    if lock_fd is not None:
        try:
            mapping = _create_object(path, size)
            table = layout.table()
            mapping[: len(table)] = table
            sock = await _serve(sock_path, accept_timeout)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(lock_fd)
            raise
        owned: tuple[Path, ...] = (path, sock_path)
    else:
        if sock is None:
            sock = await _connect(sock_path, connect_timeout)
        try:
            mapping = _open_object(path, size)
        except BaseException:
            sock.close()
            raise
        owned = ()
    try:
        return ShmTransport(
            role=role,
            layout=layout,
            mapping=mapping,
            sock=sock,
            owned_paths=owned,
            name=f"shm:{name}",
            quirks=quirks,
            lock_fd=lock_fd,
        )
    except Exception as exc:
        sock.close()
        if lock_fd is not None:
            os.close(lock_fd)
        for p in owned:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if isinstance(exc, TransportError):
            raise
        raise TransportError(f"shared-memory object {path}: {exc}") from exc
