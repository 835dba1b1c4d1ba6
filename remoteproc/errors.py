"""Exception tree of the remoteproc package.

Each error mixes in the matching builtin so generic handlers work: a malformed image is a
``ValueError``, an unknown processor a ``LookupError``, a refused DEVMEM a ``PermissionError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .states import CrashKind


class RemoteprocError(Exception):
    """Root of every error raised by :mod:`remoteproc`."""


class FirmwareError(RemoteprocError, ValueError):
    """The firmware file is not a loadable image (bad ELF, big-endian, segment out of memory)."""


class FirmwareFileError(RemoteprocError, OSError):
    """The firmware path is not read: not a regular file (a FIFO would block, ``/dev/zero``
    never ends), or larger than :data:`~remoteproc.firmware.MAX_FIRMWARE_SIZE`."""


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
    """The processor crashed and is not recovering: recovery is disabled, failed, or gave up
    (see :class:`~remoteproc.recovery.RecoveryPolicy`). Its ``__cause__`` is the
    :class:`CrashReport` of the last crash."""


class CrashReport(RemoteprocError):
    """What the platform reported about one crash (never raised by itself): the ``__cause__``
    of :class:`CrashedError`, so a handler can tell what happened from why nothing recovers it.

    Attributes:
        processor: the processor's name.
        kind: the :class:`~remoteproc.platform.CrashKind` reported.
        detail: the platform's description.
    """

    def __init__(self, processor: str, kind: CrashKind, detail: str) -> None:
        super().__init__(f"{processor} crashed: {kind.value}: {detail}")
        self.processor = processor
        self.kind = kind
        self.detail = detail


class ArgumentTypeError(RemoteprocError, TypeError):
    """An argument of a type the API does not take; the message says what it accepts."""


class FirmwareSourceError(ArgumentTypeError):
    """The firmware source is not a path, bytes-like image, FirmwareImage or callable."""


class RegistrationError(RemoteprocError, ValueError):
    """The manager refused to register a processor: its name or its platform instance is
    taken, or a dependency is listed twice, unknown or another manager's."""


class RecoveryPolicyError(RemoteprocError, ValueError):
    """A :class:`~remoteproc.recovery.RecoveryPolicy` value is out of range."""


class ProcessorNotFoundError(RemoteprocError, LookupError):
    """No processor of that name is registered."""
