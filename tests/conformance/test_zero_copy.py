"""Zero-copy over every backend, both roles: borrowed sends of 0..MTU bytes arrive byte for
byte; held messages are views into the shared buffer and are given back on release."""

from __future__ import annotations

import anyio
import pytest

from rpmsg import HeldMessage, ZeroCopyEndpoint
from transports import Role

from .links import TransportLink
from .support import NO_DROPS, ROLES, WAIT, other

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


def pattern(size: int) -> bytes:
    return bytes((i * 5 + size) & 0xFF for i in range(size))


@pytest.mark.parametrize("sender_role", ROLES)
async def test_borrowed_sends_and_held_receives_are_byte_exact(
    link: TransportLink, sender_role: Role
) -> None:
    async with link.buses() as buses:
        sender, receiver = buses[sender_role], buses[other(sender_role)]
        sink = receiver.create_endpoint(zero_copy=True)
        assert isinstance(sink, ZeroCopyEndpoint)
        src = sender.create_endpoint(dst=sink.addr)
        mtu = src.mtu
        for size in (0, 1, 16, mtu - 1, mtu):
            with await src.borrow_tx(timeout=WAIT) as buf:
                assert buf.data.nbytes == buf.nbytes == mtu
                assert not buf.data.readonly
                buf.data[:size] = pattern(size)
                buf.send(size)
            with await sink.recv(timeout=WAIT) as msg:
                assert isinstance(msg, HeldMessage)
                assert msg.payload.readonly
                assert (msg.src, msg.dst, bytes(msg.payload)) == (
                    src.addr,
                    sink.addr,
                    pattern(size),
                )
                assert receiver.statistics().held == 1
            assert receiver.statistics().held == 0
        await anyio.sleep(0)
        tx, rx = sender.statistics(), receiver.statistics()
        assert (tx.borrowed_total, tx.borrowed, tx.tx_messages) == (5, 0, 5)
        assert (rx.held_total, rx.held, rx.hold_fallbacks, rx.quarantined) == (5, 0, 0, 0)
        assert tx.zero_copy and rx.zero_copy
        assert rx.drops == NO_DROPS and tx.drops == NO_DROPS
        # After all that, ordinary copies still go both ways.
        await src.send(b"plain")
        with await sink.recv(timeout=WAIT) as msg:
            assert bytes(msg.payload) == b"plain"
