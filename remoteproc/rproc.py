"""A remote processor: the async shell around the pure :class:`~remoteproc.lifecycle.Lifecycle`.

Theory of operation: every public operation takes the processor's lock, asks the lifecycle what
to do, performs the returned actions (load, start, stop, reload, release...) and reports the
outcome back, as :mod:`remoteproc.states` documents. The first ``boot()`` boots the processors
this one depends on, loads the firmware (see :mod:`remoteproc.loader`), starts the core and
brings up an rpmsg bus (host role) per vdev; later boots only count. The last ``shutdown()``
closes the buses, stops the core, frees its memory and shuts its dependencies down in reverse
order.

A crash reported by the platform goes to the manager, which handles it with the processors
that depend on this one (see :mod:`remoteproc.crash`); this processor takes part through its
:class:`~remoteproc.crash.CrashHandling`. Hardware and memory change only in
:class:`~remoteproc.actions.Performer`, states only in the lifecycle.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import anyio
import anyio.abc

from rpmsg import Channel, RpmsgBus, RpmsgTimeoutError
from rpmsg.channel import Probe, Remove

from . import arguments
from .actions import Performer
from .crash import CrashHandling
from .errors import ArgumentTypeError, CrashReport, StateError
from .lifecycle import Action, Lifecycle, State, Step, Transition
from .loader import LoadedImage
from .observe import RemoteProcStatistics, TransitionFeed, follow_lines
from .platform import CrashKind, PlatformDriver
from .recovery import RecoveryPolicy
from .source import FirmwareSource, check_firmware_source
from .vdevs import VdevBuses

__all__ = ["FirmwareSource", "ProcessorOwner", "RemoteProc", "RemoteProcStatistics"]


class ProcessorOwner(Protocol):
    """What a processor needs from the manager that owns it (which implements this; this
    module does not import the manager): the task group its buses, platform tasks and crash
    handling run in; whether the manager is closed (its processors let go of their platforms)
    or closing (recovery backoffs give way); where a crash goes to be handled with its group
    (``rproc`` ran ``uptime`` seconds)."""

    @property
    def task_group(self) -> anyio.abc.TaskGroup: ...
    @property
    def closed(self) -> bool: ...
    @property
    def closing(self) -> bool: ...
    def crash_reported(self, rproc: RemoteProc, report: CrashReport, uptime: float) -> None: ...


class RemoteProc:
    """One remote processor. Create through :meth:`RemoteprocManager.add`, which documents
    the arguments; they are all checked here, before the platform is bound."""

    name: str

    def __init__(
        self,
        owner: ProcessorOwner,
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
        self._owner = owner
        initial = State.DETACHED if platform.is_running() else State.OFFLINE
        self._sm = Lifecycle(
            self.name, recovery_enabled=enabled, recovery_policy=policy, initial_state=initial
        )
        self._lock = anyio.Lock()
        self._vdevs = VdevBuses(self.name, platform.kick, send_timeout)
        self._performer = Performer(
            self.name,
            platform,
            self._vdevs,
            firmware=lambda: self._firmware,
            task_group=lambda: owner.task_group,
        )
        self._crash = CrashHandling(
            self.name,
            lock=self._lock,
            lifecycle=self._sm,
            publish=self._publish,
            performer=self._performer,
            closing=lambda: owner.closing,
        )
        self._feed = TransitionFeed(self.name)
        self.history = self._feed.history
        self._owner_left: anyio.Event | None = None
        self._crash_reports = 0
        self.last_crash: str | None = None
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
        if self._owner.closed:
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
        return self._performer.loaded

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
                await self._performer.perform(action, graceful=True)
        except BaseException as exc:
            failed = self._sm.boot_failed(f"{type(exc).__name__}: {exc}")
            with anyio.CancelScope(shield=True):
                await self._performer.teardown(graceful=False)
                await self._performer.perform_all(failed.actions, graceful=False)
                await self._shut_down_dependencies(booted)
            self._publish(failed)
            raise
        self._publish(self._sm.boot_succeeded())

    async def _shut_down_dependencies(self, deps: Iterable[RemoteProc]) -> None:
        for dep in reversed(tuple(deps)):
            await self._performer.best_effort(dep.shutdown(), f"shutdown of {dep.name}")

    async def shutdown(self) -> None:
        """Drop a power reference; the last one stops the core, frees its memory and shuts its
        dependencies down in reverse order. The last one also cuts a recovery's backoff short
        (the core stays crashed, then goes offline)."""
        with self._crash.gives_way(when=self.power <= 1):
            async with self._lock:
                step = self._sm.shutdown()
                if not step.actions:
                    return
                self._publish(step)
                with anyio.CancelScope(shield=True):
                    await self._performer.perform_all(step.actions, graceful=step.graceful)
                    await self._shut_down_dependencies(self.depends_on)

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
                await self._performer.perform_all(step.actions, graceful=True)

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

        def check() -> None:
            if self.state is State.DELETED:
                raise StateError(f"{self.name}: deleted while waiting for {name!r}")
            if self._sm.stuck is not None:
                raise self._crash.not_recovering()

        with anyio.move_on_after(math.inf if timeout is None else timeout):
            return await self._vdevs.wait_for_service(name, check)
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} not announced in {timeout} s")

    # -- events from the platform -----------------------------------------------------------------
    def vq_interrupt(self, notifyid: int) -> None:
        """The remote kicked vring ``notifyid`` (Linux ``rproc_vq_interrupt``)."""
        self._vdevs.interrupt(notifyid)

    def report_crash(self, kind: CrashKind, detail: str) -> None:
        """The platform saw the core crash (Linux ``rproc_report_crash``): its manager handles
        it with the processors that depend on this one, in a task."""
        self._crash_reports += 1
        self.last_crash = f"{kind.value}: {detail}"
        report = CrashReport(self.name, kind, detail)
        self._owner.crash_reported(self, report, self._performer.uptime())

    def spawn(self, func: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._owner.task_group.start_soon(func, name=f"{self.name}: {name}")

    async def recover(self) -> None:
        """Recover a crashed processor by hand (recovery disabled, failed or given up); this
        starts a new streak for the recovery policy."""
        async with self._lock:
            step = self._sm.recover()
            await self._crash.recover(step)

    # -- the manager's interface ------------------------------------------------------------------
    @property
    def crash_handling(self) -> CrashHandling:
        """This processor's part in crash handling (:func:`remoteproc.crash.run_plan`)."""
        return self._crash

    async def power_off(self) -> None:
        """Drop every power reference (the manager closing)."""
        while self.power > 0:
            await self.shutdown()

    async def delete(self) -> None:
        """Refuse new users, wait for the owners to leave, tear down: what ``mgr.remove()``
        runs once no processor depends on this one (call that: it also unregisters it)."""
        with self._crash.gives_way(when=self.owners == 0):
            async with self._lock:
                self._sm.delete()
        while True:
            async with self._lock:
                if self._sm.can_finish_delete:
                    step = self._sm.finish_delete()
                    self._publish(step)
                    with anyio.CancelScope(shield=True):
                        await self._performer.perform_all(step.actions, graceful=step.graceful)
                    return
                if self._owner_left is None:
                    self._owner_left = anyio.Event()
                waiter = self._owner_left
            await waiter.wait()

    # -- trace buffers ----------------------------------------------------------------------------
    def trace(self, index: int = 0) -> str:
        """The text the firmware wrote to trace buffer ``index`` so far (up to the first NUL)."""
        return self._performer.trace(index)

    def follow_trace(self, index: int = 0, *, interval: float = 0.05) -> AsyncIterator[str]:
        """Yield each new complete line of trace buffer ``index`` as the firmware writes it
        (after a recovery, the new run's); ends when the processor's memory is released. The
        buffer raises no interrupt, so this polls at ``interval`` (a debugging aid)."""
        return follow_lines(lambda: self.trace(index), interval)
