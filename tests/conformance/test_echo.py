"""Echo over every backend: payloads of 0, 1, 16, MTU-1 and MTU bytes come back byte for byte,
whichever side serves; MTU+1 is refused and consumes nothing."""

from __future__ import annotations

import anyio
import pytest

from rpmsg import Endpoint, PayloadTooLargeError
from transports import Role

from .links import TransportLink
from .support import NO_DROPS, ROLES, WAIT, other

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


def pattern(size: int) -> bytes:
    """``size`` bytes that differ with the size and the position (no all-zero payloads)."""
    return bytes((i * 7 + size) & 0xFF for i in range(size))


async def echo(service: Endpoint) -> None:
    async for msg in service:
        await service.send_to(msg.src, msg.payload)


@pytest.mark.parametrize("server_role", ROLES)
async def test_echo_every_size_up_to_the_mtu_byte_for_byte(
    link: TransportLink, server_role: Role
) -> None:
    async with link.buses() as buses, anyio.create_task_group() as tg:
        server, client = buses[server_role], buses[other(server_role)]
        service = await server.create_service("echo")
        tg.start_soon(echo, service)
        channel = await client.wait_for_service("echo", timeout=WAIT)
        ep = channel.endpoint
        mtu = ep.mtu
        assert mtu == 496  # 512-byte buffers on every backend, less the 16-byte header
        assert server.mtu == client.mtu == service.mtu == mtu

        for size in (0, 1, 16, mtu - 1, mtu):
            data = pattern(size)
            await channel.send(data)
            msg = await channel.recv(timeout=WAIT)
            assert (msg.src, msg.dst, msg.payload) == (service.addr, ep.addr, data), size

        sent = client.statistics()
        with pytest.raises(PayloadTooLargeError):
            await channel.send(pattern(mtu + 1))
        with pytest.raises(PayloadTooLargeError):
            ep.try_send(pattern(mtu + 1))
        after = client.statistics()
        assert (after.tx_messages, after.tx_bytes, after.kicks_sent) == (
            sent.tx_messages,
            sent.tx_bytes,
            sent.kicks_sent,
        )
        await channel.send(b"after")  # the next message is this one, not a truncated one
        assert (await channel.recv(timeout=WAIT)).payload == b"after"

        assert server.statistics().drops == client.statistics().drops == NO_DROPS
        tg.cancel_scope.cancel()
