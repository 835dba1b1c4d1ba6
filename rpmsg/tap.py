"""Taps on a bus: every message each way, with its time, as it crosses the link. Shell.

Theory of operation: a bus made with ``capture=`` (or while a process-wide capture is active,
:func:`capturing`) asks each capture for a sink for its link (:meth:`Capture.open_link`, with a
:class:`LinkInfo` naming the bus, its role and what carries it) and keeps one :class:`LinkTap`
for them all. It calls the tap where messages cross its link, whatever runs the bus:

* the vring bus: :meth:`LinkTap.sent` once a message is in a tx buffer, :meth:`LinkTap.received`
  as each one is taken from the rx ring, before routing (so a message to an unbound address,
  or one a full endpoint drops, is still seen);
* a Linux kernel bus (``/dev/rpmsg*``): after each ``write()`` and ``read()`` of an endpoint's
  fd, and :meth:`LinkTap.ns` for each name-service event it learns of without seeing its
  message (the kernel consumes those): recorded as the NS message it implies, ``synthetic``.

Name-service messages are ordinary messages to address 53: :attr:`TapRecord.ns` decodes them.
Messages the rings refuse (a header whose length does not fit its buffer) have no trustworthy
fields: they are counted in the bus's drops, not recorded.

Cost: a bus without a tap tests one attribute per message. A sink never breaks its bus: an
exception from one is counted (``bus.statistics().capture_errors``) and the message goes on.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple, Protocol

import attrs

from .wire import NS_ADDR, RPMSG_NAME_SIZE, RPMSG_NS_MSG, as_payload, unpack_ns

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12


class Direction(enum.IntEnum):
    """Which way a message went, seen from the bus that recorded it."""

    TX = 0  # sent by this bus
    RX = 1  # received by this bus


@attrs.frozen
class LinkInfo:
    """The link a bus records: its name, its role, what carries it, what runs it."""

    bus: str
    role: str  # "host" or "remote"
    transport: str  # a URL (shm://demo) or the transport's class name
    backend: str = "vring"  # "vring" (our rings) or "kernel" (/dev/rpmsg*)

    def describe(self) -> str:
        return f"rpmsg {self.role} end over {self.transport} ({self.backend} bus {self.bus!r})"


@attrs.frozen
class NsEvent:
    """A name-service message, decoded (struct rpmsg_ns_msg)."""

    name: str
    addr: int
    flags: int  # NsFlags.CREATE (0) or DESTROY (1), or what the peer wrote


class TapRecord(NamedTuple):
    """One message as it crossed the link. ``payload`` is a copy: it may be kept. (A named
    tuple: one is made per message while a capture runs, and tuples are the cheapest.)"""

    link: LinkInfo
    timestamp_ns: int  # time.time_ns() when the bus saw it
    direction: Direction
    src: int
    dst: int
    flags: int  # struct rpmsg_hdr's flags
    payload: bytes
    synthetic: bool = False  # rebuilt by the bus (kernel NS event), not seen on its wire

    @property
    def length(self) -> int:
        """struct rpmsg_hdr's ``len``: the payload's size in bytes."""
        return len(self.payload)

    @property
    def ns(self) -> NsEvent | None:
        """The name-service message this is (sent to address 53, well formed), or None."""
        if self.dst != NS_ADDR:
            return None
        parsed = unpack_ns(self.payload)
        return None if parsed is None else NsEvent(*parsed)


_TX, _RX = Direction.TX, Direction.RX  # (an enum member looked up per message costs)

#: Where a link's records go: called once per record, from the bus's own task or callback.
RecordSink = Callable[[TapRecord], object]


class Capture(Protocol):
    """Something that records buses: a pcapng file (:class:`rpmsg.capture.PcapngCapture`), a
    list (:class:`MemoryCapture`), anything with this method."""

    def open_link(self, link: LinkInfo) -> RecordSink:
        """A bus on ``link`` starts recording here: the sink of its records. A sink must be
        quick (it runs in the bus's hot path) and should not raise."""
        ...


class MemoryCapture:
    """A capture into a list: :attr:`records` in the order they were seen, :attr:`links` in
    the order the buses were made."""

    def __init__(self) -> None:
        self.links: list[LinkInfo] = []
        self.records: list[TapRecord] = []

    def open_link(self, link: LinkInfo) -> RecordSink:
        self.links.append(link)
        return self.records.append


class LinkTap:
    """A bus's tap: hands each message it reports to every sink of its link."""

    __slots__ = ("errors", "link", "sinks")

    def __init__(self, link: LinkInfo, sinks: Sequence[RecordSink]) -> None:
        self.link = link
        self.sinks = tuple(sinks)
        #: Records a sink raised on (the message itself went on).
        self.errors = 0

    def sent(self, src: int, dst: int, payload: Buffer, flags: int = 0) -> None:
        """The bus sent a message (``payload``: any buffer the send accepted)."""
        self._emit(_TX, src, dst, flags, bytes(as_payload(payload)), False)

    def received(self, msg: tuple[int, int, int, bytes | memoryview]) -> None:
        """The bus received ``(src, dst, flags, payload)``."""
        src, dst, flags, payload = msg
        self._emit(_RX, src, dst, flags, bytes(payload), False)

    def ns(self, direction: Direction, name: str, addr: int, flags: int) -> None:
        """A name-service event the bus learned of without seeing its message: recorded as
        that message (from ``addr`` to 53), marked synthetic."""
        raw = name.encode("ascii", "replace")[:RPMSG_NAME_SIZE]
        self._emit(direction, addr, NS_ADDR, 0, RPMSG_NS_MSG.pack(raw, addr, flags), True)

    def _emit(
        self, direction: Direction, src: int, dst: int, flags: int, payload: bytes, synth: bool
    ) -> None:
        record = TapRecord(self.link, time.time_ns(), direction, src, dst, flags, payload, synth)
        for sink in self.sinks:
            try:
                sink(record)
            except Exception:
                self.errors += 1


_ACTIVE: list[Capture] = []


@contextmanager
def capturing(capture: Capture) -> Iterator[Capture]:
    """Record every bus made inside the ``with`` block, in any task or thread of this process,
    into ``capture`` (besides its own ``capture=``). ``aioamp capture`` runs commands in one."""
    _ACTIVE.append(capture)
    try:
        yield capture
    finally:
        _ACTIVE.remove(capture)


def open_tap(link: LinkInfo, capture: Capture | None) -> LinkTap | None:
    """The tap of a new bus on ``link``: ``capture`` and every process-wide capture, or None
    when there is none (the bus then records nothing and pays nothing)."""
    captures = [] if capture is None else [capture]
    captures += [c for c in _ACTIVE if c is not capture]
    if not captures:
        return None
    return LinkTap(link, [c.open_link(link) for c in captures])
