"""The vring bus: rpmsg over a vring transport, either role; the shell around core and rings.

Theory of operation: one bus per rpmsg vdev (one transport end). It connects its parts: the
rings (:mod:`rpmsg.rings`, one class per role), the core and the Bus API over it
(:mod:`rpmsg.core`, :mod:`rpmsg.core_bus`), the receive passes run on each notification
(:mod:`rpmsg.receive`) and its endpoints' sending side (:mod:`rpmsg.vring_port`). It owns the
lifetime (a task group), starts and stops with the peer and sends the kicks the rings ask for
(:meth:`RpmsgBus._kick`). The peer's bad bytes never raise here (they are counted); a closed
transport or :meth:`RpmsgBus.fail` (the processor crashed) closes the bus: every waiting and
later call raises :class:`~rpmsg.errors.BusClosedError` carrying the cause.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Self

import anyio
import anyio.abc

import transports.errors
from transports._tasks import raise_one
from transports.base import Transport
from transports.errors import TransportClosedError

from .busy_poll import BusyPoll, check_budget
from .core_bus import DEFAULT_SEND_TIMEOUT, CoreBus
from .endpoint import Endpoint
from .errors import BusClosedError, RpmsgError, RpmsgTimeoutError, TransportInUseError
from .message import check_timeout
from .receive import RxPasses
from .rings import Poll, rings_for
from .stats import DROP_REASONS, BusStatistics, loan_statistics
from .tap import Capture
from .vring_port import VringPort
from .wire import NS_ADDR

log = logging.getLogger("aioamp.rpmsg")

#: The default ``busy_poll=`` of a pollable transport, in microseconds (benchmarks/README.md
#: has the measurements it was chosen by).
DEFAULT_BUSY_POLL_US = 50.0


class RpmsgBus(CoreBus, anyio.AsyncContextManagerMixin):
    """An rpmsg bus over one transport end (see :class:`~rpmsg.protocol.Bus`).

    Args:
        transport: one end of a vring transport; its ``role`` is the bus's role.
        buffer_size: bytes per buffer; default: what the transport was laid out for (512 unless
            its layout says otherwise: MTU 496).
        send_timeout: default deadline of a blocking send, seconds (None: wait forever).
        ready_timeout: remote role: how long :meth:`start` waits for the host's DRIVER_OK.
        name: a label for logs and captures.
        capture: record every message of the link there (:mod:`rpmsg.tap`), as well as in
            the process-wide captures active now (:func:`rpmsg.tap.capturing`).
        busy_poll: the most microseconds a receiver (or a sender waiting for a buffer) watches
            the rings before it sleeps (:mod:`rpmsg.busy_poll`); 0: never. Only shared-memory
            links between CPUs are watched (``transport.pollable``); default
            :data:`DEFAULT_BUSY_POLL_US` there, 0 elsewhere.

    Use ``async with RpmsgBus(transport) as bus:``; the transport is not closed by the bus. A
    transport end is driven by one bus: claimed here, released when the bus closes.
    """

    _port: VringPort

    def __init__(
        self,
        transport: Transport,
        *,
        buffer_size: int | None = None,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        ready_timeout: float | None = None,
        name: str = "rpmsg",
        capture: Capture | None = None,
        busy_poll: float | None = None,
    ) -> None:
        budget = check_budget(busy_poll) if busy_poll is not None else DEFAULT_BUSY_POLL_US
        super().__init__(name, send_timeout)
        self.transport = transport
        self.role = transport.role
        self.ready_timeout = ready_timeout
        self.rings = rings_for(transport.role)(
            transport.memory,
            transport.vdev,
            kick=self._kick,
            pool=transport.pool,
            buffer_size=transport.buffer_size if buffer_size is None else buffer_size,
            quirks=transport.quirks,
        )
        self._port = VringPort(self, self.rings, self.core, transport, resume=self._resume)
        self._rx = RxPasses(
            self.rings,
            self.core,
            transport,
            link_changed=self._link_changed,
            wake_senders=self._port.wake_senders,
            fail=self.fail,
            name=name,
        )
        if budget and transport.pollable:
            self._rx.poll = poll = BusyPoll(budget)
            self._port.busy_poll(poll, self._rx.look)
        url = getattr(transport, "url", None)
        self._open_tap(
            capture,
            role=transport.role,
            transport=url if url is not None else type(transport).__name__,
            backend="vring",
        )
        self._port.tap = self._rx.tap = self.tap
        self._started = False
        # Made in start(), inside the loop.
        self._finished: anyio.Event | None = None
        self._ready: anyio.Event | None = None
        self._kicks = 0
        self._kick_pending = transport.kick_pending
        # Last: a bus that failed to construct claims nothing. Dropped unclosed, it lets go
        # when it is collected.
        try:
            token = transport.claim(f"bus {name!r}")
        except transports.errors.TransportInUseError as exc:
            raise TransportInUseError(str(exc)) from None
        self._release = weakref.finalize(self, transport.release, token)

    # Checked when set, at construction and later: the CLI sets it after constructing the bus.
    @property
    def ready_timeout(self) -> float | None:
        return self._ready_timeout

    @ready_timeout.setter
    def ready_timeout(self, value: float | None) -> None:
        self._ready_timeout = check_timeout(value, "ready_timeout")

    # -- lifetime ------------------------------------------------------------------------------
    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        failed: BaseException | None = None
        body: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                try:
                    await self.start(tg)
                except BaseException as exc:
                    # Not handed to the task group, which would raise it wrapped in an
                    # ExceptionGroup: public APIs never raise one.
                    failed = exc
                    tg.cancel_scope.cancel()
                else:
                    try:
                        yield self
                    except BaseException as exc:
                        body = exc  # the task group wraps it: it comes out alone below
                        raise
                    finally:
                        await self.aclose()
        except BaseExceptionGroup as group:
            raise_one(group, keep=body)
        if failed is not None:
            raise failed

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
        ready = self._ready = anyio.Event()
        self._finished = anyio.Event()
        try:
            if self.rings.activate():
                self._bring_up()
        except BaseException:
            await self.aclose()  # frees the transport end for another bus
            raise
        self._rx.attach()
        await task_group.start(self._run, name=f"{self.name}-bus")
        if not ready.is_set():  # the remote waits for the host's DRIVER_OK
            await self._rx.run()
            timeout = math.inf if self.ready_timeout is None else self.ready_timeout
            with anyio.move_on_after(timeout):
                await ready.wait()
            if not ready.is_set():
                await self.aclose()
                raise RpmsgTimeoutError(
                    f"{self.name}: the host did not set DRIVER_OK within {timeout} s"
                )
            self._check_open()

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            async with anyio.create_task_group() as inner:
                self._tasks = self._rx.tasks = inner
                if self._rx.loop is None:  # no handler mode: a task waits for notifications
                    inner.start_soon(self._rx.listen, name=f"{self.name}-listener")
                task_status.started()
                await anyio.sleep_forever()  # until aclose() or fail() cancels the group
        finally:
            self._tasks = self._rx.tasks = None
            assert self._finished is not None
            self._finished.set()

    async def wait_closed(self) -> None:
        """Wait until the bus's tasks (listener, driver probes) have ended."""
        if self._finished is not None:
            await self._finished.wait()

    def _link_changed(self, state: Poll) -> bool:
        """Before a receive pass, the rings were found not running as before: start or stop
        with the peer. Whether to run the pass."""
        if state is Poll.STARTED:
            self._bring_up()
        elif state is Poll.RESET:
            # Remote: the host withdrew DRIVER_OK (virtio reset, e.g. it detached). Its
            # channels are gone; our own endpoints stay, announced again to the next host.
            log.info(
                "%s: the host reset the device; waiting for DRIVER_OK again",
                self.name,
                extra={"bus": self.name},
            )
            self._rx.reset()
            self._perform(self.core.reset())
        return state is Poll.STARTED

    def _bring_up(self) -> None:
        rings = self.rings
        if rings.ns_enabled:
            self._bind_ns()
        assert self._ready is not None
        self._ready.set()
        if rings.resets and rings.ns_enabled:
            for src, msg in self.core.reannouncements():
                if rings.try_send(src, NS_ADDR, msg) < 0:
                    log.warning(
                        "%s: no buffer to re-announce endpoint %d",
                        *(self.name, src),
                        extra={"bus": self.name, "endpoint": src, "reason": "no_buffer"},
                    )
                elif self.tap is not None:
                    self.tap.sent(src, NS_ADDR, msg)

    def reset_peer(self) -> None:
        """Host role: virtio-reset the device before this bus goes away while the remote keeps
        running (detach): it drops its rings until a new host's DRIVER_OK."""
        if self._port.closed is None:
            self.rings.reset_peer()

    async def aclose(self) -> None:
        """Close every endpoint (orderly: iterations end) and stop the bus's tasks."""
        if self._port.closed is None:
            self._close_all(BusClosedError(f"{self.name}: bus closed"), None)

    def fail(self, cause: BaseException) -> None:
        """Close the bus because of ``cause`` (peer died, processor crashed): every pending and
        later operation raises :class:`BusClosedError` from ``cause``."""
        if self._port.closed is not None:
            return
        err = BusClosedError(f"{self.name}: {cause}")
        err.__cause__ = cause
        # INFO, not WARNING: every user of the bus hears of it as BusClosedError, and whoever
        # caused it (a crash, a lost peer) reports it; a warning here would say it twice.
        log.info(
            "%s: bus closed: %s", self.name, cause, extra={"bus": self.name, "reason": str(cause)}
        )
        self._close_all(err, err)

    def _close_all(self, closed: BusClosedError, reason: BaseException | None) -> None:
        self._port.closed = closed
        self._rx.closed = True
        self.rings.loans.invalidate("the bus closed")  # nothing lent goes to the rings now
        self._release()  # the transport end is free for another bus
        self._rx.detach()
        for ep in self.core.close():
            ep._close(reason)
        self._port.wake_senders()
        self._wake_service_waiters()
        if self._ready is not None:
            self._ready.set()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()  # the listener and driver probes

    @property
    def closed(self) -> bool:
        return self._port.closed is not None

    @property
    def busy_poll(self) -> float:
        """The busy-poll budget in effect, in microseconds (0: off)."""
        poll = self._rx.poll
        return 0.0 if poll is None else poll.budget_ns / 1000

    # -- notifications -------------------------------------------------------------------------
    def _kick(self, vq: int) -> None:
        """Notify the peer (the rings decided it asked for it)."""
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

    def _resume(self) -> None:
        self._rx.resume()

    # -- what CoreBus needs from the link ------------------------------------------------------
    @property
    def mtu(self) -> int:
        """Largest payload one message can carry (buffer size - 16)."""
        return self.rings.mtu

    @property
    def _ns_enabled(self) -> bool:
        return self.rings.ns_enabled

    def _endpoint_gone(self, ep: Endpoint) -> None:
        self._port.endpoint_gone(ep)  # a send waiting on it fails now, not at its deadline
        self._rx.forget(ep.addr)

    # -- statistics ----------------------------------------------------------------------------
    def statistics(self) -> BusStatistics:
        rings, core, port, poll = self.rings, self.core, self._port, self._rx.poll
        return BusStatistics(
            role=self.role,
            tx_messages=rings.tx_messages,
            tx_bytes=rings.tx_bytes,
            rx_messages=rings.rx_messages,
            rx_bytes=rings.rx_bytes,
            drops={r: rings.drops.get(r, 0) + core.drops.get(r, 0) for r in DROP_REASONS},
            kicks_sent=self._kicks,
            notifications_received=self.transport.stats.notifications_received,
            send_waits=port.send_waits,
            send_timeouts=port.send_timeouts,
            driver_errors=self._driver_errors,
            endpoints=core.endpoints,
            channels=len(core.channels),
            last_ring_error=rings.last_ring_error,
            capture_errors=self._capture_errors,
            busy_poll_hits=0 if poll is None else poll.hits,
            busy_poll_misses=0 if poll is None else poll.misses,
            busy_poll_us=0.0 if poll is None else poll.spent_ns / 1000,
            **loan_statistics(rings.loans, zero_copy=True),
        )
