"""What ``aioamp doctor`` learned about a system, and what it says about it: plain data.

:mod:`.probe` fills the facts from a file system (``/proc``, ``/sys``, ``/dev``, ``/lib``),
:mod:`.checks` turns them into findings without touching any file, so each check is tested on
facts alone and the probe on a fake tree with the kernel's file formats.
"""

from __future__ import annotations

import enum
import stat
from typing import Any

import attrs


class Status(enum.Enum):
    """How a finding stands; only ``FAIL`` makes ``aioamp doctor`` exit 1."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


@attrs.frozen
class Finding:
    """One thing checked: ``check`` names it (``kernel.rpmsg_char``, ``dev.shm``), ``fix`` says
    what to do when it is not ``ok``, ``details`` holds the facts behind it."""

    check: str
    status: Status
    summary: str
    fix: str | None = None
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class User:
    """Who runs the commands: permissions are judged for this user."""

    uid: int
    gids: frozenset[int]
    name: str


@attrs.frozen
class Node:
    """A file's path (as the system sees it, without the probe's root) and its permissions."""

    path: str
    mode: int
    uid: int
    gid: int

    def allows(self, user: User, *, write: bool) -> bool:
        """Whether ``user`` may read (and, with ``write``, write) it: owner, group or other
        bits, as the kernel picks them; root may do anything."""
        if user.uid == 0:
            return True
        if user.uid == self.uid:
            read_bit, write_bit = stat.S_IRUSR, stat.S_IWUSR
        elif self.gid in user.gids:
            read_bit, write_bit = stat.S_IRGRP, stat.S_IWGRP
        else:
            read_bit, write_bit = stat.S_IROTH, stat.S_IWOTH
        return bool(self.mode & read_bit) and (not write or bool(self.mode & write_bit))

    def describe(self) -> str:
        return f"{self.path} (mode {stat.S_IMODE(self.mode):04o}, uid {self.uid}, gid {self.gid})"


@attrs.frozen
class Kernel:
    """Which kernel, and which rpmsg pieces it has."""

    release: str | None
    #: ``CONFIG_X`` -> ``y`` / ``m`` / value; None when no config was found.
    config: dict[str, str] | None
    config_source: str | None
    #: Module names in ``modules.builtin`` / ``modules.dep``; None when the file is missing.
    builtin: frozenset[str] | None
    available: frozenset[str] | None
    #: Loaded modules (``/proc/modules``) and the ``/sys/module`` entries present.
    loaded: frozenset[str]
    in_sysfs: frozenset[str]


@attrs.frozen
class Remoteproc:
    """``/sys/class/remoteproc/remoteprocN``."""

    device: str
    name: str | None
    state: str | None
    firmware: str | None
    #: Where the firmware file was found in the search path (None: not found).
    firmware_path: str | None
    state_node: Node | None


@attrs.frozen
class Firmware:
    """The kernel's firmware search path."""

    #: ``/sys/module/firmware_class/parameters/path``: '' when not set, None when absent.
    custom_path: str | None
    #: Each directory of the search path and whether it exists.
    dirs: tuple[tuple[str, bool], ...]


@attrs.frozen
class Uio:
    """``/sys/class/uio/uioN``: its name, memory maps and device node."""

    device: str
    name: str | None
    maps: tuple[tuple[int, int, str], ...]  # (addr, size, name)
    node: Node | None


@attrs.frozen
class Shm:
    """``/dev/shm``: None fields when it does not exist."""

    node: Node | None
    total: int | None
    free: int | None


@attrs.frozen
class Vrings:
    """The C vring extension: built for this Python, active, or refused by the environment."""

    accelerated: bool
    built: bool
    forced_pure: str | None


@attrs.frozen
class Facts:
    """Everything :func:`~aioamp.doctor.probe.probe` read."""

    root: str
    user: User
    kernel: Kernel
    remoteprocs: tuple[Remoteproc, ...]
    rpmsg_nodes: tuple[Node, ...]
    firmware: Firmware
    uio: tuple[Uio, ...]
    shm: Shm
    vrings: Vrings
