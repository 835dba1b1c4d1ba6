"""The Wireshark Lua dissector shipped with the package, and its installation. Shell.

Wireshark loads every ``.lua`` file of its personal plugins folder at start-up: on Linux and
other Unixes ``~/.local/lib/wireshark/plugins/`` (Help > About > Folders shows it).
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from pathlib import Path

#: The dissector's file name, in the package and once installed.
DISSECTOR_NAME = "aioamp-rpmsg.lua"


def dissector_source() -> bytes:
    """The Lua dissector's text, from the package's data."""
    return (files("rpmsg.capture") / DISSECTOR_NAME).read_bytes()


def personal_plugins_dir() -> Path:
    """Wireshark's personal plugins folder on Linux and other Unixes."""
    return Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def install_dissector(directory: str | os.PathLike[str] | None = None) -> Path:
    """Write the dissector into ``directory`` (created if needed; default: Wireshark's
    personal plugins folder), replacing an older copy in one step. Returns its path.

    Raises:
        OSError: the folder cannot be created or written.
    """
    target_dir = Path(directory) if directory is not None else personal_plugins_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / DISSECTOR_NAME
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{DISSECTOR_NAME}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(dissector_source())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
