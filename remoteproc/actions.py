"""Performing the lifecycle's actions: the one place a processor's hardware and memory change.

Theory of operation: :class:`~remoteproc.lifecycle.Lifecycle` decides *what* happens to a
processor and returns :class:`~remoteproc.states.Action` s; the shell asks a
:class:`Performer` to do each one. LOAD maps and fills the processor's memory
(:mod:`remoteproc.loader`), START releases the core and brings up an rpmsg bus per vdev
(:mod:`remoteproc.vdevs`), STOP closes the buses and puts the core in reset, and so on. The
performer keeps what those actions built (the loaded image, when the core last left reset) and
nothing about states: the caller holds the processor's lock and reports the outcome back to
its lifecycle. Teardown is best effort: a failing step is logged and the next one still runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from .errors import BootError, RemoteprocError, StateError
from .firmware import FirmwareImage
from .loader import LoadedImage, attach_resources, load
from .platform import PlatformDriver
from .source import FirmwareSource, load_source
from .states import Action
from .vdevs import VdevBuses

log = logging.getLogger("aioamp.remoteproc")

__all__ = ["Performer", "log_failure"]


def log_failure(what: str, exc: BaseException, processor: str) -> None:
    """One line for an expected failure (a RemoteprocError); a traceback only for a bug."""
    extra = {"processor": processor, "reason": str(exc) or type(exc).__name__}
    if isinstance(exc, RemoteprocError):
        log.error("%s: %s", what, exc, extra=extra)
    else:
        log.error("%s", what, exc_info=exc, extra=extra)


class Performer:
    """Performs the actions of processor ``name`` on its platform, memory and vdev buses.

    Args:
        firmware: returns the processor's firmware source, parsed at each LOAD.
        task_group: returns the task group the rpmsg buses run in (the manager's).
    """

    def __init__(
        self,
        name: str,
        platform: PlatformDriver,
        vdevs: VdevBuses,
        *,
        firmware: Callable[[], FirmwareSource | None],
        task_group: Callable[[], anyio.abc.TaskGroup],
    ) -> None:
        self.name = name
        self.platform = platform
        self.vdevs = vdevs
        self._firmware = firmware
        self._task_group = task_group
        self.loaded: LoadedImage | None = None
        self._detached = False  # the last teardown was a detach: keep the core's mappings
        self._up_since: float | None = None  # the core's last release from reset (loop clock)

    def uptime(self) -> float:
        """Seconds since the core's last release from reset (infinite when it is not up)."""
        up = self._up_since
        return math.inf if up is None else anyio.current_time() - up

    async def perform(self, action: Action, *, graceful: bool) -> None:
        if action is Action.LOAD:
            image = self._image()
            self.loaded = load(self.platform, image)
            self.platform.firmware_loaded(image)
        elif action is Action.START:
            loaded = self._require_loaded()
            assert loaded.image is not None
            self._up_since = anyio.current_time()  # a crash during the start ran ~0 s
            await self.platform.start(loaded.image.entry)
            await self.vdevs.start(loaded, self._task_group())
        elif action is Action.STOP:
            await self.teardown(graceful=graceful)
        elif action is Action.RELOAD:
            loaded = self._require_loaded()
            loaded.reload()
            if loaded.image is not None:
                self.platform.firmware_loaded(loaded.image)
        elif action is Action.RELEASE_RESOURCES:
            await self.vdevs.close()
            if self.loaded is not None:
                self.loaded.release(unmap=not self._detached)
                self.loaded = None
            self._detached = False
            self._up_since = None
        elif action is Action.ATTACH:
            self._up_since = anyio.current_time()
            await self.platform.attach()
            self.loaded = attach_resources(self.platform)
            await self.vdevs.start(self.loaded, self._task_group())
        elif action is Action.DETACH:
            self.vdevs.reset_peer()  # the core keeps running: tell it this host is going away
            await self.vdevs.close()
            await self.platform.detach()
            self._detached = True
        elif action is Action.SUSPEND:
            await self.platform.suspend()
        elif action is Action.RESUME:
            await self.platform.resume()
        else:  # BACKOFF is the crash handler's (it only sleeps)
            raise RemoteprocError(f"{self.name}: action {action} is not performed here")

    async def perform_all(self, actions: tuple[Action, ...], *, graceful: bool) -> None:
        """Perform every action, best effort (a teardown: each one runs even if one failed)."""
        for action in actions:
            await self.best_effort(self.perform(action, graceful=graceful), action.value)

    async def best_effort(self, work: Awaitable[None], what: str) -> None:
        try:
            await work
        except Exception as exc:
            log_failure(f"{self.name}: {what} failed (continuing teardown)", exc, self.name)

    async def teardown(self, *, graceful: bool) -> None:
        """Close the buses, then stop the core (never raises)."""
        await self.vdevs.close()
        await self.best_effort(self.platform.stop(), "platform stop")

    def _image(self) -> FirmwareImage:
        source = self._firmware()
        if source is None:
            raise BootError(f"{self.name}: no firmware configured")
        return load_source(source, name=self.name)

    def _require_loaded(self) -> LoadedImage:
        if self.loaded is None:
            raise StateError(f"{self.name}: no firmware loaded")
        return self.loaded

    def trace(self, index: int) -> str:
        """The text the firmware wrote to trace buffer ``index`` so far (up to the first NUL)."""
        loaded = self.loaded
        if loaded is None or not 0 <= index < len(loaded.traces):
            count = 0 if loaded is None else len(loaded.traces)
            raise LookupError(f"{self.name}: no trace buffer {index} ({count} mapped)")
        raw = bytes(loaded.traces[index][1])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
