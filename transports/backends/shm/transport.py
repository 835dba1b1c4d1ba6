"""Shared-memory transport between processes: a POSIX shm object plus a unix-socket doorbell.

Theory of operation: the vrings, the buffer pool and the resource table (vdev config) live in
one POSIX shared-memory object (an mmap of ``/dev/shm/NAME``), laid out by
:class:`~transports.virtio.layout.SharedLayout`. Notifications travel over a unix stream socket: a
kick is one byte (0x01, as OpenAMP's Linux port sends it) and carries no queue id, so the
receiver rescans both rings; many kicks queued in the socket cost one wake-up. Kicks are
further suppressed with the ring flags while the peer is busy draining (the engine does that).
The socket is a :class:`~transports.socket_doorbell.SocketDoorbell`, read through the event
loop's reader: no threads, no polling; the object is made and mapped by
:mod:`transports.shm_object`.

Whichever side is the socket *server* creates the shared object: it removes a stale object or
socket of the same name left by an earlier run, writes a fresh resource table (state is reset,
never trusted), then listens; it removes both on close. The *client* connects (retrying until
``connect_timeout``) and only then maps the object and reads the table, validating it. Which
side is server is independent of the host / remote role. By default the side that starts first
serves: a process connects if a server already listens, else it takes the lock file
``SOCKET.lock`` and serves; a second aioamp server for the same socket is refused instead of
destroying a live session (see :mod:`transports.unix_server`, also for a killed server's
leftovers).

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

import contextlib
import logging
import mmap
import os
import socket
import struct
from pathlib import Path

from ...base import Role, Transport
from ...doorbell import NotifyHandler
from ...errors import TransportClosedError, TransportError, TransportURLError
from ...shm_object import SHM_DIR, create_object, open_object
from ...socket_doorbell import SocketDoorbell
from ...unix_server import ServerLock, connect, try_connect
from ...virtio.layout import SharedLayout
from ...virtio.memory import DeviceMemory, Region
from ...virtio.vdev import LINUX_QUIRKS, VirtioQuirks, single_vdev_view
from .session import GOODBYE, KICK, PeerHello, read_hello, send_hello, serve

_NAME_MAX = 255


def shm_path(name: str) -> Path:
    """``/dev/shm/NAME``; names are single path components."""
    size = len(name.encode("utf-8", "surrogateescape"))
    if not 0 < size <= _NAME_MAX or "/" in name or "\0" in name or name in (".", ".."):
        raise TransportURLError(
            f"invalid shared-memory object name {name!r} (1..{_NAME_MAX} bytes, no '/' or NUL)"
        )
    return SHM_DIR / name


class ShmTransport(Transport):
    """One end of a shared-memory link. Create with :func:`open_shm`.

    Attributes:
        doorbell: the socket carrying the kicks (its :meth:`~SocketDoorbell.statistics`).
    """

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
        logger: logging.Logger | None = None,
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
        # A peer in another process (on another CPU) can be seen by a look (busy polling);
        # one in this process, on this loop, never: it runs only when we stop looking.
        self.pollable = _peer_pid(sock) != os.getpid()
        self.layout = layout
        self.name = name
        self.buffer_size = layout.buffer_size
        self.log = logger or logging.getLogger("aioamp.transport.shm")
        self.doorbell = SocketDoorbell(sock, where=name, logger=self.log)
        self._kick = self.doorbell.kick
        self._received = self.doorbell.buffer
        self._mapping = mapping
        self._owned = owned_paths
        self._lock = lock
        # openamp: the peer's hello (if it is aioamp) is still to come.
        self._hello = None if hello_checked else PeerHello(role, name)
        self._handler: NotifyHandler | None = None

    def kick(self, vq: int) -> None:
        if self._closed:
            raise TransportClosedError(self._close_reason)
        self.stats.kicks_sent += 1
        if not self._kick(KICK):  # a full socket coalesces: the peer wakes anyway
            self._fail(self.doorbell.send_error or f"{self.name}: peer unreachable")

    def kick_pending(self) -> bool:
        """Whether the peer has not read our last kick byte yet (a new kick would coalesce).

        The peer reads the socket before it rescans the rings, so anything we wrote before
        this check is seen (see :meth:`SocketDoorbell.unread`).
        """
        return self.doorbell.unread()

    def _fail(self, reason: str) -> None:
        """The link broke: close; whoever waits for notifications hears it (a task in
        wait_notification, or the handler from the doorbell's close), also when a kick
        discovered it."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        self.doorbell.close(reason)
        self._peer_closed = self.doorbell.peer_closed
        _release_link(None, self._owned, self._lock)

    def _notifications(self, count: int) -> int:
        """The notifications in the ``count`` bytes the doorbell read: at least 1, or -1 when
        they broke the link (a role clash in the peer's hello; the transport is then closed)."""
        buf = self._received
        if self._hello is not None:
            try:
                used = self._hello.take(buf, count)
            except TransportError as exc:  # a role clash
                self._fail(str(exc))
                return -1
            if self._hello.done:
                self._hello = None
            if used:
                buf[: count - used] = buf[used:count]
                count -= used
        if count > 0 and buf[count - 1] == GOODBYE:
            self.doorbell.peer_said_goodbye()  # its last byte: EOF follows
            count -= 1
        # Whatever arrived is a notification: the peer skips kicks while its earlier bytes
        # (a hello too) wait unread, so having read them we must rescan.
        count = max(count, 1)
        self.stats.notifications_received += count
        return count

    async def wait_notification(self) -> int:
        self._check_open()
        try:
            count = self._notifications(await self.doorbell.receive())
        except TransportClosedError:
            self._fail(self.doorbell.close_reason)
            raise TransportClosedError(self._close_reason) from None
        if count < 0:
            raise TransportClosedError(self._close_reason)
        return count

    def set_notify_handler(self, handler: NotifyHandler | None) -> bool:
        """Read kicks with ``loop.add_reader`` and call ``handler`` from the event loop (no
        task wake-up per notification). asyncio loops only."""
        self._handler = None
        self.doorbell.set_handler(None)
        if handler is None:
            return True
        if self._closed or not self.doorbell.set_handler(self._on_doorbell):
            return False
        self._handler = handler
        return True

    def _on_doorbell(self, count: int, closed: str | None) -> None:
        handler = self._handler
        if handler is None:
            return
        if closed is None and self._hello is None and self._received[count - 1] != GOODBYE:
            self.stats.notifications_received += count  # kicks only: _notifications inlined
            handler(count, None)
        elif closed is None:
            count = self._notifications(count)  # -1: the doorbell's close calls us again
            if count > 0:
                handler(count, None)
        else:
            self._fail(closed)
            self._handler = None
            handler(0, self._close_reason)

    def _close(self, reason: str, goodbye: bool) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            # The doorbell's close tells the bus's handler (handler(0, reason)): a bus whose
            # own transport is closed under it closes too, as it would at the peer's EOF.
            if goodbye:
                self.doorbell.send(bytes([GOODBYE]))  # lost when the peer is gone or stalled
            self.doorbell.close(reason)
            _release_link(None, self._owned, self._lock)

    def abort(self) -> None:
        """Close without a goodbye (the link never came up: a failed hello)."""
        self._close(f"{self.name}: transport aborted", goodbye=False)

    async def aclose(self) -> None:
        self._close(f"{self.name}: transport closed", goodbye=True)
        # The mapping goes away with the last view of it (rings and endpoints may still hold
        # memoryviews); closing it now would raise BufferError.


def _peer_pid(sock: socket.socket) -> int | None:
    """The pid at the other end of the doorbell socket (Linux ``SO_PEERCRED``: struct ucred,
    pid first), or None where unknown."""
    try:
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    except (AttributeError, OSError):
        return None
    pid: int = struct.unpack_from("=i", cred)[0]  # host byte order: not a wire layout
    return pid


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
    scheme: str = "shm",
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
        scheme: the URL scheme the link was opened by; it logs as ``aioamp.transport.SCHEME``.

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
    log = logging.getLogger(f"aioamp.transport.{scheme}")
    extra = {"transport": where, "socket": str(sock_path), "role": role}
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
            owned = (path,)
            mapping = create_object(path, size)
            table = layout.table()
            mapping[: len(table)] = table
            log.info("%s: serving %s, waiting for the peer", where, sock_path, extra=extra)
            sock = await serve(sock_path, lock, accept_timeout)
            owned = (path, sock_path)  # ours from now on (serve refuses a file in the way)
        elif sock is None:
            log.info("%s: connecting to %s", where, sock_path, extra=extra)
            sock = await connect(sock_path, connect_timeout)
        if mapping is None:
            mapping = open_object(path, size)
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
            logger=log,
        )
    except BaseException as exc:
        _release_link(sock, owned, lock)
        if isinstance(exc, Exception) and not isinstance(exc, TransportError):
            raise TransportError(f"shared-memory object {path}: {exc}") from exc
        raise
    try:
        send_hello(transport.doorbell, role)
        if handshake:
            await read_hello(transport.doorbell, role, where, connect_timeout)
    except BaseException:
        transport.abort()
        raise
    log.info("%s: connected as %s", where, role, extra=extra)
    return transport
