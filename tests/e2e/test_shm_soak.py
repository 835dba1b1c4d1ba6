"""Soak: 100 000 numbered messages between two processes over ``shm://``, in each role
direction: this process sends (``peers.pump``: 128 in flight, every echo checked in order,
byte for byte) and a ``tests/peers.py`` process echoes; both buses' counters must add up."""

from __future__ import annotations

import time

import anyio
import pytest
from conftest import NO_DROPS, other
from peers import Link, pump, shm_url

from rpmsg import RpmsgBus
from transports import Role, open_transport

SERVICE = "rpmsg-openamp-demo-channel"


async def two_process_run(link: Link, sender_role: Role, count: int) -> float:
    """``count`` numbered messages from this process, echoed by a peers.py process; returns
    the seconds taken. The sender serves the socket when it is the host."""
    name, sock = link.new()
    local_listen = sender_role == "host"
    peer = link.spawn(shm_url(name, sock, listen=not local_listen), other(sender_role), "echo")
    t = await open_transport(shm_url(name, sock, listen=local_listen), role=sender_role)
    async with t, RpmsgBus(t, ready_timeout=10, name=sender_role) as bus:
        ep = await bus.create_service(SERVICE)
        channel = await bus.wait_for_service(SERVICE, timeout=10)
        assert (await peer.event("bound"))["dst"] == ep.addr
        start = time.perf_counter()
        with anyio.fail_after(120):
            await pump(ep, channel.dst, count, window=128)
        elapsed = time.perf_counter() - start
        await anyio.sleep(0.05)
        assert ep.try_recv() is None  # nothing after the last one: no duplicates
        stats = bus.statistics()
        await ep.aclose()  # NS DESTROY: the echo peer finishes
    done = await peer.event("done")
    assert await peer.wait() == 0
    assert stats.drops == NO_DROPS
    assert (stats.tx_messages, stats.rx_messages) == (count + 1, count + 1)
    assert done["count"] == count
    # The peer also received our NS DESTROY (that ended its echo loop).
    assert done["stats"] == {"tx": count + 1, "rx": count + 2, "drops": NO_DROPS}
    return elapsed


@pytest.mark.slow
@pytest.mark.parametrize("sender_role", ["host", "remote"])
async def test_two_processes_100k_messages(link: Link, sender_role: Role) -> None:
    elapsed = await two_process_run(link, sender_role, 100_000)
    print(f"100000 messages from the {sender_role} echoed in {elapsed:.1f} s")
