"""Soak: 100 000 messages through loopback, in each role direction, over 4 interleaved channels.

The receiving bus announces 4 services; the sending bus finds them by name and runs one sender
task per channel, all at once, so the messages of the 4 channels interleave on the ring and the
senders keep running out of tx buffers and waiting for them. Each payload carries its channel
and sequence number; every message must arrive exactly once, in order per channel, and both
buses' counters must add up to the last message.
"""

from __future__ import annotations

import itertools
import struct

import anyio
import pytest

from rpmsg import Channel, Endpoint

TOTAL = 100_000
CHANNELS = 4
PER_CHANNEL = TOTAL // CHANNELS
PAYLOAD = struct.Struct("<II")  # (channel index, sequence number)
NS_CREATE = 40  # bytes of one name-service announcement


def pad(seq: int) -> int:
    """Payload lengths vary from 8 to 71 bytes, so buffers are reused with different sizes."""
    return seq % 64


@pytest.mark.slow
@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])
@pytest.mark.parametrize("sender_role", ["host", "remote"])
async def test_soak_100k_messages(bus_pair, sender_role) -> None:
    async with bus_pair() as (host, remote, _ht, _rt):
        sender, receiver = (host, remote) if sender_role == "host" else (remote, host)
        services = [await receiver.create_service(f"soak-{i}") for i in range(CHANNELS)]
        channels = [await sender.wait_for_service(f"soak-{i}", timeout=2) for i in range(CHANNELS)]
        errors: list[str] = []
        received = [0] * CHANNELS
        order: list[int] = []  # which channel each message came from, in arrival order

        async def send_all(index: int, channel: Channel) -> None:
            for seq in range(PER_CHANNEL):
                await channel.send(PAYLOAD.pack(index, seq) + bytes(pad(seq)))

        async def receive_all(index: int, ep: Endpoint) -> None:
            expected = 0
            async for msg in ep:
                got_index, seq = PAYLOAD.unpack_from(msg.payload)
                if (got_index, seq, len(msg.payload)) != (index, expected, 8 + pad(expected)):
                    errors.append(f"channel {index}: got ({got_index}, {seq}), want {expected}")
                    return
                if msg.dst != ep.addr or msg.src != channels[index].src:
                    errors.append(f"channel {index}: message {seq} from {msg.src} to {msg.dst}")
                    return
                order.append(index)
                expected += 1
                received[index] = expected
                if expected == PER_CHANNEL:
                    return

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(CHANNELS):
                    tg.start_soon(receive_all, i, services[i])
                    tg.start_soon(send_all, i, channels[i])

        assert errors == []
        assert received == [PER_CHANNEL] * CHANNELS
        # Interleaved, and no channel waited for another to finish: each one's first message
        # went out within the first 1% of the traffic, and the channels alternated many times.
        assert max(order.index(i) for i in range(CHANNELS)) < TOTAL // 100
        assert sum(a != b for a, b in itertools.pairwise(order)) > 100
        payload_bytes = sum(8 + pad(seq) for seq in range(PER_CHANNEL)) * CHANNELS
        s, r = sender.statistics(), receiver.statistics()
        assert (s.tx_messages, s.tx_bytes) == (TOTAL, payload_bytes)
        assert (r.rx_messages, r.rx_bytes) == (TOTAL, payload_bytes)
        # The other direction carried only the 4 announcements.
        assert (r.tx_messages, r.tx_bytes) == (CHANNELS, CHANNELS * NS_CREATE)
        assert (s.rx_messages, s.rx_bytes) == (CHANNELS, CHANNELS * NS_CREATE)
        assert sum(s.drops.values()) == sum(r.drops.values()) == 0
        assert s.send_timeouts == 0
        for i, ep in enumerate(services):
            stats = ep.statistics()
            assert (stats.rx_messages, stats.queued, stats.queue_drops) == (PER_CHANNEL, 0, 0)
            assert channels[i].endpoint.statistics().tx_messages == PER_CHANNEL
