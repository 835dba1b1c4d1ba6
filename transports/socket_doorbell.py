"""The doorbell between two processes that share memory: one non-blocking unix stream socket.

Theory of operation: ``shm://``, ``openamp:`` and sim's process mode keep a link's memory in a
shared object (:mod:`transports.shm_object`) and its notifications on one connected stream
socket. What the bytes mean is each user's business (OpenAMP's one-byte kicks, the hello and
goodbye of ``shm://``, sim's ``<BI`` frames); :class:`SocketDoorbell` only moves them.

* In: :meth:`~SocketDoorbell.read` receives into one preallocated buffer (no object per
  notification); :meth:`~SocketDoorbell.receive` waits for bytes in a task
  (``anyio.wait_readable``); :meth:`~SocketDoorbell.set_handler` has the asyncio loop call a
  handler instead (``loop.add_reader``: no task wake-up per notification);
  :meth:`~SocketDoorbell.run` takes the handler way where it can and a task elsewhere.
* EOF or a reset ends the link. The user's parser calls
  :meth:`~SocketDoorbell.peer_said_goodbye` when it sees its wire format's goodbye: EOF after
  it is an orderly close, EOF without it a vanished peer ("process gone?").
* Out: :meth:`~SocketDoorbell.kick` sends a notification that may coalesce (a full socket
  means the peer has unread bytes and wakes anyway: counted, never queued);
  :meth:`~SocketDoorbell.send` sends whole frames in order, and what does not fit waits in a
  bounded pending buffer, flushed when the socket has room (``loop.add_writer``, or
  :meth:`~SocketDoorbell.run`'s task elsewhere); past the bound frames are dropped and counted.

A failed send (``EPIPE``) does not end the link: what the peer wrote before it left (sim's
crash report) may still wait to be read. EOF does.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import contextvars
import fcntl
import logging
import socket
import sys
import termios
from collections.abc import Callable

import anyio
import attrs

from .doorbell import NotifyHandler, _running_asyncio_loop, asyncio_context
from .errors import TransportClosedError

#: Where a doorbell logs unless its user names its own (``aioamp.transport.shm``, ...).
DEFAULT_LOGGER = logging.getLogger("aioamp.transport")

#: Linux SIOCOUTQ (== TIOCOUTQ): unread bytes of a unix stream socket; 0 where unknown.
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0) if sys.platform == "linux" else 0


@attrs.frozen
class SocketDoorbellStats:
    """Counters of one doorbell end."""

    #: Kicks not sent because the socket was full: the peer had unread bytes (it wakes anyway).
    coalesced: int
    #: Frames not sent: the pending buffer was full, or the peer was unreachable.
    dropped: int
    #: Bytes waiting for room in the socket now.
    pending: int
    #: Bytes that were still waiting when the link closed (never sent).
    unsent: int


class SocketDoorbell:
    """One end of a connected unix stream socket carrying notifications (made non-blocking).

    Args:
        sock: the connected socket; the doorbell owns it from now on.
        where: names the link in close reasons (``"shm:NAME: the peer closed the link"``).
        buffer_size: the most bytes one :meth:`read` takes.
        pending_limit: the most bytes :meth:`send` keeps waiting for room in the socket.
        logger: where dropped frames are reported (the user's logger says whose link it is).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        where: str,
        buffer_size: int = 4096,
        pending_limit: int = 1 << 20,
        logger: logging.Logger = DEFAULT_LOGGER,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.where = where
        self.log = logger
        #: Where :meth:`read` puts what arrived (the first ``count`` bytes, until the next read).
        self.buffer = bytearray(buffer_size)
        self.pending_limit = pending_limit
        self._fd = sock.fileno()
        self._closed: str | None = None
        self._goodbye = False
        self._peer_closed = False
        self._send_error: str | None = None
        self._pending = bytearray()
        self._coalesced = self._dropped = self._unsent = self._reported = 0
        self._handler: NotifyHandler | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None  # the handler's (asyncio_context)
        self._writer_loop: asyncio.AbstractEventLoop | None = None
        self._flush_wake: anyio.Event | None = None  # set while run()'s flusher task exists
        self._outq: array.array[int] | None = array.array("i", [0]) if _SIOCOUTQ else None

    # -- state ---------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def close_reason(self) -> str:
        """Why the link ended (meaningful once :attr:`closed`)."""
        return self._closed or ""

    @property
    def peer_closed(self) -> bool:
        """Whether the peer said goodbye before its EOF (an orderly close, not a crash)."""
        return self._peer_closed

    @property
    def send_error(self) -> str | None:
        """Why sending failed (the peer is unreachable), or None."""
        return self._send_error

    def peer_said_goodbye(self) -> None:
        """The user's parser saw the peer's goodbye: the EOF that follows is orderly."""
        self._goodbye = True

    def statistics(self) -> SocketDoorbellStats:
        return SocketDoorbellStats(self._coalesced, self._dropped, len(self._pending), self._unsent)

    # -- in ------------------------------------------------------------------------------------
    def read(self, size: int = 0) -> int:
        """Receive into :attr:`buffer` (at most ``size`` bytes; 0: as many as fit): the count,
        0 if nothing is there yet, -1 if the link has ended (see :attr:`close_reason`)."""
        if self._closed is not None:
            return -1
        try:
            count = self.sock.recv_into(self.buffer, size)  # no bytes object per notification
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._lost(exc)
            return -1
        if count:
            return count
        self._eof()
        return -1

    def _lost(self, exc: OSError) -> None:
        self.close(f"{self.where}: peer connection lost: {exc}")

    def _eof(self) -> None:
        if self._goodbye:
            self._peer_closed = True
            self.close(f"{self.where}: the peer closed the link")
        else:
            self.close(f"{self.where}: the peer closed the connection (process gone?)")

    async def receive(self, size: int = 0) -> int:
        """Wait for bytes (see :meth:`read`); their count in :attr:`buffer`.

        Raises:
            TransportClosedError: the link ended or was closed (also while waiting).
        """
        while True:
            count = self.read(size)
            if count > 0:
                return count
            if count < 0:
                raise TransportClosedError(self.close_reason)
            try:
                await anyio.wait_readable(self.sock)
            except (anyio.ClosedResourceError, OSError, ValueError):
                if self._closed is not None:
                    raise TransportClosedError(self._closed) from None
                raise

    def set_handler(self, handler: NotifyHandler | None) -> bool:
        """Have the running asyncio loop call ``handler(count, None)`` when bytes arrived (in
        :attr:`buffer`), and ``handler(0, reason)`` once, from the loop, when the link ends or
        is closed. None: stop (no call follows). Returns False where no asyncio loop runs or
        the link has ended: the caller waits with :meth:`receive` instead."""
        self._remove_reader()
        if handler is None:
            return True
        loop = _running_asyncio_loop()
        if loop is None or self._closed is not None:
            return False
        self._handler, self._reader_loop = handler, loop
        self._context = context = asyncio_context()
        context.run(loop.add_reader, self._fd, self._on_readable)
        return True

    def _on_readable(self) -> None:
        """The loop's reader: :meth:`read` inlined (one call less per notification); an ended
        link schedules ``handler(0, reason)`` (see :meth:`close`)."""
        handler = self._handler
        if handler is None:
            return
        try:
            count = self.sock.recv_into(self.buffer)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        if count:
            handler(count, None)
        else:
            self._eof()

    def _remove_reader(self) -> None:
        loop, self._reader_loop = self._reader_loop, None
        self._handler = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)

    async def run(self, on_bytes: Callable[[int], object]) -> None:
        """Call ``on_bytes(count)`` for what arrives (in :attr:`buffer`) until the link ends or
        is closed. On asyncio through :meth:`set_handler`; elsewhere this task reads and a
        second one flushes what :meth:`send` left pending. ``on_bytes`` raising ends it."""
        loop = _running_asyncio_loop()
        if loop is not None:
            done: asyncio.Future[None] = loop.create_future()

            def on_bell(count: int, closed: str | None) -> None:
                if done.done():
                    return
                if closed is not None:
                    done.set_result(None)
                    return
                try:
                    on_bytes(count)
                except Exception as exc:
                    done.set_exception(exc)

            if self.set_handler(on_bell):
                try:
                    await done
                finally:
                    if self._handler is on_bell:
                        self._remove_reader()
                return
        error: list[Exception] = []
        self._flush_wake = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flush_forever)
                try:
                    while True:
                        on_bytes(await self.receive())
                except TransportClosedError:
                    pass
                except Exception as exc:
                    error.append(exc)
                tg.cancel_scope.cancel()
        finally:
            self._flush_wake = None
        if error:
            raise error[0]

    # -- out -----------------------------------------------------------------------------------
    def kick(self, data: bytes) -> bool:
        """Send a notification that coalesces with unread ones. Returns False when the peer is
        unreachable (:attr:`send_error`), True otherwise (sent, or coalesced and counted)."""
        if self._pending:
            self._coalesced += 1  # frames wait: the socket is full, the peer has unread bytes
            return True
        try:
            self.sock.send(data)
        except BlockingIOError:
            self._coalesced += 1  # the socket is full of bytes the peer has not read: it wakes
        except OSError as exc:
            self._unreachable(exc)
            return False
        return True

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        """Send ``frame`` whole, after everything sent before it; what does not fit now waits.
        Returns False when the frame is dropped (counted): the pending buffer is full
        (``pending_limit``), the peer is unreachable, or the link is closed."""
        pending, view = self._pending, memoryview(frame)
        if (
            self._closed is not None
            or self._send_error is not None
            or (pending and len(pending) + view.nbytes > self.pending_limit)
        ):
            self._dropped += 1
            return False
        if pending:
            pending += view
            return True
        try:
            sent = self.sock.send(view)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._unreachable(exc)
            self._dropped += 1
            return False
        if sent < view.nbytes:
            pending += view[sent:]
            self._arm_flush()
        return True

    def unread(self) -> bool:
        """Whether the peer has not yet read everything sent to it, so a new kick would only
        coalesce. On Linux ``SIOCOUTQ`` of a unix stream socket counts the bytes sent and not
        yet read by the peer: one cheap ioctl. Elsewhere (or on error) False."""
        outq = self._outq
        if outq is None or self._closed is not None:
            return False
        try:
            fcntl.ioctl(self._fd, _SIOCOUTQ, outq, True)
        except OSError:
            self._outq = None
            return False
        return outq[0] != 0

    def _unreachable(self, exc: OSError) -> None:
        self._send_error = f"{self.where}: peer unreachable: {exc}"
        self._discard_pending()

    def _arm_flush(self) -> None:
        if self._flush_wake is not None:
            self._flush_wake.set()  # run()'s flusher task
            return
        loop = _running_asyncio_loop()
        if loop is not None and self._writer_loop is None:  # no loop: drain() sends it
            loop.add_writer(self._fd, self._flush)
            self._writer_loop = loop

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self._unreachable(exc)
            return
        del self._pending[:sent]
        if self._pending:
            return
        self._remove_writer()
        if self._dropped > self._reported:  # while the socket was full
            dropped, self._reported = self._dropped - self._reported, self._dropped
            self.log.warning(
                "%s: %d frames dropped: the peer did not read",
                *(self.where, dropped),
                extra={"transport": self.where, "dropped": dropped, "reason": "peer_not_reading"},
            )

    async def _flush_forever(self) -> None:
        while self._closed is None and self._send_error is None:
            if not self._pending:
                self._flush_wake = wake = anyio.Event()
                await wake.wait()
                continue
            try:
                await anyio.wait_writable(self.sock)
            except (anyio.ClosedResourceError, OSError, ValueError):
                return
            self._flush()

    def _remove_writer(self) -> None:
        loop, self._writer_loop = self._writer_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_writer(self._fd)

    def _discard_pending(self) -> None:
        self._remove_writer()
        self._unsent += len(self._pending)
        self._pending.clear()

    def drain(self, timeout: float) -> None:
        """Send what still waits, blocking for at most ``timeout`` s in all: the last words of
        a process about to exit, when no event loop runs any more."""
        if self._closed is not None or self._send_error is not None or not self._pending:
            return
        self._remove_writer()
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(self._pending)
            self._pending.clear()
        except OSError as exc:
            self._unreachable(exc)
        finally:
            self.sock.setblocking(False)

    # -- end -----------------------------------------------------------------------------------
    def close(self, reason: str | None = None) -> None:
        """End the link (idempotent): close the socket, fail a :meth:`receive` in progress and
        later ones with ``reason``, and tell a handler (``handler(0, reason)``, from the loop).
        What :meth:`send` left pending is discarded (counted as unsent; see :meth:`drain`)."""
        if self._closed is not None:
            return
        self._closed = reason = reason or f"{self.where}: closed"
        handler, loop = self._handler, self._reader_loop
        self._remove_reader()
        self._discard_pending()
        with contextlib.suppress(Exception):  # no loop runs (after anyio.run): nobody waits
            anyio.notify_closing(self.sock)  # wakes a pending wait_readable / wait_writable
        self.sock.close()
        if self._flush_wake is not None:
            self._flush_wake.set()
        if handler is not None and loop is not None and not loop.is_closed():
            loop.call_soon(handler, 0, reason, context=self._context)
