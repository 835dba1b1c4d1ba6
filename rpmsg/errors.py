"""Exception tree of the rpmsg package.

A caller's mistake (payload over the MTU, binding a taken address) is a ``ValueError``; a bus
that cannot deliver right now is a ``BlockingIOError`` or ``TimeoutError``; a channel or bus
that went away is a ``ConnectionError``. The peer's bad bytes are never raised at callers: they
are counted in ``statistics()`` and the bus keeps going.
"""

from __future__ import annotations


class RpmsgError(Exception):
    """Root of every error raised by :mod:`rpmsg`."""


class PayloadTooLargeError(RpmsgError, ValueError):
    """The payload is larger than the bus MTU (``buffer_size - 16``); nothing is truncated."""


class AddressInUseError(RpmsgError, ValueError):
    """The requested local address is already bound to an endpoint."""


class InvalidAddressError(RpmsgError, ValueError):
    """An address outside the 32-bit range, ANY where a real address is needed, or a
    destination-less ``send()`` on an endpoint that has no default peer."""


class NoBufferError(RpmsgError, BlockingIOError):
    """``try_send``: every tx buffer is in flight right now."""


class RpmsgTimeoutError(RpmsgError, TimeoutError):
    """A deadline expired (send waiting for a buffer, recv, wait_for_service)."""


class EndpointClosedError(RpmsgError, ConnectionError):
    """The endpoint was destroyed, its channel removed, or its bus closed."""


class BusClosedError(EndpointClosedError):
    """The bus is closed (the transport closed, the peer died, or the processor crashed)."""


class DriverError(RpmsgError, ValueError):
    """Registering a driver failed (a name registered twice, an empty id table)."""
