"""A remote processor: the async shell around the pure :class:`~remoteproc.lifecycle.Lifecycle`.

Theory of operation: every public operation takes the processor's lock, asks the lifecycle
what to do, performs the returned actions (load, start, stop, reload, release...) and reports
the outcome back, as ``lifecycle.py`` documents. The first ``boot()`` boots the processors this
one depends on, loads the firmware (see :mod:`remoteproc.loader`), starts the core and brings up
an rpmsg bus (host role) per vdev; later boots only count. The last ``shutdown()`` closes the
buses, stops the core, frees its memory and shuts its dependencies down in reverse order.

A crash reported by the platform is handled in a task of the manager: with recovery enabled
the processors that depend on this one are stopped, this one is stopped, reloaded and
restarted, then the dependents are restarted; rpmsg channels go away (drivers' iterations end)
and come back with the new buses, and drivers registered on the processor are probed again.
With recovery disabled the buses fail with :class:`~remoteproc.errors.CrashedError`, so
senders get a clear error, and the processor stays crashed until its last shutdown.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from rpmsg.bus import RpmsgBus
from rpmsg.channel import Channel, Probe, Remove
from rpmsg.errors import RpmsgTimeoutError

from .errors import BootError, CrashedError, RemoteprocError, StateError
from .firmware import FirmwareImage, load_firmware, load_firmware_file
from .lifecycle import Action, Lifecycle, LifecycleStatistics, State, Step, Transition
from .loader import LoadedImage, attach_resources, load
from .platform import CrashKind, PlatformDriver
from .vdevs import RprocVdevTransport

if TYPE_CHECKING:
    from .manager import RemoteprocManager

log = logging.getLogger("remoteproc")

FirmwareSource = bytes | str | os.PathLike[str] | FirmwareImage | Callable[[], bytes]


@attrs.frozen
class RemoteProcStatistics:
    """A processor's lifecycle counters plus what its buses and platform saw."""

    name: str
    state: str
    lifecycle: LifecycleStatistics
    vq_interrupts: int
    unknown_interrupts: int
    crash_reports: int


@attrs.define(eq=False)
class _RegisteredDriver:
    names: frozenset[str]
    probe: Probe
    remove: Remove | None


class RemoteProc:
    """One remote processor. Create through :meth:`RemoteprocManager.add`."""

    def __init__(
        self,
        manager: RemoteprocManager,
        platform: PlatformDriver,
        *,
        firmware: FirmwareSource | None,
        recovery: bool = True,
        depends_on: Iterable[RemoteProc] = (),
        send_timeout: float | None = 15.0,
        name: str | None = None,
    ) -> None:
        self.name = name or platform.name
        self.platform = platform
        self.firmware = firmware
        self.depends_on = tuple(depends_on)
        self.send_timeout = send_timeout
        self._manager = manager
        initial = State.DETACHED if platform.is_running() else State.OFFLINE
        self._sm = Lifecycle(self.name, recovery_enabled=recovery, initial_state=initial)
        self._lock = anyio.Lock()
        self._loaded: LoadedImage | None = None
        self._transports: list[RprocVdevTransport] = []
        self._buses: list[RpmsgBus] = []
        self._by_notifyid: dict[int, RprocVdevTransport] = {}
        self._drivers: list[_RegisteredDriver] = []
        self._subscribers: list[MemoryObjectSendStream[Transition]] = []
        self.history: deque[Transition] = deque(maxlen=1000)
        self._changed: anyio.Event | None = None
        self._owner_left: anyio.Event | None = None
        self._vq_interrupts = self._unknown_interrupts = self._crash_reports = 0
        self._detached = False  # the last teardown was a detach: keep the core's mappings
        self.last_crash: str | None = None
        platform.bind(self)

    def __repr__(self) -> str:
        return f"<RemoteProc {self.name!r} {self.state.label}>"

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
        return self._sm.recovery_enabled

    @recovery.setter
    def recovery(self, enabled: bool) -> None:
        self._sm.recovery_enabled = enabled

    @property
    def buses(self) -> list[RpmsgBus]:
        """The rpmsg buses of the running firmware, one per vdev."""
        return list(self._buses)

    @property
    def loaded(self) -> LoadedImage | None:
        return self._loaded

    def statistics(self) -> RemoteProcStatistics:
        return RemoteProcStatistics(
            name=self.name,
            state=self.state_name,
            lifecycle=self._sm.statistics(),
            vq_interrupts=self._vq_interrupts,
            unknown_interrupts=self._unknown_interrupts,
            crash_reports=self._crash_reports,
        )

    def _publish(self, step: Step) -> None:
        for t in step.transitions:
            log.info("%s: %s -> %s (%s)", self.name, t.old.label, t.new.label, t.cause)
            self.history.append(t)
            for stream in list(self._subscribers):
                try:
                    stream.send_nowait(t)
                except anyio.WouldBlock:
                    log.warning("%s: a slow transition subscriber missed %s", self.name, t)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscribers.remove(stream)
        if step.transitions:
            self._notify_changed()

    def _notify_changed(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    @asynccontextmanager
    async def transitions(self, max_buffer: int = 256) -> AsyncIterator[AsyncIterator[Transition]]:
        """``async with rproc.transitions() as stream: async for t in stream`` yields every
        state change from now on, with its cause."""
        send, receive = anyio.create_memory_object_stream[Transition](max_buffer)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            await send.aclose()

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
    async def boot(self) -> None:
        """Take a power reference; the first one boots the dependencies, loads and starts."""
        async with self._lock:
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
        dependencies down in reverse order."""
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
        source = self.firmware
        if source is None:
            raise BootError(f"{self.name}: no firmware configured")
        if isinstance(source, FirmwareImage):
            return source
        if isinstance(source, bytes):
            return load_firmware(source, name=self.name)
        if isinstance(source, str | os.PathLike):
            return load_firmware_file(Path(source))
        return load_firmware(source(), name=self.name)

    async def _perform(self, action: Action, *, graceful: bool) -> None:
        if action is Action.LOAD:
            image = self._image()
            self._loaded = load(self.platform, image)
            self.platform.firmware_loaded(image)
        elif action is Action.START:
            loaded = self._require_loaded()
            assert loaded.image is not None
            await self.platform.start(loaded.image.entry)
            await self._start_buses()
        elif action is Action.STOP:
            await self._teardown(graceful=graceful)
        elif action is Action.RELOAD:
            loaded = self._require_loaded()
            loaded.reload()
            if loaded.image is not None:
                self.platform.firmware_loaded(loaded.image)
        elif action is Action.RELEASE_RESOURCES:
            await self._close_buses(graceful=False)
            if self._loaded is not None:
                self._loaded.release(unmap=not self._detached)
                self._loaded = None
            self._detached = False
        elif action is Action.ATTACH:
            await self.platform.attach()
            self._loaded = self._attach_resources()
            await self._start_buses()
        elif action is Action.DETACH:
            for bus in self._buses:
                bus.reset_peer()  # the core keeps running: tell it this host is going away
            await self._close_buses(graceful=True)
            await self.platform.detach()
            self._detached = True
        elif action is Action.SUSPEND:
            await self.platform.suspend()
        elif action is Action.RESUME:
            await self.platform.resume()
        else:  # pragma: no cover - exhaustive
            raise RemoteprocError(f"unknown action {action}")

    async def _perform_best_effort(self, action: Action, *, graceful: bool) -> None:
        await self._best_effort(self._perform(action, graceful=graceful), action.value)

    async def _best_effort(self, work: Awaitable[None], what: str) -> None:
        try:
            await work
        except Exception:
            log.exception("%s: %s failed (continuing teardown)", self.name, what)

    def _require_loaded(self) -> LoadedImage:
        if self._loaded is None:
            raise StateError(f"{self.name}: no firmware loaded")
        return self._loaded

    def _attach_resources(self) -> LoadedImage:
        return attach_resources(self.platform)

    async def _teardown(self, *, graceful: bool) -> None:
        """Close the buses, then stop the core (never raises)."""
        await self._close_buses(graceful=graceful)
        await self._best_effort(self.platform.stop(), "platform stop")

    # -- buses ------------------------------------------------------------------------------------
    async def _start_buses(self) -> None:
        loaded = self._require_loaded()
        tg = self._manager.task_group
        for vdev in loaded.vdevs:
            assert vdev.view is not None
            transport = RprocVdevTransport(
                memory=loaded.memory,
                vdev=vdev.view,
                pool=vdev.pool,
                notifyids=vdev.notifyids,
                kick=self.platform.kick,
                name=f"{self.name}-vdev{vdev.index}",
            )
            bus = RpmsgBus(transport, send_timeout=self.send_timeout, name=transport.name)
            self._transports.append(transport)
            for nid in vdev.notifyids:
                self._by_notifyid[nid] = transport
            await bus.start(tg)
            self._buses.append(bus)
            for drv in self._drivers:
                bus.register_driver(drv.names, drv.probe, remove=drv.remove)
        self._notify_changed()

    async def _close_buses(self, *, graceful: bool) -> None:
        buses, self._buses = self._buses, []
        transports, self._transports = self._transports, []
        self._by_notifyid.clear()
        for bus in buses:
            await bus.aclose()
        for transport in transports:
            await transport.aclose()
        for bus in buses:
            with anyio.move_on_after(5):
                await bus.wait_closed()
        if buses:
            self._notify_changed()

    def _fail_buses(self, cause: BaseException) -> None:
        for bus in self._buses:
            bus.fail(cause)

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> None:
        """Register an rpmsg driver on every bus of this processor, now and after each
        recovery or reboot (the channel it is probed with is new each time)."""
        ids = frozenset([names] if isinstance(names, str) else names)
        self._drivers.append(_RegisteredDriver(ids, probe, remove))
        for bus in self._buses:
            bus.register_driver(ids, probe, remove=remove)

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The channel announced under ``name`` on any bus, waiting across (re)boots."""
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                for bus in self._buses:
                    channel = bus.find_channel(name)
                    if channel is not None:
                        return channel
                async with anyio.create_task_group() as tg:

                    async def _changed() -> None:
                        await self._wait_changed()
                        tg.cancel_scope.cancel()

                    tg.start_soon(_changed)
                    for bus in self._buses:

                        async def _service(bus: RpmsgBus = bus) -> None:
                            try:
                                await bus.wait_for_service(name)
                            finally:
                                tg.cancel_scope.cancel()

                        tg.start_soon(_service)
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} not announced in {timeout} s")

    # -- events from the platform -----------------------------------------------------------------
    def vq_interrupt(self, notifyid: int) -> None:
        """The remote kicked vring ``notifyid`` (Linux ``rproc_vq_interrupt``)."""
        transport = self._by_notifyid.get(notifyid)
        if transport is None:
            self._unknown_interrupts += 1
            return
        self._vq_interrupts += 1
        transport.interrupt()

    def report_crash(self, kind: CrashKind, detail: str) -> None:
        """The platform saw the core crash (Linux ``rproc_report_crash``): handled in a task."""
        self._crash_reports += 1
        self.last_crash = f"{kind.value}: {detail}"
        log.error("%s: crash reported: %s", self.name, self.last_crash)
        self._manager.task_group.start_soon(self._handle_crash, kind, detail)

    def spawn(self, func: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._manager.task_group.start_soon(func, name=f"{self.name}: {name}")

    def _dependents(self) -> list[RemoteProc]:
        """Powered processors that depend on this one, directly or through others, each
        listed before the processors it depends on (the lock order of ``boot()``)."""
        depth: dict[RemoteProc, int] = {}
        frontier = [(self, 0)]
        while frontier:
            current, level = frontier.pop()
            for proc in self._manager.processors:
                deeper = depth.get(proc, -1) < level + 1
                if current in proc.depends_on and proc.power > 0 and proc is not self and deeper:
                    depth[proc] = level + 1
                    frontier.append((proc, level + 1))
        return sorted(depth, key=lambda proc: -depth[proc])

    async def _handle_crash(self, kind: CrashKind, detail: str) -> None:
        reason = f"{kind.value}: {detail}"
        dependents = self._dependents()
        async with AsyncExitStack() as stack:
            for dep in dependents:  # lock order: dependents before dependencies, as boot()
                await stack.enter_async_context(dep._lock)
            await stack.enter_async_context(self._lock)
            step = self._sm.crashed(reason)
            self._publish(step)
            if not step.actions:
                if self.state is State.CRASHED:
                    self._fail_buses(CrashedError(f"{self.name} crashed: {reason}"))
                return
            # Dependents go down with the group (without waiting for them: not graceful).
            group_steps: list[tuple[RemoteProc, Step]] = []
            for dep in dependents:
                dstep = dep._sm.crashed(f"dependency {self.name} crashed: {reason}")
                dep._publish(dstep)
                if dstep.actions:
                    await dep._teardown(graceful=False)
                    group_steps.append((dep, dstep))
                else:
                    dep._fail_buses(CrashedError(f"{dep.name}: dependency {self.name} crashed"))
            await self._recover(step)
            for dep, dstep in reversed(group_steps):  # dependencies first
                rest = tuple(a for a in dstep.actions if a is not Action.STOP)
                await dep._recover(attrs.evolve(dstep, actions=rest))

    async def _recover(self, step: Step) -> None:
        try:
            with anyio.CancelScope(shield=True):
                for action in step.actions:
                    await self._perform(action, graceful=False)
        except Exception as exc:
            log.exception("%s: recovery failed", self.name)
            self._publish(self._sm.recovery_failed(str(exc)))
            await self._teardown(graceful=False)
            self._fail_buses(CrashedError(f"{self.name}: recovery failed: {exc}"))
            return
        self._publish(self._sm.recovery_succeeded())

    async def recover(self) -> None:
        """Recover a crashed processor by hand (recovery disabled, or a failed recovery)."""
        async with self._lock:
            step = self._sm.recover()
            await self._recover(step)

    # -- deletion ---------------------------------------------------------------------------------
    async def _delete(self) -> None:
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

    async def follow_trace(self, index: int = 0, *, interval: float = 0.05) -> AsyncIterator[str]:
        """Yield each new complete line of trace buffer ``index`` as the firmware writes it;
        ends when the processor's memory is released. The buffer raises no interrupt, so this
        polls at ``interval`` (a debugging aid, not a hot path)."""
        seen = 0
        while True:
            try:
                text = self.trace(index)
            except LookupError:
                return
            if len(text) < seen:
                seen = 0  # the firmware restarted (recovery): follow the new log
            while True:
                newline = text.find("\n", seen)
                if newline < 0:
                    break
                yield text[seen:newline]
                seen = newline + 1
            await anyio.sleep(interval)
