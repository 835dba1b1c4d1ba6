"""The registry of remote processors, and the task group their buses and recoveries run in.

Theory of operation: a :class:`RemoteprocManager` is entered once by the application
(``async with RemoteprocManager() as mgr``). Platform drivers are added to it and become
:class:`~remoteproc.rproc.RemoteProc` objects looked up by name. Its task group hosts each
processor's rpmsg buses and crash handling, so ``boot()`` and ``shutdown()`` may be called from
any task. Leaving the manager shuts every processor down (dependents before their
dependencies); use :meth:`RemoteprocManager.remove` to delete one (it waits for its owners).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from .errors import ProcessorNotFoundError, RemoteprocError
from .platform import PlatformDriver
from .rproc import FirmwareSource, RemoteProc

log = logging.getLogger("remoteproc")


class RemoteprocManager:
    """Registry of processors by name."""

    def __init__(self) -> None:
        self._procs: dict[str, RemoteProc] = {}
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            tg, self._tg = self._tg, None
            assert tg is not None
            tg.cancel_scope.cancel()
            result = await tg.__aexit__(exc_type, exc, tb)
        return result

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise RemoteprocError("the RemoteprocManager is not running (use `async with`)")
        return self._tg

    @property
    def processors(self) -> list[RemoteProc]:
        return list(self._procs.values())

    def add(
        self,
        platform: PlatformDriver,
        *,
        firmware: FirmwareSource | None = None,
        recovery: bool = True,
        depends_on: Iterable[RemoteProc | str] = (),
        send_timeout: float | None = 15.0,
        name: str | None = None,
    ) -> RemoteProc:
        """Register a processor driven by ``platform``."""
        name = name or platform.name
        if name in self._procs:
            raise RemoteprocError(f"a processor named {name!r} is already registered")
        deps = [self[d] if isinstance(d, str) else d for d in depends_on]
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
        await rproc._delete()
        async with self._lock:
            self._procs.pop(name, None)

    async def aclose(self) -> None:
        """Shut down every processor, dependents before their dependencies."""
        remaining = list(self._procs.values())
        while remaining:
            leaves = [p for p in remaining if not any(p in q.depends_on for q in remaining)]
            for rproc in leaves or remaining:
                while (rproc.power > 0 and rproc.state.label != "crashed") or rproc.power > 0:
                    try:
                        await rproc.shutdown()
                    except RemoteprocError as exc:
                        log.warning("%s: shutdown on close failed: %s", rproc.name, exc)
                        break
                remaining.remove(rproc)
