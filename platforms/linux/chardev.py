"""An rpmsg char device (``/dev/rpmsgN``, ``/dev/rpmsg_ctrlN``) as a non-blocking fd.

Theory of operation (``drivers/rpmsg/rpmsg_char.c``, Linux 6.12): an endpoint device is open
at most once (a second open is EBUSY); each ``read()`` returns one message, cut to the buffer
given (so reads ask for :data:`READ_SIZE`: ``struct rpmsg_hdr``'s ``len`` is 16 bits, no
message is longer), a zero-length message reads as 0 bytes, not end of file; each ``write()``
sends one message to the destination the endpoint was created with. Under O_NONBLOCK an empty
queue reads EAGAIN and a send without a free tx buffer writes EAGAIN. Once the endpoint is
destroyed (its channel removed) reads and writes fail with EPIPE and ``poll()`` reports
POLLERR, which wakes every reader and writer waiting in the event loop.

Waiting goes through the event loop (``anyio.wait_readable`` / ``wait_writable``: asyncio's
``add_reader`` / ``add_writer``), never a thread. Closing first tells the loop
(``anyio.notify_closing``), so a task waiting on the fd wakes instead of waiting on a number
that another open may reuse.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from typing import TYPE_CHECKING

import anyio

from rpmsg.errors import EndpointClosedError, RpmsgError

from .errors import rpmsg_error

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

log = logging.getLogger("aioamp.platform.linux")

#: Bytes per read: larger than any rpmsg message (rpmsg_hdr.len is a u16).
READ_SIZE = 0x10000


class CharDev:
    """One open rpmsg char device.

    Args:
        path: its kernel path (``/dev/rpmsg3``), for messages.
        fd: the open, non-blocking descriptor; owned from now on.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.closed = False

    def __repr__(self) -> str:
        return f"<CharDev {self.path} fd={self.fd}{' closed' if self.closed else ''}>"

    @classmethod
    def open(cls, path: str, host_path: str) -> CharDev:
        """Open ``host_path`` (the node of kernel path ``path``) read-write, non-blocking.

        Raises:
            RpmsgError: a typed error (:func:`~platforms.linux.errors.rpmsg_error`).
        """
        try:
            fd = os.open(host_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            raise rpmsg_error(exc.errno or 0, path, "open") from None
        return cls(path, fd)

    def read(self) -> bytes | None:
        """One message, or None when none is queued (EAGAIN).

        Raises:
            EndpointClosedError: the endpoint or its channel is gone (EPIPE), or this fd was
                closed.
        """
        if self.closed:
            raise EndpointClosedError(f"{self.path}: closed")
        try:
            return os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise rpmsg_error(exc.errno or 0, self.path, "read") from None

    def write(self, data: Buffer) -> bool:
        """Send one message; False when no tx buffer is free (EAGAIN).

        Raises:
            PayloadTooLargeError: EMSGSIZE; EndpointClosedError: EPIPE, or this fd was
                closed; others typed too.
        """
        if self.closed:
            raise EndpointClosedError(f"{self.path}: closed")
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise rpmsg_error(exc.errno or 0, self.path, "write") from None
        return True

    def ioctl(self, request: int, arg: bytes | bytearray | int = 0) -> int:
        """``ioctl(fd, request, arg)``: a bytes-like ``arg`` is passed by address.

        Raises:
            OSError: as the kernel answered (callers map it: the meaning depends on the call).
        """
        if isinstance(arg, bytearray):
            return int(fcntl.ioctl(self.fd, request, arg, True))
        result = fcntl.ioctl(self.fd, request, arg)
        return result if isinstance(result, int) else 0

    async def wait_readable(self) -> None:
        """Until a message is queued, the endpoint is gone, or the fd is closed."""
        with contextlib.suppress(anyio.ClosedResourceError):
            await anyio.wait_readable(self.fd)

    async def wait_writable(self) -> None:
        """Until the kernel reports POLLOUT (or POLLERR), or the fd is closed. virtio_rpmsg_bus
        never reports POLLOUT (see :mod:`platforms.linux.port`)."""
        with contextlib.suppress(anyio.ClosedResourceError):
            await anyio.wait_writable(self.fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError):  # no event loop (closing from a finalizer)
            anyio.notify_closing(self.fd)
        try:
            os.close(self.fd)
        except OSError as exc:  # EIO from a vanished device: the fd is gone all the same
            if exc.errno != errno.EBADF:
                log.debug("closing %s: %s", self.path, exc)


def checked_ioctl(dev: CharDev, request: int, arg: bytes | bytearray | int, what: str) -> int:
    """:meth:`CharDev.ioctl` with the error typed as for any call on ``dev``."""
    try:
        return dev.ioctl(request, arg)
    except OSError as exc:
        err: RpmsgError = rpmsg_error(exc.errno or 0, dev.path, what)
        raise err from None
