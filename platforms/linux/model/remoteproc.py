"""A model of the kernel's remoteproc as user space sees it: /sys/class/remoteproc, its debugfs
trace files, the firmware search path and the uevents, with the kernel's semantics.

Theory of operation: :class:`RemoteprocModel` is a :class:`~platforms.linux.files.KernelFiles`
(so the backend runs on it unchanged) whose sysfs files are answered by a small state machine
that follows ``drivers/remoteproc/remoteproc_sysfs.c`` and ``remoteproc_core.c`` of Linux 6.12:

* ``state``: ``start`` is ``rproc_boot`` (a power reference; the first one attaches a detached
  processor, or loads its firmware, ENOENT when no file of that name is in the search path,
  EINVAL for a ``..`` name); ``stop`` is ``rproc_shutdown`` (EINVAL unless running, attached or
  crashed; the last reference stops it); ``detach`` is ``rproc_detach`` (EINVAL unless
  attached); anything else EINVAL. ``legacy=True`` adds the older kernels' checks: ``start``
  while running is EBUSY, ``stop`` while not running EINVAL.
* ``firmware``: EBUSY unless offline, EINVAL when empty, read "unknown" while attached;
  ``recovery``: enabled / disabled / recover, else EINVAL; ``coredump``: disabled / enabled /
  inline, else EINVAL, EBUSY while crashed; ``name``: read-only.
* Permissions as kernfs checks them: mode bits against the caller's :class:`Credentials`
  (root passes, except on a file without any write bit: ``sysfs_read_only`` makes the four
  writable attributes 0444, which refuses root too), EACCES otherwise; :meth:`grant` is what a
  udev rule's chgrp + chmod g+w does; debugfs is root-only (0700) unless :attr:`debugfs_gid`.
* :meth:`report_crash` is ``rproc_report_crash`` + ``rproc_crash_handler_work``: the first crash
  sets ``crashed``; with recovery enabled the processor restarts (its virtio devices go and come
  back, a ``devcoredump`` appears unless coredumps are disabled; a firmware file gone by then
  leaves it offline), with recovery disabled nothing else happens, silently.
* uevents: the kernel's datagrams (``ACTION@DEVPATH\\0KEY=VALUE\\0...``) for the devices that
  really come and go: the processor itself when added, its ``rproc-virtio.N.auto`` platform
  device and ``virtioM`` device at start and stop, a ``devcdN`` after a crash. None for a state
  change: the kernel sends none either.

Not modelled: the remote core itself (its rpmsg devices, the resource table), suspend,
``RPROC_FEAT_ATTACH_ON_RECOVERY``, the firmware loader's fallback to user space. Firmware files
are real files below ``root`` (``/lib/firmware`` is ``root/lib/firmware``).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path

import attrs

from remoteproc.states import State

from ..rproc_sysfs import (
    COREDUMP_VALUES,
    DEBUGFS,
    FIRMWARE_PATH_PARAM,
    REMOTEPROC_CLASS,
    search_path,
)
from ..sysfs_text import pack_kernel_uevent
from .files import Credentials, FileNode, RealFiles, UeventHub, denied, fail, streq

ROOT = Credentials()
_WRITABLE = ("state", "firmware", "recovery", "coredump")
_UP = (State.RUNNING, State.ATTACHED)


@attrs.define(eq=False)
class ModelProcessor:
    """One modelled ``struct rproc``."""

    index: int
    name: str
    parent: str
    firmware: str
    state: State = State.OFFLINE
    power: int = 0
    recovery_disabled: bool = False
    coredump: str = "enabled"
    legacy: bool = False
    vdevs: int = 1
    crashes: int = 0
    files: dict[str, FileNode] = attrs.field(factory=dict)
    traces: dict[int, str] = attrs.field(factory=dict)
    _virtio: list[str] = attrs.field(factory=list)  # live virtio devices' paths

    @property
    def device(self) -> str:
        return f"remoteproc{self.index}"

    @property
    def path(self) -> str:
        return f"/sys/devices/platform/{self.parent}/remoteproc/{self.device}"


class RemoteprocModel(RealFiles):
    """The model (see the module docstring). ``root`` holds its real files (firmware)."""

    def __init__(self, root: str | os.PathLike[str], *, release: str = "6.12.0-model") -> None:
        super().__init__(root)
        Path(self.host_path("/lib/firmware")).mkdir(parents=True, exist_ok=True)
        self.release = release
        #: Who the model's callers are (the backend's process): root by default.
        self.user = ROOT
        self.procs: list[ModelProcessor] = []
        self.firmware_param = FileNode(0o644)
        self.firmware_path = ""
        self.debugfs_gid: int | None = None
        self.devcoredumps: dict[str, str] = {}  # devcdN -> failing processor's path
        #: Every uevent sent: (action, devpath).
        self.uevents: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._hub = UeventHub()
        self._pdevs = self._virtios = 0

    # -- building the system ----------------------------------------------------------------
    def add(
        self,
        name: str,
        *,
        firmware: str = "",
        state: State = State.OFFLINE,
        parent: str | None = None,
        vdevs: int = 1,
        sysfs_read_only: bool = False,
        legacy: bool = False,
    ) -> ModelProcessor:
        """Register a processor (``rproc_add``): offline, detached (started by the boot
        loader), or running (``auto_boot``: the kernel holds a power reference)."""
        if state not in (State.OFFLINE, State.DETACHED, State.RUNNING):
            raise ValueError(f"a processor is added offline, detached or running, not {state}")
        with self._lock:
            proc = ModelProcessor(
                index=len(self.procs),
                name=name,
                parent=parent or f"{name}-rproc",
                firmware=firmware or f"rproc-{name}-fw",
                legacy=legacy,
                vdevs=vdevs,
            )
            mode = 0o444 if sysfs_read_only else 0o644
            proc.files = {a: FileNode(mode) for a in _WRITABLE} | {"name": FileNode(0o444)}
            self.procs.append(proc)
            self._emit("add", proc.path, {"SUBSYSTEM": "remoteproc"})
            if state is State.DETACHED:
                proc.state = State.DETACHED
            elif state is State.RUNNING:
                self._boot(proc)
            return proc

    def processor(self, which: str) -> ModelProcessor:
        for proc in self.procs:
            if which in (proc.device, proc.name):
                return proc
        raise LookupError(which)

    def set_trace(self, which: str, text: str, index: int = 0) -> None:
        with self._lock:
            self.processor(which).traces[index] = text

    def grant(self, path: str, gid: int) -> None:
        """What a udev rule's ``chgrp GID FILE; chmod g+w FILE`` does to a sysfs attribute."""
        with self._lock:
            node = self._node(path)
            node.gid, node.mode = gid, node.mode | 0o060

    # -- the kernel's side ------------------------------------------------------------------
    def report_crash(self, which: str) -> None:
        """``rproc_report_crash``, and the crash handler's work (synchronously)."""
        with self._lock:
            proc = self.processor(which)
            if proc.state in (State.CRASHED, State.OFFLINE):
                return  # the first crash only; a stopped processor is not recovered
            proc.state = State.CRASHED
            proc.crashes += 1
            if not proc.recovery_disabled:
                self._recover(proc)

    def _recover(self, proc: ModelProcessor) -> None:
        """``rproc_trigger_recovery`` -> ``rproc_boot_recovery``."""
        if proc.state is not State.CRASHED:
            return
        self._stop_subdevices(proc)
        proc.state = State.OFFLINE  # rproc_stop
        if proc.coredump != "disabled":
            devcd = f"devcd{len(self.devcoredumps) + 1}"
            self.devcoredumps[devcd] = proc.path
            self._emit(
                "add", f"/sys/devices/virtual/devcoredump/{devcd}", {"SUBSYSTEM": "devcoredump"}
            )
        if self._find_firmware(proc) is None:
            return  # request_firmware failed: the processor stays offline
        proc.state = State.RUNNING
        self._start_subdevices(proc)

    def _find_firmware(self, proc: ModelProcessor) -> str | None:
        for directory in search_path(self.firmware_path, self.release):
            candidate = Path(self.host_path(directory)) / proc.firmware
            if candidate.is_file():
                return str(candidate)
        return None

    def _boot(self, proc: ModelProcessor) -> None:
        """``rproc_boot``."""
        proc.power += 1
        if proc.power > 1:
            return
        if proc.state is State.DETACHED:
            proc.state = State.ATTACHED
        else:
            name = proc.firmware
            if ".." in name.split("/"):
                proc.power -= 1
                fail(errno.EINVAL, "request_firmware: the name has a '..' component")
            if self._find_firmware(proc) is None:
                proc.power -= 1
                fail(errno.ENOENT, f"request_firmware: no {name} in the search path")
            proc.state = State.RUNNING
        self._add_vdevs(proc)

    def _shutdown(self, proc: ModelProcessor, *, detach: bool) -> None:
        """``rproc_shutdown`` / ``rproc_detach``."""
        proc.power -= 1
        if proc.power:
            return
        self._stop_subdevices(proc)
        self._emit_vdev_platform(proc, "remove")
        proc.state = State.DETACHED if detach else State.OFFLINE

    def _add_vdevs(self, proc: ModelProcessor) -> None:
        self._emit_vdev_platform(proc, "add")
        self._start_subdevices(proc)

    def _emit_vdev_platform(self, proc: ModelProcessor, action: str) -> None:
        for k in range(proc.vdevs):
            self._emit(action, f"{proc.path}/rproc-virtio.{k}.auto", {"SUBSYSTEM": "platform"})

    def _start_subdevices(self, proc: ModelProcessor) -> None:
        for k in range(proc.vdevs):
            path = f"{proc.path}/rproc-virtio.{k}.auto/virtio{self._virtios}"
            self._virtios += 1
            proc._virtio.append(path)
            self._emit("add", path, {"SUBSYSTEM": "virtio"})

    def _stop_subdevices(self, proc: ModelProcessor) -> None:
        while proc._virtio:
            self._emit("remove", proc._virtio.pop(), {"SUBSYSTEM": "virtio"})

    # -- uevents ----------------------------------------------------------------------------
    def open_uevents(self, group: int) -> socket.socket:
        with self._lock:
            return self._hub.open()

    def _emit(self, action: str, devpath_sys: str, env: dict[str, str]) -> None:
        devpath = devpath_sys.removeprefix("/sys")
        self.uevents.append((action, devpath))
        self._hub.send(pack_kernel_uevent(action, devpath, env))

    # -- KernelFiles --------------------------------------------------------------------------
    def _proc_file(self, path: str) -> tuple[ModelProcessor, str] | None:
        for proc in self.procs:
            for base in (f"{REMOTEPROC_CLASS}/{proc.device}", proc.path):
                if path.startswith(base + "/") and path[len(base) + 1 :] in proc.files:
                    return proc, path[len(base) + 1 :]
        return None

    def _node(self, path: str) -> FileNode:
        found = self._proc_file(path)
        if found is not None:
            return found[0].files[found[1]]
        if path == FIRMWARE_PATH_PARAM:
            return self.firmware_param
        fail(errno.ENOENT, path)

    def read_bytes(self, path: str) -> bytes:
        path = os.path.normpath(path)
        with self._lock:
            if not path.startswith("/sys/"):
                return super().read_bytes(path)
            if path.startswith(DEBUGFS + "/"):
                return self._read_trace(path).encode()
            node = self._node(path)
            if not node.readable(self.user):
                denied(path)
            return self._show(path).encode()

    def _show(self, path: str) -> str:
        if path == FIRMWARE_PATH_PARAM:
            return self.firmware_path + "\n"
        found = self._proc_file(path)
        assert found is not None
        proc, attr = found
        if attr == "state":
            return proc.state.label + "\n"
        if attr == "firmware":
            return ("unknown" if proc.state is State.ATTACHED else proc.firmware) + "\n"
        if attr == "recovery":
            return "disabled\n" if proc.recovery_disabled else "enabled\n"
        if attr == "coredump":
            return proc.coredump + "\n"
        return proc.name + "\n"

    def _read_trace(self, path: str) -> str:
        if self.user.uid != 0 and self.debugfs_gid not in self.user.gids:
            denied(path)  # debugfs is mounted 0700 root unless its gid= says otherwise
        device, _, name = path[len(DEBUGFS) + 1 :].partition("/")
        index = int(name[5:]) if name.startswith("trace") and name[5:].isdigit() else -1
        for proc in self.procs:
            live = proc.state in (*_UP, State.CRASHED)  # trace buffers exist while loaded
            if proc.device == device and index in proc.traces and live:
                return proc.traces[index]
        fail(errno.ENOENT, path)

    def write(self, path: str, text: str) -> None:
        path = os.path.normpath(path)
        with self._lock:
            if not path.startswith("/sys/"):
                super().write(path, text)
                return
            node = self._node(path)
            if not node.writable(self.user):
                denied(path)
            if path == FIRMWARE_PATH_PARAM:
                self.firmware_path = text.split("\n", 1)[0]
                return
            found = self._proc_file(path)
            assert found is not None
            self._store(found[0], found[1], text)

    def _store(self, proc: ModelProcessor, attr: str, buf: str) -> None:
        if attr == "state":
            if streq(buf, "start"):
                if proc.legacy and proc.state in _UP:
                    fail(errno.EBUSY, "state: already running")
                self._boot(proc)
            elif streq(buf, "stop"):
                if proc.state not in (*_UP, State.CRASHED) or (
                    proc.legacy and proc.state is State.CRASHED
                ):
                    fail(errno.EINVAL, "state: stop while not running")
                self._shutdown(proc, detach=False)
            elif streq(buf, "detach"):
                if proc.state is not State.ATTACHED:
                    fail(errno.EINVAL, "state: detach while not attached")
                self._shutdown(proc, detach=True)
            else:
                fail(errno.EINVAL, f"state: unrecognised option {buf!r}")
        elif attr == "firmware":
            if proc.state is not State.OFFLINE:
                fail(errno.EBUSY, "firmware: can't change firmware while running")
            name = buf.split("\n", 1)[0]
            if not name:
                fail(errno.EINVAL, "firmware: empty name")
            proc.firmware = name
        elif attr == "recovery":
            if streq(buf, "enabled"):
                proc.recovery_disabled = False
                self._recover(proc)
            elif streq(buf, "disabled"):
                proc.recovery_disabled = True
            elif streq(buf, "recover"):
                self._recover(proc)
            else:
                fail(errno.EINVAL, f"recovery: {buf!r}")
        else:  # coredump
            if proc.state is State.CRASHED:
                fail(errno.EBUSY, "coredump: can't change coredump configuration")
            for value in COREDUMP_VALUES:
                if streq(buf, value):
                    proc.coredump = value
                    return
            fail(errno.EINVAL, f"coredump: {buf!r}")

    def listdir(self, path: str) -> list[str]:
        path = os.path.normpath(path)
        with self._lock:
            if path == REMOTEPROC_CLASS:
                return [p.device for p in self.procs]
            if path == "/sys/class/devcoredump":
                return sorted(self.devcoredumps)
            for proc in self.procs:
                if path in (proc.path, f"{REMOTEPROC_CLASS}/{proc.device}"):
                    return sorted(proc.files)
            if not path.startswith("/sys/"):
                return super().listdir(path)
            fail(errno.ENOENT, path)

    def exists(self, path: str) -> bool:
        try:
            self.realpath(path)
            if path.startswith("/sys/") and self._proc_file(os.path.normpath(path)) is None:
                self.listdir(path)
        except OSError:
            return False
        return True

    def realpath(self, path: str) -> str:
        path = os.path.normpath(path)
        with self._lock:
            for proc in self.procs:
                link = f"{REMOTEPROC_CLASS}/{proc.device}"
                if path == link or path.startswith(link + "/"):
                    return proc.path + path[len(link) :]
            for devcd, failing in self.devcoredumps.items():
                if path == f"/sys/class/devcoredump/{devcd}/failing_device":
                    return failing
            return path if path.startswith("/sys/") else super().realpath(path)
