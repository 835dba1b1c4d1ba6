"""Exception tree of the remoteproc package.

Each error mixes in the matching builtin so generic handlers work: a malformed image is a
``ValueError``, an unknown processor a ``LookupError``, a refused DEVMEM a ``PermissionError``.
"""

from __future__ import annotations


class RemoteprocError(Exception):
    """Root of every error raised by :mod:`remoteproc`."""


class FirmwareError(RemoteprocError, ValueError):
    """The firmware file is not a loadable image (bad ELF, big-endian, segment out of memory)."""


class ResourceTableError(RemoteprocError, ValueError):
    """The resource table is malformed.

    Attributes:
        index: the entry index at fault, or None for the table header.
        offset: byte offset into the table where the problem was found.
        reason: human-readable reason (also the message).
    """

    def __init__(self, reason: str, *, index: int | None = None, offset: int | None = None):
        where = []
        if index is not None:
            where.append(f"entry {index}")
        if offset is not None:
            where.append(f"offset {offset:#x}")
        prefix = f"resource table {' '.join(where)}: " if where else "resource table: "
        super().__init__(prefix + reason)
        self.index = index
        self.offset = offset
        self.reason = reason


class MemoryMapError(RemoteprocError, ValueError):
    """A device address cannot be mapped, or a carveout cannot be allocated."""


class DevmemNotAllowedError(RemoteprocError, PermissionError):
    """A DEVMEM entry asks for memory outside the platform's allowlist."""


class StateError(RemoteprocError, RuntimeError):
    """The operation is not valid in the processor's current state (e.g. boot after delete)."""


class BootError(RemoteprocError, RuntimeError):
    """The platform failed to start the processor."""


class CrashedError(RemoteprocError, ConnectionError):
    """The processor crashed and recovery is disabled (or failed)."""


class ProcessorNotFoundError(RemoteprocError, LookupError):
    """No processor of that name is registered."""
