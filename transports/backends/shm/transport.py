"""Shared-memory transport between processes: a POSIX shm object plus a unix-socket doorbell.

Theory of operation: the vrings, the buffer pool and the resource table (vdev config) live in
one POSIX shared-memory object (an mmap of ``/dev/shm/NAME``), laid out by
:class:`~transports.virtio.layout.SharedLayout`. Notifications travel over a unix stream socket: a
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
``SOCKET.lock`` and serves; a second aioamp server for the same socket is refused instead of
destroying a live session (see :mod:`transports.shm_socket`).

Both ends say hello with their role right after connecting: two hosts or two remotes on one
name fail at once with :class:`RoleClashError`. With ``openamp:`` the peer may be OpenAMP's C
code, which sends no hello: there the hello is checked when (if) the first bytes arrive.

An orderly close sends a goodbye byte before closing the socket; EOF after it closes the other
end with "the peer closed the link" (:attr:`Transport.peer_closed`), while EOF or a reset
without it means the peer vanished ("process gone?"). Either way the bus on top fails every
pending and later operation promptly. Everything read from the object is validated by the ring
code above, since the peer is another process and may be buggy.
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
from pathlib import Path

import anyio

from ...base import Role, Transport
from ...doorbell import NotifyHandler
from ...errors import TransportClosedError, TransportError, TransportURLError
from ...virtio.layout import SharedLayout
from ...virtio.memory import DeviceMemory, Region
from ...virtio.vdev import LINUX_QUIRKS, VirtioQuirks, single_vdev_view
from .session import (
    GOODBYE,
    KICK,
    PeerHello,
    ServerLock,
    connect,
    read_hello,
    send_hello,
    serve,
    try_connect,
)

SHM_DIR = Path("/dev/shm")
_NAME_MAX = 255
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
        lock: ServerLock | None = None,
        quirks: VirtioQuirks = LINUX_QUIRKS,
        hello_checked: bool = True,
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
        self._lock = lock
        # openamp: the peer's hello (if it is aioamp) is still to come.
        self._hello = None if hello_checked else PeerHello(role, name)
        self._goodbye = False
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
            if self._goodbye:
                self._peer_closed = True
                self._fail(f"{self.name}: the peer closed the link")
            else:
                self._fail(f"{self.name}: the peer closed the connection (process gone?)")
            return -1
        if self._hello is not None:
            try:
                used = self._hello.take(self._kick_buf, count)
            except TransportError as exc:  # a role clash
                self._fail(str(exc))
                return -1
            if self._hello.done:
                self._hello = None
            if used:
                self._kick_buf[: count - used] = self._kick_buf[used:count]
                count -= used
        if count > 0 and self._kick_buf[count - 1] == GOODBYE:
            self._goodbye = True  # its last byte: EOF follows
            count -= 1
        # Whatever arrived is a notification: the peer skips kicks while its earlier bytes
        # (a hello too) wait unread, so having read them we must rescan.
        count = max(count, 1)
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
        _release_link(self._sock, self._owned, self._lock)

    def abort(self) -> None:
        """Close without a goodbye (the link never came up: a failed hello)."""
        if not self._closed:
            self._closed = True
            self._close_reason = f"{self.name}: transport aborted"
            self._release()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = f"{self.name}: transport closed"
            with contextlib.suppress(OSError):  # the peer may be gone already
                self._sock.send(bytes([GOODBYE]))
            self._release()
        # The mapping goes away with the last view of it (rings and endpoints may still hold
        # memoryviews); closing it now would raise BufferError.


def _release_link(
    sock: socket.socket | None, owned: tuple[Path, ...], lock: ServerLock | None
) -> None:
    """Hang up and remove what we created; the lock last, once the socket is gone."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
    for path in owned:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if lock is not None:
        lock.release()


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
    handshake: bool = True,
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
        handshake: True: the peer is aioamp and must say hello (with its role) within
            ``connect_timeout``; False: it may be OpenAMP's C code, which never does, so its
            hello is checked only if its first bytes are one.

    Raises:
        RoleClashError: the peer opened the link in our role.
        TransportURLError: an invalid object name.
        TransportError: no peer, an object that does not fit ``layout``, a peer that is
            not aioamp (with ``handshake``).
    """
    if role not in ("host", "remote"):
        raise TransportURLError(f"role must be 'host' or 'remote', not {role!r}")
    layout = layout or SharedLayout()
    path = shm_path(name)
    sock_path = Path(socket_path) if socket_path is not None else Path(f"/tmp/aioamp-{name}.sock")
    where = f"shm:{name}"
    size = layout.total_size
    lock: ServerLock | None = None
    sock: socket.socket | None = None
    if listen is None:
        sock = try_connect(sock_path)  # a server (ours or OpenAMP's) already listens
        if sock is None:
            lock = ServerLock.take(sock_path)
    elif listen:
        lock = ServerLock.take(sock_path)
        if lock is None:
            raise TransportError(f"another aioamp process already serves {sock_path}")
    owned: tuple[Path, ...] = ()
    mapping: mmap.mmap | None = None
    try:
        if lock is not None:
            owned = (path, sock_path)
            mapping = _create_object(path, size)
            table = layout.table()
            mapping[: len(table)] = table
            sock = await serve(sock_path, accept_timeout)
        elif sock is None:
            sock = await connect(sock_path, connect_timeout)
        if mapping is None:
            mapping = _open_object(path, size)
        transport = ShmTransport(
            role=role,
            layout=layout,
            mapping=mapping,
            sock=sock,
            owned_paths=owned,
            name=where,
            quirks=quirks,
            lock=lock,
            hello_checked=handshake,
        )
    except BaseException as exc:
        _release_link(sock, owned, lock)
        if isinstance(exc, Exception) and not isinstance(exc, TransportError):
            raise TransportError(f"shared-memory object {path}: {exc}") from exc
        raise
    try:
        send_hello(sock, role)
        if handshake:
            await read_hello(sock, role, where, connect_timeout)
    except BaseException:
        transport.abort()
        raise
    return transport
