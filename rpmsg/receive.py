"""Receive passes of the vring bus: when to drain the rings, and how far.

Theory of operation: a pass drains every pending receive entry, dispatching each message to the
endpoint bound at its destination (``core.route``, then ``Endpoint._deliver``),
then notifies the peer once about recycled buffers and lets waiting senders look for freed tx
buffers.

* Notification suppression (Linux's NAPI idea): the peer's notifications are off while a pass
  has messages. When a pass that had a burst runs dry they stay off for one more pass on the
  next loop iteration, so a peer sending at about our pace needs no kick at all; a pass that
  finds nothing turns them back on, then looks once more, so a message that landed in between
  is not left waiting for a kick.
* Batches: a pass handles at most ``_RX_BATCH`` messages, then yields to other tasks.
* Two ways to run: from a task (``await run()``), or straight from the event loop when the
  transport calls a handler on each notification (asyncio: ``run_sync``; one task wake-up less
  per message). A call made while passes run only asks them to go round once more.
* BLOCK stalls: a message whose endpoint is full under ``Overflow.BLOCK`` is kept and the
  rings are not drained further (the peer's sends then wait for buffers: rpmsg's flow
  control) until the endpoint makes room and calls :meth:`RxPasses.resume`.
* Busy polling (:mod:`rpmsg.busy_poll`, shared-memory links only): after the passes of a
  notification, and when a receiver is about to sleep (:meth:`RxPasses.look`), the ring is
  watched for one adaptive window with the peer's notifications off; what arrives meanwhile
  is handled after one trip through the event loop, without a wake-up or a kick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.lowlevel

from transports.base import Transport
from transports.doorbell import asyncio_context
from transports.errors import TransportClosedError

from .busy_poll import BusyPoll
from .core import RpmsgCore
from .endpoint_rx import EndpointCore
from .rings import Poll, RawMessage, Rings
from .tap import LinkTap

log = logging.getLogger("aioamp.rpmsg")

#: Messages handled per receive pass before yielding to other tasks.
_RX_BATCH = 256
_READY = Poll.READY


class RxPasses:
    """The receive passes of one bus.

    Args:
        rings: the bus's rings; core: its core (routing, drop counts); transport: where the
            notifications come from.
        link_changed: called when :meth:`Rings.poll` (before each pass) finds the rings not
            simply running: whether to run the pass (the bus starts or stops with the peer).
        wake_senders: called after each pass: tx buffers may have come back.
        fail: closes the bus (the transport closed, or a pass failed).
        name: the bus's, for logs.
    """

    def __init__(
        self,
        rings: Rings,
        core: RpmsgCore,
        transport: Transport,
        *,
        link_changed: Callable[[Poll], bool],
        wake_senders: Callable[[], None],
        fail: Callable[[BaseException], None],
        name: str,
    ) -> None:
        self._rings = rings
        self._core = core
        self._transport = transport
        self._link_changed = link_changed
        self._wake_senders = wake_senders
        self._fail = fail
        self._name = name
        #: Set when the bus closes: passes stop at the next message.
        self.closed = False
        #: Handler mode (asyncio): the loop that runs passes; else the task group that does.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: anyio.abc.TaskGroup | None = None
        #: The bus's tap: every message taken from the ring is reported to it.
        self.tap: LinkTap | None = None
        self._stalled: RawMessage | None = None
        self._quiet = False  # the peer's notifications are off until the next pass ends
        self._processing = False
        self._again = False
        self._context = asyncio_context()  # where run_sync runs from the loop (sniffio)
        #: Busy polling (None: off); set by the bus.
        self.poll: BusyPoll | None = None

    # -- notifications ---------------------------------------------------------------------------
    def attach(self) -> None:
        """Handler mode where the transport and the loop offer it (asyncio): notifications then
        run passes straight from the event loop, with no listener task to wake."""
        if self._transport.set_notify_handler(self._on_notify):
            self.loop = asyncio.get_running_loop()
            self._context = asyncio_context()

    def detach(self) -> None:
        if self.loop is not None:
            self.loop = None
            try:
                self._transport.set_notify_handler(None)
            except Exception:  # the transport may already be gone
                log.debug(
                    "%s: detaching the notify handler failed",
                    self._name,
                    exc_info=True,
                    extra={"bus": self._name},
                )

    async def listen(self) -> None:
        """No handler mode: a task waits for each notification, then runs passes."""
        try:
            while True:
                await self._transport.wait_notification()
                if self.poll is not None:
                    self.poll.woke()
                await self.run()
        except TransportClosedError as exc:
            self._fail(exc)

    def _on_notify(self, _count: int, closed: str | None) -> None:
        """Handler mode: the transport calls this from the event loop."""
        if closed is not None:
            self._fail(TransportClosedError(closed))
            return
        if self.poll is not None:
            self.poll.woke()
        try:
            self.run_sync()
        except Exception as exc:  # a bug here must not leave the bus silently stalled
            log.exception("%s: receive pass failed", self._name, extra={"bus": self._name})
            self._fail(exc)

    # -- passes ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """The device was reset: no pass state survives (a stalled message goes too)."""
        self._stalled = None
        self._quiet = False

    def forget(self, addr: int) -> None:
        """The endpoint at ``addr`` was unbound: the message the bus stalled on, if it was
        its, goes with it (counted), never to whoever binds the address next (that may happen
        before the resumed pass runs)."""
        if self._stalled is not None and self._stalled[1] == addr:
            loans = self._rings.loans  # a held buffer goes back
            loans.settle(loans.adopt(self._stalled[3]), give=True)
            self._stalled = None
            self._core.count_drop("unknown_dst")
            self.resume()

    def resume(self) -> None:
        """Schedule a pass: an endpoint made room after a BLOCK stall, or a look's pass
        stopped at the batch limit."""
        if self.closed:
            return
        if self.loop is not None:
            self.loop.call_soon(self.run_sync, context=self._context)
        elif self.tasks is not None:
            self.tasks.start_soon(self.run)

    async def run(self) -> None:
        """Receive passes from a task: yields between batches, and after a look (busy
        polling) that found more."""
        while self._passes() or self._look():
            await anyio.lowlevel.checkpoint()

    def run_sync(self) -> None:
        """Receive passes from an event-loop callback: a full batch, or a look that found
        more (busy polling), reschedules itself."""
        if (
            (self._passes() or (self.poll is not None and self._look()))
            and self.loop is not None
            and not self.closed
        ):
            self.loop.call_soon(self.run_sync, context=self._context)

    def look(self) -> bool:
        """A receiver is about to sleep: busy-poll the ring first, and run the passes
        right away if something arrived. True if it did (the receiver checks again)."""
        if self.poll is None or self._processing or not self._look():
            return False
        if self._passes():
            self.resume()  # the rest of a full batch, after a yield (notifications are off)
        return True

    def _look(self) -> bool:
        """Watch the receive ring for one busy-poll window, the peer's notifications off
        meanwhile (no kick for what we would see anyway). True: a message is there."""
        poll = self.poll
        rings = self._rings
        if poll is None or self.closed or self._stalled is not None or not rings.ready:
            return False
        pending = rings.rx_pending
        if pending():
            return True
        if not poll.window_ns:
            poll.spin(pending)  # no look: it notes when we went to sleep
            return False
        rings.set_rx_notifications(False)
        if poll.spin(pending):
            self._quiet = True  # the next pass turns them back on when it runs dry
            return True
        rings.set_rx_notifications(True)
        return pending()  # landed while notifications came back on: no kick for it

    def _passes(self) -> bool:
        """Run passes until the rings are idle. True if one stopped at the batch limit (the
        caller yields, then calls again)."""
        if self._processing:
            self._again = True
            return False
        self._processing = True
        try:
            while True:
                self._again = False
                if self._step():
                    return True
                if not self._again or self.closed:
                    return False
        finally:
            self._processing = False

    def _step(self) -> bool:
        """One pass, then one notification of the peer and a wake-up of waiting senders.
        True if it stopped at the batch limit."""
        state = self._rings.poll()
        if state is not _READY and not self._link_changed(state):
            return False
        stalled = self._stalled
        if stalled is not None:
            sink: EndpointCore | None = self._core.route(stalled[1])
            if sink is not None and not sink._deliver(stalled):
                # Receiving waits for the full endpoint, but this notification may also have
                # brought tx buffers back: senders must not wait for it.
                self._wake_senders()
                return False
            self._stalled = None
        more = self._drain()
        self._rings.finish_rx()
        self._wake_senders()
        return more

    def _drain(self) -> bool:
        """Dispatch up to ``_RX_BATCH`` messages; True when another pass must follow (the
        batch limit, or one more look before notifications come back: module doc)."""
        rings = self._rings
        next_rx = rings.next_rx
        route = self._core.route
        tap = self.tap
        handled = 0
        quiet = self._quiet
        more = False
        try:
            while not self.closed:
                msg = next_rx()
                if msg is None:
                    if not quiet:
                        return False
                    if handled > 1:
                        more = True  # poll once more before notifications come back
                        return True
                    rings.set_rx_notifications(True)
                    quiet = False
                    if not rings.rx_pending():
                        return False
                    continue
                if tap is not None:
                    tap.received(msg)
                sink: EndpointCore | None = route(msg[1])  # compiled: a native call
                if sink is not None and not sink._deliver(msg):
                    self._stalled = msg
                    return False
                handled += 1
                if not quiet:
                    rings.set_rx_notifications(False)
                    quiet = True
                elif handled >= _RX_BATCH:
                    more = True
                    return True
            return False
        finally:
            if quiet and not more:
                rings.set_rx_notifications(True)
                quiet = False
            self._quiet = quiet
