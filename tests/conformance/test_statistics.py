"""Statistics over every backend: message and byte counters of both buses and both endpoints
match what was sent each way, sizes in bytes (``memoryview(x).nbytes``), never ``len()``."""

from __future__ import annotations

import array
from typing import TYPE_CHECKING

import pytest

from rpmsg import Message

from .links import TransportLink
from .support import NO_DROPS, NS_MSG_SIZE, WAIT

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

# Payloads whose len() is not their size in bytes, and an empty one.
PAYLOADS: list[Buffer] = [
    array.array("I", range(5)),  # 5 items, 20 bytes
    memoryview(bytes(range(48))).cast("H", (4, 6)),  # 2-D: 4 rows, 48 bytes
    array.array("d", [0.5] * 7),  # 56 bytes
    b"",
    b"seven b",
]
NBYTES = sum(memoryview(p).nbytes for p in PAYLOADS)


def assert_received(got: list[Message], src: int, dst: int) -> None:
    assert [(m.src, m.dst, m.payload) for m in got] == [
        (src, dst, memoryview(p).tobytes()) for p in PAYLOADS
    ]


async def test_counters_each_way_count_messages_and_bytes(link: TransportLink) -> None:
    async with link.buses() as (host, remote):
        service = await remote.create_service("stats")
        channel = await host.wait_for_service("stats", timeout=WAIT)
        ep = channel.endpoint
        # The one announcement so far: 40 bytes from the remote to the host.
        assert (remote.statistics().tx_messages, remote.statistics().tx_bytes) == (1, NS_MSG_SIZE)
        assert (host.statistics().rx_messages, host.statistics().rx_bytes) == (1, NS_MSG_SIZE)
        assert (host.statistics().tx_messages, remote.statistics().rx_messages) == (0, 0)

        for p in PAYLOADS:
            await ep.send(p)
        assert_received([await service.recv(timeout=WAIT) for _ in PAYLOADS], ep.addr, service.addr)
        for p in PAYLOADS:
            await service.send_to(ep.addr, p)
        assert_received([await ep.recv(timeout=WAIT) for _ in PAYLOADS], service.addr, ep.addr)

        n = len(PAYLOADS)
        h, r = host.statistics(), remote.statistics()
        assert (h.role, r.role) == ("host", "remote")
        assert (h.tx_messages, h.tx_bytes, h.rx_messages, h.rx_bytes) == (
            n,
            NBYTES,
            n + 1,
            NBYTES + NS_MSG_SIZE,
        )
        assert (r.tx_messages, r.tx_bytes, r.rx_messages, r.rx_bytes) == (
            n + 1,
            NBYTES + NS_MSG_SIZE,
            n,
            NBYTES,
        )
        for stats in (ep.statistics(), service.statistics()):
            assert (stats.tx_messages, stats.tx_bytes, stats.rx_messages, stats.rx_bytes) == (
                n,
                NBYTES,
                n,
                NBYTES,
            )
        assert h.drops == r.drops == NO_DROPS
        assert h.send_timeouts == r.send_timeouts == 0
        # The name service and the channel's endpoint; the service: one channel, on the host.
        assert (h.endpoints, r.endpoints, h.channels, r.channels) == (2, 2, 1, 0)
        assert h.last_ring_error is None and r.last_ring_error is None
