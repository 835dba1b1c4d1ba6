"""``transports.backends.shm``: rpmsg between two ends of a POSIX shared-memory object with a
unix-socket doorbell, in one event loop and between real processes (``tests/peers.py``).

Every test uses its own object names and sockets (:class:`peers.Link`) and checks afterwards that
none of them is left in ``/dev/shm`` or on disk.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from conftest import NO_DROPS, other
from peers import SHM_DIR, Link, Peer, payload, pump, shm_url

from rpmsg import BusClosedError, EndpointClosedError, RpmsgBus
from transports import SharedLayout, TransportError, open_transport
from transports.backends.shm.transport import ShmTransport, open_shm
from transports.base import Role

from .conftest import open_shm_pair

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

SERVICE = "rpmsg-openamp-demo-channel"


@asynccontextmanager
async def buses(host_t: ShmTransport, remote_t: ShmTransport) -> AsyncIterator[Any]:
    async with (
        host_t,
        remote_t,
        RpmsgBus(host_t, name="host") as host,
        RpmsgBus(remote_t, name="remote", ready_timeout=5) as remote,
    ):
        yield host, remote


async def exchange(host: RpmsgBus, remote: RpmsgBus, n: int = 20) -> None:
    """Both sides announce SERVICE (bound OpenAMP-style) and send ``n`` messages each way."""
    h_ep = await host.create_service(SERVICE)
    r_ep = await remote.create_service(SERVICE)
    await host.wait_for_service(SERVICE, timeout=5)
    await remote.wait_for_service(SERVICE, timeout=5)
    assert (h_ep.dst, r_ep.dst) == (r_ep.addr, h_ep.addr)
    for seq in range(n):
        await h_ep.send(payload(seq))
        await r_ep.send(payload(1000 + seq))
    for seq in range(n):
        a = await r_ep.recv(timeout=5)
        b = await h_ep.recv(timeout=5)
        assert (a.src, a.dst, a.payload) == (h_ep.addr, r_ep.addr, payload(seq))
        assert (b.src, b.dst, b.payload) == (r_ep.addr, h_ep.addr, payload(1000 + seq))
    for bus in (host, remote):
        s = bus.statistics()
        assert s.drops == NO_DROPS
        assert (s.tx_messages, s.rx_messages) == (n + 1, n + 1)  # + the NS announcement


# -- one event loop ------------------------------------------------------------------------------
@pytest.mark.parametrize("host_listen", [True, False], ids=["host-serves", "remote-serves"])
async def test_in_process_pair_both_ways(link: Link, host_listen: bool) -> None:
    name, sock = link.new()
    host_t, remote_t = await open_shm_pair(name, sock, host_listen=host_listen)
    assert (host_t.role, remote_t.role) == ("host", "remote")
    async with buses(host_t, remote_t) as (host, remote):
        await exchange(host, remote)
    assert host_t.closed and remote_t.closed


@pytest.mark.parametrize("listen", [True, None], ids=["explicit", "auto"])
async def test_stale_object_and_socket_are_replaced(link: Link, listen: bool | None) -> None:
    """Garbage in a stale ``/dev/shm/NAME`` and a dead socket file from an earlier run: the new
    server replaces both, the session works from a fresh state, and the creator removes the
    object on close (not the other end)."""
    name, sock = link.new()
    layout = SharedLayout()
    garbage = (bytes(range(256)) * (layout.total_size // 256 + 1))[: layout.total_size]
    (SHM_DIR / name).write_bytes(garbage)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # the socket file stays, nobody listens: connecting is refused
    assert sock.exists()

    host_t, remote_t = await open_shm_pair(name, sock, host_listen=listen, remote_listen=False)
    # The server wrote a fresh table (status 0, gfeatures 0) into a new object.
    table = (SHM_DIR / name).read_bytes()[: len(layout.table())]
    assert table == layout.table()
    async with RpmsgBus(host_t, name="host") as host:
        async with RpmsgBus(remote_t, name="remote", ready_timeout=5) as remote:
            await exchange(host, remote)
        await remote_t.aclose()
        assert not host_t.closed  # (it has not seen the hang-up yet)
        assert (SHM_DIR / name).exists() and sock.exists()  # the client does not remove them
        await host_t.aclose()
        assert not (SHM_DIR / name).exists() and not sock.exists()


# -- two processes (the 100 000-message soak is tests/e2e/test_shm_soak.py) -------------------
@pytest.mark.parametrize(
    ("survivor", "serves", "traffic"),
    [
        ("host", True, "stalled"),
        ("host", True, "flowing"),
        ("remote", False, "stalled"),
        ("remote", False, "flowing"),
    ],
)
async def test_peer_killed_mid_traffic(
    link: Link, survivor: Role, serves: bool, traffic: str
) -> None:
    """kill -9 of the peer: every pending send and receive of this process fails within 2 s
    (long before its 10 s deadline) with BusClosedError / EndpointClosedError, later sends
    raise BusClosedError, and the process then sleeps without spinning. ``stalled``: the peer
    stopped returning buffers first (a message sits in its never-read sink), so a send is
    certainly waiting for a buffer when the peer dies."""
    name, sock = link.new()
    peer = link.spawn(
        shm_url(name, sock, listen=not serves), other(survivor), "echo", "--sink", "sink"
    )
    t = await open_transport(shm_url(name, sock, listen=serves), role=survivor)
    outcome: dict[str, tuple[BaseException | None, float]] = {}
    async with t, RpmsgBus(t, ready_timeout=10, send_timeout=10, name=survivor) as bus:
        ep = await bus.create_service(SERVICE)
        channel = await bus.wait_for_service(SERVICE, timeout=10)
        sink = await bus.wait_for_service("sink", timeout=10)
        idle = bus.create_endpoint()
        flooder = bus.create_endpoint()
        echoed = flooded = 0

        async def send_traffic() -> None:
            seq = 0
            while True:
                await ep.send_to(channel.dst, payload(seq))
                seq += 1

        async def recv_traffic() -> None:
            nonlocal echoed
            while True:
                await ep.recv(timeout=10)
                echoed += 1

        async def flood() -> None:
            nonlocal flooded
            while True:
                await flooder.send_to(sink.dst, b"x" * 64)
                flooded += 1

        async def idle_recv() -> None:
            await idle.recv(timeout=10)

        async def record(key: str, func: Any) -> None:
            try:
                await func()
            except Exception as exc:
                outcome[key] = (exc, time.monotonic())
            else:
                outcome[key] = (None, time.monotonic())

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(record, "send", send_traffic)
                tg.start_soon(record, "recv", recv_traffic)
                tg.start_soon(record, "idle recv", idle_recv)
                while echoed < 1000:
                    await anyio.sleep(0.01)
                if traffic == "stalled":
                    tg.start_soon(record, "blocked send", flood)
                    while True:  # until the flooder waits for a buffer that never comes
                        before = flooded
                        await anyio.sleep(0.2)
                        if flooded == before and flooder.send_waits:
                            break
                else:
                    before = echoed
                    with anyio.fail_after(5):  # traffic is flowing (a loaded CI box is slow)
                        while echoed <= before:
                            await anyio.sleep(0.01)
                assert outcome == {}
                killed = time.monotonic()
                os.kill(peer.pid, signal.SIGKILL)
        assert set(outcome) == {"send", "recv", "idle recv"} | (
            {"blocked send"} if traffic == "stalled" else set()
        )
        for key, (exc, when) in outcome.items():
            # Closed by the death, after it: not a timeout (that would be RpmsgTimeoutError).
            assert isinstance(exc, BusClosedError | EndpointClosedError), (key, exc)
            assert when >= killed, key
        assert bus.closed
        with pytest.raises(BusClosedError, match="peer"):
            await ep.send_to(channel.dst, b"late")
        with pytest.raises(BusClosedError):
            bus.create_endpoint()
        # The survivor removes what it created as soon as the link breaks.
        assert (SHM_DIR / name).exists() is not serves
        # Idle after the failure: a task spinning on the dead link would use most of a core
        # (even sharing a busy machine, well over 0.3 s of CPU in this second).
        cpu = time.process_time()
        await anyio.sleep(1.0)
        assert time.process_time() - cpu < 0.3, "CPU spent while idle after the failure"
    assert peer.proc.wait() == -signal.SIGKILL
    if not serves:
        # The dead server left its object and socket behind: a new session on the same names
        # is not confused by them (and its server removes them).
        assert (SHM_DIR / name).exists() and sock.exists()
        host_t, remote_t = await open_shm_pair(name, sock, host_listen=None, remote_listen=None)
        async with buses(host_t, remote_t) as (host, remote):
            await exchange(host, remote)


async def test_two_independent_pairs_at_once(link: Link) -> None:
    """Two sessions with different names at the same time: this process is the host of one
    (serving) and the remote of the other (client); a peers.py process echoes in each."""
    (name_a, sock_a), (name_b, sock_b) = link.new("a"), link.new("b")
    peer_a = link.spawn(shm_url(name_a, sock_a, listen=0), "remote", "echo")
    peer_b = link.spawn(shm_url(name_b, sock_b, listen=1), "host", "echo")
    t_a = await open_transport(shm_url(name_a, sock_a, listen=1), role="host")
    t_b = await open_transport(shm_url(name_b, sock_b, listen=0), role="remote")
    count = 5000
    async with (
        t_a,
        t_b,
        RpmsgBus(t_a, name="a") as bus_a,
        RpmsgBus(t_b, name="b", ready_timeout=10) as bus_b,
    ):

        async def run(bus: RpmsgBus) -> None:
            ep = await bus.create_service(SERVICE)
            channel = await bus.wait_for_service(SERVICE, timeout=10)
            await pump(ep, channel.dst, count, window=64)
            await ep.aclose()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, bus_a)
                tg.start_soon(run, bus_b)
        for bus in (bus_a, bus_b):
            s = bus.statistics()
            # tx: NS CREATE, the messages, NS DESTROY; rx: the peer's NS CREATE and echoes.
            assert (s.tx_messages, s.rx_messages, s.drops) == (count + 2, count + 1, NO_DROPS)
    for peer in (peer_a, peer_b):
        assert (await peer.event("done"))["count"] == count
        assert await peer.wait() == 0


# -- who serves ------------------------------------------------------------------------------------
async def test_second_server_is_refused_while_a_session_lives(link: Link) -> None:
    name, sock = link.new()
    host_t, remote_t = await open_shm_pair(name, sock, host_listen=True)
    async with buses(host_t, remote_t) as (host, remote):
        with pytest.raises(TransportError, match="already serves"):
            await open_shm(name, role="host", listen=True, socket_path=sock)
        with pytest.raises(TransportError, match="already serves"):
            await open_transport(shm_url(name, sock, listen=1), role="remote")
        # From another process too (the lock is an flock on SOCKET.lock).
        intruder = Peer.spawn(shm_url(name, sock, listen=1), "host", "echo")
        link.peers.append(intruder)
        with pytest.raises(AssertionError, match="already serves"):
            await intruder.event("ready")
        assert await intruder.wait() == 1
        # A late client (auto mode) finds nobody accepting and gives up, also cleanly.
        with pytest.raises(TransportError, match="could not connect"):
            await open_transport(shm_url(name, sock, timeout=0.3), role="remote")
        # The live session lost nothing.
        assert (SHM_DIR / name).exists() and sock.exists()
        await exchange(host, remote)


@pytest.mark.parametrize("first", ["host", "remote"])
async def test_auto_mode_first_starter_serves(link: Link, first: Role) -> None:
    """No ``listen`` option on either side: whichever starts first serves (and owns the
    object), the other connects."""
    name, sock = link.new()
    ends: dict[str, ShmTransport] = {}

    async def open_end(role: Role) -> None:
        ends[role] = await open_shm(name, role=role, socket_path=sock, connect_timeout=5)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_end, first)
            while not sock.exists():
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            tg.start_soon(open_end, other(first))
    async with RpmsgBus(ends["host"], name="host") as host:
        async with RpmsgBus(ends["remote"], name="remote", ready_timeout=5) as remote:
            await exchange(host, remote)
        await ends[other(first)].aclose()
        assert not ends[first].closed
        assert (SHM_DIR / name).exists() and sock.exists()  # the client does not remove them
        await ends[first].aclose()
        assert not (SHM_DIR / name).exists() and not sock.exists()


@pytest.mark.parametrize("case", ["missing", "too-small", "zeroed"])
async def test_client_refuses_a_missing_or_bad_object(link: Link, case: str) -> None:
    """A server accepts but the object is missing, too small or holds no resource table: the
    client fails with a clear TransportError and hangs up."""
    name, sock = link.new()
    size = SharedLayout().total_size
    if case == "too-small":
        (SHM_DIR / name).write_bytes(bytes(0x1000))
    elif case == "zeroed":
        (SHM_DIR / name).write_bytes(bytes(size))
    expected = {
        "missing": f"shared-memory object {SHM_DIR / name} does not exist",
        "too-small": f"is 0x1000 bytes < {size:#x}",
        "zeroed": "resource table: version 0",
    }[case]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(sock))
        server.listen(1)
        with pytest.raises(TransportError) as info:
            await open_transport(shm_url(name, sock, listen=0, timeout=2), role="remote")
        assert expected in str(info.value)
        conn, _ = server.accept()
        conn.settimeout(2)
        assert conn.recv(1) == b""  # the client closed its end
        conn.close()
    finally:
        server.close()
        sock.unlink()
        if case != "missing":
            (SHM_DIR / name).unlink()
