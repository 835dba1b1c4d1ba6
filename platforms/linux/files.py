"""The kernel's files as this backend reaches them: sysfs, debugfs, /dev, firmware directories.

Theory of operation: the backend names every file by its *kernel path* (``/sys/class/...``,
``/dev/rpmsg0``), the path the kernel documents and error messages show. A
:class:`KernelFiles` turns those into file operations:

* :class:`HostFiles` is the real thing: the host's files, optionally under a ``root`` prefix
  (a directory laid out like ``/sys`` is a faithful stand-in for *reading* sysfs, which is
  all the discovery of devices does);
* the sysfs model of remoteproc (:mod:`platforms.linux.model`) implements the same protocol
  in memory, with the kernel's semantics for writes (EBUSY, EINVAL, EACCES) and its uevents.

A write is one ``write(2)`` of the whole value, never creating a file: a sysfs attribute's
``store`` sees exactly one buffer, and a missing attribute is ENOENT, not a new regular file.
Errors are ``OSError`` s whose ``filename`` is the kernel path.
"""

from __future__ import annotations

import os
import socket
from typing import Protocol

#: NETLINK_KOBJECT_UEVENT (include/uapi/linux/netlink.h) and its multicast groups: 1 is the
#: kernel's own events, 2 udevd's re-broadcast after it applied its rules.
NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
UDEV_GROUP = 2
_READ_LIMIT = 1 << 20  # a debugfs trace buffer is at most a few pages


class KernelFiles(Protocol):
    """File operations on kernel paths (see the module docstring)."""

    def read(self, path: str) -> str: ...

    def read_bytes(self, path: str) -> bytes: ...

    def write(self, path: str, text: str) -> None:
        """One write of ``text``; may block while the kernel acts on it (``state``)."""

    def listdir(self, path: str) -> list[str]: ...

    def exists(self, path: str) -> bool: ...

    def realpath(self, path: str) -> str:
        """The kernel path with every symlink resolved (sysfs links class and bus entries to
        /sys/devices)."""

    def host_path(self, path: str) -> str:
        """Where the file really is (for ``os.open`` of a /dev node)."""

    def open_uevents(self, group: int) -> socket.socket:
        """A non-blocking datagram socket receiving uevents of multicast ``group``."""


class HostFiles:
    """The host's kernel files, under ``root`` (``/``: the real ones)."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = os.path.abspath(os.fspath(root))

    def __repr__(self) -> str:
        return f"HostFiles({self.root!r})"

    def host_path(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"kernel path {path!r} is not absolute")
        return path if self.root == "/" else self.root + path

    def _kernel_path(self, host: str) -> str:
        if self.root == "/":
            return host
        return host[len(self.root) :] or "/" if host.startswith(self.root) else host

    def read_bytes(self, path: str) -> bytes:
        fd = self._open(path, os.O_RDONLY)
        try:
            chunks = []
            total = 0
            while total < _READ_LIMIT:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", "replace")

    def write(self, path: str, text: str) -> None:
        data = text.encode()
        fd = self._open(path, os.O_WRONLY)
        try:
            try:
                os.write(fd, data)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, path) from None
        finally:
            os.close(fd)

    def _open(self, path: str, flags: int) -> int:
        try:
            return os.open(self.host_path(path), flags | os.O_CLOEXEC)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.host_path(path)))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from None

    def exists(self, path: str) -> bool:
        return os.path.exists(self.host_path(path))

    def realpath(self, path: str) -> str:
        return self._kernel_path(os.path.realpath(self.host_path(path)))

    def open_uevents(self, group: int) -> socket.socket:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT
        )
        try:
            sock.bind((0, group))
            sock.setblocking(False)
            # Bursts (a remote announcing many channels) must not overflow the queue.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except BaseException:
            sock.close()
            raise
        return sock
