"""One kernel endpoint's side of :class:`~rpmsg.protocol.EndpointPort`: sending through its
``/dev/rpmsgN`` and the task that reads it.

Theory of operation: each endpoint of the Linux bus is one char device (:mod:`.chardev`), so
each has a port of its own. What the kernel lets an endpoint do decides what the port refuses:

* rpmsg_char.c writes every message to the destination the endpoint was created with
  (``rpmsg_sendto(ept, ..., eptdev->chinfo.dst)``) from the endpoint's own address: a send to
  another destination, or from another source address (``send_offchannel``), raises
  :class:`~rpmsg.errors.UnsupportedOperationError`; an endpoint created without a destination
  (ADDR_ANY) can only receive.
* The payload limit is the bus's ``mtu`` (virtio_rpmsg_bus: 512-byte buffers, 496 bytes); the
  kernel's own EMSGSIZE also maps to :class:`~rpmsg.errors.PayloadTooLargeError`.
* Waiting for a tx buffer: a send that finds none (EAGAIN) waits for POLLOUT, but
  virtio_rpmsg_bus implements no endpoint ``poll`` (``virtio_endpoint_ops`` has none, so
  ``rpmsg_poll()`` returns 0) and never reports it. The waiting sender therefore also retries
  after a short backoff (1 ms, doubling to 20 ms) until its deadline: the kernel gives user
  space no other signal. Senders wait first come, first served.
* Receiving: a task reads every queued message when the fd is readable and hands each to
  ``Endpoint._deliver``. A full queue under ``Overflow.BLOCK`` stops the reading until the
  endpoint has room (:meth:`KernelPort.resume`); rpmsg_char.c's own queue is unbounded, so
  unlike on the vring bus the remote is not held back. The source address of a message is not
  reported by the kernel: it is taken to be the endpoint's destination.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from rpmsg.addresses import check_address
from rpmsg.errors import (
    BusClosedError,
    EndpointClosedError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgError,
    RpmsgTimeoutError,
    UnsupportedOperationError,
)
from rpmsg.message import DEFAULT, Timeout
from rpmsg.wire import ADDR_ANY, as_batch, as_payload
from rpmsg.zero_copy import CopyLending

from .chardev import CharDev

if TYPE_CHECKING:
    from collections.abc import Iterable

    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from rpmsg.endpoint import Endpoint
    from transports.doorbell import Wakeup

    from .bus_state import BusCounters

log = logging.getLogger("aioamp.platform.linux")

#: Messages read per wake-up before yielding to other tasks.
_BATCH = 64
_BACKOFF_FIRST, _BACKOFF_MAX = 0.001, 0.02


class KernelPort(CopyLending):
    """What one endpoint of the Linux bus calls (see the module docstring).

    Args:
        dev: the endpoint's open char device.
        dst: the destination the kernel sends to (ADDR_ANY: none, receive only).
        counters: the bus's shared counters and settings (closed error, mtu, timeouts).
    """

    def __init__(self, dev: CharDev, dst: int, counters: BusCounters) -> None:
        self.dev = dev
        self.dst = dst
        self._bus = counters
        self._waiting = 0
        self._turn = anyio.Lock()  # FIFO: waiting senders go in order
        self._room = anyio.Event()
        self._stalled: tuple[int, int, int, bytes] | None = None
        self.loans = counters.loans
        self.mtu = counters.mtu

    # -- sending ----------------------------------------------------------------------------
    def send_now(self, ep: Endpoint, src: int, dst: int, data: Buffer) -> bool:
        if (
            self._waiting
            or ep.closed
            or self._bus.closed is not None
            or type(src) is not int
            or src != ep.addr
            or dst != self.dst
            or type(dst) is not int
            or dst == ADDR_ANY
        ):
            return False
        try:
            if memoryview(data).nbytes > self._bus.mtu or not self.dev.write(data):
                return False
        except (RpmsgError, TypeError):
            return False  # send() raises the typed error
        self._sent(ep, data)
        return True

    def _sent(self, ep: Endpoint | None, data: Buffer) -> None:
        n = memoryview(data).nbytes
        bus = self._bus
        bus.tx_messages += 1
        bus.tx_bytes += n
        if ep is not None:
            ep.tx_messages += 1
            ep.tx_bytes += n
        if bus.tap is not None:  # the kernel sends from the endpoint's address to its dst
            bus.tap.sent(ADDR_ANY if ep is None else ep.addr, self.dst, data)

    def check_sendable(self, ep: Endpoint | None) -> None:
        if self._bus.closed is not None:
            raise self._bus.closed
        if ep is not None and ep.closed:
            raise ep._closed_error()

    def _check_send(
        self, ep: Endpoint | None, src: int, dst: int, data: Buffer
    ) -> bytes | memoryview:
        payload = as_payload(data)
        src = check_address(src, "source", any_ok=True)
        dst = check_address(dst, "destination")
        self.check_sendable(ep)
        own = ADDR_ANY if ep is None else ep.addr
        if src != own:
            raise UnsupportedOperationError(
                f"{self.dev.path}: the kernel sends only from the endpoint's own address "
                f"({own:#x}), not from {src:#x} (no send_offchannel through /dev/rpmsg*)"
            )
        if dst != self.dst:
            target = "no destination" if self.dst == ADDR_ANY else f"destination {self.dst:#x}"
            raise UnsupportedOperationError(
                f"{self.dev.path}: this endpoint was created with {target}; the kernel sends "
                f"only there, not to {dst:#x} (create an endpoint with dst={dst:#x})"
            )
        if len(payload) > self._bus.mtu:
            raise PayloadTooLargeError(
                f"payload of {len(payload)} bytes exceeds the MTU of {self._bus.mtu}"
            )
        return payload

    def try_send(self, ep: Endpoint | None, src: int, dst: int, data: Buffer) -> None:
        payload = self._check_send(ep, src, dst, data)
        if self._waiting or not self._write(payload):
            raise NoBufferError(f"{self.dev.path}: no free tx buffer")
        self._sent(ep, payload)

    # Batches: one write() per message (the kernel notifies the remote per message).
    def _check_many(
        self, ep: Endpoint, src: int, dst: int, payloads: Iterable[Buffer]
    ) -> list[bytes | memoryview]:
        return [self._check_send(ep, src, dst, p) for p in as_batch(payloads)]

    def try_send_many(self, ep: Endpoint, src: int, dst: int, payloads: Iterable[Buffer]) -> int:
        sent = 0
        for payload in self._check_many(ep, src, dst, payloads):
            if self._waiting or not self._write(payload):
                break
            self._sent(ep, payload)
            sent += 1
        return sent

    async def send_many(
        self, ep: Endpoint, src: int, dst: int, payloads: Iterable[Buffer], timeout: Timeout
    ) -> None:
        for payload in self._check_many(ep, src, dst, payloads):
            await self.send(ep, src, dst, payload, timeout)

    def _write(self, payload: bytes | memoryview) -> bool:
        try:
            return self.dev.write(payload)
        except EndpointClosedError as exc:
            raise self._gone(exc) from None

    def _gone(self, exc: EndpointClosedError) -> EndpointClosedError:
        """A write found the endpoint gone: the bus's own closed error if it closed."""
        return self._bus.closed if self._bus.closed is not None else exc

    async def send(
        self, ep: Endpoint | None, src: int, dst: int, data: Buffer, timeout: Timeout
    ) -> None:
        payload = self._check_send(ep, src, dst, data)
        if not self._waiting and self._write(payload):
            self._sent(ep, payload)
            return
        if timeout is DEFAULT:
            timeout = self._bus.send_timeout
        self._bus.send_waits += 1
        if ep is not None:
            ep.send_waits += 1
        self._waiting += 1
        try:
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                async with self._turn:
                    await self._send_waiting(ep, payload)
                    return
        finally:
            self._waiting -= 1
        if scope.cancelled_caught:
            self._bus.send_timeouts += 1
            raise RpmsgTimeoutError(f"{self.dev.path}: no tx buffer freed within {timeout} s")

    async def _send_waiting(self, ep: Endpoint | None, payload: bytes | memoryview) -> None:
        delay = _BACKOFF_FIRST
        while True:
            self.check_sendable(ep)
            if self._write(payload):
                self._sent(ep, payload)
                return
            with anyio.move_on_after(delay):
                await self.dev.wait_writable()
            delay = min(delay * 2, _BACKOFF_MAX)

    # -- receiving --------------------------------------------------------------------------
    def resume(self) -> None:
        self._room.set()

    def count_drop(self, reason: str) -> None:
        self._bus.drops[reason] += 1

    def callback_failed(self, ep: Endpoint) -> None:
        self._bus.drops["callback_error"] += 1
        log.exception("%s: rx callback of %r raised", self.dev.path, ep)

    def park(self, wakeup: Wakeup) -> None:
        """Nothing to do: the reader task delivers and wakes the endpoint's waiters."""

    def unpark(self, wakeup: Wakeup, *, run: bool) -> None:
        """Nothing to do (see :meth:`park`)."""

    async def read_into(self, ep: Endpoint) -> None:
        """Deliver every message of the fd to ``ep`` until the endpoint is gone; then close
        ``ep`` in order (its channel was removed: iterations end)."""
        dev, bus = self.dev, self._bus
        src = self.dst
        try:
            while not ep.closed:
                if self._stalled is not None:
                    await self._room.wait()
                    self._room = anyio.Event()
                    if not ep._deliver(self._stalled):
                        continue
                    self._stalled = None
                for _ in range(_BATCH):
                    payload = dev.read()
                    if payload is None:
                        break
                    bus.rx_messages += 1
                    bus.rx_bytes += len(payload)
                    msg = (src, ep.addr, 0, payload)
                    if bus.tap is not None:
                        bus.tap.received(msg)
                    if not ep._deliver(msg):
                        self._stalled = msg
                        break
                else:
                    await anyio.lowlevel.checkpoint()
                    continue
                if self._stalled is None:
                    bus.notifications_received += 1
                    await dev.wait_readable()
        except EndpointClosedError:
            if not dev.closed:
                log.info("%s: the endpoint's channel was removed", dev.path)
        except RpmsgError as exc:  # EIO and the like: this endpoint ends, not the bus
            log.warning("%s: reading failed: %s", dev.path, exc)
            ep._close(exc)
        finally:
            ep._close(None)


def closed_error(name: str, cause: BaseException | None = None) -> BusClosedError:
    err = BusClosedError(f"{name}: bus closed" + (f": {cause}" if cause else ""))
    err.__cause__ = cause
    return err
