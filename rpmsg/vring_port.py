"""The vring bus's side of its endpoints (:class:`~rpmsg.protocol.EndpointPort`): sending.

Theory of operation: senders write straight into a free tx buffer from their own task
(:meth:`VringPort.send_now`, the fast path: no check beyond plain-int addresses, the rings
check the payload). Only when no buffer is free do they wait, with a deadline, for the receive
passes to see buffers come back. Waiting senders are served first come, first served: one that
finds others waiting queues behind them without trying, and only the first tries; otherwise a
task that sends in a loop takes each freed buffer before the woken waiter runs.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import anyio

from transports.base import Transport
from transports.doorbell import Wakeup

from .addresses import check_address
from .busy_poll import BusyPoll
from .core import RpmsgCore
from .errors import (
    BufferInUseError,
    BufferReleasedError,
    BusClosedError,
    EndpointClosedError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgTimeoutError,
)
from .message import DEFAULT, Timeout
from .rings import Rings
from .rings.loans import Lease, Loans
from .tap import LinkTap
from .wire import ADDR_ANY, as_batch, as_payload

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from .endpoint_rx import EndpointCore as Endpoint  # the native class: its struct
    from .vring_bus import RpmsgBus

log = logging.getLogger("aioamp.rpmsg")


class _TxTurn:
    """A sender waiting for a buffer; ``event`` is set when it may try again. ``gone`` is
    set when its endpoint went while the bus was open: the error it fails with, even if the
    bus closes too before the sender runs again."""

    __slots__ = ("ep", "event", "gone")

    def __init__(self, ep: Endpoint | None) -> None:
        self.ep = ep
        self.event = anyio.Event()
        self.gone: EndpointClosedError | None = None


class VringPort:
    """What the endpoints of one :class:`~rpmsg.vring_bus.RpmsgBus` call."""

    def __init__(
        self,
        bus: RpmsgBus,
        rings: Rings,
        core: RpmsgCore,
        transport: Transport,
        *,
        resume: Callable[[], None],
    ) -> None:
        self._bus = bus
        self._rings = rings
        self._core = core
        #: Run a receive pass again (after a BLOCK stall).
        self.resume = resume
        # A receiver about to sleep lets the transport's next notification wake it directly
        # (Transport.park): the transport's own methods, no frame of ours in between.
        self._park = self.park = transport.park
        self.unpark = transport.unpark
        #: Busy polling (set by the bus when on): the receive passes' look before sleeping.
        self.poll: BusyPoll | None = None
        self.look: Callable[[], bool] = lambda: False
        #: The bus's closed error, once it closed: every send raises it.
        self.closed: BusClosedError | None = None
        self.send_waits = self.send_timeouts = 0
        #: The bus's tap: every message sent is reported to it.
        self.tap: LinkTap | None = None
        self._waiting: deque[_TxTurn] = deque()  # senders waiting for a buffer, in order

    def busy_poll(self, poll: BusyPoll, look: Callable[[], bool]) -> None:
        """Turn busy polling on: receivers look (``look``, the receive passes') before they
        sleep, and senders waiting for a buffer watch for one for a window of ``poll``."""
        self.poll, self.look = poll, look
        self.park = self._look_then_park

    def _look_then_park(self, wakeup: Wakeup) -> None:
        """Busy polling: watch the ring before the receiver sleeps; when that found messages
        the receiver checks its queue again instead of sleeping (nothing to park)."""
        if not self.look():
            self._park(wakeup)

    def send_now(self, ep: Endpoint, src: object, dst: object, data: Buffer) -> bool:
        if (
            self._waiting
            or self.closed is not None
            or ep.closed
            or type(src) is not int
            or type(dst) is not int
            or not (0 <= src < ADDR_ANY and 0 <= dst < ADDR_ANY)
        ):
            return False
        n = self._rings.try_send(src, dst, data)
        if n < 0:
            return False
        ep.tx_messages += 1
        ep.tx_bytes += n
        tap = self.tap
        if tap is not None:
            tap.sent(src, dst, data)
        return True

    def check_sendable(self, ep: Endpoint | None) -> None:
        if self.closed is not None:
            raise self.closed
        if ep is not None and ep.closed:
            raise ep._closed_error()  # its address may already be someone else's

    def _check_send(
        self, ep: Endpoint | None, src: object, dst: object, data: Buffer
    ) -> tuple[int, int, bytes | memoryview]:
        """What a send checks before it touches a buffer: the payload (a C-contiguous buffer:
        its bytes are sent; the rings check the MTU), both addresses, then that the endpoint
        and the bus are open. Returns the plain-int addresses and the flat payload."""
        payload = as_payload(data)
        src = check_address(src, "source")
        dst = check_address(dst, "destination")
        self.check_sendable(ep)
        return src, dst, payload

    def _sent(self, ep: Endpoint | None, n: int, src: int, dst: int, payload: Buffer) -> None:
        if ep is not None:
            ep.tx_messages += 1
            ep.tx_bytes += n
        if self.tap is not None:
            self.tap.sent(src, dst, payload)

    def try_send(self, ep: Endpoint | None, src: object, dst: object, data: Buffer) -> None:
        src, dst, payload = self._check_send(ep, src, dst, data)
        n = self._rings.try_send(src, dst, payload)
        if n < 0:
            raise NoBufferError(f"{self._bus.name}: no free tx buffer")
        self._sent(ep, n, src, dst, payload)

    def _check_many(
        self, ep: Endpoint, src: object, dst: object, payloads: Iterable[Buffer]
    ) -> tuple[int, int, list[bytes | memoryview]]:
        """:meth:`_check_send` for a batch: every payload is checked before any is sent."""
        flat = as_batch(payloads)
        mtu = self._rings.mtu
        for i, p in enumerate(flat):
            if len(p) > mtu:
                raise PayloadTooLargeError(
                    f"payload {i} of the batch: {len(p)} bytes exceed the MTU of {mtu}"
                )
        src = check_address(src, "source")
        dst = check_address(dst, "destination")
        self.check_sendable(ep)
        return src, dst, flat

    def _send_batch(
        self, ep: Endpoint, src: int, dst: int, flat: list[bytes | memoryview], start: int
    ) -> int:
        """Send ``flat[start:]`` in order while buffers are free, one kick for all: how many
        were sent."""
        rings = self._rings
        i, end = start, len(flat)
        rings.hold_kicks()
        try:
            while i < end:
                n = rings.try_send(src, dst, flat[i])
                if n < 0:
                    break
                self._sent(ep, n, src, dst, flat[i])
                i += 1
        finally:
            rings.release_kicks()
        return i - start

    def try_send_many(
        self, ep: Endpoint, src: object, dst: object, payloads: Iterable[Buffer]
    ) -> int:
        src, dst, flat = self._check_many(ep, src, dst, payloads)
        return self._send_batch(ep, src, dst, flat, 0)

    async def send_many(
        self, ep: Endpoint, src: object, dst: object, payloads: Iterable[Buffer], timeout: Timeout
    ) -> None:
        src, dst, flat = self._check_many(ep, src, dst, payloads)
        i = 0
        while True:
            if not self._waiting:  # senders already waiting go first
                i += self._send_batch(ep, src, dst, flat, i)
            if i == len(flat):
                return
            await self.send(ep, src, dst, flat[i], timeout)  # wait for a buffer, in turn
            i += 1

    async def send(
        self, ep: Endpoint | None, src: object, dst: object, data: Buffer, timeout: Timeout
    ) -> None:
        src, dst, payload = self._check_send(ep, src, dst, data)
        rings = self._rings
        waiting = self._waiting
        if waiting:
            n = len(payload)  # a flat byte view: no buffer can hold it, refused now
            if n > rings.mtu:
                raise PayloadTooLargeError(f"payload of {n} bytes exceeds the MTU of {rings.mtu}")
        else:
            n = rings.try_send(src, dst, payload)
            if n >= 0:
                self._sent(ep, n, src, dst, payload)
                return
        await self._wait_turn(ep, lambda: self._try_waiting(ep, src, dst, payload), timeout)

    def _try_waiting(self, ep: Endpoint | None, src: int, dst: int, payload: Buffer) -> bool:
        n = self._rings.try_send(src, dst, payload)
        if n >= 0:
            self._sent(ep, n, src, dst, payload)
        return n >= 0

    async def _wait_turn(
        self, ep: Endpoint | None, attempt: Callable[[], bool], timeout: Timeout
    ) -> None:
        """Wait in turn (first come, first served) until ``attempt()`` finds a free tx buffer
        and uses it, up to ``timeout``."""
        rings = self._rings
        waiting = self._waiting
        if timeout is DEFAULT:
            timeout = self._bus.send_timeout
        self.send_waits += 1
        if ep is not None:
            ep.send_waits += 1
        rings.tx_wait_begin()
        turn = _TxTurn(ep)
        waiting.append(turn)
        try:
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                while True:
                    if waiting[0] is turn:
                        poll = self.poll
                        if attempt() or (
                            poll is not None and poll.spin(rings.tx_available) and attempt()
                        ):  # one look per wait
                            return
                    await turn.event.wait()
                    turn.event = anyio.Event()
                    if turn.gone is not None:
                        raise turn.gone
                    self.check_sendable(ep)
        finally:
            first = waiting[0] is turn
            waiting.remove(turn)
            rings.tx_wait_end()
            if first and waiting:
                waiting[0].event.set()  # the next may find a buffer that came back meanwhile
        if scope.cancelled_caught:
            self.send_timeouts += 1
            raise RpmsgTimeoutError(f"{self._bus.name}: no tx buffer freed within {timeout} s")

    # -- zero-copy (rpmsg.zero_copy) ----------------------------------------------------------
    #: The buffers lent are the shared ones: no copy either way.
    zero_copy = True

    @property
    def loans(self) -> Loans:
        return self._rings.loans

    def set_holding(self, addr: int, on: bool) -> None:
        self._rings.set_holding(addr, on)

    def borrow_now(self, ep: Endpoint) -> Lease | None:
        self.check_sendable(ep)
        if self._waiting:
            return None  # waiting senders go first
        return self._rings.borrow_tx()

    async def borrow(self, ep: Endpoint, timeout: Timeout) -> Lease:
        lease = self.borrow_now(ep)
        if lease is None:
            got: list[Lease] = []

            def attempt() -> bool:
                lent = self._rings.borrow_tx()
                if lent is not None:
                    got.append(lent)
                return lent is not None

            await self._wait_turn(ep, attempt, timeout)
            lease = got[0]
        return lease

    def send_borrowed(self, ep: Endpoint, lease: Lease, src: int, dst: int, n: int) -> None:
        if lease.dead is not None:
            raise BufferReleasedError(f"the borrowed tx buffer is invalid: {lease.dead}")
        tap = self.tap
        sent = bytes(lease.view[:n]) if tap is not None else b""
        if not self.loans.settle(lease, give=False):
            raise BufferInUseError(
                "a view derived from the borrowed tx buffer is still alive: nothing was sent, "
                "the buffer stays out of the ring until it is gone"
            )
        self._rings.send_borrowed(lease, src, dst, n)
        ep.tx_messages += 1
        ep.tx_bytes += n
        if tap is not None:
            tap.sent(src, dst, sent)

    def give_back(self, lease: Lease) -> bool:
        done = self.loans.settle(lease, give=True)
        if lease.kind == "tx":
            self.wake_senders()  # a buffer came back
        return done

    def endpoint_gone(self, ep: Endpoint) -> None:
        """``ep`` was closed while the bus runs (destroyed, its channel removed): a send
        waiting on it fails with its error, also when the bus closes before that send runs
        again (on trio a device reset and the link's end can both be handled first)."""
        if self.closed is None:
            for turn in self._waiting:
                if turn.ep is ep and turn.gone is None:
                    turn.gone = ep._closed_error()
        self.wake_senders()

    def wake_senders(self) -> None:
        """Buffers may have come back (or the bus closed, an endpoint went): the first
        waiting sender looks, and hands the turn on when it leaves."""
        if self._waiting:
            self._waiting[0].event.set()

    def count_drop(self, reason: str) -> None:
        self._core.count_drop(reason)

    def callback_failed(self, ep: Endpoint) -> None:
        self._core.count_drop("callback_error")
        log.exception(
            "%s: rx callback of endpoint %d raised",
            *(self._bus.name, ep.addr),
            extra={"bus": self._bus.name, "endpoint": ep.addr, "reason": "callback_error"},
        )
