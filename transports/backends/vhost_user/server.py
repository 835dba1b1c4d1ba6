"""aioamp as the vhost-user backend: the virtio rpmsg device (the remote) on a unix socket.

Theory of operation: :func:`listen_vhost_user` binds ``PATH`` and returns at once; a frontend
(Linux's ``virtio_uml``, QEMU, aioamp's own frontend) connects whenever it likes. Each wake-up
(see :mod:`.link`) accepts it, reads its requests a header or a payload at a time (so the
descriptors of each read belong to one message), feeds them to the session's
:class:`~.backend.BackendCore` and carries out its actions: replies, mapping the memory table
(into the transport's :class:`~transports.virtio.memory.DeviceMemory`, by guest address),
kick/call eventfds. A kick becomes a notification for the bus; so does a change of the
synthesized status (DRIVER_OK raised or withdrawn), after which the poll stops so the bus sees
the change before anything else happens.

The frontend is untrusted: a request the core refuses, a region that cannot be mapped or a
socket error ends that connection with the reason logged and counted. When the frontend goes
(EOF, error), the session's memory, eventfds and status are dropped. Without ``reconnect`` the
transport then closes, with a reason that says why; :attr:`peer_closed` is true when the
frontend had disabled its vrings first (Linux does at halt), i.e. it left in order. With
``reconnect`` the server waits for the next frontend; the bus sees a virtio reset and announces
its services again at the next DRIVER_OK. One frontend at a time: another that connects
meanwhile is turned away.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import socket
from pathlib import Path

import attrs

from ...errors import TransportError
from ...unix_server import ServerLock, bind_server
from ...virtio.memory import DeviceMemory
from .backend import (
    Action,
    BackendCore,
    InstallFd,
    KeepBackendReqFd,
    MapMemory,
    Reply,
    StatusChanged,
)
from .link import (
    VhostUserTransport,
    close_fds,
    drain_fd,
    log,
    map_region,
    release_mappings,
    signal_fd,
)
from .protocol import Code, VhostUserProtocolError
from .reader import RequestReader

#: ``SCM_RIGHTS`` room for more descriptors than any message may carry: extra ones arrive
#: (and are refused and closed) instead of being silently truncated.
_CMSG_SPACE = socket.CMSG_SPACE(16 * 4)
#: Requests served per wake-up: a frontend that floods the socket cannot hold the event loop.
_REQUESTS_PER_POLL = 64


@attrs.frozen
class BackendStatistics:
    """A snapshot of a backend's counters."""

    frontends: int  # connections served
    turned_away: int  # connections refused while one was served
    requests: dict[str, int]  # requests handled, by name
    protocol_errors: int  # connections ended by a refused request
    last_error: str | None
    kicks_without_fd: int  # notifications the bus asked for with no call fd to signal
    driver_ok: bool


class VhostUserBackend(VhostUserTransport):
    """The backend (role ``remote``) listening on ``path``. Create with
    :func:`listen_vhost_user`."""

    def __init__(
        self, path: Path, listener: socket.socket, lock: ServerLock, *, reconnect: bool
    ) -> None:
        memory = DeviceMemory()
        self.core = BackendCore(memory)
        super().__init__(
            role="remote", memory=memory, vdev=self.core.vdev, pool=None, name=f"vhost-user:{path}"
        )
        self.path = path
        self.reconnect = reconnect
        self._listener = listener
        self._lock = lock
        self._conn: socket.socket | None = None
        self._reader = RequestReader()
        self._mappings: list[mmap.mmap] = []
        # Per vring: kick, call and err descriptors; the backend-request descriptor.
        self._fds: dict[tuple[Code, int], int] = {}
        self._req_fd: int | None = None
        self._kick_index: dict[int, int] = {}
        self._frontends = self._turned_away = self._errors = self._unsignalled = 0
        self._last_error: str | None = None
        self._watch(listener.fileno())

    # -- statistics ------------------------------------------------------------------------------
    def statistics(self) -> BackendStatistics:
        return BackendStatistics(
            frontends=self._frontends,
            turned_away=self._turned_away,
            requests=dict(self.core.requests),
            protocol_errors=self._errors,
            last_error=self._last_error,
            kicks_without_fd=self._unsignalled,
            driver_ok=self.core.driver_ok,
        )

    async def wait_for_frontend(self) -> None:
        """Serve the socket until a frontend has set the device up (both vrings enabled): what
        ``open_transport(..., role="remote")`` waits for, as an ``shm://`` server waits for
        its peer. (A frontend that boots later, such as a kernel, needs the socket listening
        first: use :func:`listen_vhost_user` and let the bus serve it.)

        Raises:
            TransportClosedError: the transport closed meanwhile (without ``reconnect``, a
                frontend that was refused or hung up).
        """
        await self._serve_until(lambda: self.core.set_up)

    @property
    def connected(self) -> bool:
        """Whether a frontend is connected now."""
        return self._conn is not None

    # -- notifications out ------------------------------------------------------------------------
    def kick(self, vq: int) -> None:
        self._check_open()
        fd = self._fds.get((Code.SET_VRING_CALL, vq))
        if fd is None:
            self._unsignalled += 1  # no frontend (or none that wants calls): counted
            return
        self.stats.kicks_sent += 1
        signal_fd(fd)  # a reader that has gone shows as EOF on the socket

    # -- the poll ---------------------------------------------------------------------------------
    def _poll(self) -> int:
        if self._closed:
            return -1
        count = 0
        for fd, _events in self._epoll.poll(0):
            if self._closed:
                return -1
            if fd == self._listener.fileno():
                self._accept()
            elif self._conn is not None and fd == self._conn.fileno():
                changed = self._serve()
                if changed < 0:
                    return -1
                count += changed
                if changed and not self.core.driver_ok:
                    return count  # the bus must see the reset before anything else
            elif fd in self._kick_index:
                index = self._kick_index[fd]
                if not drain_fd(fd):
                    self._unwatch(fd)  # a pipe whose writer has gone never kicks again
                count += 1 + self._apply(self.core.kicked(index))
        return count

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("%s: accept failed: %s", self.name, str(exc))
            return
        if self._conn is not None:
            self._turned_away += 1
            log.warning("%s: a second frontend connected meanwhile: turned away", self.name)
            conn.close()
            return
        conn.setblocking(False)
        self._conn = conn
        self._reader = RequestReader()
        self._frontends += 1
        self._watch(conn.fileno())
        log.info("%s: frontend connected", self.name)

    def _serve(self) -> int:
        """Handle the requests waiting on the connection: the status changes for the bus
        (stopping at a withdrawn DRIVER_OK), or -1 when the transport closed."""
        assert self._conn is not None
        changed = handled = 0
        try:
            while True:
                request = self._reader.next_request()
                if request is None:
                    # Past the quota, the rest waits for the next wake-up (the socket stays
                    # readable); a complete request never waits in the reader.
                    if handled >= _REQUESTS_PER_POLL or not self._receive(self._conn):
                        return changed
                    continue
                log.debug("%s: %r", self.name, request)
                handled += 1
                changed += self._apply(self.core.handle(request))
                if changed and not self.core.driver_ok:
                    return changed
        except VhostUserProtocolError as exc:
            close_fds(exc.fds)
            self._errors += 1
            self._last_error = str(exc)
            log.error("%s: frontend refused: %s", self.name, self._last_error)
            return self._hang_up(f"{self.name}: {exc}", orderly=False)
        except _FrontendGone as gone:
            return self._hang_up(f"{self.name}: the frontend disconnected{gone}", orderly=None)

    def _receive(self, conn: socket.socket) -> bool:
        """Read what the current header or payload still lacks; False if nothing was there."""
        try:
            data, ancdata, flags, _ = conn.recvmsg(
                self._reader.wanted(), _CMSG_SPACE, socket.MSG_CMSG_CLOEXEC
            )
        except BlockingIOError:
            return False
        except OSError as exc:
            raise _FrontendGone(f" ({exc})") from None
        fds = _fds_of(ancdata)
        if flags & socket.MSG_CTRUNC:
            raise VhostUserProtocolError("too many file descriptors with one message", fds=fds)
        if not data:
            close_fds(fds)
            raise _FrontendGone("")
        self._reader.feed(data, fds)
        return True

    # -- the core's actions -----------------------------------------------------------------------
    def _apply(self, actions: list[Action]) -> int:
        """Carry out the core's actions; returns 1 if the status changed, else 0."""
        changed = 0
        for action in actions:
            if isinstance(action, Reply):
                assert self._conn is not None
                try:
                    self._conn.sendall(action.data)
                except OSError as exc:  # a full socket: the frontend reads no replies
                    raise _FrontendGone(f" (reply not sent: {exc})") from None
            elif isinstance(action, MapMemory):
                self._map(action)
            elif isinstance(action, InstallFd):
                self._install(action)
            elif isinstance(action, KeepBackendReqFd):
                old, self._req_fd = self._req_fd, action.fd
                close_fds([] if old is None else [old])
            elif isinstance(action, StatusChanged):
                changed = 1
                log.info("%s: DRIVER_OK %s", self.name, "raised" if action.driver_ok else "cleared")
        return changed

    def _map(self, action: MapMemory) -> None:
        release_mappings(self.memory, self._mappings)
        try:
            for i, region in enumerate(action.regions):
                mapping, mapped = map_region(region, f"{self.name} region {i}")
                self._mappings.append(mapping)
                self.memory.add(mapped)
                log.info(
                    "%s: region %d: guest %#x user %#x size %#x mmap offset %#x",
                    self.name,
                    i,
                    region.guest_addr,
                    region.user_addr,
                    region.size,
                    region.mmap_offset,
                )
        finally:
            close_fds([r.fd for r in action.regions])

    def _install(self, action: InstallFd) -> None:
        key = (action.code, action.index)
        old = self._fds.pop(key, None)
        if old is not None:
            self._kick_index.pop(old, None)
            self._unwatch(old)
            close_fds([old])
        fd = action.fd
        if fd is None:
            return
        try:
            os.set_blocking(fd, False)
            if action.code is Code.SET_VRING_KICK:
                self._watch(fd)  # epoll refuses what cannot be waited on (a regular file)
        except OSError as exc:
            raise VhostUserProtocolError(
                f"{action.code.name}: vring {action.index}: unusable fd: {exc}", fds=[fd]
            ) from None
        self._fds[key] = fd
        if action.code is Code.SET_VRING_KICK:
            self._kick_index[fd] = action.index

    # -- the end of a session ---------------------------------------------------------------------
    def _hang_up(self, reason: str, *, orderly: bool | None) -> int:
        """Drop the session; -1 if the transport closed with ``reason``, else whether the bus
        must look (DRIVER_OK withdrawn). ``orderly`` None: the frontend left in order if it
        had disabled its vrings first."""
        if orderly is None:
            orderly = not self.core.rings_enabled
        self._drop_session()
        changed = self._apply(self.core.disconnected())
        if not self.reconnect:
            self._fail(reason, peer_closed=orderly)
            return -1
        log.info("%s; waiting for the next frontend", reason)
        return changed

    def _drop_session(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._unwatch(conn.fileno())
            conn.close()
        close_fds(self._reader.held_fds)
        self._reader = RequestReader()
        for code, index in list(self._fds):
            self._install(InstallFd(code, index, None))
        close_fds([] if self._req_fd is None else [self._req_fd])
        self._req_fd = None
        release_mappings(self.memory, self._mappings)

    def _release(self) -> None:
        self._drop_session()
        self._unwatch(self._listener.fileno())
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._lock.release()


class _FrontendGone(Exception):
    """EOF or a socket error on the connection (the text: details for the reason)."""


def _fds_of(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(int.from_bytes(data[i : i + 4], "little") for i in range(0, usable, 4))
    return fds


def listen_vhost_user(path: str | os.PathLike[str], *, reconnect: bool = False) -> VhostUserBackend:
    """Listen on the unix socket ``path`` as a vhost-user backend (the rpmsg remote).

    A stale socket at ``path`` (its server was killed) is replaced; a live aioamp server on it,
    or a file that is not a socket, is refused. The socket and its lock file go when the
    transport closes (:mod:`transports.unix_server`).

    Raises:
        TransportError: another aioamp backend serves ``path``, or it cannot be bound.
    """
    sock_path = Path(path)
    lock = ServerLock.take(sock_path)
    if lock is None:
        raise TransportError(f"another aioamp process already serves {sock_path}")
    try:
        listener = bind_server(sock_path, lock, 4)
    except BaseException:
        lock.release()
        raise
    log.info("vhost-user:%s: listening (reconnect=%s)", sock_path, reconnect)
    return VhostUserBackend(sock_path, listener, lock, reconnect=reconnect)


__all__ = ["BackendStatistics", "VhostUserBackend", "listen_vhost_user"]
