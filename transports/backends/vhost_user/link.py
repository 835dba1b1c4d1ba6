"""What both ends of a vhost-user link share: one epoll set for every descriptor, eventfds,
mapping a frontend's memory.

Theory of operation: a vhost-user end watches several descriptors at once: the control socket
(and, for a backend, its listening socket), one kick or call eventfd per vring. They all sit in
one ``epoll`` set whose own descriptor is what the event loop waits on (``anyio.wait_readable``,
or ``loop.add_reader`` in handler mode): one wake-up source, on asyncio and trio alike, no
threads. A wake-up runs :meth:`VhostUserTransport._poll`, which serves every ready descriptor
without blocking and returns how many notifications the bus should see.

Notifications are eventfd-style: the notifier writes the u64 value 1; Linux's virtio_uml hands a
pipe as the call descriptor, QEMU an eventfd, and both take that write. The receiver reads until
the descriptor is empty; however many writes it finds, they are one rescan of the rings.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import mmap
import os
import select
import stat
from collections.abc import Callable

import anyio

from ...base import Role, Transport
from ...doorbell import NotifyHandler, asyncio_context
from ...errors import TransportClosedError
from ...virtio.memory import DeviceMemory, Region
from ...virtio.vdev import VdevView
from .protocol import U64, MemoryRegion, VhostUserProtocolError

log = logging.getLogger("aioamp.transport.vhost_user")

_ONE = U64.pack(1)


def signal_fd(fd: int) -> bool:
    """Notify through an eventfd or pipe (write the u64 1). False if the peer has gone (a pipe
    without reader); a full pipe or counter already holds a pending notification."""
    try:
        os.write(fd, _ONE)
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True


def drain_fd(fd: int) -> bool:
    """Consume every pending notification of an eventfd or pipe. False at EOF (a pipe whose
    writer has gone), when it will never signal again."""
    while True:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False


def close_fds(fds: list[int] | tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def map_region(region: MemoryRegion, name: str) -> tuple[mmap.mmap, Region]:
    """Map one memory-table region from its fd, at its mmap offset (the fd stays open).

    The mapping starts at the page below the offset (mmap needs page-aligned offsets) and the
    region is the view from the offset on. Only a regular file (memfd, hugetlbfs, tmpfs) that
    holds the whole range is mapped: a range past its end would fault on first touch.

    Raises:
        VhostUserProtocolError: the frontend's region cannot be mapped as described.
    """
    fd, offset, size = region.fd, region.mmap_offset, region.size
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise VhostUserProtocolError(f"{name}: fd {fd}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise VhostUserProtocolError(f"{name}: the fd is not a regular file (memfd, hugetlbfs)")
    if offset + size > st.st_size:
        raise VhostUserProtocolError(
            f"{name}: mmap offset {offset:#x} + size {size:#x} lies past the end of its "
            f"{st.st_size:#x}-byte file"
        )
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        mapping = mmap.mmap(fd, offset - start + size, mmap.MAP_SHARED, offset=start)
    except (OSError, ValueError, OverflowError) as exc:
        raise VhostUserProtocolError(f"{name}: mmap failed: {exc}") from None
    view = memoryview(mapping)[offset - start :]
    return mapping, Region(region.guest_addr, view, name)


def release_mappings(memory: DeviceMemory, mappings: list[mmap.mmap]) -> None:
    """Take every region out of ``memory`` and unmap what no view still uses (a ring of a bus
    that has not noticed the reset yet may hold one: that mapping goes with its last view)."""
    for region in list(memory):
        memory.remove(region)
        region.mem.release()
    for mapping in mappings:
        with contextlib.suppress(BufferError):
            mapping.close()
    mappings.clear()


class VhostUserTransport(Transport):
    """One end of a vhost-user link: notifications through one epoll set (see the module)."""

    pollable = True  # the peer (a VM's or UML's kernel, another process) runs on another CPU

    def __init__(
        self, *, role: Role, memory: DeviceMemory, vdev: VdevView, pool: Region | None, name: str
    ) -> None:
        super().__init__(role=role, memory=memory, vdev=vdev, pool=pool)
        self.name = name
        self._epoll = select.epoll()
        self._handler: NotifyHandler | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None  # the handler's (asyncio_context)
        self._owed = 0  # notifications a poll found before anyone waited for them

    def _poll(self) -> int:
        """Serve every ready descriptor without blocking: the notifications for the bus
        (0: none), or -1 once the link is down (:meth:`_fail` was called)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Close every descriptor of the link (called once, when it goes down)."""
        raise NotImplementedError

    def _watch(self, fd: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)

    def _unwatch(self, fd: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._epoll.unregister(fd)

    def _counted(self) -> int:
        count = self._poll()
        if count < 0:
            return count
        count, self._owed = count + self._owed, 0
        if count > 0:
            self.stats.notifications_received += count
        return count

    async def _serve_until(self, done: Callable[[], bool]) -> None:
        """Serve the descriptors (no bus waits on them yet) until ``done()``; what they
        bring for the bus is kept for its first wait.

        Raises:
            TransportClosedError: the link went down meanwhile.
        """
        while True:
            count = self._poll()
            if count < 0:
                raise TransportClosedError(self._close_reason)
            self._owed += count
            if done():
                return
            await anyio.wait_readable(self._epoll.fileno())

    async def wait_notification(self) -> int:
        while True:
            self._check_open()
            count = self._counted()
            if count > 0:
                return count
            if count < 0:
                raise TransportClosedError(self._close_reason)
            try:
                await anyio.wait_readable(self._epoll.fileno())
            except (anyio.ClosedResourceError, OSError, ValueError):
                self._check_open()
                raise

    def set_notify_handler(self, handler: NotifyHandler | None) -> bool:
        """Serve the descriptors from ``loop.add_reader`` and call ``handler`` from the event
        loop (asyncio loops only)."""
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
        self._context = context = asyncio_context()
        context.run(loop.add_reader, self._epoll.fileno(), self._on_readable)
        if self._owed:
            loop.call_soon(self._on_readable, context=context)
        return True

    def _remove_reader(self) -> None:
        loop, self._reader_loop = self._reader_loop, None
        self._handler = None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(self._epoll.fileno())

    def _on_readable(self) -> None:
        handler = self._handler
        if handler is not None:
            count = self._counted()  # a link that went down schedules the handler (_fail)
            if count > 0:
                handler(count, None)

    def _fail(self, reason: str, *, peer_closed: bool = False) -> None:
        """The link is down: close it, and make sure whoever waits hears ``reason``."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        self._peer_closed = peer_closed
        handler, loop = self._handler, self._reader_loop
        self._shutdown()
        if handler is not None and loop is not None and not loop.is_closed():
            loop.call_soon(handler, 0, reason, context=self._context)

    def _shutdown(self) -> None:
        self._remove_reader()
        with contextlib.suppress(Exception):
            anyio.notify_closing(self._epoll.fileno())  # wakes a pending wait_readable
        self._release()
        self._epoll.close()

    async def aclose(self) -> None:
        if not self._closed:
            self._goodbye()
            self._fail(f"{self.name}: transport closed", peer_closed=False)

    def _goodbye(self) -> None:
        """An orderly close's last words to the peer (nothing by default)."""
        return
