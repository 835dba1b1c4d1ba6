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
