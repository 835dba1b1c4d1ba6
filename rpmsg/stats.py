"""Statistics snapshots of a bus and of an endpoint, whatever backend runs the bus. Pure.

Nothing is dropped silently: every message or ring entry a bus discards is counted under one
of :data:`DROP_REASONS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import attrs

if TYPE_CHECKING:
    from .rings.loans import Loans

#: Why a message or ring entry was dropped; the keys of :attr:`BusStatistics.drops`.
DROP_REASONS = (
    "ring_error",  # the peer corrupted a ring (bad index, id, chain, address, used length)
    "short_buffer",  # a buffer too small to hold a header
    "bad_length",  # header len larger than the buffer / used length
    "unknown_dst",  # no endpoint at the destination address
    "queue_full",  # an endpoint's receive queue overflowed (policy drop)
    "bad_ns",  # a malformed name-service message
    "callback_error",  # an rx callback raised
)


@attrs.frozen
class BusStatistics:
    """A snapshot of a bus's counters. ``drops`` maps each reason of :data:`DROP_REASONS` to a
    count."""

    role: str
    tx_messages: int
    tx_bytes: int
    rx_messages: int
    rx_bytes: int
    drops: dict[str, int]
    kicks_sent: int
    notifications_received: int
    send_waits: int
    send_timeouts: int
    driver_errors: int
    endpoints: int
    channels: int
    last_ring_error: str | None
    #: Records a capture's sink raised on (the messages went on: :mod:`rpmsg.tap`).
    capture_errors: int = 0
    #: Busy polling (:mod:`rpmsg.busy_poll`): looks at the rings that found a message, that
    #: found nothing, and the time they took in microseconds (all 0 when it is off).
    busy_poll_hits: int = 0
    busy_poll_misses: int = 0
    busy_poll_us: float = 0.0
    #: Zero-copy (:mod:`rpmsg.zero_copy`): whether lent buffers are the shared ones (False:
    #: the bus copies once each way, the Linux kernel bus); tx buffers borrowed and rx
    #: buffers held now and in all; messages copied because ``max_held`` buffers were held;
    #: buffers quarantined because a view outlived their end; buffers endpoints still had
    #: out when they closed.
    zero_copy: bool = False
    borrowed: int = 0
    borrowed_total: int = 0
    held: int = 0
    held_total: int = 0
    hold_fallbacks: int = 0
    quarantined: int = 0
    quarantined_total: int = 0
    leaks: int = 0


@attrs.frozen
class EndpointStatistics:
    """A snapshot of one endpoint's counters."""

    addr: int
    rx_messages: int
    rx_bytes: int
    tx_messages: int
    tx_bytes: int
    queued: int
    queue_drops: int
    queue_stalls: int
    callback_errors: int
    send_waits: int
    #: Zero-copy: tx buffers borrowed and messages held, now and in all; buffers still out
    #: when the endpoint closed (returned then, with a warning).
    borrowed: int = 0
    borrowed_total: int = 0
    held: int = 0
    held_total: int = 0
    leaks: int = 0


class LoanStatistics(TypedDict):
    """The zero-copy fields of :class:`BusStatistics`."""

    zero_copy: bool
    borrowed: int
    borrowed_total: int
    held: int
    held_total: int
    hold_fallbacks: int
    quarantined: int
    quarantined_total: int
    leaks: int


def loan_statistics(loans: Loans, *, zero_copy: bool) -> LoanStatistics:
    """The zero-copy fields of a bus's statistics, from its :class:`~rpmsg.rings.loans.Loans`."""
    return LoanStatistics(
        zero_copy=zero_copy,
        borrowed=loans.borrowed,
        borrowed_total=loans.borrowed_total,
        held=loans.held,
        held_total=loans.held_total,
        hold_fallbacks=loans.hold_fallbacks,
        quarantined=len(loans.quarantine),
        quarantined_total=loans.quarantined_total,
        leaks=loans.leaks,
    )
