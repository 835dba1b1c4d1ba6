"""The rpmsg bus: the async shell around :class:`~rpmsg.engine.RpmsgEngine`, either role.

Theory of operation: one bus per rpmsg vdev. A listener task waits for the transport's
notifications; each wake-up drains every pending receive entry (with the peer's notifications
suppressed meanwhile), dispatches each message to the endpoint bound at its destination,
recycles the buffers, then notifies the peer once. Senders write straight into a free tx buffer
from their own task; only when none is free do they wait, with a deadline, for the listener to
see buffers come back. Name-service messages (address 53) create and remove :class:`Channel`
objects and probe the drivers registered for their names.

Failures of the peer never raise into the listener: bad rings and headers are counted in
:meth:`RpmsgBus.statistics`. A closed transport (peer died) or :meth:`RpmsgBus.fail` (the
processor crashed) closes the bus: every waiting and later call raises
:class:`~rpmsg.errors.BusClosedError` carrying the cause.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from transports.base import Transport
from transports import errors as transports_errors
from transports.errors import TransportClosedError

from .addresses import AddressAllocator, check_address
from .channel import Channel, Driver, Probe, Remove
from .endpoint import (
    DEFAULT,
    Endpoint,
    Message,
    Overflow,
    RxCallback,
    Timeout,
    check_queue,
    check_timeout,
)
from .engine import DROP_REASONS, RpmsgEngine
from .errors import (
    ArgumentTypeError,
    BusClosedError,
    DriverError,
    ForeignEndpointError,
    InvalidServiceNameError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgError,
    RpmsgTimeoutError,
    TransportInUseError,
)
from .wire import ADDR_ANY, NS_ADDR, NsFlags, as_payload, encode_name, pack_ns, unpack_ns

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

log = logging.getLogger("rpmsg")

#: Linux virtio_rpmsg_bus: a sender waits at most 15 s for a free tx buffer.
DEFAULT_SEND_TIMEOUT = 15.0
#: Messages handled per receive pass before yielding to other tasks.
_RX_BATCH = 256

class _TxTurn:
    """A sender waiting in :meth:`RpmsgBus._send`; ``event`` is set when it may try again."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


@attrs.frozen
class BusStatistics:
    """A snapshot of a bus's counters. ``drops`` maps each reason of
    :data:`~rpmsg.engine.DROP_REASONS` to a count."""

    role: str
    tx_messages: int
    tx_bytes: int
    rx_messages: int
    rx_bytes: int
    drops: dict[str, int]
    kicks_sent: int
    notifications_received: int
    send_waits: int
    send_timeouts: int
    driver_errors: int
    endpoints: int
    channels: int
    last_ring_error: str | None


class RpmsgBus:
    """An rpmsg bus over one transport.

    Args:
        transport: one end of a vring transport; its ``role`` is the bus's role.
        buffer_size: bytes per buffer; default: what the transport was laid out for (512 unless
            its layout says otherwise: MTU 496).
        send_timeout: default deadline of a blocking send, seconds (None: wait forever).
        ready_timeout: remote role: how long :meth:`start` waits for the host's DRIVER_OK.
        name: a label for logs.

    Use ``async with RpmsgBus(transport) as bus:``; the transport is not closed by the bus.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        buffer_size: int | None = None,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        ready_timeout: float | None = None,
        name: str = "rpmsg",
    ) -> None:
        self.transport = transport
        self.role = transport.role
        self.name = name
        self.send_timeout = send_timeout
        self.ready_timeout = ready_timeout
        self.engine = RpmsgEngine(
            transport.role,
            transport.memory,
            transport.vdev,
            kick=self._kick,
            pool=transport.pool,
            buffer_ok=transport.buffer_ok,
            buffer_size=transport.buffer_size if buffer_size is None else buffer_size,
            quirks=transport.quirks,
        )
        self._addrs = AddressAllocator()
        self._endpoints: dict[int, Endpoint] = {}
        self._channels: dict[tuple[str, int], Channel] = {}
        self._drivers: list[Driver] = []
        self._own_tg: anyio.abc.TaskGroup | None = None
        self._inner: anyio.abc.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set in handler mode
        self._started = False
        self._stop: anyio.Event | None = None
        self._finished: anyio.Event | None = None
        self._ready: anyio.Event | None = None  # created in start(), inside the loop
        self._service_event: anyio.Event | None = None
        self._processing = False
        self._again = False
        self._rx_quiet = False  # the peer's notifications are off until the next pass ends
        self._stalled: tuple[int, int, int, bytes] | None = None
        self._closed: BaseException | None = None
        self._kicks = 0
        self._tx_messages = self._tx_bytes = 0
        self._rx_messages = self._rx_bytes = 0
        self._send_waits = self._send_timeouts = self._driver_errors = 0
        self._tx_waiting: deque[_TxTurn] = deque()  # senders waiting for a buffer, in order
        self._kick_pending: Callable[[], bool] = transport.kick_pending
        # Last: a bus that failed to construct claims nothing. A bus dropped unclosed lets go
        # when it is collected.
        try:
            token = transport.claim(f"bus {name!r}")
        except transports_errors.TransportInUseError as exc:
            raise TransportInUseError(str(exc)) from None
        self._release = weakref.finalize(self, transport.release, token)

    # Both deadlines are checked when set (None, or seconds >= 0; not NaN), at construction
    # and later: the CLI sets ready_timeout after constructing the bus.
    @property
    def send_timeout(self) -> float | None:
        return self._send_timeout

    @send_timeout.setter
    def send_timeout(self, value: float | None) -> None:
        self._send_timeout = check_timeout(value, "send_timeout")

    @property
    def ready_timeout(self) -> float | None:
        return self._ready_timeout

    @ready_timeout.setter
    def ready_timeout(self, value: float | None) -> None:
        self._ready_timeout = check_timeout(value, "ready_timeout")

    # -- lifetime ------------------------------------------------------------------------------
    # A transport end is driven by one bus: it claims the end when constructed and holds it
    # until it closes (aclose, fail, or a start that failed).
    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            await self.start(tg)
        except BaseException:
            tg.cancel_scope.cancel()
            # Not handed the error: the task group would raise it wrapped in an
            # ExceptionGroup, and public APIs never raise one.
            await tg.__aexit__(None, None, None)
            raise
        self._own_tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        tg, self._own_tg = self._own_tg, None
        if tg is not None:
            return await tg.__aexit__(exc_type, exc, tb)
        return None

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Bring the vdev up, running the bus's tasks inside ``task_group``.

        Host: negotiate, post rx buffers, set DRIVER_OK. Remote: wait (up to
        ``ready_timeout``) for the host's DRIVER_OK. The bus may be closed from any task
        later; ``async with RpmsgBus(...)`` does all this with a task group of its own.
        """
        if self._started:
            raise RpmsgError("bus already started")
        self._check_open()
        self._started = True
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._finished = anyio.Event()
        if self.role == "host":
            try:
                self.engine.host_start()
            except BaseException:
                await self.aclose()  # frees the transport end for another bus
                raise
            self._bring_up()
        # On asyncio, notifications drive receive passes straight from the event loop (no
        # listener task to wake: one task wake-up less per message); elsewhere a task waits.
        if self.transport.set_notify_handler(self._on_notify):
            self._loop = asyncio.get_running_loop()
        await task_group.start(self._run, name=f"{self.name}-bus")
        if self.role == "remote":
            await self._process()
            timeout = math.inf if self.ready_timeout is None else self.ready_timeout
            with anyio.move_on_after(timeout):
                await self._ready.wait()
            if not self._ready.is_set():
                await self.aclose()
                raise RpmsgTimeoutError(
                    f"{self.name}: the host did not set DRIVER_OK within {timeout} s"
                )
            self._check_open()

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            async with anyio.create_task_group() as inner:
                self._inner = inner
                if self._loop is None:  # no handler mode: a task waits for notifications
                    inner.start_soon(self._listen, name=f"{self.name}-listener")
                task_status.started()
                assert self._stop is not None
                await self._stop.wait()
                inner.cancel_scope.cancel()
        finally:
            self._inner = None
            assert self._finished is not None
            self._finished.set()

    async def wait_closed(self) -> None:
        """Wait until the bus's tasks (listener, driver probes) have ended."""
        if self._finished is not None:
            await self._finished.wait()

    def _bring_up(self) -> None:
        if self.engine.ns_enabled and NS_ADDR not in self._endpoints:
            self._bind(NS_ADDR, callback=self._on_ns, name="rpmsg-ns")
        assert self._ready is not None
        self._ready.set()
        if self.engine.resets and self.engine.ns_enabled:
            # A new host after a reset: it knows none of our services. Announce them again.
            for ep in list(self._endpoints.values()):
                if ep.announced and ep.name:
                    msg = pack_ns(ep.name, ep.addr, NsFlags.CREATE)
                    if not self.engine.try_send(ep.addr, NS_ADDR, msg):
                        log.warning("%s: no buffer to re-announce %r", self.name, ep.name)

    def _device_reset(self) -> None:
        """Remote role: the host withdrew DRIVER_OK (virtio reset, e.g. it detached). Its
        channels are gone (their endpoints end in an orderly way); our own endpoints stay and
        are announced again when a host sets DRIVER_OK anew."""
        log.info("%s: the host reset the device; waiting for DRIVER_OK again", self.name)
        self.engine.remote_reset()
        self._stalled = None
        self._rx_quiet = False
        for key, channel in list(self._channels.items()):
            del self._channels[key]
            if channel.endpoint.announced:
                channel.endpoint.dst = ADDR_ANY  # our own service: keep it, unbind it
            else:
                self._unbind(channel.endpoint, None)

    def reset_peer(self) -> None:
        """Host role: virtio-reset the device (status 0) and notify the remote, before this
        bus goes away while the remote keeps running (detach). The remote drops its rings
        and waits for a new host's DRIVER_OK."""
        if self.role != "host" or self._closed is not None:
            return
        self.engine.host_reset()

    async def aclose(self) -> None:
        """Close every endpoint (orderly: iterations end) and stop the listener."""
        if self._closed is None:
            self._closed = BusClosedError(f"{self.name}: bus closed")
            self._close_all(None)
        if self._stop is not None:
            self._stop.set()

    def fail(self, cause: BaseException) -> None:
        """Close the bus because of ``cause`` (peer died, processor crashed): every pending and
        later operation raises :class:`BusClosedError` from ``cause``."""
        if self._closed is not None:
            return
        err = BusClosedError(f"{self.name}: {cause}")
        err.__cause__ = cause
        self._closed = err
        log.warning("%s: bus closed: %s", self.name, cause)
        self._close_all(err)
        if self._stop is not None:
            self._stop.set()

    def _detach(self) -> None:
        if self._loop is not None:
            self._loop = None
            try:
                self.transport.set_notify_handler(None)
            except Exception:  # the transport may already be gone
                log.debug("%s: detaching the notify handler failed", self.name, exc_info=True)

    def _close_all(self, reason: BaseException | None) -> None:
        self._release()  # the transport end is free for another bus
        self._detach()
        for ep in list(self._endpoints.values()):
            ep._close(reason)
        self._endpoints.clear()
        self._channels.clear()
        self._wake_tx_waiters()
        if self._service_event is not None:
            self._service_event.set()
        if self._ready is not None:
            self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed

    # -- notifications ---------------------------------------------------------------------------
    def _kick(self, vq: int) -> None:
        transport = self.transport
        # Skipped when the peer has not consumed our previous notification yet: it rescans
        # every ring after it does, so this kick would only coalesce with that one. Under a
        # burst of sends this is what keeps kicks per message far below one.
        if not self._kick_pending():
            try:
                transport.kick(vq)
            except TransportClosedError as exc:  # closed before (our own aclose, EOF seen)
                self.fail(exc)
                return
            self._kicks += 1
        if transport.closed:
            # Closed by this very kick (EPIPE) or earlier while kicks coalesced: a bus on a
            # dead transport must fail, not keep writing into the rings.
            self.fail(TransportClosedError(transport.close_reason))

    async def _listen(self) -> None:
        try:
            while True:
                await self.transport.wait_notification()
                await self._process()
        except TransportClosedError as exc:
            self.fail(exc)

    def _resume(self) -> None:
        """An endpoint made room after a BLOCK stall: drain again."""
        if self._closed is not None:
            return
        if self._loop is not None:
            self._loop.call_soon(self._process_sync)
        elif self._inner is not None:
            self._inner.start_soon(self._process)

    def _on_notify(self, _count: int, closed: str | None) -> None:
        """Handler mode (asyncio): the transport calls this from the event loop."""
        if closed is not None:
            self.fail(TransportClosedError(closed))
            return
        try:
            self._process_sync()
        except Exception as exc:  # a bug here must not leave the bus silently stalled
            log.exception("%s: receive pass failed", self.name)
            self.fail(exc)

    def _passes(self) -> bool:
        """Run receive passes until the rings are idle. True if one stopped at the batch limit
        (the caller yields, then calls again). A call made while passes are running only
        asks them to go round once more (a stall resumed, a notification in between)."""
        if self._processing:
            self._again = True
            return False
        self._processing = True
        try:
            while True:
                self._again = False
                if self._step():
                    return True
                if not self._again or self._closed is not None:
                    return False
        finally:
            self._processing = False

    async def _process(self) -> None:
        """Receive passes from a task: yields between batches."""
        while self._passes():
            await anyio.lowlevel.checkpoint()

    def _process_sync(self) -> None:
        """Receive passes from an event-loop callback: a full batch reschedules itself."""
        if self._passes() and self._loop is not None and self._closed is None:
            self._loop.call_soon(self._process_sync)

    def _step(self) -> bool:
        """One receive pass of at most ``_RX_BATCH`` messages, then one notification of the
        peer and a wake-up of waiting senders. True if it stopped at the batch limit."""
        engine = self.engine
        if self.role == "remote" and engine.ready and not engine.remote_driver_ok():
            self._device_reset()
        if not engine.ready:
            if self.role != "remote" or not engine.remote_driver_ok():
                return False
            engine.remote_start()
            self._bring_up()
        stalled = self._stalled
        if stalled is not None:
            if not self._dispatch(stalled):
                # Receiving waits for the full endpoint, but this notification may also have
                # brought tx buffers back: senders must not wait for it.
                self._wake_tx_waiters()
                return False
            self._stalled = None
        more = self._drain_batch()
        engine.finish_rx()
        self._wake_tx_waiters()
        return more

    def _drain_batch(self) -> bool:
        """Dispatch up to ``_RX_BATCH`` messages; True when another pass must follow (batch
        limit, or a poll, see below).

        The peer's notifications are off while a pass has messages. When a pass that had a
        burst (more than one message) runs dry, they stay off for one more pass on the next
        loop iteration: a peer that keeps sending at about our pace then needs no kick at
        all (Linux's NAPI idea). A pass that finds nothing turns them back on, then looks
        once more, so a message that landed in between is not left waiting for a kick.
        """
        engine = self.engine
        next_rx = engine.next_rx
        handled = 0
        quiet = self._rx_quiet
        more = False
        try:
            while self._closed is None:
                msg = next_rx()
                if msg is None:
                    if not quiet:
                        return False
                    if handled > 1:
                        more = True  # poll once more before notifications come back
                        return True
                    engine.set_rx_notifications(True)
                    quiet = False
                    if not engine.rx_pending():
                        return False
                    continue
                self._rx_messages += 1
                self._rx_bytes += len(msg[3])
                if not self._dispatch(msg):
                    self._stalled = msg
                    return False
                handled += 1
                if not quiet:
                    engine.set_rx_notifications(False)
                    quiet = True
                elif handled >= _RX_BATCH:
                    more = True
                    return True
            return False
        finally:
            if quiet and not more:
                engine.set_rx_notifications(True)
                quiet = False
            self._rx_quiet = quiet

    def _dispatch(self, msg: tuple[int, int, int, bytes]) -> bool:
        src, dst, flags, payload = msg
        ep = self._endpoints.get(dst)
        if ep is None:
            self._count_drop("unknown_dst")
            log.debug("%s: message from %d to unknown address %d dropped", self.name, src, dst)
            return True
        # Reuse the endpoint's own int objects where the values match: the Message then keeps
        # no per-message ints alive (addresses >= 1024 are not Python's cached small ints).
        peer = ep.dst
        return ep._deliver(Message(peer if src == peer else src, ep.addr, payload, flags))

    def _count_drop(self, reason: str) -> None:
        self.engine.drops[reason] += 1

    def _callback_failed(self, ep: Endpoint) -> None:
        self._count_drop("callback_error")
        log.exception("%s: rx callback of endpoint %d raised", self.name, ep.addr)

    def _wake_tx_waiters(self) -> None:
        """Buffers may have come back (or the bus closed): the first waiting sender looks,
        and hands the turn on when it leaves."""
        if self._tx_waiting:
            self._tx_waiting[0].event.set()

    # -- sending ---------------------------------------------------------------------------------
    @property
    def mtu(self) -> int:
        """Largest payload one message can carry (buffer size - 16)."""
        return self.engine.mtu

    def _sent(self, ep: Endpoint | None, n: int) -> None:
        self._tx_messages += 1
        self._tx_bytes += n
        if ep is not None:
            ep.tx_messages += 1
            ep.tx_bytes += n

    def _send_now(self, ep: Endpoint, src: int, dst: int, data: Buffer) -> bool:
        """The send fast path: True if sent at once. False sends the caller to :meth:`_send`,
        which checks every argument, waits for a buffer, queues behind waiting senders and
        raises the errors. Only plain ints in range pass here; the engine checks the payload
        (its type and its size in bytes) before it takes a buffer."""
        if (
            self._tx_waiting
            or self._closed is not None
            or ep._closed is not None
            or type(src) is not int
            or type(dst) is not int
            or not (0 <= src < ADDR_ANY and 0 <= dst < ADDR_ANY)
        ):
            return False
        if type(data) is not bytes:
            data = as_payload(data)  # len() is now its size in bytes
        if not self.engine.try_send(src, dst, data):
            return False
        self._sent(ep, len(data))
        return True

    def _check_send(
        self, ep: Endpoint | None, src: int, dst: int, data: Buffer
    ) -> tuple[int, int, bytes | memoryview]:
        """What a send checks before it touches a buffer: the payload (a C-contiguous buffer:
        its bytes are sent; the engine checks the MTU), both addresses, then that the
        endpoint and the bus are open. Returns the plain-int addresses and the flat payload."""
        payload = as_payload(data)
        src = check_address(src, "source")
        dst = check_address(dst, "destination")
        self._check_sendable(ep)
        return src, dst, payload

    def _check_sendable(self, ep: Endpoint | None) -> None:
        self._check_open()
        if ep is not None and ep._closed is not None:
            raise ep._closed_error()  # its address may already be someone else's

    def _try_send(self, ep: Endpoint | None, src: int, dst: int, data: Buffer) -> None:
        src, dst, payload = self._check_send(ep, src, dst, data)
        if not self.engine.try_send(src, dst, payload):
            raise NoBufferError(f"{self.name}: no free tx buffer")
        self._sent(ep, len(payload))

    async def _send(
        self, ep: Endpoint | None, src: int, dst: int, data: Buffer, timeout: Timeout
    ) -> None:
        src, dst, payload = self._check_send(ep, src, dst, data)
        engine = self.engine
        waiting = self._tx_waiting
        # Waiting senders are served first come, first served: one that finds others waiting
        # queues behind them without trying, and only the first tries. Otherwise a task that
        # sends in a loop takes each freed buffer before the woken waiter runs (one buffer in
        # flight: for as long as it keeps sending).
        if waiting:
            n = len(payload)  # a flat byte view: no buffer can hold it, refused now
            if n > engine.mtu:
                raise PayloadTooLargeError(f"payload of {n} bytes exceeds the MTU of {engine.mtu}")
        elif engine.try_send(src, dst, payload):
            self._sent(ep, len(payload))
            return
        if timeout is DEFAULT:
            timeout = self.send_timeout
        self._send_waits += 1
        if ep is not None:
            ep.send_waits += 1
        engine.tx_wait_begin()
        turn = _TxTurn()
        waiting.append(turn)
        try:
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                while True:
                    if waiting[0] is turn and engine.try_send(src, dst, payload):
                        self._sent(ep, len(payload))
                        return
                    await turn.event.wait()
                    turn.event = anyio.Event()
                    self._check_sendable(ep)
        finally:
            first = waiting[0] is turn
            waiting.remove(turn)
            engine.tx_wait_end()
            if first and waiting:
                waiting[0].event.set()  # the next may find a buffer that came back meanwhile
        if scope.cancelled_caught:
            self._send_timeouts += 1
            raise RpmsgTimeoutError(f"{self.name}: no tx buffer freed within {timeout} s")

    # -- endpoints ---------------------------------------------------------------------------
    def _bind(
        self,
        addr: int,
        *,
        dst: int = ADDR_ANY,
        name: str | None = None,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Endpoint:
        # The endpoint checks its own arguments before the address is taken.
        ep = Endpoint(
            self, addr, dst=dst, name=name, callback=callback, maxsize=maxsize, overflow=overflow
        )
        ep.addr = self._addrs.allocate(addr)
        self._endpoints[ep.addr] = ep
        return ep

    def create_endpoint(
        self,
        addr: int = ADDR_ANY,
        *,
        dst: int = ADDR_ANY,
        name: str | None = None,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Endpoint:
        """Bind a local endpoint.

        Args:
            addr: the local address; ANY picks the lowest free one from 1024. Reserved
                addresses (< 1024) are bound only when asked for explicitly.
            dst: default destination of :meth:`Endpoint.send` (ANY: none).
            name: the service name :meth:`announce` uses (see :data:`~rpmsg.wire.NAME_RULE`).
            callback: called synchronously for each message instead of queueing it.
            maxsize, overflow: the receive queue's bound (an int >= 1) and overflow policy.

        Addresses are ints (not bools). Every argument is checked before anything is bound.
        """
        self._check_open()
        if name is not None:
            encode_name(name)
        return self._bind(
            addr, dst=dst, name=name, callback=callback, maxsize=maxsize, overflow=overflow
        )

    async def create_service(
        self,
        name: str,
        addr: int = ADDR_ANY,
        *,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Endpoint:
        """Create an endpoint and announce it to the peer (NS CREATE) under ``name``.

        Without the NS feature negotiated the endpoint is created but not announced.
        """
        encode_name(name)  # check the arguments before anything is bound or unbound
        check_queue(maxsize, overflow, callback)
        self._check_open()
        adopted = self._adoptable(name) if addr == ADDR_ANY else None
        if adopted is not None:
            # The peer announced this name first and nobody used the channel yet: take over
            # its endpoint's address too, so each side ends up at the address the peer knows
            # (both OpenAMP demo endpoints are 0x400).
            addr = adopted.endpoint.addr
            self._unbind(adopted.endpoint, None)
        ep = self.create_endpoint(
            addr, name=name, callback=callback, maxsize=maxsize, overflow=overflow
        )
        if adopted is not None:
            ep.dst = adopted.dst
            self._channels[(adopted.name, adopted.dst)] = Channel(
                name=adopted.name, dst=adopted.dst, endpoint=ep
            )
        try:
            await self.announce(ep)
        except BaseException:
            self._unbind(ep, None)
            raise
        return ep

    async def announce(self, ep: Endpoint, name: str | None = None) -> None:
        """Send NS CREATE for ``ep`` (under ``name`` or its own name).

        Raises:
            ForeignEndpointError: ``ep`` belongs to another bus.
            EndpointClosedError: ``ep`` was closed (its address may be someone else's now).
            InvalidServiceNameError: no name, or one the name field cannot carry.
        """
        self._check_own(ep)
        name = name if name is not None else ep.name
        if name is None:
            raise InvalidServiceNameError("announce needs a service name")
        encode_name(name)
        self._check_sendable(ep)
        ep.name = name
        if not self.engine.ns_enabled:
            return
        await self._send(None, ep.addr, NS_ADDR, pack_ns(name, ep.addr, NsFlags.CREATE), DEFAULT)
        ep.announced = True
        self._adopt_channel(ep)

    def _adoptable(self, name: str) -> Channel | None:
        """A channel the peer announced under ``name`` that no driver took and whose endpoint
        was never used: a local service of the same name may bind to it (OpenAMP)."""
        for channel in self._channels.values():
            old = channel.endpoint
            if (
                channel.name == name
                and channel.driver is None
                and not old.announced
                and old.rx_messages == old.tx_messages == 0
            ):
                return channel
        return None

    def _adopt_channel(self, ep: Endpoint) -> None:
        """After announcing ``ep``: bind it to an unused channel of the same name, if any."""
        channel = self._adoptable(ep.name or "")
        if channel is None or ep.dst != ADDR_ANY or channel.endpoint is ep:
            return
        ep.dst = channel.dst
        self._channels[(channel.name, channel.dst)] = Channel(
            name=channel.name, dst=channel.dst, endpoint=ep
        )
        self._unbind(channel.endpoint, None)

    def _check_own(self, ep: Endpoint) -> None:
        if ep.bus is not self:
            raise ForeignEndpointError(f"{ep!r} belongs to bus {ep.bus.name!r}, not {self.name!r}")

    async def destroy_endpoint(self, ep: Endpoint) -> None:
        """Unbind ``ep``; if it was announced, send NS DESTROY first (best effort). Destroying
        a closed endpoint does nothing.

        Raises:
            ForeignEndpointError: ``ep`` belongs to another bus (nothing changes).
        """
        self._check_own(ep)
        if self._endpoints.get(ep.addr) is not ep:
            ep._close(None)
            return
        if ep.announced and ep.name and self._closed is None:
            ep.announced = False
            msg = pack_ns(ep.name, ep.addr, NsFlags.DESTROY)
            try:
                await self._send(None, ep.addr, NS_ADDR, msg, DEFAULT)
            except RpmsgError as exc:
                log.warning("%s: NS DESTROY for %r not sent: %s", self.name, ep.name, exc)
        self._unbind(ep, None)

    def _unbind(self, ep: Endpoint, reason: BaseException | None) -> None:
        if self._endpoints.get(ep.addr) is not ep:
            ep._close(reason)  # not bound (any more): nothing here is its
            return
        del self._endpoints[ep.addr]
        self._addrs.release(ep.addr)
        ep._close(reason)
        self._wake_tx_waiters()  # a send waiting on it fails now, not at its deadline
        if self._stalled is not None and self._stalled[1] == ep.addr:
            # The message the bus stalled on was this endpoint's: it goes with it (counted),
            # never to whoever binds the address next (that may happen before the resumed
            # pass runs).
            self._stalled = None
            self._count_drop("unknown_dst")
            self._resume()

    def endpoint(self, addr: int) -> Endpoint | None:
        return self._endpoints.get(addr)

    # -- name service, channels and drivers ---------------------------------------------------
    def _on_ns(self, _ep: Endpoint, msg: Message) -> None:
        parsed = unpack_ns(msg.payload)
        if parsed is None:
            self._count_drop("bad_ns")
            log.warning(
                "%s: malformed name-service message (%d bytes)", self.name, len(msg.payload)
            )
            return
        name, addr, flags = parsed
        if addr == ADDR_ANY:
            self._count_drop("bad_ns")
            return
        if flags == NsFlags.CREATE:
            self._add_channel(name, addr)
        elif flags == NsFlags.DESTROY:
            self._remove_channel(name, addr)
        else:
            self._count_drop("bad_ns")

    def _add_channel(self, name: str, dst: int) -> None:
        if (name, dst) in self._channels:
            log.info("%s: duplicate announcement of %r at %d ignored", self.name, name, dst)
            return
        own = self._unbound_named(name)
        if own is not None:
            # OpenAMP binding: both sides announce the same name; the peer's announcement
            # gives our own named endpoint its destination. No driver is probed: the endpoint
            # already has its user, whose iteration ends when the peer withdraws.
            own.dst = dst
            channel = Channel(name=name, dst=dst, endpoint=own)
            self._channels[(name, dst)] = channel
            log.info("%s: %r bound: local %d -> remote %d", self.name, name, own.addr, dst)
            self._service_announced()
            return
        ep = self._bind(ADDR_ANY, dst=dst, name=name)
        channel = Channel(name=name, dst=dst, endpoint=ep)
        self._channels[(name, dst)] = channel
        log.info("%s: channel %r: local %d -> remote %d", self.name, name, ep.addr, dst)
        self._service_announced()
        for driver in self._drivers:
            if driver.matches(name):
                self._bind_driver(driver, channel)
                break

    def _unbound_named(self, name: str) -> Endpoint | None:
        for ep in self._endpoints.values():
            if ep.name == name and ep.announced and ep.dst == ADDR_ANY:
                return ep
        return None

    def _service_announced(self) -> None:
        if self._service_event is not None:
            self._service_event.set()
            self._service_event = None

    def _remove_channel(self, name: str, dst: int) -> None:
        channel = self._channels.pop((name, dst), None)
        if channel is None:
            log.info("%s: DESTROY of unknown channel %r at %d", self.name, name, dst)
            return
        log.info("%s: channel %r at %d removed", self.name, name, dst)
        driver = channel.driver
        if driver is not None:
            driver.channels.remove(channel)
            if driver.remove is not None:
                try:
                    driver.remove(channel)
                except Exception:
                    self._driver_errors += 1
                    log.exception("%s: remove hook of %r raised", self.name, name)
        self._unbind(channel.endpoint, None)

    def _bind_driver(self, driver: Driver, channel: Channel) -> None:
        channel.driver = driver
        driver.channels.append(channel)
        assert self._inner is not None
        self._inner.start_soon(self._run_probe, driver, channel, name=f"probe-{channel.name}")

    async def _run_probe(self, driver: Driver, channel: Channel) -> None:
        try:
            await driver.probe(channel)
        except BusClosedError:
            pass
        except Exception:
            if channel.removed:
                return  # the service went away under the driver: expected
            self._driver_errors += 1
            log.exception("%s: driver for %r failed", self.name, channel.name)

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> Driver:
        """Probe ``probe(channel)`` for every channel announced under one of ``names``,
        including announcements that arrived before this call."""
        self._check_open()
        if isinstance(names, str):
            ids = frozenset([names])
        elif isinstance(names, Iterable) and not isinstance(names, bytes | bytearray):
            ids = frozenset(names)
        else:
            raise ArgumentTypeError(
                f"names must be a service name (a str) or an iterable of them, "
                f"not {type(names).__name__}"
            )
        if not ids:
            raise DriverError("a driver needs at least one service name")
        for name in ids:
            encode_name(name)  # a name no announcement can carry would never match
        for other in self._drivers:
            if other.names & ids:
                raise DriverError(f"a driver for {sorted(other.names & ids)} already exists")
        driver = Driver(names=ids, probe=probe, remove=remove)
        self._drivers.append(driver)
        for channel in list(self._channels.values()):
            if channel.driver is None and driver.matches(channel.name):
                self._bind_driver(driver, channel)
        return driver

    def unregister_driver(self, driver: Driver) -> None:
        """Stop binding ``driver``; its channels stay, its remove hook runs for each."""
        if driver in self._drivers:
            self._drivers.remove(driver)
        for channel in list(driver.channels):
            channel.driver = None
            if driver.remove is not None:
                driver.remove(channel)
        driver.channels.clear()

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def find_channel(self, name: str) -> Channel | None:
        for channel in self._channels.values():
            if channel.name == name:
                return channel
        return None

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The channel announced under ``name``, waiting up to ``timeout`` s for it."""
        encode_name(name)  # a name no announcement can carry would be waited for in vain
        timeout = check_timeout(timeout)
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                self._check_open()
                channel = self.find_channel(name)
                if channel is not None:
                    return channel
                if self._service_event is None:
                    self._service_event = anyio.Event()
                await self._service_event.wait()
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} not announced in {timeout} s")

    # -- statistics ----------------------------------------------------------------------------
    def statistics(self) -> BusStatistics:
        drops = {reason: self.engine.drops.get(reason, 0) for reason in DROP_REASONS}
        return BusStatistics(
            role=self.role,
            tx_messages=self._tx_messages,
            tx_bytes=self._tx_bytes,
            rx_messages=self._rx_messages,
            rx_bytes=self._rx_bytes,
            drops=drops,
            kicks_sent=self._kicks,
            notifications_received=self.transport.stats.notifications_received,
            send_waits=self._send_waits,
            send_timeouts=self._send_timeouts,
            driver_errors=self._driver_errors,
            endpoints=len(self._endpoints),
            channels=len(self._channels),
            last_ring_error=self.engine.last_ring_error,
        )
