"""How an ``shm://`` / ``openamp:`` session begins and ends: two ends in the same role are told
at once (a role clash), an orderly close is told apart from a peer that vanished, and the
server's ``SOCKET.lock`` goes away with it."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from peers import SHM_DIR, Link, openamp_url, shm_url

import transports.backends.shm.session
import transports.unix_server
from rpmsg import BusClosedError, RpmsgBus
from transports import RoleClashError, TransportError, open_transport
from transports.backends.shm.session import PeerHello
from transports.base import Role, Transport
from transports.unix_server import ServerLock, remove_stale_socket
from transports.virtio.layout import SharedLayout

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

SERVICE = "rpmsg-openamp-demo-channel"


async def open_both(urls: list[str], roles: tuple[Role, Role]) -> list[Any]:
    """Open two ends concurrently; each slot holds the transport or the exception."""
    out: list[Any] = [None, None]

    async def one(i: int) -> None:
        try:
            out[i] = await open_transport(urls[i], role=roles[i])
        except Exception as exc:
            out[i] = exc

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 0)
            tg.start_soon(one, 1)
    return out


# -- role clash -----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize("listen", [(True, False), (None, None)], ids=["explicit", "auto"])
async def test_shm_role_clash_fails_both_ends_at_connect(
    link: Link, role: Role, listen: tuple[bool | None, bool | None]
) -> None:
    """Both ends take ``role``: each open fails with a TransportError naming the clash (not a
    silent wait for a DRIVER_OK nobody sets), and nothing is left behind."""
    name, sock = link.new()
    ends = await open_both([shm_url(name, sock, listen=x, timeout=5) for x in listen], (role, role))
    for end in ends:
        assert isinstance(end, TransportError), end
        assert isinstance(end, RoleClashError)
        assert f"role clash, the peer also opened the link as {role}" in str(end)
    assert not (SHM_DIR / name).exists() and not sock.exists()


async def test_shm_different_roles_still_connect(link: Link) -> None:
    name, sock = link.new()
    ends = await open_both([shm_url(name, sock, timeout=5)] * 2, ("host", "remote"))
    assert all(isinstance(end, Transport) for end in ends), ends
    for end in ends:
        await end.aclose()


async def test_shm_peer_that_is_not_aioamp_is_named(link: Link) -> None:
    """A server that sends a kick instead of a hello (OpenAMP's C code behind an shm://
    URL): the client says what is wrong instead of waiting for a DRIVER_OK."""
    name, sock = link.new()
    layout = SharedLayout()
    (SHM_DIR / name).write_bytes(layout.table().ljust(layout.total_size, b"\0"))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(1)

    def accept_and_kick() -> None:
        conn, _ = server.accept()
        conn.sendall(b"\x01")
        conn.recv(16)  # the client's hello, then its hang-up
        conn.close()

    errors: list[Exception] = []

    async def client() -> None:
        try:
            await open_transport(shm_url(name, sock, listen=False, timeout=5), role="host")
        except TransportError as exc:
            errors.append(exc)

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, accept_and_kick)
                tg.start_soon(client)
    finally:
        server.close()
        sock.unlink()
        (SHM_DIR / name).unlink()
    assert len(errors) == 1
    assert "the peer is not an aioamp shm:// peer of this version (it sent b'\\x01')" in str(
        errors[0]
    )
    assert "OpenAMP's C code talks openamp:" in str(errors[0])


@pytest.mark.parametrize("role", ["host", "remote"])
async def test_openamp_role_clash_fails_both_buses(link: Link, role: Role) -> None:
    """openamp: does not wait for a hello (OpenAMP's C code sends none), but two aioamp ends
    in one role still learn of the clash from the first bytes: each bus fails naming it, the
    remotes long before their DRIVER_OK deadline."""
    name, sock = link.new()
    ends = await open_both(
        [openamp_url(name, sock, listen=x, timeout=5) for x in (True, False)], (role, role)
    )
    reasons: list[str] = []

    async def run_bus(t: Transport) -> None:
        async with t:
            try:
                async with RpmsgBus(t, name=f"{role}", ready_timeout=30) as bus:
                    while not bus.closed:
                        await anyio.sleep(0.01)
            except BusClosedError as exc:
                reasons.append(str(exc))
            else:
                reasons.append(t.close_reason)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for end in ends:
                tg.start_soon(run_bus, end)
    assert len(reasons) == 2
    for reason in reasons:
        assert f"role clash, the peer also opened the link as {role}" in reason


# -- orderly close, crash -------------------------------------------------------------------------
@pytest.mark.parametrize("closer", ["host", "remote"])
@pytest.mark.parametrize("scheme", ["shm", "openamp"])
async def test_orderly_close_is_not_reported_as_a_crash(
    link: Link, closer: Role, scheme: str
) -> None:
    name, sock = link.new()
    make = shm_url if scheme == "shm" else openamp_url
    host_t, remote_t = await open_both(
        [make(name, sock, listen=x, timeout=5) for x in (True, False)], ("host", "remote")
    )
    ends: dict[Role, Transport] = {"host": host_t, "remote": remote_t}
    survivor: Role = "remote" if closer == "host" else "host"
    async with AsyncExitStack() as stack:
        buses: dict[Role, RpmsgBus] = {}
        for role in ("host", "remote"):  # the host first: a remote waits for its DRIVER_OK
            await stack.enter_async_context(ends[role])
            bus = RpmsgBus(ends[role], name=role, ready_timeout=5)
            buses[role] = await stack.enter_async_context(bus)
        await buses[closer].create_service(SERVICE)
        await buses[survivor].wait_for_service(SERVICE, timeout=5)
        await buses[closer].aclose()
        await ends[closer].aclose()
        with anyio.fail_after(5):
            while not buses[survivor].closed:
                await anyio.sleep(0.01)
        with pytest.raises(BusClosedError) as info:
            buses[survivor].create_endpoint()
        assert ends[survivor].peer_closed and not ends[closer].peer_closed
        assert ends[survivor].close_reason.endswith("the peer closed the link")
        assert "process gone" not in str(info.value)


async def test_a_killed_peer_is_still_a_crash(link: Link) -> None:
    name, sock = link.new()
    peer = link.spawn(shm_url(name, sock, listen=False, timeout=5), "remote", "echo")
    t = await open_transport(shm_url(name, sock, listen=True, timeout=5), role="host")
    async with t, RpmsgBus(t, name="host") as bus:
        await bus.wait_for_service(SERVICE, timeout=10)
        os.kill(peer.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            while not bus.closed:
                await anyio.sleep(0.01)
        assert not t.peer_closed
        assert "(process gone?)" in t.close_reason


# -- the lock file -------------------------------------------------------------------------------
async def test_the_server_removes_its_lock_file(link: Link) -> None:
    name, sock = link.new()
    lock = Path(f"{sock}.lock")
    host_t, remote_t = await open_both([shm_url(name, sock, timeout=5)] * 2, ("host", "remote"))
    assert lock.exists()  # held by whichever end serves
    await host_t.aclose()
    await remote_t.aclose()
    assert not lock.exists() and not sock.exists() and not (SHM_DIR / name).exists()


async def test_a_refused_server_leaves_the_holders_lock_alone(link: Link) -> None:
    name, sock = link.new()
    lock = Path(f"{sock}.lock")
    host_t, remote_t = await open_both(
        [shm_url(name, sock, listen=x, timeout=5) for x in (True, False)], ("host", "remote")
    )
    with pytest.raises(TransportError, match="already serves"):
        await open_transport(shm_url(name, sock, listen=True, timeout=5), role="host")
    assert lock.exists()
    await remote_t.aclose()
    await host_t.aclose()
    assert not lock.exists()


def test_lock_taken_while_the_holder_leaves_is_retaken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: B opens SOCKET.lock, then the holder A removes it and lets go, then B locks
    the file nobody can find any more. B must notice and lock the file at the path instead,
    else a third process C could create a new file, lock it and serve as well."""
    sock = tmp_path / "s.sock"
    a = ServerLock.take(sock)
    assert a is not None
    real_flock = fcntl.flock
    calls = []

    def flock_after_a_leaves(fd: int, op: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            a.release()  # A leaves between B's open and B's flock
        real_flock(fd, op)

    monkeypatch.setattr(transports.unix_server.fcntl, "flock", flock_after_a_leaves)
    b = ServerLock.take(sock)
    monkeypatch.undo()
    assert b is not None and len(calls) == 2  # the first lock was on the removed file: retried
    assert ServerLock.take(sock) is None  # C: the file at the path is B's, and held
    assert os.stat(b.path).st_ino == os.fstat(b._fd).st_ino  # type: ignore[arg-type]
    b.release()
    assert not Path(f"{sock}.lock").exists()


def test_peer_hello_is_found_in_any_split_and_kicks_pass() -> None:
    """openamp: the first bytes are either a hello (possibly split over reads, possibly
    followed by kicks in the same read) or kicks from OpenAMP's C code."""
    remote_hello = bytearray(transports.backends.shm.session.hello("remote"))
    for split in range(1, len(remote_hello)):
        scan = PeerHello("host", "x")
        assert scan.take(remote_hello[:split], split) == split and not scan.done
        rest = remote_hello[split:] + b"\x01\x01"
        assert scan.take(rest, len(rest)) == len(remote_hello) - split and scan.done
    scan = PeerHello("host", "x")
    assert scan.take(bytearray(b"\x01\x01\x01"), 3) == 0 and scan.done  # C code: all kicks
    scan = PeerHello("remote", "x")
    with pytest.raises(RoleClashError, match="also opened the link as remote"):
        scan.take(remote_hello, len(remote_hello))


# -- what is at the socket's path (transports.unix_server) ---------------------------------------
async def test_a_file_in_the_way_of_the_socket_is_refused_and_kept(link: Link) -> None:
    """Only a stale socket is replaced: a server used to delete whatever was at the path (and
    again when its open failed)."""
    name, sock = link.new()
    sock.write_text("precious")
    with anyio.fail_after(10), pytest.raises(TransportError, match="exists and is not a socket"):
        await open_transport(f"shm://{name}?socket={sock}&listen=1&timeout=5", role="host")
    assert sock.read_text() == "precious"
    assert not Path(f"{sock}.lock").exists() and not (SHM_DIR / name).exists()
    sock.unlink()


def stale_socket(sock: Path) -> None:
    """What a server killed with SIGKILL leaves: its socket and its lock file, no flock held."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(sock))
    Path(f"{sock}.lock").touch()


async def test_a_stale_socket_is_replaced_by_the_next_server(link: Link) -> None:
    name, sock = link.new()
    stale_socket(sock)
    url = f"shm://{name}?socket={sock}&timeout=5"
    async with anyio.create_task_group() as tg:
        ends: list[Transport] = []

        async def open_end(listen: int, role: Role) -> None:
            ends.append(await open_transport(f"{url}&listen={listen}", role=role))

        tg.start_soon(open_end, 1, "host")
        tg.start_soon(open_end, 0, "remote")
    for end in ends:
        await end.aclose()
    assert not sock.exists() and not Path(f"{sock}.lock").exists()


def test_remove_stale_socket_leaves_a_live_server_and_other_files_alone(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    stale_socket(sock)
    assert remove_stale_socket(sock) is True
    assert not sock.exists() and not Path(f"{sock}.lock").exists()
    live = ServerLock.take(sock)
    assert live is not None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(sock))
        assert remove_stale_socket(sock) is False  # its server holds the lock
        assert sock.exists()
    live.release()
    assert remove_stale_socket(sock) is True and not sock.exists()
    sock.write_text("precious")
    with pytest.raises(TransportError, match="not a socket"):
        remove_stale_socket(sock)
    assert sock.read_text() == "precious" and not Path(f"{sock}.lock").exists()
