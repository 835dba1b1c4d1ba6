"""Busy polling (``busy_poll=``, :mod:`rpmsg.busy_poll`) between two processes over ``shm://``:
the looks find the peer's messages, which then need no kick; it is off where it cannot help;
an idle bus does not look. Counters only, never times."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from peers import Link, shm_url

from rpmsg import InvalidArgumentError, RpmsgBus
from rpmsg.vring_bus import DEFAULT_BUSY_POLL_US
from transports import loopback_pair, open_transport

from .conftest import open_shm_pair

SERVICE = "rpmsg-openamp-demo-channel"
ROUND_TRIPS = 300


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/PID/stat``, fields 14-15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _echo_session(
    link: Link, busy_poll: float | None, idle: float = 0.2
) -> tuple[RpmsgBus, int, float, float]:
    """ROUND_TRIPS echoes with a peer process, then ``idle`` seconds of silence; both buses
    poll with ``busy_poll`` (None: the default). Returns this bus (closed), the looks it made
    while the link sat idle, and the CPU seconds the peer and this process used meanwhile."""
    name, sock = link.new()
    options = () if busy_poll is None else ("--busy-poll", str(busy_poll))
    peer = link.spawn(shm_url(name, sock, listen=0), "remote", "echo", *options)
    t = await open_transport(shm_url(name, sock, listen=1), role="host")
    async with t, RpmsgBus(t, name="host", busy_poll=busy_poll) as bus:
        ep = await bus.create_service(SERVICE)
        channel = await bus.wait_for_service(SERVICE, timeout=10)
        await peer.event("bound")
        for seq in range(ROUND_TRIPS):
            await ep.send_to(channel.dst, seq.to_bytes(4, "little"))
            assert (await ep.recv(timeout=10)).payload == seq.to_bytes(4, "little")
        if idle:
            await anyio.sleep(0.05)  # the last echo's trailing pass and kick, on both sides
        before = bus.statistics()
        peer_cpu, own_cpu = _cpu_seconds(peer.pid), time.process_time()
        if idle:
            await anyio.sleep(idle)  # silence: no message, so no look either
        peer_cpu = _cpu_seconds(peer.pid) - peer_cpu
        own_cpu = time.process_time() - own_cpu
        after = bus.statistics()
        idle_looks = (after.busy_poll_hits + after.busy_poll_misses) - (
            before.busy_poll_hits + before.busy_poll_misses
        )
        await ep.aclose()
    assert await peer.wait() == 0
    return bus, idle_looks, peer_cpu, own_cpu


async def test_receivers_look_before_sleeping(link: Link) -> None:
    bus, idle_looks, _, _ = await _echo_session(link, 50)
    st = bus.statistics()
    assert bus.busy_poll == 50
    # Receivers look before sleeping. Whether the looks find the echoes (and save their
    # kicks: 0.008 kicks per message instead of 0.13 in benchmarks/) depends on both
    # processes having a CPU: on a loaded machine they miss and step aside (unit tests).
    assert st.busy_poll_hits + st.busy_poll_misses > 0
    assert idle_looks == 0


async def test_a_destroy_found_by_a_look_ends_the_receiver(link: Link) -> None:
    """A look (no notification) that finds an NS DESTROY closes the endpoint the receiver is
    about to sleep on: the receiver must see the close, not sleep. Both ways, each DESTROY sent
    right after the last echo, while the other side looks (a wide budget: the likely case)."""
    count, budget = 50, "1000"
    for _ in range(2):
        # The peer closes after its last echo: our `async for` ends.
        name, sock = link.new()
        url = shm_url(name, sock, listen=0)
        peer = link.spawn(url, "remote", "echo", "--busy-poll", budget, "--count", str(count))
        t = await open_transport(shm_url(name, sock, listen=1), role="host")
        async with t, RpmsgBus(t, name="host", busy_poll=float(budget)) as bus:
            await bus.create_service(SERVICE)
            channel = await bus.wait_for_service(SERVICE, timeout=10)
            await peer.event("bound")
            for seq in range(count - 1):
                await channel.send(seq.to_bytes(4, "little"))
                await channel.recv(timeout=10)
            await channel.send(b"last")
            with anyio.fail_after(10):  # only stops a hang
                assert [msg.payload async for msg in channel.endpoint] == [b"last"]
        assert await peer.wait() == 0
        # We close right after our last echo: the peer's `async for` ends (it exits 0).
        await _echo_session(link, float(budget), idle=0)


async def test_zero_is_off(link: Link) -> None:
    bus, *_ = await _echo_session(link, 0)
    st = bus.statistics()
    assert bus.busy_poll == 0
    assert (st.busy_poll_hits, st.busy_poll_misses, st.busy_poll_us) == (0, 0, 0.0)
    assert st.kicks_sent >= ROUND_TRIPS // 2  # each request woke the peer


async def test_an_idle_peer_sleeps(link: Link) -> None:
    """The goal is at most 5% of a core for a bound, silent peer; a peer still spinning
    would use most of one. CPU time over a silence of IDLE seconds (at least that long on
    the wall clock), with a margin of 3x for a loaded machine; never a wall-clock bound."""
    idle = 2.0
    bus, idle_looks, peer_cpu, own_cpu = await _echo_session(link, None, idle)
    assert bus.busy_poll == DEFAULT_BUSY_POLL_US
    st = bus.statistics()
    assert st.busy_poll_hits + st.busy_poll_misses > 0  # the echoes were polled for
    assert idle_looks == 0
    assert peer_cpu < 0.15 * idle
    assert own_cpu < 0.15 * idle


async def test_only_a_peer_in_another_process_is_polled(link: Link) -> None:
    """The default applies where a look can see the peer: shared memory with another
    process (test_an_idle_peer_sleeps). Both ends in this process, or a loopback pair: the
    peer runs only when we stop looking, so no budget turns polling on."""
    name, sock = link.new()
    h, r = await open_shm_pair(name, sock)
    async with h, r:
        assert (h.pollable, r.pollable) == (False, False)
        assert RpmsgBus(h).busy_poll == 0
        assert RpmsgBus(r, busy_poll=7).busy_poll == 0
    host_end, remote_end = loopback_pair()
    assert RpmsgBus(host_end, busy_poll=100).busy_poll == 0
    assert RpmsgBus(remote_end).busy_poll == 0


@pytest.mark.parametrize("value", [-1, 1e9])
def test_a_bad_budget_claims_nothing(value: float) -> None:
    host_end, _ = loopback_pair()
    with pytest.raises(InvalidArgumentError, match="busy_poll"):
        RpmsgBus(host_end, busy_poll=value)
    RpmsgBus(host_end)  # the end is still free
