"""The registry of remote processors, and the task group their buses and recoveries run in.

Theory of operation: a :class:`RemoteprocManager` is entered once by the application
(``async with RemoteprocManager() as mgr``). Platform drivers are added to it and become
:class:`~remoteproc.rproc.RemoteProc` objects looked up by name. Its task group hosts each
processor's rpmsg buses and crash handling, so ``boot()`` and ``shutdown()`` may be called from
any task. Leaving the manager shuts every processor down (dependents before their
dependencies); use :meth:`RemoteprocManager.remove` to delete one (it waits for its owners).

Leaving the manager raises one exception, never an ExceptionGroup: the body's own exception
if it raised one, else the first failure of a background task (the others are logged).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Self

import anyio
import anyio.abc

from transports._tasks import raise_one

from . import arguments, crash
from .crash_plan import plan_crash
from .errors import CrashReport, ProcessorNotFoundError, RegistrationError, RemoteprocError
from .platform import PlatformDriver
from .recovery import RecoveryPolicy
from .rproc import FirmwareSource, RemoteProc

log = logging.getLogger("aioamp.remoteproc")


class RemoteprocManager(anyio.AsyncContextManagerMixin):
    """Registry of processors by name; the owner (:class:`~remoteproc.rproc.ProcessorOwner`)
    of each one: it runs their tasks and handles their crashes with their groups."""

    def __init__(self) -> None:
        self._procs: dict[str, RemoteProc] = {}
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._closing = False

    @property
    def closed(self) -> bool:
        """True once the manager was left: its processors are all offline and unusable."""
        return self._closed

    @property
    def closing(self) -> bool:
        """True while :meth:`aclose` runs: recovery backoffs give way to it."""
        return self._closing

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        """The manager's lifetime: its task group; leaving shuts every processor down, then
        cancels what is left and raises one exception (see the module docstring)."""
        self._closed = False
        body: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                try:
                    yield self
                except BaseException as exc:
                    body = exc
                    raise
                finally:
                    try:
                        with anyio.CancelScope(shield=True):
                            await self.aclose()
                    finally:
                        self._tg = None
                        self._closed = True
                        tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise_one(group, keep=body)

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise RemoteprocError("the RemoteprocManager is not running (use `async with`)")
        return self._tg

    @property
    def processors(self) -> list[RemoteProc]:
        return list(self._procs.values())

    def crash_reported(self, rproc: RemoteProc, report: CrashReport, uptime: float) -> None:
        """Handle ``rproc``'s crash, with the processors that depend on it, in a task."""
        self.task_group.start_soon(self._handle_crash, rproc, report, uptime)

    async def _handle_crash(self, rproc: RemoteProc, report: CrashReport, uptime: float) -> None:
        procs = {**self._procs, rproc.name: rproc}
        plan = plan_crash(
            {name: [dep.name for dep in proc.depends_on] for name, proc in procs.items()},
            powered={name for name, proc in procs.items() if proc.power > 0},
            crashed=rproc.name,
        )
        members = {name: procs[name].crash_handling for name in plan.down}
        await crash.run_plan(plan, members, report, uptime)

    def add(
        self,
        platform: PlatformDriver,
        *,
        firmware: FirmwareSource | None = None,
        recovery: bool | RecoveryPolicy = True,
        depends_on: Iterable[RemoteProc | str] | RemoteProc | str = (),
        send_timeout: float | None = 15.0,
        name: str | None = None,
    ) -> RemoteProc:
        """Register a processor driven by ``platform``. Every argument is checked first: a
        refused one raises a :class:`RemoteprocError` (also a ``TypeError``, ``ValueError`` or
        ``LookupError``) and registers nothing.

        Args:
            platform: its driver; one platform instance drives one processor at a time.
            firmware: a path, the image's bytes, a ``FirmwareImage`` or a callable returning
                bytes (see :mod:`remoteproc.source`); None for a core that is only attached.
            recovery: True (recover crashes with the default
                :class:`~remoteproc.recovery.RecoveryPolicy`), False (stay crashed), or a
                policy (backoff, limit of consecutive recoveries).
            depends_on: processors (or their names) of this manager booted before this one
                and shut down after it; each once.
            send_timeout: default deadline of sends on its rpmsg buses (None: wait forever).
            name: registry key (default ``platform.name``).
        """
        name = platform.name if name is None and isinstance(platform, PlatformDriver) else name
        if isinstance(name, str) and name in self._procs:
            raise RegistrationError(f"a processor named {name!r} is already registered")
        deps = arguments.dependencies(depends_on, self.__getitem__, RemoteProc)
        rproc = RemoteProc(
            self,
            platform,
            firmware=firmware,
            recovery=recovery,
            depends_on=deps,
            send_timeout=send_timeout,
            name=name,
        )
        self._procs[name] = rproc
        return rproc

    def __getitem__(self, name: str) -> RemoteProc:
        try:
            return self._procs[name]
        except KeyError:
            known = ", ".join(sorted(self._procs)) or "none"
            raise ProcessorNotFoundError(f"no processor {name!r} (registered: {known})") from None

    def __contains__(self, name: str) -> bool:
        return name in self._procs

    def get(self, name: str) -> RemoteProc:
        """Look up ``name`` and take an owner reference (the 2011 ``rproc_get_by_name``);
        release it with ``rproc.put()``. Prefer :meth:`handle`."""
        return self[name].get()

    @asynccontextmanager
    async def handle(self, name: str) -> AsyncIterator[RemoteProc]:
        """``async with mgr.handle("ipu") as rproc:`` holds an owner reference."""
        rproc = self.get(name)
        try:
            yield rproc
        finally:
            rproc.put()

    async def remove(self, name: str) -> None:
        """Delete a processor: refuse new users, wait for current owners, tear it down."""
        async with self._lock:
            rproc = self[name]
            for other in self._procs.values():
                if rproc in other.depends_on and other is not rproc:
                    raise RemoteprocError(f"{name!r} is a dependency of {other.name!r}")
        await rproc.delete()
        async with self._lock:
            self._procs.pop(name, None)

    async def aclose(self) -> None:
        """Shut down every processor, dependents before their dependencies. A recovery
        waiting out its backoff is abandoned, not waited for (the processor goes offline)."""
        self._closing = True
        try:
            await self._shutdown_all()
        finally:
            self._closing = False

    async def _shutdown_all(self) -> None:
        for rproc in self._procs.values():
            rproc.crash_handling.cut_backoff()
        remaining = list(self._procs.values())
        while remaining:
            leaves = [p for p in remaining if not any(p in q.depends_on for q in remaining)]
            for rproc in leaves or remaining:
                try:
                    await rproc.power_off()
                except RemoteprocError as exc:
                    log.warning(
                        "%s: shutdown on close failed: %s",
                        *(rproc.name, exc),
                        extra={"processor": rproc.name, "reason": str(exc)},
                    )
                remaining.remove(rproc)
