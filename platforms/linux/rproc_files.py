"""One remote processor's sysfs and debugfs files, read and written with the kernel's errors
mapped to aioamp's. Synchronous: the async :class:`~.remoteproc.LinuxRemoteProc` runs the
writes that may block (``state``, ``recovery``) in a worker thread, the CLI calls them
directly.

Theory of operation: every operation is one read or one write of one attribute
(:mod:`.rproc_sysfs` says what each means). What an errno means depends on the attribute and
the value (``drivers/remoteproc/remoteproc_sysfs.c``, ``remoteproc_core.c``):

* ``state``: ENOENT / EINVAL at ``start`` come from loading the firmware (no such file in the
  search path; a ``..`` name): :class:`~remoteproc.errors.BootError`; EINVAL at ``stop`` or
  ``detach`` means the state does not allow it, EBUSY at ``start`` (older kernels) that it
  runs already: :class:`~remoteproc.errors.StateError`.
* ``firmware`` and ``coredump``: EBUSY is the processor's state (running; crashed), a
  StateError; EINVAL a value the kernel refused.
* EACCES / EPERM anywhere: :class:`~.errors.RemoteprocPermissionError`, naming the udev rule.
* ENOENT on an attribute: the processor is gone (:class:`ProcessorGoneError`).
"""

from __future__ import annotations

import errno
import os

from remoteproc.errors import BootError, ProcessorNotFoundError, RemoteprocError, StateError
from remoteproc.states import State

from .errors import remoteproc_permission_error
from .files import KernelFiles
from .rproc_sysfs import (
    DEBUGFS,
    FIRMWARE_PATH_PARAM,
    REMOTEPROC_CLASS,
    RemoteprocInfo,
    SysfsValueError,
    check_coredump,
    check_firmware_name,
    parse_recovery,
    parse_state,
    search_path,
)


class ProcessorGoneError(ProcessorNotFoundError):
    """The processor's sysfs directory is gone (its driver was unbound)."""


class KernelRemoteprocError(RemoteprocError, OSError):
    """A sysfs write failed in a way the kernel's source does not explain (keeps ``errno``)."""


def find_remoteproc(files: KernelFiles, which: str) -> str:
    """The ``remoteprocN`` whose device name or ``name`` attribute is ``which``.

    Raises:
        ProcessorNotFoundError: none; the message lists those there are.
    """
    found = list_remoteprocs(files)
    for info in found:
        if which in (info.device, info.name):
            return info.device
    known = ", ".join(f"{i.device} ({i.name})" for i in found) or "none"
    raise ProcessorNotFoundError(f"no remote processor {which!r} in {REMOTEPROC_CLASS} ({known})")


def list_remoteprocs(files: KernelFiles) -> list[RemoteprocInfo]:
    """Every processor of /sys/class/remoteproc, by number."""
    try:
        devices = files.listdir(REMOTEPROC_CLASS)
    except FileNotFoundError:
        return []  # no remoteproc in this kernel (CONFIG_REMOTEPROC off)
    infos = []
    for device in sorted(devices, key=lambda d: int(d.removeprefix("remoteproc") or -1)):
        try:
            infos.append(RemoteprocFiles(files, device).info())
        except ProcessorGoneError:
            continue
    return infos


class RemoteprocFiles:
    """The files of processor ``device`` (``remoteprocN``)."""

    def __init__(self, files: KernelFiles, device: str) -> None:
        self.files = files
        self.device = device
        self.dir = f"{REMOTEPROC_CLASS}/{device}"

    def path(self, attr: str) -> str:
        return f"{self.dir}/{attr}"

    def read(self, attr: str) -> str:
        try:
            return self.files.read(self.path(attr))
        except OSError as exc:
            raise self._error(exc, attr, None, "read") from None

    def write(self, attr: str, value: str) -> None:
        """One write of ``value``; may block (``state``: the kernel boots the processor)."""
        try:
            self.files.write(self.path(attr), value)
        except OSError as exc:
            raise self._error(exc, attr, value, "write") from None

    def _error(self, exc: OSError, attr: str, value: str | None, action: str) -> RemoteprocError:
        err, path = exc.errno or 0, self.path(attr)
        denied = remoteproc_permission_error(err, path, action)
        if denied is not None:
            return denied
        if (err == errno.ENOENT and value is None) or not self.files.exists(self.dir):
            return ProcessorGoneError(f"{self.device}: {path} is gone")
        what = f"{self.device}: writing {value!r} to {attr}"
        if attr == "state" and value == "start" and err in (errno.ENOENT, errno.EINVAL):
            return BootError(
                f"{what}: the kernel could not load firmware {self.firmware()!r} "
                f"({errno.errorcode[err]}); the search path is "
                f"{', '.join(search_path(self.custom_path(), os.uname().release))}"
            )
        if err == errno.EBUSY or (attr == "state" and err == errno.EINVAL):
            state = self.state()
            return StateError(f"{what}: refused while {state.label if state else 'invalid'}")
        if err == errno.EINVAL:
            return SysfsValueError(f"{what}: the kernel refused the value")
        out = KernelRemoteprocError(err, f"{what}: {errno.errorcode.get(err, err)}")
        out.filename = path
        return out

    # -- attributes -------------------------------------------------------------------------
    def name(self) -> str:
        return self.read("name").strip()

    def state(self) -> State | None:
        return parse_state(self.read("state"))

    def firmware(self) -> str:
        return self.read("firmware").strip()

    def recovery(self) -> bool:
        return parse_recovery(self.read("recovery"))

    def coredump(self) -> str:
        return self.read("coredump").strip()

    def info(self) -> RemoteprocInfo:
        return RemoteprocInfo(
            device=self.device,
            name=self.name(),
            state=self.state(),
            firmware=self.firmware(),
            recovery=self.recovery(),
            coredump=self.coredump(),
        )

    def set_firmware(self, name: str) -> None:
        self.write("firmware", check_firmware_name(name))

    def set_recovery(self, value: str) -> None:
        if value not in ("enabled", "disabled", "recover"):
            raise SysfsValueError(f"recovery takes enabled, disabled or recover, not {value!r}")
        self.write("recovery", value)

    def set_coredump(self, value: str) -> None:
        self.write("coredump", check_coredump(value))

    def custom_path(self) -> str:
        """firmware_class's ``path`` parameter ("" when unset or unreadable)."""
        try:
            return self.files.read(FIRMWARE_PATH_PARAM).strip()
        except OSError:
            return ""

    def trace(self, index: int = 0) -> str:
        """The firmware's trace buffer ``index`` (debugfs ``traceN``: root-only by default).

        Raises:
            LookupError: no such buffer (debugfs not mounted, the firmware has none, or the
                processor is not running).
            RemoteprocPermissionError: debugfs is not readable here.
        """
        path = f"{DEBUGFS}/{self.device}/trace{index}"
        try:
            raw = self.files.read_bytes(path)
        except OSError as exc:
            denied = remoteproc_permission_error(exc.errno or 0, path, "read")
            if denied is not None:
                raise denied from None
            raise LookupError(
                f"{self.device}: no trace buffer {index} ({path}: {exc.strerror}; is debugfs "
                "mounted at /sys/kernel/debug and the processor running?)"
            ) from None
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
