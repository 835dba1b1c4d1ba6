"""``/dev/ttyRPMSGN``: an ``rpmsg-tty`` channel as an async byte stream.

Theory of operation: ``drivers/tty/rpmsg_tty.c`` binds every channel named ``rpmsg-tty`` and
makes a tty of it; bytes written go out as rpmsg messages of at most the MTU, messages
received come in as bytes. It is a byte stream, not a message stream: boundaries are not kept.

The tty pitfalls are avoided here rather than documented: the line discipline's defaults would
echo everything the remote sends back to it, turn "\\n" into "\\r\\n" on output and "\\r" into
"\\n" on input, buffer input by lines, and treat ^C or ^D as signals and end of file. The tty
is therefore put in raw mode (``cfmakeraw``: no echo, no translation, no signals, reads return
what has arrived) before any byte passes, and opened O_NOCTTY (it must not become this
process's controlling terminal). Reading and writing wait through the event loop; a tty
reports POLLOUT properly, so a full output buffer is awaited, not retried.

A tty cannot be half-closed: :meth:`RpmsgTty.send_eof` raises
:class:`~rpmsg.errors.UnsupportedOperationError`. When the channel goes away the tty hangs up:
reads return end of file (``anyio.EndOfStream``), writes fail (``anyio.BrokenResourceError``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import termios
import tty
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import anyio.lowlevel

from rpmsg.errors import UnsupportedOperationError

from .errors import rpmsg_error

_GONE = (errno.EIO, errno.ENXIO, errno.ENODEV, errno.EPIPE)


class RpmsgTty(anyio.abc.ByteStream):
    """An open ``/dev/ttyRPMSGN`` in raw mode (see the module docstring)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._closed = False

    @classmethod
    def open(cls, path: str, host_path: str) -> RpmsgTty:
        """Open the tty node ``host_path`` (kernel path ``path``) and make it raw.

        Raises:
            RpmsgError: a typed error (permission: the message names the udev rule).
        """
        try:
            fd = os.open(host_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise rpmsg_error(exc.errno or 0, path, "open") from None
        try:
            tty.setraw(fd, termios.TCSANOW)
            termios.tcflush(fd, termios.TCIOFLUSH)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def __repr__(self) -> str:
        return f"<RpmsgTty {self.path}{' closed' if self._closed else ''}>"

    def _check(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            self._check()
            try:
                data = os.read(self._fd, max_bytes)
            except BlockingIOError:
                await self._wait(anyio.wait_readable)
                continue
            except OSError as exc:
                if exc.errno in _GONE:
                    raise anyio.EndOfStream from None
                raise rpmsg_error(exc.errno or 0, self.path, "read") from None
            if not data:  # hung up: the channel was removed
                raise anyio.EndOfStream
            return data

    async def send(self, item: bytes) -> None:
        view = memoryview(item).cast("B")
        while view.nbytes:
            self._check()
            try:
                sent = os.write(self._fd, view)
            except BlockingIOError:
                await self._wait(anyio.wait_writable)
                continue
            except OSError as exc:
                if exc.errno in _GONE:
                    raise anyio.BrokenResourceError(f"{self.path}: hung up") from None
                raise rpmsg_error(exc.errno or 0, self.path, "write") from None
            view = view[sent:]

    async def _wait(self, wait: Callable[[int], Awaitable[None]]) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):
            await wait(self._fd)

    async def send_eof(self) -> None:
        raise UnsupportedOperationError(f"{self.path}: a tty cannot be half-closed")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        anyio.notify_closing(self._fd)
        os.close(self._fd)
        await anyio.lowlevel.checkpoint()
