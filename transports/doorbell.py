"""A counting, coalescing wake-up flag: how a notification reaches a waiting task.

Theory of operation: ``ring()`` is synchronous and cheap (a counter and, if someone waits, an
event); ``wait()`` returns the number of rings since the last wait, so a burst of kicks costs
the waiter one wake-up. ``close(reason)`` makes every current and later wait raise
:class:`TransportClosedError`. One waiter at a time, one event loop, no threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Context, ContextVar, copy_context

import anyio
import anyio.lowlevel

from .errors import TransportClosedError


def _sniffio_library() -> ContextVar[str | None] | None:
    """sniffio's variable, which anyio consults when sniffio is installed (see
    :func:`asyncio_context`); None without sniffio, when anyio asks asyncio itself."""
    try:
        from sniffio import current_async_library_cvar
    except ImportError:  # pragma: no cover - depends on the install
        return None
    return current_async_library_cvar


_SNIFFIO_LIBRARY = _sniffio_library()


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # trio (anyio's other backend)
        return None


def asyncio_context() -> Context:
    """The context the asyncio loop's callbacks of a handler run in (``call_soon(...,
    context=)``; ``add_reader`` called inside it): a copy of the current one in which
    sniffio's variable says asyncio.

    anyio finds the running library through sniffio when sniffio is installed (trio needs it,
    so do many other packages), and sniffio recognises asyncio only inside a task: in a loop
    callback every anyio call that needs the backend (``start_soon``, ``anyio.Event()``, a
    cancel scope) raised ``NoEventLoopError``. Setting the variable once, where the handler is
    registered, costs nothing per call; a wrapper that set and reset it around every callback
    cost about 5% of a loopback round trip. Every loop callback runs in some context anyway
    (``call_soon`` without one copies the current context each time)."""
    ctx = copy_context()
    cvar = _SNIFFIO_LIBRARY
    if cvar is not None:
        ctx.run(cvar.set, "asyncio")
    return ctx


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

    def wake(self) -> bool:
        """Wake the sleeper; True if one was asleep on asyncio (see :meth:`Doorbell.park`)."""
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)
            return True
        event = self._event
        if event is not None:
            event.set()
        return False

    def arm(self) -> asyncio.Future[None] | None:
        """On asyncio: a fresh future that :meth:`wake` resolves; the caller awaits it itself
        (one coroutine frame less to resume per wake-up than :meth:`sleep`), then calls
        :meth:`disarm`. None elsewhere: use :meth:`sleep`."""
        if self._on_asyncio is None:
            self._on_asyncio = _running_asyncio_loop() is not None
        if not self._on_asyncio:
            return None
        future = self._future = asyncio.get_running_loop().create_future()
        return future

    def disarm(self) -> None:
        self._future = None

    async def sleep(self) -> None:
        future = self.arm()
        if future is not None:
            try:
                await future
            finally:
                self._future = None
            return
        event = self._event
        if event is None or event.is_set():
            event = self._event = anyio.Event()
        await event.wait()


#: ``handler(count, closed)``: ``count`` notifications arrived; ``closed`` is the reason when
#: the link went down (then ``count`` is 0 and no further call follows).
NotifyHandler = Callable[[int, "str | None"], None]


class Doorbell:
    """A counting, coalescing wake-up flag for one waiter on one event loop.

    Instead of a waiting task it can drive a *handler* (:meth:`set_handler`): rings are then
    coalesced into one ``loop.call_soon`` of the handler, which runs at the top of the event
    loop, never inside the ringer's call stack. That costs no task wake-up per notification.
    """

    __slots__ = (
        "_closed",
        "_context",
        "_handler",
        "_loop",
        "_owed",
        "_parked",
        "_pending",
        "_scheduled",
        "_waker",
    )

    def __init__(self) -> None:
        self._pending = 0
        self._waker = Wakeup()
        self._closed: str | None = None
        self._handler: NotifyHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: Context | None = None
        self._scheduled = False
        self._parked: Wakeup | None = None
        self._owed: Wakeup | None = None

    def set_handler(self, handler: NotifyHandler | None) -> bool:
        """Deliver notifications to ``handler`` on the running asyncio loop (None: back to
        :meth:`wait`). Returns False where no asyncio loop runs (the caller keeps waiting)."""
        if handler is None:
            self._handler = None
            return True
        loop = _running_asyncio_loop()
        if loop is None:
            return False
        self._handler, self._loop, self._context = handler, loop, asyncio_context()
        if self._pending or self._closed is not None:
            self._schedule()
        return True

    def park(self, wakeup: Wakeup) -> None:
        """Handler mode: the next notification wakes the task sleeping on ``wakeup``, which
        then runs the handler itself (:meth:`unpark`), instead of a ``call_soon``.

        A receiver that waits for the handler's outcome anyway is woken one event-loop
        iteration earlier: a loopback round trip takes two iterations instead of four.
        """
        if self._handler is not None:
            self._parked = wakeup

    def unpark(self, wakeup: Wakeup, *, run: bool) -> None:
        """After the parked sleep ends: if a notification woke ``wakeup``, run the handler
        now (``run``) or, when the sleeper is leaving (cancelled), from the loop."""
        if self._parked is wakeup:
            self._parked = None
        if self._owed is wakeup:
            self._owed = None
            if run:
                self._fire()
            elif self._loop is not None:
                self._loop.call_soon(self._fire, context=self._context)

    def _schedule(self) -> None:
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            parked = self._parked
            if parked is not None:
                self._parked = None
                if parked.wake():
                    self._owed = parked  # it calls unpark(), which runs _fire()
                    return
            self._loop.call_soon(self._fire, context=self._context)

    def _fire(self) -> None:
        self._scheduled = False
        handler = self._handler
        if handler is None:
            return
        if self._pending:
            count, self._pending = self._pending, 0
            handler(count, None)
        if self._closed is not None and self._handler is handler:
            self._handler = None
            handler(0, self._closed)

    @property
    def pending(self) -> bool:
        """Rung since the waiter last woke: the waiter will still see everything before it."""
        return self._pending > 0

    def ring(self) -> None:
        self._pending += 1
        if self._handler is not None:
            self._schedule()
        else:
            self._waker.wake()

    def close(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        if self._handler is not None:
            self._schedule()
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
