"""Buffer exhaustion over every backend, either side sending to a receiver that stopped
draining (a full Overflow.BLOCK queue): try_send fills exactly every buffer, a blocking send
waits until the receiver reads, a send deadline expires, and nothing is lost."""

from __future__ import annotations

import anyio
import pytest
from peers import payload

from rpmsg import NoBufferError, PayloadTooLargeError, RpmsgTimeoutError
from transports import Role

from .links import TransportLink
from .support import NO_DROPS, ROLES, WAIT, WaitUntil, capacity, other, stall_receiver

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


@pytest.mark.parametrize("sender_role", ROLES, ids=lambda r: f"{r}-sends")
async def test_every_buffer_then_a_waiting_send_then_a_deadline_and_nothing_lost(
    link: TransportLink, sender_role: Role, wait_until: WaitUntil
) -> None:
    async with link.buses() as buses:
        sender, receiver = buses[sender_role], buses[other(sender_role)]
        n = capacity(buses.host.transport)
        sink, ep = await stall_receiver(sender, receiver, wait_until)

        # Refused before any buffer is taken: the count below is still every buffer.
        with pytest.raises(PayloadTooLargeError):
            ep.try_send(bytes(ep.mtu + 1))
        with pytest.raises(PayloadTooLargeError):
            await ep.send(bytes(ep.mtu + 1))
        seq = 2
        while seq < 2 + n + 1:  # one more than there are buffers
            try:
                ep.try_send(payload(seq))
            except NoBufferError:
                break
            seq += 1
        assert seq - 2 == n, f"{seq - 2} buffers filled, the pool has {n}"

        order: list[str] = []
        waits = sender.statistics().send_waits

        async def blocked_send() -> None:
            await ep.send(payload(seq), timeout=WAIT)
            order.append("sent")

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_send)
            await wait_until(lambda: sender.statistics().send_waits == waits + 1, timeout=WAIT)
            order.append("read")
            first = await sink.recv(timeout=WAIT)  # room again: the receiver drains one more
        assert order == ["read", "sent"]
        assert first.payload == payload(0)

        # Every buffer is in flight again: a send with a deadline gives up, sends nothing.
        timeouts = sender.statistics().send_timeouts
        with pytest.raises(RpmsgTimeoutError):
            await ep.send(b"never", timeout=0.05)
        assert sender.statistics().send_timeouts == timeouts + 1

        # BLOCK lost nothing: every message arrives, in order, byte for byte.
        for expected in range(1, seq + 1):
            msg = await sink.recv(timeout=WAIT)
            assert msg.payload == payload(expected)
        await ep.send(b"last", timeout=WAIT)
        assert (await sink.recv(timeout=WAIT)).payload == b"last"  # not b"never"
        assert receiver.statistics().drops == sender.statistics().drops == NO_DROPS
        assert sink.statistics().queue_drops == 0
        assert sender.statistics().tx_messages == receiver.statistics().rx_messages == seq + 2
