"""A counting, coalescing wake-up flag: how a notification reaches a waiting task.

Theory of operation: ``ring()`` is synchronous and cheap (a counter and, if someone waits, an
event); ``wait()`` returns the number of rings since the last wait, so a burst of kicks costs
the waiter one wake-up. ``close(reason)`` makes every current and later wait raise
:class:`TransportClosedError`. One waiter at a time, one event loop, no threads.
"""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel

from .errors import TransportClosedError


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # trio (anyio's other backend)
        return None


class Wakeup:
    """One task's sleep / wake-up on the running loop.

    On asyncio the sleeper awaits a bare future (an ``anyio.Event`` per wake-up costs a backend
    lookup and two wrappers, a measurable share of a loopback round trip); on other anyio
    backends an ``anyio.Event``. A ``wake()`` with nobody asleep is not remembered: callers
    re-check their own condition before :meth:`sleep` and loop after it.
    """

    __slots__ = ("_event", "_future", "_on_asyncio")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._event: anyio.Event | None = None
        self._on_asyncio: bool | None = None

    def wake(self) -> None:
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)
        event = self._event
        if event is not None:
            event.set()

    async def sleep(self) -> None:
        if self._on_asyncio is None:
            self._on_asyncio = _running_asyncio_loop() is not None
        if self._on_asyncio:
            future = self._future = asyncio.get_running_loop().create_future()
            try:
                await future
            finally:
                self._future = None
            return
        event = self._event
        if event is None or event.is_set():
            event = self._event = anyio.Event()
        await event.wait()


class Doorbell:
    """A counting, coalescing wake-up flag for one waiter on one event loop."""

    __slots__ = ("_closed", "_pending", "_waker")

    def __init__(self) -> None:
        self._pending = 0
        self._waker = Wakeup()
        self._closed: str | None = None

    @property
    def pending(self) -> bool:
        """Rung since the waiter last woke: the waiter will still see everything before it."""
        return self._pending > 0

    def ring(self) -> None:
        self._pending += 1
        self._waker.wake()

    def close(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        self._waker.wake()

    async def wait(self) -> int:
        await anyio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._closed is not None:
                raise TransportClosedError(self._closed)
            pending = self._pending
            if pending:
                self._pending = 0
                return pending
            await self._waker.sleep()
