"""What an endpoint receives and how it is set up: :class:`Message`, :class:`Overflow`,
:class:`EndpointOptions`, and the deadline argument of sends. Pure: no I/O, no event loop.

:class:`EndpointOptions` is the one place the endpoint settings (``addr, dst, name, callback,
maxsize, overflow``) are defined, defaulted and checked: every bus builds one from its caller's
arguments before anything is bound, and the endpoint takes its settings from it.
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import attrs

from .addresses import check_address
from .errors import ArgumentTypeError, InvalidArgumentError
from .wire import ADDR_ANY, encode_name

if TYPE_CHECKING:
    from .endpoint import Endpoint


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
    """What a full receive queue does with the next message (see :mod:`rpmsg.endpoint`)."""

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


# The checks are converters, which attrs runs in field order as it sets each field (validators
# would all run after the last one): the service name, the receive settings, the destination,
# then the local address.
def _name(name: str | None) -> str | None:
    if name is not None:
        encode_name(name)
    return name


def _maxsize(maxsize: int) -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise ArgumentTypeError(f"maxsize must be an int, not {type(maxsize).__name__}")
    if maxsize < 1:
        raise InvalidArgumentError(f"maxsize must be >= 1, not {maxsize}")
    return maxsize


def _callback(callback: RxCallback | None) -> RxCallback | None:
    if callback is not None and not callable(callback):
        raise ArgumentTypeError(f"callback must be callable or None, not {callback!r}")
    return callback


def _overflow(overflow: Overflow | str) -> Overflow:
    try:
        return Overflow(overflow)
    except ValueError:
        choices = ", ".join(f"Overflow.{o.name}" for o in Overflow)
        raise InvalidArgumentError(f"overflow must be one of {choices}, not {overflow!r}") from None


def _dst(dst: int) -> int:
    return check_address(dst, "destination", any_ok=True)


def _addr(addr: int) -> int:
    return check_address(addr, "local", any_ok=True)


@attrs.frozen(kw_only=True)
class EndpointOptions:
    """An endpoint's settings, checked once, when made; each bad one raises a typed error.

    Attributes:
        name: the service name :meth:`~rpmsg.protocol.Bus.create_service` announces
            (:data:`~rpmsg.wire.NAME_RULE`), or None.
        maxsize: the receive queue's bound, an int >= 1.
        callback: called synchronously for each message instead of queueing it, or None.
        overflow: what a full queue does (an :class:`Overflow`; its value, such as
            ``"drop-oldest"``, is accepted too).
        dst: default destination of :meth:`~rpmsg.endpoint.Endpoint.send` (ANY: none).
        addr: the local address (ANY: the lowest free one from 1024). Addresses are ints
            (not bools).
        zero_copy: receive :class:`~rpmsg.zero_copy.HeldMessage` s, payloads held in the
            ring's buffers (:mod:`rpmsg.zc_endpoint`); no callback then.
    """

    name: str | None = attrs.field(default=None, converter=_name)
    maxsize: int = attrs.field(default=256, converter=_maxsize)
    callback: RxCallback | None = attrs.field(default=None, converter=_callback)
    overflow: Overflow = attrs.field(default=Overflow.BLOCK, converter=_overflow)
    dst: int = attrs.field(default=ADDR_ANY, converter=_dst)
    addr: int = attrs.field(default=ADDR_ANY, converter=_addr)
    zero_copy: bool = attrs.field(default=False)

    def __attrs_post_init__(self) -> None:
        if type(self.zero_copy) is not bool:
            raise ArgumentTypeError(
                f"zero_copy must be a bool, not {type(self.zero_copy).__name__}"
            )
        if self.zero_copy and self.callback is not None:
            raise InvalidArgumentError("a zero_copy endpoint cannot have an rx callback")
