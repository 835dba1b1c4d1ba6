"""Watching a processor: its statistics, its state changes and the new lines of its trace
buffers.

:class:`TransitionFeed` keeps the last transitions and hands each new one to live
subscribers (a subscriber too slow to keep up misses transitions, with a warning, rather than
blocking the processor). :func:`follow_lines` turns a growing text (a trace buffer, which
raises no interrupt) into its new complete lines by polling.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from .states import LifecycleStatistics, Transition

log = logging.getLogger("aioamp.remoteproc")


@attrs.frozen
class RemoteProcStatistics:
    """A processor's lifecycle counters plus what its buses and platform saw."""

    name: str
    state: str
    lifecycle: LifecycleStatistics
    vq_interrupts: int
    unknown_interrupts: int
    crash_reports: int


class TransitionFeed:
    """The state changes of processor ``name``: the last ``keep`` in :attr:`history`, and
    every new one to each subscriber."""

    def __init__(self, name: str, keep: int = 1000) -> None:
        self.name = name
        self.history: deque[Transition] = deque(maxlen=keep)
        self._subscribers: list[MemoryObjectSendStream[Transition]] = []

    def publish(self, transitions: Iterable[Transition]) -> None:
        for t in transitions:
            log.info(
                "%s: %s -> %s (%s)",
                *(self.name, t.old.label, t.new.label, t.cause),
                extra={
                    "processor": self.name,
                    "old_state": t.old.label,
                    "state": t.new.label,
                    "reason": t.cause,
                },
            )
            self.history.append(t)
            for stream in list(self._subscribers):
                try:
                    stream.send_nowait(t)
                except anyio.WouldBlock:
                    log.warning(
                        "%s: a slow transition subscriber missed %s",
                        *(self.name, t),
                        extra={"processor": self.name, "state": t.new.label},
                    )
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscribers.remove(stream)

    @asynccontextmanager
    async def subscribe(self, max_buffer: int) -> AsyncIterator[AsyncIterator[Transition]]:
        send, receive = anyio.create_memory_object_stream[Transition](max_buffer)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            await send.aclose()


async def follow_lines(read: Callable[[], str], interval: float) -> AsyncIterator[str]:
    """Each new complete line of the text ``read()`` returns, polled every ``interval`` s,
    until ``read`` raises LookupError. A shorter text is a restart: its lines are new."""
    seen = 0
    while True:
        try:
            text = read()
        except LookupError:
            return
        if len(text) < seen:
            seen = 0
        while True:
            newline = text.find("\n", seen)
            if newline < 0:
                break
            yield text[seen:newline]
            seen = newline + 1
        await anyio.sleep(interval)
