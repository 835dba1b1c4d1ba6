"""A counting, coalescing wake-up flag: how a notification reaches a waiting task.

Theory of operation: ``ring()`` is synchronous and cheap (a counter and, if someone waits, an
event); ``wait()`` returns the number of rings since the last wait, so a burst of kicks costs
the waiter one wake-up. ``close(reason)`` makes every current and later wait raise
:class:`TransportClosedError`. One waiter at a time, one event loop, no threads.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel

from .errors import TransportClosedError


class Doorbell:
    """A counting, coalescing wake-up flag for one waiter on one event loop."""

    __slots__ = ("_closed", "_event", "_pending")

    def __init__(self) -> None:
        self._pending = 0
        self._event: anyio.Event | None = None
        self._closed: str | None = None

    def ring(self) -> None:
        self._pending += 1
        event = self._event
        if event is not None:
            event.set()

    def close(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        if self._event is not None:
            self._event.set()

    async def wait(self) -> int:
        await anyio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._closed is not None:
                raise TransportClosedError(self._closed)
            pending = self._pending
            if pending:
                self._pending = 0
                return pending
            event = self._event
            if event is None or event.is_set():
                event = self._event = anyio.Event()
            await event.wait()
