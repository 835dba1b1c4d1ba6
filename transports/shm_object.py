"""POSIX shared-memory objects (``/dev/shm``): created, opened or anonymous, then mapped.

Theory of operation: the backends that put a link between processes keep its memory in a POSIX
shared-memory object (a file on the tmpfs ``/dev/shm``) that each side maps with ``mmap``.

* ``shm://`` and ``openamp:`` meet by name: the serving side creates the object
  (:func:`create_object`, replacing a stale one, whose contents are never trusted), the other
  opens it (:func:`open_object`) and checks that it is large enough.
* sim's process mode needs no name: :func:`anonymous_object` creates the object and unlinks
  its name at once, so the memory lives exactly as long as a descriptor or mapping of it (the
  host's, the child's that inherits the descriptor) and nothing can be left behind; the child
  maps the inherited descriptor with :func:`map_object`.

A mapping is not closed by these helpers' callers while memoryviews of it live (rings and
endpoints hold some): it goes away with its last view.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
from pathlib import Path

from .errors import TransportError

SHM_DIR = Path("/dev/shm")
_COUNTER = itertools.count()


def _create(path: Path, size: int, *, unlink: bool) -> tuple[int, mmap.mmap]:
    """A new object of ``size`` bytes at ``path`` (never an existing one), mapped."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if unlink:
            os.unlink(path)
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


def create_object(path: Path, size: int) -> mmap.mmap:
    """A fresh object of ``size`` bytes at ``path``, mapped; a stale object of that name (an
    earlier run's) is removed first. The caller unlinks ``path`` when the link ends."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd, mapping = _create(path, size, unlink=False)
    os.close(fd)
    return mapping


def anonymous_object(size: int, tag: str) -> tuple[int, mmap.mmap]:
    """An object of ``size`` bytes with no name: ``(descriptor, mapping)``.

    It is created as ``/dev/shm/TAG-PID-N`` and unlinked before anything else happens to it.
    The descriptor is the caller's to close (and to hand to a child process).
    """
    return _create(SHM_DIR / f"{tag}-{os.getpid()}-{next(_COUNTER)}", size, unlink=True)


def map_object(fd: int, size: int, where: str) -> mmap.mmap:
    """Map the first ``size`` bytes of the object open as ``fd``.

    Raises:
        TransportError: the object is smaller than ``size`` (``where`` names it).
    """
    actual = os.fstat(fd).st_size
    if actual < size:
        raise TransportError(f"shared-memory object {where} is {actual:#x} bytes < {size:#x}")
    return mmap.mmap(fd, size)


def open_object(path: Path, size: int) -> mmap.mmap:
    """Map the existing object at ``path`` (at least ``size`` bytes).

    Raises:
        TransportError: there is no such object, or it is too small.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise TransportError(f"shared-memory object {path} does not exist") from None
    try:
        return map_object(fd, size, str(path))
    finally:
        os.close(fd)
