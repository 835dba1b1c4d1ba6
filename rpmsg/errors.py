"""Exception tree of the rpmsg package.

A caller's mistake is an :class:`InvalidArgumentError` (a ``ValueError``: payload over the MTU,
an address out of range, a NaN timeout) or an :class:`ArgumentTypeError` (a ``TypeError``: a
float address, a str payload), or one of the ``ValueError`` s below (binding a taken address, a
second bus on one transport end, another bus's endpoint); each changes nothing. A bus that
cannot deliver right now is a ``BlockingIOError`` or ``TimeoutError``; a channel or bus that
went away is a ``ConnectionError``. The peer's bad bytes are never raised at callers: they are
counted in ``statistics()`` and the bus keeps going.
"""

from __future__ import annotations

import transports.errors


class RpmsgError(Exception):
    """Root of every error raised by :mod:`rpmsg`."""


class InvalidArgumentError(RpmsgError, ValueError):
    """An argument of the right type with a value the API refuses (a NaN or negative timeout,
    ``maxsize < 1``, an unknown overflow policy)."""


class ArgumentTypeError(RpmsgError, TypeError):
    """An argument of the wrong type (a service name that is not a str, a timeout that is not
    a number)."""


class PayloadTooLargeError(InvalidArgumentError):
    """The payload's size in bytes is larger than the bus MTU (``buffer_size - 16``); nothing
    is truncated."""


class InvalidPayloadError(ArgumentTypeError):
    """The payload is not a C-contiguous buffer (a str, an int, a strided view): rpmsg sends a
    payload's raw bytes, and only a contiguous buffer has one unambiguous byte sequence."""


class AddressInUseError(RpmsgError, ValueError):
    """The requested local address is already bound to an endpoint."""


class InvalidAddressError(InvalidArgumentError):
    """An address outside the 32-bit range, ANY where a real address is needed, or a
    destination-less ``send()`` on an endpoint that has no default peer."""


class AddressTypeError(InvalidAddressError, ArgumentTypeError):
    """An address that is not an ``int`` (a float, a str; ``bool`` is refused too, as it is
    almost always a mistake)."""


class InvalidServiceNameError(InvalidArgumentError):
    """A service name the name-service message cannot carry: ``struct rpmsg_ns_msg``'s
    ``char name[32]`` is NUL-terminated (Linux forces the last byte to NUL), so a name is 1 to
    31 ASCII characters without NUL."""


class ForeignEndpointError(InvalidArgumentError):
    """An endpoint handed to a bus it does not belong to."""


class TransportInUseError(RpmsgError, transports.errors.TransportInUseError):
    """Another :class:`~rpmsg.RpmsgBus` already drives this transport end: two buses on one
    end would drain each other's rings. The claim ends when that bus closes. Also a
    :class:`transports.errors.TransportInUseError` (a ``ValueError``)."""


class VdevSetupError(RpmsgError, ValueError):
    """The vdev entry cannot carry rpmsg (wrong device id, vring count, rings outside memory,
    a pool too small for two buffers)."""


class NoBufferError(RpmsgError, BlockingIOError):
    """``try_send``: every tx buffer is in flight right now."""


class RpmsgTimeoutError(RpmsgError, TimeoutError):
    """A deadline expired (send waiting for a buffer, recv, wait_for_service)."""


class EndpointClosedError(RpmsgError, ConnectionError):
    """The endpoint was destroyed, its channel removed, or its bus closed; a closed endpoint
    neither sends nor receives new messages (its address may already belong to another)."""


class BusClosedError(EndpointClosedError):
    """The bus is closed (the transport closed, the peer died, or the processor crashed)."""


class UnsupportedOperationError(RpmsgError, NotImplementedError):
    """The bus cannot do this at all, whatever the arguments' values: the Linux kernel's char
    devices hide raw addressing (an endpoint sends only to the destination it was created
    with, never from another source address). Each bus documents what it refuses."""


class DriverError(RpmsgError, ValueError):
    """Registering a driver failed (a name registered twice, an empty id table)."""


class BufferReleasedError(RpmsgError, ValueError):
    """A zero-copy buffer used after it ended: sent, returned, released, or invalidated by its
    bus closing or its device being reset (a :class:`~rpmsg.zero_copy.TxBuffer` sent twice, a
    :class:`~rpmsg.zero_copy.HeldMessage` released twice)."""


class BufferInUseError(RpmsgError, BufferError):
    """A view derived from a zero-copy buffer's view (a slice, ``memoryview(view)``) was
    still alive when the buffer was sent or released: the buffer is kept out of the ring
    (quarantined, counted) until that view is gone, and (a send) nothing was sent."""
