"""The counters and settings a Linux bus shares with its endpoints' ports. Pure.

One mutable record instead of back-references: a port reads the bus's closed error, MTU and
default send deadline here and adds to its counters, and the bus builds its
:class:`~rpmsg.stats.BusStatistics` from it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import attrs

from rpmsg.errors import BusClosedError
from rpmsg.rings.loans import Loans
from rpmsg.stats import DROP_REASONS, BusStatistics, loan_statistics

if TYPE_CHECKING:
    from rpmsg.tap import LinkTap


@attrs.define(eq=False)
class BusCounters:
    """Settings (``mtu``, ``send_timeout``) and counters of one Linux bus."""

    mtu: int
    send_timeout: float | None
    #: The bus's closed error, once it closed: every send raises it.
    closed: BusClosedError | None = None
    tx_messages: int = 0
    tx_bytes: int = 0
    rx_messages: int = 0
    rx_bytes: int = 0
    send_waits: int = 0
    send_timeouts: int = 0
    notifications_received: int = 0
    driver_errors: int = 0
    #: uevents received, sysfs rescans they caused, and events lost (ENOBUFS).
    uevents: int = 0
    rescans: int = 0
    uevents_lost: int = 0
    drops: Counter[str] = attrs.field(factory=Counter)
    #: Where the link's messages are recorded (:mod:`rpmsg.tap`); None: nowhere.
    tap: LinkTap | None = None
    #: Private buffers lent by the endpoints' zero-copy API (:class:`rpmsg.zero_copy.CopyLending`).
    loans: Loans = attrs.field(factory=Loans)

    def snapshot(self, role: str, endpoints: int, channels: int) -> BusStatistics:
        """The bus's statistics (the kernel runs the rings: no kicks or ring errors seen)."""
        return BusStatistics(
            role=role,
            tx_messages=self.tx_messages,
            tx_bytes=self.tx_bytes,
            rx_messages=self.rx_messages,
            rx_bytes=self.rx_bytes,
            drops={r: self.drops.get(r, 0) for r in DROP_REASONS},
            kicks_sent=0,
            notifications_received=self.notifications_received,
            send_waits=self.send_waits,
            send_timeouts=self.send_timeouts,
            driver_errors=self.driver_errors,
            endpoints=endpoints,
            channels=channels,
            last_ring_error=None,
            capture_errors=0 if self.tap is None else self.tap.errors,
            **loan_statistics(self.loans, zero_copy=False),
        )
