"""Where a processor's firmware comes from, checked when it is configured, loaded at boot.

A source is a path (``str`` or ``os.PathLike``), the image's bytes (any bytes-like object,
copied when configured so later changes to the caller's buffer cannot reach the boot), a parsed
:class:`~remoteproc.firmware.FirmwareImage`, or a callable returning the bytes (fetched anew at
every boot). Anything else is refused by :func:`check_firmware_source` with a
:class:`~remoteproc.errors.FirmwareSourceError`, not at boot with "'int' object is not
callable".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import FirmwareSourceError
from .firmware import FirmwareImage, load_firmware, load_firmware_file

FirmwareSource = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | FirmwareImage | Callable[[], bytes]
)

ACCEPTED = (
    "a path (str or os.PathLike), the image's bytes (bytes, bytearray, memoryview), "
    "a FirmwareImage, or a callable returning the bytes"
)


def check_firmware_source(source: object) -> FirmwareSource | None:
    """``source`` as the processor keeps it (bytes-like copied to ``bytes``), or None."""
    if source is None or isinstance(source, bytes | str | os.PathLike | FirmwareImage):
        return source
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    if callable(source):
        return source
    raise FirmwareSourceError(f"firmware must be {ACCEPTED}; got {type(source).__name__}")


def load_source(source: FirmwareSource, *, name: str) -> FirmwareImage:
    """Parse the image ``source`` names (the file is read, the callable called, now)."""
    if isinstance(source, FirmwareImage):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        return load_firmware(bytes(source), name=name)
    if isinstance(source, str | os.PathLike):
        return load_firmware_file(Path(source))
    data = source()
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise FirmwareSourceError(
            f"{name}: the firmware callable returned {type(data).__name__}, not bytes"
        )
    return load_firmware(data, name=name)
