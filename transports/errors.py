"""Exception tree of the transports package.

A caller's mistake (asking for memory outside a window, posting to a full ring) and a peer's bad
bytes (a corrupt ring index written by the other side) are different errors: the first is a bug
in the caller, the second is something the host must survive.
"""

from __future__ import annotations


class TransportError(Exception):
    """Root of every error raised by :mod:`transports`."""


class MemoryAccessError(TransportError, ValueError):
    """A device-address range that is not (entirely) inside the shared memory."""


class RingFullError(TransportError, RuntimeError):
    """The driver tried to post a buffer while every descriptor was in flight (caller's bug)."""


class TransportClosedError(TransportError, ConnectionError):
    """The transport was closed, or the peer went away."""


class TransportInUseError(TransportError, ValueError):
    """A transport end already has its one user (see :meth:`Transport.claim`)."""


class TransportURLError(TransportError, ValueError):
    """A transport URL or option the caller got wrong: unknown scheme or option, a value of
    the wrong kind or out of range, an option given twice, an invalid object name."""


class RoleClashError(TransportError, ConnectionError):
    """Both ends of a link opened it in the same role (two hosts or two remotes)."""


class RemoteProtocolError(TransportError, ValueError):
    """The peer wrote something invalid into shared memory.

    Attributes:
        head: the descriptor id the bad entry referred to, when one could be identified and
            handed back, else ``None``.
        consumed: whether the bad ring entry was consumed (so processing may go on with the
            next entry) or left in place (the ring index itself is not trusted).
    """

    def __init__(self, message: str, *, head: int | None = None, consumed: bool = False) -> None:
        super().__init__(message)
        self.head = head
        self.consumed = consumed
