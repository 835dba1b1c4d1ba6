"""The kernel's remoteproc as sysfs shows it: the files, their values, and what a change of
them means. Pure.

Theory of operation (``drivers/remoteproc/remoteproc_sysfs.c``, Linux 6.12): each processor is
``/sys/class/remoteproc/remoteprocN`` with five attributes:

* ``state`` reads offline, suspended, running, crashed, attached, detached (or invalid); a
  write of ``start`` calls ``rproc_boot`` (which *counts*: a second start only takes another
  power reference, and one ``stop`` then leaves the core running), ``stop`` calls
  ``rproc_shutdown`` (EINVAL unless running, attached or crashed), ``detach`` calls
  ``rproc_detach`` (EINVAL unless attached); anything else is EINVAL. Older kernels (4.x, 5.x)
  refused ``start`` while running with EBUSY instead.
* ``firmware``: a file name under the firmware search path; writable only while offline
  (``rproc_set_firmware``: EBUSY), not empty (EINVAL), read as "unknown" while attached.
* ``recovery``: enabled or disabled; writes ``enabled``, ``disabled`` or ``recover`` (recover a
  crashed processor now, whatever the setting).
* ``coredump``: disabled, enabled or inline (6.12 reads and writes ``enabled``; the comment in
  remoteproc_sysfs.c still calls it "default"); EBUSY while crashed.
* ``name``: read-only. A driver that sets ``sysfs_read_only`` makes the other four 0444 too.

The kernel raises no uevent when ``state`` changes, and sysfs offers no notification for it:
the remoteproc core only adds and removes devices below the processor (the virtio devices of
its vdevs, at each start and stop, also inside a recovery) and, with coredumps enabled, a
``devcoredump`` device whose ``failing_device`` is the processor. :func:`observe` turns what a
watcher saw (the state before and now, a restart of the vdevs it did not cause, a coredump)
into the transitions to report.
"""

from __future__ import annotations

import attrs

from remoteproc.errors import RemoteprocError
from remoteproc.states import State, Transition

REMOTEPROC_CLASS = "/sys/class/remoteproc"
DEBUGFS = "/sys/kernel/debug/remoteproc"
#: drivers/base/firmware_loader/main.c: the ``path`` parameter of firmware_class.
FIRMWARE_PATH_PARAM = "/sys/module/firmware_class/parameters/path"
#: fw_path[] after the parameter (UTS_RELEASE: the running kernel's release).
FIRMWARE_SEARCH = (
    "/lib/firmware/updates/{release}",
    "/lib/firmware/updates",
    "/lib/firmware/{release}",
    "/lib/firmware",
)
ATTRIBUTES = ("state", "firmware", "recovery", "coredump", "name")
COMMANDS = ("start", "stop", "detach")
RECOVERY_WRITES = ("enabled", "disabled", "recover")
COREDUMP_VALUES = ("disabled", "enabled", "inline")
#: What state_show prints for a state past RPROC_LAST.
INVALID = "invalid"
UP = (State.RUNNING, State.ATTACHED)


class SysfsValueError(RemoteprocError, ValueError):
    """A value the kernel would refuse (EINVAL), refused before it is written."""


def parse_state(text: str) -> State | None:
    """``state``'s text; None for "invalid".

    Raises:
        SysfsValueError: a label this kernel version does not print.
    """
    label = text.strip()
    if label == INVALID:
        return None
    try:
        return State.from_label(label)
    except ValueError:
        raise SysfsValueError(f"unknown remoteproc state {label!r}") from None


def parse_recovery(text: str) -> bool:
    """``recovery``: True when enabled."""
    value = text.strip()
    if value not in ("enabled", "disabled"):
        raise SysfsValueError(f"unknown recovery setting {value!r}")
    return value == "enabled"


def check_coredump(value: str) -> str:
    if value not in COREDUMP_VALUES:
        raise SysfsValueError(
            f"coredump must be one of {', '.join(COREDUMP_VALUES)}, not {value!r}"
        )
    return value


def check_firmware_name(name: str) -> str:
    """A name ``firmware`` takes whole: not empty, one line (rproc_set_firmware keeps up to
    the first newline), no NUL, no ``..`` component (the firmware loader refuses those:
    ``name_contains_dotdot``), not absolute (it is looked up under the search path)."""
    parts = name.split("/")
    if not name or "\n" in name or "\0" in name or name.startswith("/") or ".." in parts:
        raise SysfsValueError(
            f"firmware name {name!r} must be a relative path under the firmware search path, "
            "one line, without '..'"
        )
    return name


def search_path(custom: str, release: str) -> list[str]:
    """Where the kernel looks for firmware, in order (``fw_path[]``)."""
    dirs = [custom.strip()] if custom.strip() else []
    return dirs + [d.format(release=release) for d in FIRMWARE_SEARCH]


@attrs.frozen
class RemoteprocInfo:
    """One processor's sysfs attributes, read at once (``aioamp rproc list``)."""

    device: str  # remoteprocN
    name: str
    state: State | None
    firmware: str
    recovery: bool
    coredump: str

    @property
    def state_label(self) -> str:
        return INVALID if self.state is None else self.state.label


def observe(
    last: State | None,
    now: State | None,
    *,
    held: bool,
    restarted: bool = False,
    coredump: bool = False,
) -> tuple[Transition, ...]:
    """The transitions to report for a change aioamp did not make.

    Args:
        last: the state last seen; ``now``: the state read now (None: "invalid", skipped).
        held: whether aioamp holds a power reference (a processor it booted).
        restarted: the processor's vdevs went away and came back (uevents) since ``last``.
        coredump: a devcoredump of this processor appeared since ``last``.
    """
    if last is None or now is None:
        return ()
    if now is State.CRASHED and last is not State.CRASHED:
        return (Transition(last, now, "crash: the kernel reports it crashed"),)
    if last is State.CRASHED and now in UP:
        return (Transition(last, now, "recovery by the kernel"),)
    if last in UP and now is last and (restarted or coredump):
        seen = "a coredump" if coredump else "its vdevs restarting without a stop"
        return (
            Transition(last, State.CRASHED, f"crash: seen as {seen}"),
            Transition(State.CRASHED, now, "recovery by the kernel"),
        )
    if now is last:
        return ()
    if held and last in (*UP, State.CRASHED) and now is State.OFFLINE:
        return (Transition(last, now, "went offline outside aioamp (stopped, or recovery failed)"),)
    return (Transition(last, now, "changed outside aioamp"),)
