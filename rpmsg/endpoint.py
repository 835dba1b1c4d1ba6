"""rpmsg endpoints: a local address with a receive queue or callback, and send methods.

Backend-agnostic: an endpoint asks its bus for everything through an
:class:`~rpmsg.protocol.EndpointPort` and reads its addressing state (destination, service
name) from the :class:`~rpmsg.core.Binding` its bus keeps for it.

Theory of operation: the bus delivers every received message to the endpoint bound at its
destination address. An endpoint either hands it to an rx callback (synchronously, inside the
bus's receive pass, like a Linux ``rpmsg_rx_cb_t``) or appends it to a bounded queue that
``recv()`` and ``async for`` consume.

Overflow policy of the queue (:class:`~rpmsg.message.Overflow`), counted in
``statistics().queue_drops``:

* ``BLOCK`` (default): nothing is dropped. When the queue is full the bus stops draining the
  receive ring until the consumer makes room; buffers stay with the bus, so the peer's sends
  eventually wait for a buffer: rpmsg's own flow control. A full endpoint therefore stalls the
  other endpoints of its bus until it is read; ``queue_stalls`` counts how often that happened.
* ``DROP_NEWEST``: the arriving message is discarded.
* ``DROP_OLDEST``: the oldest queued message is discarded to make room.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .endpoint_rx import EndpointCore
from .errors import (
    ArgumentTypeError,
    InvalidAddressError,
    InvalidArgumentError,
    RpmsgTimeoutError,
)
from .message import DEFAULT, EndpointOptions, Message, Timeout, check_timeout
from .stats import EndpointStatistics
from .wire import ADDR_ANY
from .zero_copy import Lending

if TYPE_CHECKING:
    from collections.abc import Iterable

    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from .core import Binding
    from .protocol import Bus, EndpointPort


class Endpoint(EndpointCore, Lending):
    """A bound local address. Create through ``bus.create_endpoint()``.

    Every send form refuses, changing nothing: a payload that is not a C-contiguous buffer
    (InvalidPayloadError) or is over the MTU in bytes (PayloadTooLargeError), an address that
    is not an int (AddressTypeError) or out of range (InvalidAddressError), a bad timeout, and
    a closed endpoint (EndpointClosedError; BusClosedError when its bus closed): once closed,
    its address may already belong to a new endpoint, which would get the replies.
    """

    def __init__(
        self, bus: Bus, port: EndpointPort, binding: Binding, options: EndpointOptions
    ) -> None:
        self.bus = bus
        super().__init__(port, binding, options)

    def __repr__(self) -> str:
        return f"<Endpoint addr={self.addr} dst={self.dst} name={self.name!r}>"

    @property
    def dst(self) -> int:
        """Default destination of :meth:`send` (the channel's peer), or ADDR_ANY."""
        return self._binding.dst

    @property
    def name(self) -> str | None:
        """The service name (announced, or of the peer's channel)."""
        return self._binding.name

    @property
    def announced(self) -> bool:
        return self._binding.announced

    @property
    def used(self) -> bool:
        """Whether a message ever went through this endpoint, either way."""
        return bool(self.rx_messages or self.tx_messages)

    @property
    def mtu(self) -> int:
        return self.bus.mtu

    def _close(self, reason: BaseException | None) -> None:
        super()._close(reason)
        if self._lent:  # buffers still borrowed or held go back, reported (zero_copy.py)
            self._reclaim_lent()

    # -- receive ------------------------------------------------------------------------------
    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; waits up to ``timeout`` seconds (None: forever).

        Raises:
            RpmsgTimeoutError: nothing arrived in time.
            EndpointClosedError: the endpoint was closed and its queue is empty.
        """
        if timeout is not None:
            timeout = check_timeout(timeout)
        if not self._queue:
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

    async def recv_batch(self, limit: int, timeout: float | None = None) -> list[Message]:
        """What has arrived, oldest first, up to ``limit`` messages: waits as :meth:`recv`
        for the first, never for more (one wake-up for a burst).

        Raises:
            ArgumentTypeError: ``limit`` is not an int; InvalidArgumentError: it is below 1.
            RpmsgTimeoutError, EndpointClosedError: as :meth:`recv`.
        """
        if type(limit) is not int:
            raise ArgumentTypeError(f"limit must be an int, not {type(limit).__name__}")
        if limit < 1:
            raise InvalidArgumentError(f"limit must be at least 1, not {limit}")
        batch = [await self.recv(timeout)]
        queue = self._queue
        while queue and len(batch) < limit:
            batch.append(self._pop())
        return batch

    def try_recv(self) -> Message | None:
        """The next queued message, or None. Never waits."""
        if not self._queue:
            if self._closed is not None and not self._orderly:
                raise self._closed_error()
            return None
        return self._pop()

    def __aiter__(self) -> Endpoint:
        return self

    # -- send ---------------------------------------------------------------------------------
    # Each send tries the port's non-waiting path first: one coroutine frame per message
    # instead of two while buffers are free.
    def _default_dst(self) -> int:
        if self._closed is not None:
            self._port.check_sendable(self)  # raises: BusClosedError first, as every send
        if self._binding.dst == ADDR_ANY:
            raise InvalidAddressError(f"endpoint {self.addr} has no default destination")
        return self._binding.dst

    async def send(self, data: Buffer, *, timeout: Timeout = DEFAULT) -> None:
        """Send ``data`` (any C-contiguous buffer: its raw bytes) to the endpoint's default
        destination (its channel's peer), waiting up to ``timeout`` for a free buffer."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        dst = self._binding.dst
        if dst == ADDR_ANY or self._closed is not None:
            dst = self._default_dst()
        port = self._port
        if not port.send_now(self, self.addr, dst, data):
            await port.send(self, self.addr, dst, data, timeout)

    async def send_to(self, dst: int, data: Buffer, *, timeout: Timeout = DEFAULT) -> None:
        """Send to ``dst`` from this endpoint's address."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        port = self._port
        if not port.send_now(self, self.addr, dst, data):
            await port.send(self, self.addr, dst, data, timeout)

    async def send_offchannel(
        self, src: int, dst: int, data: Buffer, *, timeout: Timeout = DEFAULT
    ) -> None:
        """Send with an explicit source address (replies go to ``src``)."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        port = self._port
        if not port.send_now(self, src, dst, data):
            await port.send(self, src, dst, data, timeout)

    def try_send_many(self, payloads: Iterable[Buffer], *, dst: int | None = None) -> int:
        """Send ``payloads`` in order to ``dst`` (None: the default destination) while tx
        buffers are free, never waiting, with one notification of the peer for the batch.
        Returns how many were sent (0: no buffer free); the caller keeps the rest. Every
        payload is checked before any is sent: a bad one raises and sends nothing."""
        return self._port.try_send_many(
            self, self.addr, self._default_dst() if dst is None else dst, payloads
        )

    async def send_many(
        self, payloads: Iterable[Buffer], *, dst: int | None = None, timeout: Timeout = DEFAULT
    ) -> None:
        """Send all ``payloads`` in order to ``dst`` (None: the default destination): one
        notification per ring-full, each wait for a free buffer up to ``timeout``. Every
        payload is checked before any is sent."""
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        await self._port.send_many(
            self, self.addr, self._default_dst() if dst is None else dst, payloads, timeout
        )

    def try_send(self, data: Buffer) -> None:
        """Like :meth:`send` but never waits: raises NoBufferError if no buffer is free."""
        self._port.try_send(self, self.addr, self._default_dst(), data)

    def try_send_to(self, dst: int, data: Buffer) -> None:
        self._port.try_send(self, self.addr, dst, data)

    def try_send_offchannel(self, src: int, dst: int, data: Buffer) -> None:
        self._port.try_send(self, src, dst, data)

    # -- lifetime -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Destroy the endpoint (announcing DESTROY if it was announced)."""
        await self.bus.destroy_endpoint(self)

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def statistics(self) -> EndpointStatistics:
        borrowed, held = self._lent_counts()
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
            borrowed=borrowed,
            borrowed_total=self.borrowed_total,
            held=held,
            held_total=self.held_total,
            leaks=self.leaks,
        )
