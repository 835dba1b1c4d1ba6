"""rpmsg endpoints: a local address with a receive queue or callback, and send methods.

Theory of operation: the bus dispatches every received message to the endpoint bound at its
destination address. An endpoint either hands it to an rx callback (synchronously, inside the
bus's receive pass, like a Linux ``rpmsg_rx_cb_t``) or appends it to a bounded queue that
``recv()`` and ``async for`` consume.

Overflow policy of the queue (:class:`Overflow`), counted in ``statistics().queue_drops``:

* ``BLOCK`` (default): nothing is dropped. When the queue is full the bus stops draining the
  receive ring until the consumer makes room; buffers stay with the bus, so the peer's sends
  eventually wait for a buffer: rpmsg's own flow control. A full endpoint therefore stalls the
  other endpoints of its bus until it is read; ``queue_stalls`` counts how often that happened.
* ``DROP_NEWEST``: the arriving message is discarded.
* ``DROP_OLDEST``: the oldest queued message is discarded to make room.
"""

from __future__ import annotations

import enum
import numbers
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from transports.doorbell import Wakeup

from .addresses import check_address
from .errors import (
    ArgumentTypeError,
    EndpointClosedError,
    InvalidAddressError,
    InvalidArgumentError,
    RpmsgTimeoutError,
)
from .wire import ADDR_ANY

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from .bus import RpmsgBus


@attrs.define(slots=True)
class Message:
    """One received message. ``src`` is where a reply should go.

    Not frozen: each message belongs to the one receiver it was handed to, and a frozen attrs
    instance costs three times as much to create (840 vs 270 ns here), once per message.
    """

    src: int
    dst: int
    payload: bytes
    flags: int = 0


class Overflow(enum.Enum):
    """What a full receive queue does with the next message (see module docstring)."""

    BLOCK = "block"
    DROP_NEWEST = "drop-newest"
    DROP_OLDEST = "drop-oldest"


RxCallback = Callable[["Endpoint", Message], None]


class _Default(enum.Enum):
    TIMEOUT = 0


#: Use the bus's default send timeout (15 s, as Linux).
DEFAULT: Final = _Default.TIMEOUT
Timeout = float | None | _Default


def check_timeout(timeout: float | None, what: str = "timeout") -> float | None:
    """``timeout`` once checked: None (no deadline) or a real number of seconds >= 0 (``inf``
    is no deadline too; 0 fails at once unless the call can complete without waiting).

    Raises:
        ArgumentTypeError: not a real number (a str, a bool).
        InvalidArgumentError: NaN or negative.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise ArgumentTypeError(
            f"{what} must be a number of seconds or None, not {type(timeout).__name__}"
        )
    if not timeout >= 0:  # also NaN
        raise InvalidArgumentError(f"{what} must be >= 0 seconds or None, not {timeout!r}")
    return float(timeout)


def check_queue(maxsize: int, overflow: Overflow, callback: RxCallback | None) -> Overflow:
    """The receive settings once checked; returns the policy as an :class:`Overflow` (its
    value, such as ``"drop-oldest"``, is accepted too).

    Raises:
        ArgumentTypeError: maxsize not an int, callback neither callable nor None.
        InvalidArgumentError: maxsize < 1, an unknown policy.
    """
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise ArgumentTypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    if maxsize < 1:
        raise InvalidArgumentError(f"maxsize must be >= 1, not {maxsize}")
    if callback is not None and not callable(callback):
        raise ArgumentTypeError(f"callback must be callable or None, not {callback!r}")
    try:
        return Overflow(overflow)
    except ValueError:
        choices = ", ".join(f"Overflow.{o.name}" for o in Overflow)
        raise InvalidArgumentError(f"overflow must be one of {choices}, not {overflow!r}") from None


@attrs.frozen
class EndpointStatistics:
    """A snapshot of one endpoint's counters."""

    addr: int
    rx_messages: int
    rx_bytes: int
    tx_messages: int
    tx_bytes: int
    queued: int
    queue_drops: int
    queue_stalls: int
    callback_errors: int
    send_waits: int


class Endpoint:
    """A bound local address. Create through :meth:`RpmsgBus.create_endpoint`."""

    def __init__(
        self,
        bus: RpmsgBus,
        addr: int,
        *,
        dst: int = ADDR_ANY,
        name: str | None = None,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
    ) -> None:
        overflow = check_queue(maxsize, overflow, callback)
        self.bus = bus
        self.addr = addr
        self.dst = check_address(dst, "destination", any_ok=True)
        self.name = name
        self.callback = callback
        self.maxsize = maxsize
        self.overflow = overflow
        self.announced = False
        self._queue: deque[Message] = deque()
        self._waker = Wakeup()
        self._closed: BaseException | None = None
        self._stalled = False
        self._orderly = True
        self.rx_messages = self.rx_bytes = 0
        self.tx_messages = self.tx_bytes = 0
        self.queue_drops = self.queue_stalls = self.callback_errors = self.send_waits = 0

    def __repr__(self) -> str:
        return f"<Endpoint addr={self.addr} dst={self.dst} name={self.name!r}>"

    # -- delivery (called by the bus) --------------------------------------------------------
    def _deliver(self, msg: Message) -> bool:
        """Queue or hand over ``msg``; False means "full, BLOCK policy: retry later"."""
        if self.callback is not None:
            self.rx_messages += 1
            self.rx_bytes += len(msg.payload)
            try:
                self.callback(self, msg)
            except Exception:
                self.callback_errors += 1
                self.bus._callback_failed(self)
            return True
        queue = self._queue
        if len(queue) >= self.maxsize:
            if self.overflow is Overflow.BLOCK:
                if not self._stalled:
                    self._stalled = True
                    self.queue_stalls += 1
                return False
            self.queue_drops += 1
            self.bus._count_drop("queue_full")
            if self.overflow is Overflow.DROP_NEWEST:
                return True
            queue.popleft()
        self.rx_messages += 1
        self.rx_bytes += len(msg.payload)
        queue.append(msg)
        self._waker.wake()
        return True

    def _wake(self) -> None:
        self._waker.wake()

    def _close(self, reason: BaseException | None) -> None:
        """Mark closed; waiters wake. ``reason`` None means an orderly end (iteration stops)."""
        if self._closed is None:
            self._closed = (
                reason
                if reason is not None
                else EndpointClosedError(f"endpoint {self.addr} closed")
            )
            self._orderly = reason is None
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    # -- receive ------------------------------------------------------------------------------
    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; waits up to ``timeout`` seconds (None: forever).

        Raises:
            RpmsgTimeoutError: nothing arrived in time.
            EndpointClosedError: the endpoint was closed and its queue is empty.
        """
        if timeout is not None:
            timeout = check_timeout(timeout)
        queue = self._queue
        if not queue:
            if timeout is None:
                # No deadline: no cancel scope either (a timer per message is pure overhead).
                await self._wait_queued()
            else:
                with anyio.move_on_after(timeout) as scope:
                    await self._wait_queued()
                if scope.cancelled_caught:
                    raise RpmsgTimeoutError(
                        f"endpoint {self.addr}: nothing received in {timeout} s"
                    )
        return self._pop()

    def _pop(self) -> Message:
        """The oldest queued message; room now exists, so a stalled bus drains again."""
        msg = self._queue.popleft()
        if self._stalled:
            self._stalled = False
            self.bus._resume()
        return msg

    async def _wait_queued(self) -> None:
        queue = self._queue
        waker = self._waker
        transport = self.bus.transport
        while not queue:
            if self._closed is not None:
                raise self._closed_error()
            # A notification arriving while we sleep wakes us directly; we then run the
            # bus's receive pass ourselves (see Doorbell.park).
            transport.park(waker)
            future = waker.arm()
            try:
                if future is None:
                    await waker.sleep()
                else:
                    await future  # directly: each coroutine level costs on every wake-up
            except BaseException:
                waker.disarm()
                transport.unpark(waker, run=False)
                raise
            waker.disarm()
            transport.unpark(waker, run=True)

    def try_recv(self) -> Message | None:
        """The next queued message, or None. Never waits."""
        if not self._queue:
            if self._closed is not None and not self._orderly:
                raise self._closed_error()
            return None
        return self._pop()

    def _closed_error(self) -> EndpointClosedError:
        exc = self._closed
        if isinstance(exc, EndpointClosedError):
            return exc
        err = EndpointClosedError(f"endpoint {self.addr} closed: {exc}")
        err.__cause__ = exc
        return err

    def __aiter__(self) -> Endpoint:
        return self

    async def __anext__(self) -> Message:
        """Messages until the endpoint closes: an orderly close (destroy, channel removed)
        ends the iteration; a failure (bus closed, peer died, crash) raises."""
        queue = self._queue
        if not queue:
            try:
                await self._wait_queued()  # not through recv(): one coroutine level less
            except EndpointClosedError:
                if self._orderly:
                    raise StopAsyncIteration from None
                raise
        return self._pop()

    # -- send ---------------------------------------------------------------------------------
    # Every form refuses, changing nothing: a payload that is not a C-contiguous buffer
    # (InvalidPayloadError) or is over the MTU in bytes (PayloadTooLargeError), an address that
    # is not an int (AddressTypeError) or out of range (InvalidAddressError), a bad timeout,
    # and a closed endpoint (EndpointClosedError; BusClosedError when its bus closed): once
    # closed, its address may already belong to a new endpoint, which would get the replies.
    def _default_dst(self) -> int:
        if self._closed is not None:
            self.bus._check_sendable(self)  # raises: BusClosedError first, as every send
        if self.dst == ADDR_ANY:
            raise InvalidAddressError(f"endpoint {self.addr} has no default destination")
        return self.dst

    # Each send tries the bus's non-waiting path first: one coroutine frame per message
    # instead of two while buffers are free.
    async def send(self, data: Buffer, *, timeout: Timeout = DEFAULT) -> None:
        """Send ``data`` (any C-contiguous buffer: its raw bytes) to the endpoint's default
        destination (its channel's peer), waiting up to ``timeout`` for a free buffer."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        dst = self._default_dst()
        if not self.bus._send_now(self, self.addr, dst, data):
            await self.bus._send(self, self.addr, dst, data, timeout)

    async def send_to(self, dst: int, data: Buffer, *, timeout: Timeout = DEFAULT) -> None:
        """Send to ``dst`` from this endpoint's address."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        if not self.bus._send_now(self, self.addr, dst, data):
            await self.bus._send(self, self.addr, dst, data, timeout)

    async def send_offchannel(
        self, src: int, dst: int, data: Buffer, *, timeout: Timeout = DEFAULT
    ) -> None:
        """Send with an explicit source address (replies go to ``src``)."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        if not self.bus._send_now(self, src, dst, data):
            await self.bus._send(self, src, dst, data, timeout)

    def try_send(self, data: Buffer) -> None:
        """Like :meth:`send` but never waits: raises NoBufferError if no buffer is free."""
        self.bus._try_send(self, self.addr, self._default_dst(), data)

    def try_send_to(self, dst: int, data: Buffer) -> None:
        self.bus._try_send(self, self.addr, dst, data)

    def try_send_offchannel(self, src: int, dst: int, data: Buffer) -> None:
        self.bus._try_send(self, src, dst, data)

    @property
    def mtu(self) -> int:
        return self.bus.mtu

    # -- lifetime -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Destroy the endpoint (announcing DESTROY if it was announced)."""
        await self.bus.destroy_endpoint(self)

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def statistics(self) -> EndpointStatistics:
        return EndpointStatistics(
            addr=self.addr,
            rx_messages=self.rx_messages,
            rx_bytes=self.rx_bytes,
            tx_messages=self.tx_messages,
            tx_bytes=self.tx_bytes,
            queued=len(self._queue),
            queue_drops=self.queue_drops,
            queue_stalls=self.queue_stalls,
            callback_errors=self.callback_errors,
            send_waits=self.send_waits,
        )
