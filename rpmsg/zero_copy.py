"""Zero-copy send and receive: borrowed tx buffers and held rx buffers, for every bus.

Theory of operation (OpenAMP's ``rpmsg_get_tx_payload_buffer`` / ``rpmsg_send_nocopy`` and
``rpmsg_hold_rx_buffer`` / ``rpmsg_release_rx_buffer``, lib/rpmsg/rpmsg.c):

* :meth:`Lending.borrow_tx` lends a free tx buffer as a :class:`TxBuffer`: ``data`` is a
  writable memoryview of the buffer's payload area in shared memory (``mtu`` bytes after the
  16-byte header slot); :meth:`TxBuffer.send` writes the header in place and hands the buffer
  to the peer. Left unsent, it goes back to the bus (the ``with`` block's end, or
  :meth:`TxBuffer.release`).
* An endpoint made with ``zero_copy=True`` receives :class:`HeldMessage` s: ``payload`` is a
  read-only view into the buffer the peer filled, which goes back to the peer on
  :meth:`HeldMessage.release` (or the ``with`` block's end).
* Views are checked, not trusted (:mod:`rpmsg.rings.loans`): after the end of a buffer its view
  raises ``ValueError``, its methods raise :class:`~rpmsg.errors.BufferReleasedError`; a slice
  of a view still alive at the end keeps the buffer out of the ring (quarantined, counted) and
  raises :class:`~rpmsg.errors.BufferInUseError`.
* Buffers an endpoint still has out when it closes are returned then, and reported (a warning
  and its ``leaks`` counter). When the bus closes or the host resets the device, every buffer
  out is invalidated: nothing of it is written to the rings again.

Whether the copy is really saved depends on the bus: the vring bus lends its shared buffers;
the Linux kernel bus (``/dev/rpmsgN``) cannot share the kernel's, so it lends private buffers
and copies once each way (``statistics().zero_copy`` says which).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Self, cast

from .addresses import check_address
from .errors import (
    ArgumentTypeError,
    BufferInUseError,
    BufferReleasedError,
    InvalidArgumentError,
    NoBufferError,
    PayloadTooLargeError,
)
from .message import DEFAULT, Timeout, check_timeout
from .rings.loans import Lease, Loans

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .protocol import EndpointPort

log = logging.getLogger("aioamp.rpmsg")


class _Loan:
    """What a borrowed and a held buffer share: their end, once."""

    __slots__ = ("_done", "_ep", "_lease")

    def __init__(self, ep: Endpoint, lease: Lease) -> None:
        self._ep = ep
        self._lease = lease
        self._done = False

    def _live(self) -> Lease:
        lease = self._lease
        if lease.dead is not None:
            raise BufferReleasedError(f"{self._what} is invalid: {lease.dead}")
        if self._done:
            raise BufferReleasedError(f"{self._what} was already {self._ended}")
        return lease

    _what = "the buffer"
    _ended = "released"

    @property
    def nbytes(self) -> int:
        """The view's size in bytes."""
        return self._lease.nbytes

    def release(self) -> None:
        """End the loan: the buffer goes back to the bus (see :meth:`_end`).

        Raises:
            BufferReleasedError: it already ended.
            BufferInUseError: a slice of the view is still alive (the buffer is quarantined).
        """
        if self._done:
            self._live()  # raises: why it ended
        self._end()

    def _end(self, *, strict: bool = True) -> None:
        self._done = True
        self._ep._lent_ended(self)
        if not self._ep._port.give_back(self._lease) and strict:
            raise BufferInUseError(
                f"{self._what}: a view derived from it is still alive; the buffer stays out of "
                "the ring until it is gone"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._done:
            self._end(strict=exc_type is None)


class TxBuffer(_Loan):
    """A borrowed tx buffer (:meth:`Lending.borrow_tx`); a context manager that returns the
    buffer unless it was sent."""

    __slots__ = ()
    _what = "the borrowed tx buffer"
    _ended = "sent or returned"

    @property
    def data(self) -> memoryview:
        """The payload area: a writable memoryview of ``nbytes`` bytes (the MTU)."""
        return self._live().view

    def send(self, n: int, *, dst: int | None = None) -> None:
        """Send the first ``n`` bytes of :attr:`data` to ``dst`` (None: the endpoint's default
        destination), without a copy; never waits (the buffer is already ours).

        Raises:
            ArgumentTypeError: ``n`` is not an int. InvalidArgumentError: it is negative;
                PayloadTooLargeError: it is over :attr:`nbytes`.
            BufferReleasedError: already sent or returned, or the bus closed or was reset.
            BufferInUseError: a slice of :attr:`data` is alive: nothing is sent, the buffer is
                quarantined.
            EndpointClosedError, BusClosedError, InvalidAddressError: as every send.
        """
        ep = self._ep
        ep._port.check_sendable(ep)
        lease = self._live()
        if type(n) is not int:
            raise ArgumentTypeError(f"n must be an int, not {type(n).__name__}")
        if n < 0:
            raise InvalidArgumentError(f"n must be >= 0, not {n}")
        if n > lease.nbytes:
            raise PayloadTooLargeError(f"n = {n} exceeds the buffer's {lease.nbytes} bytes")
        target = ep._default_dst() if dst is None else check_address(dst, "destination")
        try:
            ep._port.send_borrowed(ep, lease, ep.addr, target, n)
        except BufferInUseError:
            self._done = True  # quarantined: this buffer is over for its user
            ep._lent_ended(self)
            raise
        self._done = True
        ep._lent_ended(self)


class HeldMessage(_Loan):
    """A message received zero-copy (an endpoint made with ``zero_copy=True``); a context
    manager that releases its buffer. ``src`` is where a reply should go."""

    __slots__ = ("dst", "flags", "src")
    _what = "the held message"

    def __init__(self, ep: Endpoint, lease: Lease, src: int, dst: int, flags: int) -> None:
        super().__init__(ep, lease)
        self.src = src
        self.dst = dst
        self.flags = flags

    def __repr__(self) -> str:
        state = "released" if self._done else f"{self.nbytes} bytes"
        return f"<HeldMessage src={self.src} dst={self.dst} flags={self.flags} {state}>"

    @property
    def payload(self) -> memoryview:
        """The payload: a read-only memoryview into the buffer, until :meth:`release`."""
        return self._live().view


class Lending:
    """The zero-copy methods of :class:`~rpmsg.endpoint.Endpoint` (a mixin)."""

    if TYPE_CHECKING:
        _port: EndpointPort
        addr: int

        def _default_dst(self) -> int: ...

    borrowed_total = held_total = leaks = 0
    _lent: set[_Loan] | None = None

    def _lend(self, loan: _Loan) -> None:
        if self._lent is None:
            self._lent = set()
        self._lent.add(loan)
        if isinstance(loan, TxBuffer):
            self.borrowed_total += 1
        else:
            self.held_total += 1

    def _lent_ended(self, loan: _Loan) -> None:
        if self._lent is not None:
            self._lent.discard(loan)

    def _lent_counts(self) -> tuple[int, int]:
        """``(borrowed, held)`` out now."""
        lent = self._lent or ()
        borrowed = sum(isinstance(loan, TxBuffer) for loan in lent)
        return borrowed, len(lent) - borrowed

    def _reclaim_lent(self) -> None:
        """The endpoint closes: whatever it still has out goes back, reported as leaked."""
        lent, self._lent = self._lent or set(), None
        for loan in lent:
            self.leaks += 1
            self._port.loans.leaks += 1
            log.warning(
                "endpoint %d closed with %r still out: returned",
                *(self.addr, loan),
                extra={"endpoint": self.addr, "reason": "zero_copy_leak"},
            )
            loan._end(strict=False)

    def try_borrow_tx(self) -> TxBuffer:
        """Borrow a free tx buffer now (:class:`TxBuffer`), never waiting.

        Raises:
            NoBufferError: none is free; EndpointClosedError, BusClosedError: as sends.
        """
        ep = cast("Endpoint", self)
        lease = self._port.borrow_now(ep)
        if lease is None:
            raise NoBufferError(f"endpoint {self.addr}: no free tx buffer to borrow")
        return self._loaned(TxBuffer(ep, lease))

    async def borrow_tx(self, *, timeout: Timeout = DEFAULT) -> TxBuffer:
        """Borrow a tx buffer, waiting up to ``timeout`` (the bus's send timeout by default)
        for one to be free, in turn with waiting senders.

        Raises:
            RpmsgTimeoutError: none was freed in time; EndpointClosedError, BusClosedError.
        """
        if timeout is not DEFAULT:
            timeout = check_timeout(timeout)
        ep = cast("Endpoint", self)
        return self._loaned(TxBuffer(ep, await self._port.borrow(ep, timeout)))

    def _loaned(self, buf: TxBuffer) -> TxBuffer:
        self._lend(buf)
        return buf


class CopyLending:
    """The zero-copy port methods of a bus that cannot lend shared buffers (the Linux kernel
    bus: its char devices copy each message in ``write()`` and ``read()``). The same API,
    with one copy each way: a borrowed buffer is a private bytearray, sent with one write;
    a held message holds the bytes read. A slice outliving such a buffer only keeps private
    memory alive, so nothing is refused for it (it is counted as quarantined)."""

    zero_copy = False
    if TYPE_CHECKING:
        loans: Loans
        mtu: int

        def check_sendable(self, ep: Endpoint | None) -> None: ...
        def try_send(self, ep: Endpoint | None, src: int, dst: int, data: bytes) -> None: ...

    def set_holding(self, addr: int, on: bool) -> None:
        return  # every message is a copy of what read() returned anyway

    def borrow_now(self, ep: Endpoint) -> Lease | None:
        self.check_sendable(ep)
        size = self.mtu
        lease = Lease("tx", memoryview(bytearray(size)), 0, size, readonly=False, give_back=None)
        self.loans.lend(lease)
        return lease

    async def borrow(self, ep: Endpoint, timeout: Timeout) -> Lease:
        lease = self.borrow_now(ep)  # a private buffer is always free
        assert lease is not None
        return lease

    def send_borrowed(self, ep: Endpoint, lease: Lease, src: int, dst: int, n: int) -> None:
        if lease.dead is not None:
            raise BufferReleasedError(f"the borrowed tx buffer is invalid: {lease.dead}")
        self.try_send(ep, src, dst, bytes(lease.view[:n]))  # NoBufferError: nothing changed
        self.loans.settle(lease, give=False)

    def give_back(self, lease: Lease) -> bool:
        self.loans.settle(lease, give=True)
        return True
