"""Channels (named services announced by a peer) and the drivers probed on them.

Backend-agnostic: these are plain records; the bus (its core) creates and updates them.

Theory of operation: a peer's name-service CREATE ``(name, addr)`` makes a :class:`Channel`:
the service name, the peer's address (``dst``) and a local endpoint created for it (``src``).
Drivers register by name; each matching channel is handed to the driver's ``probe`` coroutine,
which runs as a task for as long as it likes (typically ``async for msg in channel``). A
DESTROY removes the channel: its endpoint closes in an orderly way, so the driver's iteration
ends. Announcements that arrive before a driver registers are kept, so a late driver still
binds; ``bus.wait_for_service`` waits for one by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from .errors import ArgumentTypeError, DriverError
from .wire import encode_name

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

    from .endpoint import Endpoint
    from .message import Message
    from .protocol import Bus

Probe = Callable[["Channel"], Awaitable[None]]
Remove = Callable[["Channel"], None]


@attrs.define(eq=False)
class Channel:
    """A service announced by the peer, bound to a local endpoint."""

    name: str
    dst: int
    endpoint: Endpoint
    driver: Driver | None = None

    @property
    def src(self) -> int:
        """The local endpoint's address: where the peer's replies arrive."""
        return self.endpoint.addr

    @property
    def bus(self) -> Bus:
        return self.endpoint.bus

    @property
    def removed(self) -> bool:
        return self.endpoint.closed

    async def send(self, data: Buffer) -> None:
        """Send to the service, from the channel's endpoint (see :meth:`Endpoint.send`)."""
        await self.endpoint.send(data)

    async def recv(self, timeout: float | None = None) -> Message:
        return await self.endpoint.recv(timeout)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.endpoint.__aiter__()


@attrs.define(eq=False)
class Driver:
    """A registered driver: service names it binds to and its probe / remove hooks."""

    names: frozenset[str]
    probe: Probe
    remove: Remove | None = None
    channels: list[Channel] = attrs.field(factory=list)

    def matches(self, name: str) -> bool:
        return name in self.names


def new_driver(
    names: str | Iterable[str], probe: Probe, remove: Remove | None, others: Iterable[Driver]
) -> Driver:
    """A driver for the service ``names``, checked against the bus's ``others``.

    Raises:
        ArgumentTypeError: ``names`` is neither a name nor an iterable of names.
        InvalidServiceNameError: a name no announcement can carry.
        DriverError: no name, or a name another driver has.
    """
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
    for other in others:
        if other.names & ids:
            raise DriverError(f"a driver for {sorted(other.names & ids)} already exists")
    return Driver(names=ids, probe=probe, remove=remove)
