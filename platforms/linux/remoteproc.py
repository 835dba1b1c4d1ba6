"""A remote processor the Linux kernel runs, driven through sysfs: aioamp's refcounts, states,
transitions and crash reports on top of ``/sys/class/remoteproc/remoteprocN``.

Theory of operation: the kernel loads the firmware, starts, stops and recovers the processor;
this class asks it to through :class:`~.rproc_files.RemoteprocFiles` and watches what happens.

* Refcounts: the kernel counts power references itself (``rproc_boot``), and every write of
  ``start`` takes one: a second ``start`` does not start anything and the next ``stop`` then
  stops nothing. aioamp's own refcount sits on top: the first :meth:`LinuxRemoteProc.boot`
  writes ``start`` once, later ones only count; the last :meth:`~LinuxRemoteProc.shutdown`
  writes ``stop`` once. A processor someone else started (the kernel's ``auto_boot``, another
  program) keeps running after that: their reference remains. Older kernels refuse ``start``
  while running (EBUSY): aioamp then holds no kernel reference and never writes ``stop``.
  Owners (:meth:`~LinuxRemoteProc.get` / :meth:`~LinuxRemoteProc.put`) are counted as on any
  processor.
* Watching (inside ``async with``): the kernel raises no event when ``state`` changes, so a
  task reads ``state`` again on every uevent below the processor (its virtio devices leave and
  return at each stop, start and recovery; a coredump appears after a crash) and every
  ``poll_interval`` seconds (a crash with recovery disabled is silent otherwise). What it sees
  becomes :class:`~remoteproc.states.Transition` s (:func:`~.rproc_sysfs.observe`): a crash is
  published with the cause ``crash: ...`` and kept in :attr:`LinuxRemoteProc.last_crash`; the
  kernel's own recovery follows as ``recovery by the kernel``.
* Writes that make the kernel work (``state``, ``recovery``) run in a worker thread: a boot
  loads firmware and can take seconds, which must not stall the event loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Self

import anyio
import anyio.abc
import anyio.to_thread
import attrs

from remoteproc.errors import CrashedError, CrashReport, StateError
from remoteproc.observe import TransitionFeed
from remoteproc.states import CrashKind, State, Transition

from .files import HostFiles, KernelFiles
from .firmware import FirmwareStore
from .rproc_files import RemoteprocFiles, find_remoteproc
from .rproc_sysfs import UP, observe
from .sysfs_text import Uevent
from .uevent import UeventMonitor, under
from .uevent_source import UeventSource

log = logging.getLogger("aioamp.platform.linux")


@attrs.frozen
class LinuxRemoteProcStatistics:
    """A kernel-run processor's counters as aioamp sees them."""

    name: str
    device: str
    state: str
    power: int
    owners: int
    kernel_reference: bool
    crashes_seen: int
    state_reads: int
    uevents: int


class LinuxRemoteProc(anyio.AsyncContextManagerMixin):
    """Processor ``which`` (its ``name`` in sysfs, or ``remoteprocN``) of the running kernel.

    Args:
        which: the processor.
        files: the kernel's files (default: this host's; a
            :class:`~platforms.linux.model.RemoteprocModel` in tests).
        poll_interval: seconds between reads of ``state`` while watching (None: uevents only).
        uevents: which uevents to follow (:mod:`.uevent`).
    """

    def __init__(
        self,
        which: str,
        *,
        files: KernelFiles | None = None,
        poll_interval: float | None = 1.0,
        uevents: UeventSource = "auto",
    ) -> None:
        self.files: KernelFiles = files if files is not None else HostFiles()
        self.device = find_remoteproc(self.files, which)
        self.sysfs = RemoteprocFiles(self.files, self.device)
        self.name = self.sysfs.name()
        self.path = self.files.realpath(self.sysfs.dir)
        self.poll_interval = poll_interval
        self._uevents: UeventSource = uevents
        self._lock = anyio.Lock()
        self._power = self._owners = 0
        self._kernel_ref = False
        self._acting = False
        self._seen = self.sysfs.state()
        self._feed = TransitionFeed(self.name)
        self.history = self._feed.history
        self.last_crash: CrashReport | None = None
        self._crashes = self._reads = self._uevent_count = 0
        self._changed = anyio.Event()
        self._monitor: UeventMonitor | None = None
        self._removed = False  # a vdev went away without aioamp stopping the processor

    def __repr__(self) -> str:
        return f"<LinuxRemoteProc {self.name!r} ({self.device}) {self.state_name}>"

    # -- watching ---------------------------------------------------------------------------
    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        """Watch the processor for changes aioamp did not make (crashes) while inside."""
        monitor = self._monitor = UeventMonitor.open(self.files, self._uevents)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, monitor, name=f"{self.device}-watch")
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._monitor = None
            monitor.close()

    async def _watch(self, monitor: UeventMonitor) -> None:
        wait = math.inf if self.poll_interval is None else self.poll_interval
        while True:
            restarted = coredump = False
            with anyio.move_on_after(wait):
                event = await monitor.receive()
                self._uevent_count += 1
                if event is not None and not self._acting:
                    restarted, coredump = self._classify(event)
            if not self._acting:
                self._look(restarted=restarted, coredump=coredump)

    def _classify(self, event: Uevent) -> tuple[bool, bool]:
        """(the vdevs restarted, a coredump of this processor appeared)."""
        if event.subsystem == "virtio" and under(event.devpath, self.path):
            if event.action == "remove":
                self._removed = True
            elif event.action == "add" and self._removed:
                self._removed = False
                return True, False
        elif (
            event.subsystem == "devcoredump" and event.action == "add" and self._failing(event.name)
        ):
            self._removed = False  # the recovery's restart is this crash, not another one
            return False, True
        return False, False

    def _failing(self, devcd: str) -> bool:
        try:
            link = self.files.realpath(f"/sys/class/devcoredump/{devcd}/failing_device")
        except OSError:
            return False
        return link == self.path

    def _look(self, *, restarted: bool = False, coredump: bool = False) -> None:
        try:
            now = self.sysfs.state()
        except Exception as exc:
            log.warning("%s: reading its state failed: %s", self.device, exc)
            return
        self._reads += 1
        found = observe(
            self._seen, now, held=self._power > 0, restarted=restarted, coredump=coredump
        )
        if now is not None:
            self._seen = now
        self._publish(found)

    def _publish(self, transitions: tuple[Transition, ...]) -> None:
        for t in transitions:
            if t.new is State.CRASHED:
                self._crashes += 1
                detail = t.cause.removeprefix("crash: ")
                self.last_crash = CrashReport(self.name, CrashKind.FATAL_ERROR, detail)
                log.warning("%s: crashed (%s)", self.name, detail)
        self._feed.publish(transitions)
        if transitions:
            self._changed.set()
            self._changed = anyio.Event()

    def transitions(
        self, max_buffer: int = 256
    ) -> AbstractAsyncContextManager[AsyncIterator[Transition]]:
        """``async with rproc.transitions() as stream:`` every state change from now on."""
        return self._feed.subscribe(max_buffer)

    async def wait_for_state(self, *states: State, timeout: float | None = None) -> State:
        """Until the processor is in one of ``states`` (as watched), up to ``timeout`` s.

        Raises:
            CrashedError: it crashed and the kernel does not recover it (recovery disabled),
                while waiting for another state; its ``__cause__`` is the crash report.
            TimeoutError: not in time.
        """
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                self._look()
                if self._seen in states:
                    return self._seen
                if self._seen is State.CRASHED and not self.recovery:
                    err = CrashedError(f"{self.name}: crashed, and recovery is disabled")
                    err.__cause__ = self.last_crash
                    raise err
                await self._changed.wait()
        names = "/".join(s.label for s in states)
        raise TimeoutError(f"{self.name}: not {names} within {timeout} s")

    # -- state and settings -----------------------------------------------------------------
    @property
    def state(self) -> State | None:
        """The kernel's state now (None: "invalid")."""
        return self.sysfs.state()

    @property
    def state_name(self) -> str:
        state = self.state
        return "invalid" if state is None else state.label

    @property
    def power(self) -> int:
        return self._power

    @property
    def owners(self) -> int:
        return self._owners

    @property
    def firmware(self) -> str:
        return self.sysfs.firmware()

    @property
    def recovery(self) -> bool:
        return self.sysfs.recovery()

    @property
    def coredump(self) -> str:
        return self.sysfs.coredump()

    async def set_firmware(self, name: str) -> None:
        """The firmware file the next start loads (only while offline: StateError)."""
        self.sysfs.set_firmware(name)

    async def install_firmware(
        self, image: bytes | str, *, name: str | None = None, store: FirmwareStore | None = None
    ) -> str:
        """Copy ``image`` onto the firmware search path (:mod:`.firmware`: never over another
        file) and make it this processor's firmware; returns its name."""
        store = store if store is not None else FirmwareStore(self.files)
        fw_name = store.install(image, name)
        await self.set_firmware(fw_name)
        return fw_name

    async def set_recovery(self, enabled: bool) -> None:
        """Enable or disable the kernel's recovery (enabling recovers a crashed processor)."""
        await self._kernel(
            self.sysfs.set_recovery, "enabled" if enabled else "disabled", cause="recovery"
        )

    async def set_coredump(self, value: str) -> None:
        self.sysfs.set_coredump(value)

    async def recover(self) -> None:
        """Recover a crashed processor now (``recovery`` ``recover``), whatever the setting."""
        await self._kernel(self.sysfs.set_recovery, "recover", cause="recovery")

    def trace(self, index: int = 0) -> str:
        """The firmware's trace buffer ``index`` (debugfs; see :meth:`RemoteprocFiles.trace`)."""
        return self.sysfs.trace(index)

    def rpmsg_url(self) -> str:
        """The ``linux:`` URL of this processor's rpmsg bus (by name: stable across boots)."""
        return f"linux:?rproc={self.device}"

    # -- refcounts --------------------------------------------------------------------------
    async def _kernel(self, write: Callable[..., None], *args: str, cause: str) -> None:
        """A write the kernel acts on, in a worker thread; the change it made is published
        with ``cause`` (not as a change made outside aioamp)."""
        self._acting = True
        try:
            await anyio.to_thread.run_sync(write, *args)
        finally:
            if self._monitor is not None:  # the uevents this write caused are not news
                self._uevent_count += len(self._monitor.drain())
            self._removed = False
            self._acting = False
            try:
                now = self.sysfs.state()
            except Exception:  # the processor went away: the watcher will say so
                now = None
            if now is not None:
                if self._seen is not None and now is not self._seen:
                    self._publish((Transition(self._seen, now, cause),))
                self._seen = now

    async def boot(self) -> None:
        """Take a power reference; the first writes ``start`` (once)."""
        async with self._lock:
            if self._power == 0:
                before = self._seen
                try:
                    await self._kernel(self.sysfs.write, "state", "start", cause="boot")
                    self._kernel_ref = True
                except StateError:  # older kernels: EBUSY, it runs already
                    if self.state not in UP:
                        raise
                    self._kernel_ref = False
                if before is not self._seen or before not in UP:
                    log.info("%s: booted (%s)", self.name, self.state_name)
            self._power += 1

    async def shutdown(self) -> None:
        """Drop a power reference; the last writes ``stop`` (once), if aioamp wrote start."""
        async with self._lock:
            if self._power == 0:
                raise StateError(f"{self.name}: cannot shutdown: it was not booted (power 0)")
            if self._power == 1 and self._kernel_ref:
                await self._kernel(self.sysfs.write, "state", "stop", cause="shutdown")
                self._kernel_ref = False
            self._power -= 1

    async def detach(self) -> None:
        """Drop a power reference; the last writes ``detach`` (an attached processor keeps
        running without the kernel's management)."""
        async with self._lock:
            if self._power == 0:
                raise StateError(f"{self.name}: cannot detach: it was not booted (power 0)")
            if self._power == 1 and self._kernel_ref:
                await self._kernel(self.sysfs.write, "state", "detach", cause="detach")
                self._kernel_ref = False
            self._power -= 1

    @asynccontextmanager
    async def powered(self) -> AsyncIterator[Self]:
        """``async with rproc.powered():`` boot on entry, shutdown on exit."""
        await self.boot()
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await self.shutdown()

    def get(self) -> Self:
        self._owners += 1
        return self

    def put(self) -> None:
        if self._owners == 0:
            raise StateError(f"{self.name}: cannot put: it has no owners")
        self._owners -= 1

    def statistics(self) -> LinuxRemoteProcStatistics:
        return LinuxRemoteProcStatistics(
            name=self.name,
            device=self.device,
            state=self.state_name,
            power=self._power,
            owners=self._owners,
            kernel_reference=self._kernel_ref,
            crashes_seen=self._crashes,
            state_reads=self._reads,
            uevents=self._uevent_count,
        )
