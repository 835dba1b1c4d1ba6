"""A remote processor: the async shell around the pure :class:`~remoteproc.lifecycle.Lifecycle`.

Theory of operation: every public operation takes the processor's lock, asks the lifecycle
what to do, performs the returned actions (load, start, stop, reload, release...) and reports
the outcome back, as ``lifecycle.py`` documents. The first ``boot()`` boots the processors this
one depends on, loads the firmware (see :mod:`remoteproc.loader`), starts the core and brings up
an rpmsg bus (host role) per vdev; later boots only count. The last ``shutdown()`` closes the
buses, stops the core, frees its memory and shuts its dependencies down in reverse order.

A crash reported by the platform is handled in a task of the manager (see
:mod:`remoteproc.crash`): with recovery enabled the processors that depend on this one are
stopped, this one is stopped, reloaded and restarted (after the backoff its
:class:`~remoteproc.recovery.RecoveryPolicy` asks for), then the dependents are restarted;
rpmsg channels go away (drivers' iterations end) and come back with the new buses, and drivers
registered on the processor are probed again. With recovery disabled, failed or given up the
buses fail with :class:`~remoteproc.errors.CrashedError`, so senders get a clear error, and
the processor stays crashed until ``recover()`` or its last shutdown.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from rpmsg.vring_bus import RpmsgBus
from rpmsg.channel import Channel, Probe, Remove
from rpmsg.errors import RpmsgTimeoutError

from . import arguments, crash
from .errors import (
    ArgumentTypeError,
    BootError,
    CrashReport,
    RemoteprocError,
    StateError,
)
from .lifecycle import Action, Lifecycle, LifecycleStatistics, State, Step, Transition
from .loader import LoadedImage, attach_resources, load
from .observe import TransitionFeed, follow_lines
from .platform import CrashKind, PlatformDriver
from .recovery import RecoveryPolicy
from .source import FirmwareSource, check_firmware_source, load_source
from .vdevs import VdevBuses

if TYPE_CHECKING:
    from .firmware import FirmwareImage
    from .manager import RemoteprocManager

log = logging.getLogger("remoteproc")

__all__ = ["FirmwareSource", "RemoteProc", "RemoteProcStatistics"]


@attrs.frozen
class RemoteProcStatistics:
    """A processor's lifecycle counters plus what its buses and platform saw."""

    name: str
    state: str
    lifecycle: LifecycleStatistics
    vq_interrupts: int
    unknown_interrupts: int
    crash_reports: int


class RemoteProc:
    """One remote processor. Create through :meth:`RemoteprocManager.add`, which documents
    the arguments; they are all checked here, before the platform is bound."""

    name: str

    def __init__(
        self,
        manager: RemoteprocManager,
        platform: PlatformDriver,
        *,
        firmware: FirmwareSource | None,
        recovery: bool | RecoveryPolicy = True,
        depends_on: Iterable[RemoteProc] = (),
        send_timeout: float | None = 15.0,
        name: str | None = None,
    ) -> None:
        self.name = arguments.check_platform(platform, name)
        enabled, policy = arguments.recovery_setting(recovery)
        arguments.check_send_timeout(send_timeout)
        self._firmware = check_firmware_source(firmware)
        self.platform = platform
        self._depends_on = tuple(depends_on)
        self.send_timeout = send_timeout
        self._manager = manager
        initial = State.DETACHED if platform.is_running() else State.OFFLINE
        self._sm = Lifecycle(
            self.name, recovery_enabled=enabled, recovery_policy=policy, initial_state=initial
        )
        self._lock = anyio.Lock()
        self._loaded: LoadedImage | None = None
        self._vdevs = VdevBuses(self.name, platform.kick, send_timeout)
        self._feed = TransitionFeed(self.name)
        self.history = self._feed.history
        self._owner_left: anyio.Event | None = None
        self._crash_reports = 0
        self._detached = False  # the last teardown was a detach: keep the core's mappings
        self.last_crash: str | None = None
        self._last_report: CrashReport | None = None
        self._up_since: float | None = None  # the core's last release from reset (loop clock)
        self._backoff_scope: anyio.CancelScope | None = None
        self._stops_waiting = 0  # callers a recovery backoff gives way to (crash.py)
        self._held_by: RemoteProc | None = None  # whose crash handler holds our lock
        platform.bind(self)

    def __repr__(self) -> str:
        return f"<RemoteProc {self.name!r} {self.state.label}>"

    # -- configuration ---------------------------------------------------------------------------
    @property
    def firmware(self) -> FirmwareSource | None:
        """The firmware source, loaded at each first boot (see :mod:`remoteproc.source`)."""
        return self._firmware

    @firmware.setter
    def firmware(self, source: FirmwareSource | None) -> None:
        self._firmware = check_firmware_source(source)

    @property
    def depends_on(self) -> tuple[RemoteProc, ...]:
        """Processors booted before this one and shut down after it (fixed at ``add()``, so
        the dependency graph cannot grow a cycle)."""
        return self._depends_on

    @property
    def holds_platform(self) -> bool:
        """Whether this processor still drives its platform: not once it was detached,
        deleted, or its manager closed (then another processor may take the platform over)."""
        if self._manager.closed:
            return False
        return self.platform.events is self and self.state not in (State.DETACHED, State.DELETED)

    # -- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._sm.state

    @property
    def state_name(self) -> str:
        return self._sm.state.label

    @property
    def power(self) -> int:
        return self._sm.power

    @property
    def owners(self) -> int:
        return self._sm.owners

    @property
    def recovery(self) -> bool:
        """Whether a crash is recovered automatically (may be changed at any time)."""
        return self._sm.recovery_enabled

    @recovery.setter
    def recovery(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise ArgumentTypeError(f"recovery is True or False, not {enabled!r}")
        self._sm.recovery_enabled = enabled

    @property
    def recovery_policy(self) -> RecoveryPolicy:
        """How soon and how often crashes are recovered (may be changed at any time)."""
        return self._sm.recovery_policy

    @recovery_policy.setter
    def recovery_policy(self, policy: RecoveryPolicy) -> None:
        if not isinstance(policy, RecoveryPolicy):
            raise ArgumentTypeError(f"recovery_policy must be a RecoveryPolicy, not {policy!r}")
        self._sm.recovery_policy = policy

    @property
    def buses(self) -> list[RpmsgBus]:
        """The rpmsg buses of the running firmware, one per vdev."""
        return self._vdevs.buses

    @property
    def loaded(self) -> LoadedImage | None:
        return self._loaded

    def statistics(self) -> RemoteProcStatistics:
        return RemoteProcStatistics(
            name=self.name,
            state=self.state_name,
            lifecycle=self._sm.statistics(),
            vq_interrupts=self._vdevs.vq_interrupts,
            unknown_interrupts=self._vdevs.unknown_interrupts,
            crash_reports=self._crash_reports,
        )

    def _publish(self, step: Step) -> None:
        self._feed.publish(step.transitions)
        if step.transitions:
            self._vdevs.notify_changed()

    def transitions(
        self, max_buffer: int = 256
    ) -> AbstractAsyncContextManager[AsyncIterator[Transition]]:
        """``async with rproc.transitions() as stream: async for t in stream`` yields every
        state change from now on, with its cause (:attr:`history` keeps the last 1000)."""
        return self._feed.subscribe(max_buffer)

    # -- owner refcount ---------------------------------------------------------------------------
    def get(self) -> RemoteProc:
        """Take an owner reference (Linux ``rproc_get_by_name``); pair with :meth:`put`."""
        self._sm.get()
        return self

    def put(self) -> None:
        """Drop an owner reference; a pending deletion proceeds once the last one is gone."""
        self._sm.put()
        if self._owner_left is not None:
            self._owner_left.set()
            self._owner_left = None

    # -- boot / shutdown --------------------------------------------------------------------------
    def _check_platform(self) -> None:
        if self.platform.events is not self:
            raise StateError(
                f"{self.name}: its platform {self.platform.name!r} was taken over by another "
                "processor"
            )

    async def boot(self) -> None:
        """Take a power reference; the first one boots the dependencies, loads and starts."""
        async with self._lock:
            self._check_platform()
            step = self._sm.boot()
            if step.actions:
                deps = self.depends_on if Action.LOAD in step.actions else ()
                await self._bring_up(step, deps)

    async def _bring_up(self, step: Step, deps: tuple[RemoteProc, ...]) -> None:
        """Perform a boot or attach step (dependencies first); on any failure undo everything
        done so far (core, resources, dependencies booted here) and re-raise."""
        booted: list[RemoteProc] = []
        try:
            for dep in deps:
                await dep.boot()
                booted.append(dep)
            for action in step.actions:
                await self._perform(action, graceful=True)
        except BaseException as exc:
            failed = self._sm.boot_failed(f"{type(exc).__name__}: {exc}")
            with anyio.CancelScope(shield=True):
                await self._teardown(graceful=False)
                for action in failed.actions:
                    await self._perform_best_effort(action, graceful=False)
                for dep in reversed(booted):
                    await self._best_effort(dep.shutdown(), f"shutdown of {dep.name}")
            self._publish(failed)
            raise
        self._publish(self._sm.boot_succeeded())

    async def shutdown(self) -> None:
        """Drop a power reference; the last one stops the core, frees its memory and shuts its
        dependencies down in reverse order. The last one also cuts a recovery's backoff short
        (the core stays crashed, then goes offline)."""
        with crash.backoff_gives_way(self, when=self.power <= 1):
            async with self._lock:
                step = self._sm.shutdown()
                if not step.actions:
                    return
                self._publish(step)
                with anyio.CancelScope(shield=True):
                    for action in step.actions:
                        await self._perform_best_effort(action, graceful=step.graceful)
                    for dep in reversed(self.depends_on):
                        await self._best_effort(dep.shutdown(), f"shutdown of {dep.name}")

    async def _power_off(self) -> None:
        """Drop every power reference (the manager closing)."""
        while self.power > 0:
            await self.shutdown()

    @asynccontextmanager
    async def powered(self) -> AsyncIterator[RemoteProc]:
        """``async with rproc.powered():`` boot on entry, shutdown on exit."""
        await self.boot()
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):
                await self.shutdown()

    async def attach(self) -> None:
        """Adopt a processor that already runs: nothing is loaded, the live table is read."""
        async with self._lock:
            self._check_platform()
            await self._bring_up(self._sm.attach(), ())

    async def detach(self) -> None:
        """Drop a power reference; the last one leaves the core running, unmanaged."""
        async with self._lock:
            step = self._sm.detach()
            self._publish(step)
            with anyio.CancelScope(shield=True):
                for action in step.actions:
                    await self._perform_best_effort(action, graceful=True)

    # -- actions ----------------------------------------------------------------------------------
    def _image(self) -> FirmwareImage:
        if self._firmware is None:
            raise BootError(f"{self.name}: no firmware configured")
        return load_source(self._firmware, name=self.name)

    async def _perform(self, action: Action, *, graceful: bool) -> None:
        if action is Action.LOAD:
            image = self._image()
            self._loaded = load(self.platform, image)
            self.platform.firmware_loaded(image)
        elif action is Action.START:
            loaded = self._require_loaded()
            assert loaded.image is not None
            self._up_since = anyio.current_time()  # a crash during the start ran ~0 s
            await self.platform.start(loaded.image.entry)
            await self._vdevs.start(loaded, self._manager.task_group)
        elif action is Action.STOP:
            await self._teardown(graceful=graceful)
        elif action is Action.RELOAD:
            loaded = self._require_loaded()
            loaded.reload()
            if loaded.image is not None:
                self.platform.firmware_loaded(loaded.image)
        elif action is Action.RELEASE_RESOURCES:
            await self._vdevs.close()
            if self._loaded is not None:
                self._loaded.release(unmap=not self._detached)
                self._loaded = None
            self._detached = False
            self._up_since = None
        elif action is Action.ATTACH:
            self._up_since = anyio.current_time()
            await self.platform.attach()
            self._loaded = self._attach_resources()
            await self._vdevs.start(self._loaded, self._manager.task_group)
        elif action is Action.DETACH:
            self._vdevs.reset_peer()  # the core keeps running: tell it this host is going away
            await self._vdevs.close()
            await self.platform.detach()
            self._detached = True
        elif action is Action.SUSPEND:
            await self.platform.suspend()
        elif action is Action.RESUME:
            await self.platform.resume()
        else:  # BACKOFF is the crash handler's (it only sleeps)
            raise RemoteprocError(f"{self.name}: action {action} is not performed here")

    async def _perform_best_effort(self, action: Action, *, graceful: bool) -> None:
        await self._best_effort(self._perform(action, graceful=graceful), action.value)

    async def _best_effort(self, work: Awaitable[None], what: str) -> None:
        try:
            await work
        except Exception as exc:
            crash.log_failure(f"{self.name}: {what} failed (continuing teardown)", exc)

    def _require_loaded(self) -> LoadedImage:
        if self._loaded is None:
            raise StateError(f"{self.name}: no firmware loaded")
        return self._loaded

    def _attach_resources(self) -> LoadedImage:
        return attach_resources(self.platform)

    async def _teardown(self, *, graceful: bool) -> None:
        """Close the buses, then stop the core (never raises)."""
        await self._vdevs.close()
        await self._best_effort(self.platform.stop(), "platform stop")

    # -- rpmsg ------------------------------------------------------------------------------------
    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> None:
        """Register an rpmsg driver on every bus of this processor, now and after each
        recovery or reboot (the channel it is probed with is new each time)."""
        self._vdevs.register_driver(names, probe, remove)

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The channel announced under ``name`` on any bus, waiting across (re)boots and
        recoveries (the channel of the running firmware, new after each restart).

        Raises:
            RpmsgTimeoutError: not announced within ``timeout`` seconds.
            CrashedError: the processor crashed and is not recovering (recovery disabled,
                failed, or the :class:`~remoteproc.recovery.RecoveryPolicy` gave up); its
                ``__cause__`` is the :class:`~remoteproc.errors.CrashReport`.
            StateError: the processor was deleted.
        """
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                if self.state is State.DELETED:
                    raise StateError(f"{self.name}: deleted while waiting for {name!r}")
                if self._sm.stuck is not None:
                    raise crash.not_recovering(self)
                channel = self._vdevs.find_channel(name)
                if channel is not None:
                    return channel
                await self._vdevs.wait_changed_or_announced(name)
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} not announced in {timeout} s")

    # -- events from the platform -----------------------------------------------------------------
    def vq_interrupt(self, notifyid: int) -> None:
        """The remote kicked vring ``notifyid`` (Linux ``rproc_vq_interrupt``)."""
        self._vdevs.interrupt(notifyid)

    def report_crash(self, kind: CrashKind, detail: str) -> None:
        """The platform saw the core crash (Linux ``rproc_report_crash``): handled in a task."""
        self._crash_reports += 1
        self.last_crash = f"{kind.value}: {detail}"
        up = self._up_since
        uptime = math.inf if up is None else anyio.current_time() - up
        report = CrashReport(self.name, kind, detail)
        self._manager.task_group.start_soon(crash.handle_crash, self, report, uptime)

    def spawn(self, func: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._manager.task_group.start_soon(func, name=f"{self.name}: {name}")

    async def recover(self) -> None:
        """Recover a crashed processor by hand (recovery disabled, failed or given up); this
        starts a new streak for the recovery policy."""
        async with self._lock:
            step = self._sm.recover()
            await crash.recover(self, step)

    # -- deletion ---------------------------------------------------------------------------------
    async def _delete(self) -> None:
        with crash.backoff_gives_way(self, when=self.owners == 0):
            async with self._lock:
                self._sm.delete()
        while True:
            async with self._lock:
                if self._sm.can_finish_delete:
                    step = self._sm.finish_delete()
                    self._publish(step)
                    with anyio.CancelScope(shield=True):
                        for action in step.actions:
                            await self._perform_best_effort(action, graceful=step.graceful)
                    return
                if self._owner_left is None:
                    self._owner_left = anyio.Event()
                waiter = self._owner_left
            await waiter.wait()

    # -- trace buffers ----------------------------------------------------------------------------
    def trace(self, index: int = 0) -> str:
        """The text the firmware wrote to trace buffer ``index`` so far (up to the first NUL)."""
        loaded = self._loaded
        if loaded is None or not 0 <= index < len(loaded.traces):
            count = 0 if loaded is None else len(loaded.traces)
            raise LookupError(f"{self.name}: no trace buffer {index} ({count} mapped)")
        raw = bytes(loaded.traces[index][1])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def follow_trace(self, index: int = 0, *, interval: float = 0.05) -> AsyncIterator[str]:
        """Yield each new complete line of trace buffer ``index`` as the firmware writes it
        (after a recovery, the new run's); ends when the processor's memory is released. The
        buffer raises no interrupt, so this polls at ``interval`` (a debugging aid)."""
        return follow_lines(lambda: self.trace(index), interval)
