"""The two interfaces between the rpmsg API and whatever runs a bus. Pure (typing only).

* :class:`Bus`: what every bus offers its users, whatever runs it: the vring bus
  (:class:`~rpmsg.vring_bus.RpmsgBus`, our own ring engine over a transport, either role) and
  a Linux kernel bus (``/dev/rpmsg*``: the kernel is the host and runs the rings).
* :class:`EndpointPort`: the narrow, typed way an :class:`~rpmsg.endpoint.Endpoint` asks its
  bus for something. An endpoint never calls a bus's private methods.

How a backend fills the port (the vring bus: :mod:`rpmsg.vring_port`). For a kernel bus, each
endpoint is a ``/dev/rpmsgN`` fd in non-blocking mode: ``send_now`` is one ``write()`` (False on
``EAGAIN``: the kernel has no free tx buffer), ``send`` waits for the fd to become writable up
to the deadline and writes again, ``try_send`` raises :class:`~rpmsg.errors.NoBufferError` on
``EAGAIN``; ``try_send_many``/``send_many`` write each message in turn (the kernel notifies per
message). Receiving: a reader on the fd (the event loop's, or a task) reads each message and
hands it to ``Endpoint._deliver``, which wakes the endpoint's waiters, so ``park``/``unpark``
have nothing to do; a BLOCK stall stops reading that fd (the kernel's queue then holds the
peer back) and ``resume`` starts it again.

Recording (:mod:`rpmsg.tap`): a backend built on :class:`~rpmsg.core_bus.CoreBus` calls its
``_open_tap(capture, role=..., transport=..., backend=...)`` while it is made, then, when
``tap`` is not None, reports each message it writes (``tap.sent``) and reads (``tap.received``),
and each name-service event it learns of without its message (``tap.ns``).

A bus calls these members of an endpoint (rpmsg-internal): ``addr``, ``closed``, ``used``,
the counters, ``_deliver(msg)`` with a received ``(src, dst, flags, payload)``, ``_close``
and ``_closed_error``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from transports.doorbell import Wakeup

    from .channel import Channel, Driver, Probe, Remove
    from .endpoint import Endpoint
    from .message import Overflow, RxCallback, Timeout
    from .rings.loans import Lease, Loans
    from .stats import BusStatistics


class Bus(Protocol):
    """An rpmsg bus: endpoints, services, channels, drivers, statistics."""

    name: str

    @property
    def mtu(self) -> int:
        """The largest payload one message carries, in bytes."""

    @property
    def closed(self) -> bool: ...

    def create_endpoint(
        self,
        addr: int = ...,
        *,
        dst: int = ...,
        name: str | None = None,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = ...,
        zero_copy: bool = False,
    ) -> Endpoint:
        """Bind a local endpoint (see :class:`~rpmsg.message.EndpointOptions`)."""

    async def destroy_endpoint(self, ep: Endpoint) -> None:
        """Unbind ``ep`` (announcing NS DESTROY if it was announced)."""

    async def create_service(
        self,
        name: str,
        addr: int = ...,
        *,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = ...,
        zero_copy: bool = False,
    ) -> Endpoint:
        """Create an endpoint and announce it under ``name``."""

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The channel the peer announced under ``name``, waiting up to ``timeout`` s."""

    @property
    def channels(self) -> list[Channel]:
        """The peer's services known now, one channel each."""

    def find_channel(self, name: str) -> Channel | None:
        """The channel announced under ``name``, if there is one now (never waits)."""

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> Driver:
        """Probe ``probe(channel)`` on every channel announced under one of ``names``."""

    def statistics(self) -> BusStatistics: ...

    async def aclose(self) -> None:
        """Close every endpoint (orderly: iterations end) and stop the bus."""


class EndpointPort(Protocol):
    """What an endpoint needs from its bus. ``ep`` is the asking endpoint (None: the bus's
    own control messages); ``src``/``dst`` are addresses, ``data`` any C-contiguous buffer."""

    def send_now(self, ep: Endpoint, src: int, dst: int, data: Buffer) -> bool:
        """The fast path: True if sent at once. False sends the caller to :meth:`send`
        (which checks everything and raises the errors): only valid plain ints pass here."""

    async def send(
        self, ep: Endpoint | None, src: int, dst: int, data: Buffer, timeout: Timeout
    ) -> None:
        """Send, waiting up to ``timeout`` for a free buffer, first come, first served."""

    def try_send(self, ep: Endpoint | None, src: int, dst: int, data: Buffer) -> None:
        """Send now or raise :class:`~rpmsg.errors.NoBufferError`."""

    def try_send_many(self, ep: Endpoint, src: int, dst: int, payloads: Iterable[Buffer]) -> int:
        """Send the payloads in order while buffers are free, one notification of the peer
        for all (every payload is checked first): how many were sent."""

    async def send_many(
        self, ep: Endpoint, src: int, dst: int, payloads: Iterable[Buffer], timeout: Timeout
    ) -> None:
        """Send them all in order, each wait for a buffer up to ``timeout``, one notification
        per ring-full."""

    def check_sendable(self, ep: Endpoint | None) -> None:
        """Raise what a send would: the bus's closed error, then the endpoint's."""

    def resume(self) -> None:
        """A BLOCK endpoint that stalled the bus's receiving has room again."""

    def count_drop(self, reason: str) -> None:
        """Count a message the endpoint dropped (see :data:`~rpmsg.stats.DROP_REASONS`)."""

    def callback_failed(self, ep: Endpoint) -> None:
        """``ep``'s rx callback raised (called from within the ``except`` block)."""

    def park(self, wakeup: Wakeup) -> None:
        """A receiver is about to sleep on ``wakeup`` (see ``Transport.park``)."""

    def unpark(self, wakeup: Wakeup, *, run: bool) -> None:
        """The receiver woke (``run``) or was cancelled."""

    # Zero-copy (rpmsg.zero_copy): a bus lends shared buffers (``zero_copy`` True) or private
    # copies (the Linux kernel bus: rpmsg.zero_copy.CopyLending), tracked in ``loans``.
    zero_copy: bool

    @property
    def loans(self) -> Loans: ...

    def set_holding(self, addr: int, on: bool) -> None:
        """Messages to ``addr`` are (``on``) held in their buffers, not copied."""

    def borrow_now(self, ep: Endpoint) -> Lease | None:
        """Lend a free tx buffer, or None if none is (raises what a send would)."""

    async def borrow(self, ep: Endpoint, timeout: Timeout) -> Lease:
        """Lend a tx buffer, waiting in turn with senders up to ``timeout``."""

    def send_borrowed(self, ep: Endpoint, lease: Lease, src: int, dst: int, n: int) -> None:
        """Send the first ``n`` bytes of a borrowed buffer, never waiting."""

    def give_back(self, lease: Lease) -> bool:
        """End a lease unsent or released: False if it was quarantined (a view lives)."""
