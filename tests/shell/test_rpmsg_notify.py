"""Notification suppression around receive passes (the NAPI-like poll after a burst).

A pass with messages turns the peer's notifications off; after a burst they stay off for one
more pass on the next loop iteration, then come back on. What must hold: they always come
back on once the ring is idle (a later lone message still wakes the receiver), and a burst
costs the sender about one kick, not one per message.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import loop_turns

from rpmsg import RpmsgBus
from transports import loopback_pair
from transports.virtio.layout import SharedLayout
from transports.virtio.vring import VRING_USED_F_NO_NOTIFY, VringLayout

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


def _remote_rx_suppressed(buffer: bytearray, layout: SharedLayout) -> bool:
    """used.flags of vq 1 (host -> remote), which the remote writes, read from raw memory."""
    ring = VringLayout(layout.vring_layout.num, layout.vring_layout.align)
    off = layout.vring_offsets[1] + ring.used
    return bool(int.from_bytes(buffer[off : off + 2], "little") & VRING_USED_F_NO_NOTIFY)


async def test_notifications_come_back_on_after_a_burst() -> None:
    host_end, remote_end = loopback_pair()
    layout, buffer = host_end.link.layout, host_end.link.buffer
    async with RpmsgBus(host_end) as host, RpmsgBus(remote_end) as remote:
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        for round_ in range(3):
            for i in range(50):
                src.try_send_to(sink.addr, b"%d-%d" % (round_, i))
            for i in range(50):
                assert (await sink.recv(timeout=2)).payload == b"%d-%d" % (round_, i)
            await loop_turns(10)
            assert not _remote_rx_suppressed(buffer, layout)
            # A lone message after the idle period is delivered by its kick alone.
            kicks = host.statistics().kicks_sent
            await src.send_to(sink.addr, b"lone")
            assert (await sink.recv(timeout=2)).payload == b"lone"
            assert host.statistics().kicks_sent == kicks + 1


async def test_a_steady_stream_needs_few_kicks() -> None:
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end) as host, RpmsgBus(remote_end) as remote:
        got: list[bytes] = []
        sink = remote.create_endpoint(callback=lambda _ep, msg: got.append(msg.payload))
        src = host.create_endpoint()
        before = host.statistics().kicks_sent
        n = 5000
        for i in range(n):
            await src.send_to(sink.addr, i.to_bytes(4, "little"))
            if i % 16 == 15:
                await anyio.sleep(0)  # the consumer keeps pace, a few messages at a time
        with anyio.fail_after(5):
            while len(got) < n:
                await anyio.sleep(0.001)
        assert got == [i.to_bytes(4, "little") for i in range(n)]
        assert (host.statistics().kicks_sent - before) / n < 0.05
        assert sum(remote.statistics().drops.values()) == 0
