"""Uevents from a NETLINK_KOBJECT_UEVENT socket, awaited through the event loop.

Theory of operation: the kernel multicasts one datagram per device event (add, remove, bind,
unbind, change...) to group 1; udevd re-broadcasts each to group 2 after it ran its rules (so a
/dev node's group and mode are set by then). Reading group 1 needs no privilege. A
:class:`UeventMonitor` owns one such socket: :meth:`UeventMonitor.receive` returns the next
parsed event, waiting for the socket to become readable (``anyio.wait_readable``: no thread,
no polling). A full socket buffer makes the kernel drop events and the next ``recv`` fail with
ENOBUFS: that is reported as None, "events were lost, look again at sysfs", and counted.

``uevents="auto"`` (the default of the Linux bus) listens to udevd's group when udevd runs
(``/run/udev/control`` exists), so a device is used only once its permissions are applied,
and to the kernel's group otherwise (a minimal system, the UML test guest).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import socket

import anyio

from .files import KERNEL_GROUP, UDEV_GROUP, KernelFiles
from .sysfs_text import Uevent, parse_uevent_message
from .uevent_source import UeventSource

#: The socket udevd listens on while it runs (systemd: src/udev/udev-ctrl.c).
UDEV_CONTROL = "/run/udev/control"
_MAX_DATAGRAM = 1 << 16


class _Empty(enum.Enum):
    EMPTY = 0


_EMPTY = _Empty.EMPTY


def uevent_group(source: UeventSource, files: KernelFiles) -> int:
    """The multicast group for ``source`` (see the module docstring)."""
    if source == "kernel":
        return KERNEL_GROUP
    if source == "udev":
        return UDEV_GROUP
    return UDEV_GROUP if files.exists(UDEV_CONTROL) else KERNEL_GROUP


class UeventMonitor:
    """One uevent socket. ``lost`` counts the times events were dropped (ENOBUFS)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lost = 0
        self.received = 0
        self._closed = False

    @classmethod
    def open(cls, files: KernelFiles, source: UeventSource = "auto") -> UeventMonitor:
        return cls(files.open_uevents(uevent_group(source, files)))

    async def receive(self) -> Uevent | None:
        """The next uevent; None when events were lost (rescan what you watch).

        Raises:
            anyio.ClosedResourceError: the monitor was closed.
        """
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            event = self._next()
            if event is not _EMPTY:
                return event
            await anyio.wait_readable(self.sock)

    def drain(self) -> list[Uevent | None]:
        """Every event already queued, without waiting (None for a loss)."""
        events: list[Uevent | None] = []
        while not self._closed and (event := self._next()) is not _EMPTY:
            events.append(event)
        return events

    def _next(self) -> Uevent | _Empty | None:
        """The next queued uevent, None for a loss (ENOBUFS), _EMPTY when none is queued."""
        while True:
            try:
                data = self.sock.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                return _EMPTY
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.lost += 1
                return None
            event = parse_uevent_message(data)
            if event is not None:  # else foreign or truncated: the socket is shared
                self.received += 1
                return event

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # no event loop
            anyio.notify_closing(self.sock)
        self.sock.close()


def under(devpath: str, directory: str) -> bool:
    """Whether a uevent's ``devpath`` (relative to /sys) is ``directory`` (a kernel path under
    /sys) or below it."""
    full = os.path.join("/sys", devpath.lstrip("/"))
    return full == directory or full.startswith(directory.rstrip("/") + "/")
