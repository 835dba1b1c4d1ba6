"""The plumbing of the sysfs models: who asks (credentials), one attribute's mode, the kernel's
string comparison and errors, and the real files below the model's root."""

from __future__ import annotations

import errno
import os
import socket
from typing import NoReturn

import attrs

from ..files import HostFiles


@attrs.frozen
class Credentials:
    """The caller of the model's files: uid and groups (root by default)."""

    uid: int = 0
    gids: frozenset[int] = frozenset({0})


@attrs.define(eq=False)
class FileNode:
    """A sysfs attribute's mode and owner (kernfs checks these on open)."""

    mode: int
    uid: int = 0
    gid: int = 0

    def _allows(self, who: Credentials, bit: int) -> bool:
        if who.uid == self.uid:
            return bool(self.mode & (bit << 6))
        if self.gid in who.gids:
            return bool(self.mode & (bit << 3))
        return bool(self.mode & bit)

    def readable(self, who: Credentials) -> bool:
        return who.uid == 0 or self._allows(who, 0o4)

    def writable(self, who: Credentials) -> bool:
        """kernfs_fop_open refuses a file without any write bit even to root (EACCES)."""
        if not self.mode & 0o222:
            return False
        return who.uid == 0 or self._allows(who, 0o2)


def streq(buf: str, value: str) -> bool:
    """``sysfs_streq``: equal, but for one trailing newline on either side."""
    return buf.removesuffix("\n") == value.removesuffix("\n")


def fail(err: int, what: str) -> NoReturn:
    """Raise the OSError the kernel's store or open returns."""
    raise OSError(err, os.strerror(err), what)


def denied(path: str) -> NoReturn:
    fail(errno.EACCES, path)


class RealFiles(HostFiles):
    """The model's real files (firmware directories) below ``root``."""


class UeventHub:
    """The model's uevent "netlink": each :meth:`open` is a datagram socket that receives
    every datagram :meth:`send` sends from then on."""

    def __init__(self) -> None:
        self._sinks: list[socket.socket] = []

    def open(self) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        theirs.setblocking(False)
        mine.setblocking(False)
        self._sinks.append(mine)
        return theirs

    def send(self, data: bytes) -> None:
        for sink in list(self._sinks):
            try:
                sink.send(data)
            except BlockingIOError:
                pass  # a full socket drops the event, as netlink does (the reader sees loss)
            except OSError:
                self._sinks.remove(sink)  # the reader closed it
                sink.close()
