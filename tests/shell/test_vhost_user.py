"""``vhost-user:`` between two aioamp ends, and against hostile frontends (no kernel needed).

A raw frontend (:class:`RawFrontend`) speaks the protocol byte by byte, to send what aioamp's own
frontend never would. Every test checks that the descriptors a refused message brought are
closed: the process's open descriptors come back to what they were.
"""

from __future__ import annotations

import array
import gc
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import pytest
from conformance.vhost_user_link import connect_while_serving, serving, vhost_user_link
from conftest import VringImpl

from rpmsg import BusClosedError, RpmsgBus
from transports import TransportClosedError
from transports.backends.vhost_user.backend import DEVICE_FEATURES
from transports.backends.vhost_user.client import connect_vhost_user
from transports.backends.vhost_user.protocol import (
    HEADER,
    MEMORY,
    MEMORY_REGION,
    VERSION,
    Code,
    MemoryRegion,
    MemTable,
    Request,
    SetU64,
    Simple,
    VringAddr,
    VringFd,
    VringState,
    encode_request,
    reply_u64,
)
from transports.backends.vhost_user.server import VhostUserBackend, listen_vhost_user
from transports.virtio.vring import VringLayout

GUEST = 0x4000_0000
pytestmark = [pytest.mark.trio, pytest.mark.usefixtures("no_fd_leak")]


def open_fds() -> set[tuple[str, str]]:
    """This process's descriptors, each with what it is."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the listing's own descriptor is gone by now
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return out


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """The test closes every descriptor it (or a refused message) brought. Checked after the
    test's frame is gone: a mapping whose memory a ring still viewed keeps a duplicate of its
    fd (CPython's mmap) until that view goes. Earlier tests' garbage may close meanwhile."""
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() - before == set()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "vhost.sock"
    yield path
    assert not path.exists(), "the backend left its socket behind"
    assert not Path(f"{path}.lock").exists(), "the backend left its lock file behind"


async def echo(bus: RpmsgBus, name: str = "echo") -> None:
    ep = await bus.create_service(name)
    async for msg in ep:
        await ep.send_to(msg.src, msg.payload)


@asynccontextmanager
async def remote_echo(backend: VhostUserBackend) -> AsyncIterator[RpmsgBus]:
    """A remote bus over ``backend`` echoing on service "echo", started in a task (its start
    waits for a frontend's DRIVER_OK)."""
    bus = RpmsgBus(backend, name="remote", ready_timeout=None)

    async def run() -> None:
        async with bus:
            with suppress(BusClosedError):
                await echo(bus)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        yield bus
        tg.cancel_scope.cancel()


async def ping(host: RpmsgBus, count: int, tag: bytes = b"") -> None:
    channel = await host.wait_for_service("echo", timeout=10)
    for i in range(count):
        payload = tag + i.to_bytes(4, "little") * (1 + i % 100)
        await channel.send(payload)
        assert (await channel.recv(timeout=10)).payload == payload


# -- aioamp <-> aioamp ------------------------------------------------------------------------
@pytest.mark.usefixtures("vring_impl")
async def test_pair_echo_and_an_orderly_close(vring_impl: VringImpl) -> None:
    async with vhost_user_link() as (host_t, remote_t):
        assert isinstance(remote_t, VhostUserBackend)
        async with RpmsgBus(host_t, name="host") as host, remote_echo(remote_t) as remote:
            await ping(host, 500)
            stats = host.statistics()
            assert (stats.tx_messages, stats.rx_messages) == (500, 501)  # + the announcement
            assert remote.statistics().rx_messages == 500
            assert sum(remote.statistics().drops.values()) == 0
            await host_t.aclose()  # disables both vrings, then hangs up
            with anyio.fail_after(5):
                await remote.wait_closed()
        assert remote_t.closed and remote_t.peer_closed
        assert "the frontend disconnected" in remote_t.close_reason
        counts = remote_t.statistics().requests
        assert counts["SET_MEM_TABLE"] == 1 and counts["SET_VRING_ENABLE"] == 4


def mapped_frontend_memory() -> int:
    """How many mappings of an aioamp frontend's memfd this process holds."""
    return Path("/proc/self/maps").read_text().count("/memfd:aioamp-vhost-user ")


async def session(path: Path, number: int) -> None:
    """One frontend: connect, ping 50 times, hang up (its bus and memory go with this frame)."""
    frontend = await connect_vhost_user(path)  # the remote bus serves the backend
    async with frontend, RpmsgBus(frontend, name=f"host{number}") as host:
        assert mapped_frontend_memory() == 2  # the frontend's and the backend's
        await ping(host, 50, tag=bytes([number]))


async def test_reconnect_announces_to_each_frontend(sock_path: Path) -> None:
    """With reconnect, the server takes frontend after frontend; each gets the services.
    Each frontend brings a new memfd at the same guest address: the remote must use it, and
    hold nothing of the last one's once it has gone (a kernel's memory file)."""
    backend = listen_vhost_user(sock_path, reconnect=True)
    async with backend, remote_echo(backend) as remote:
        for number in range(3):
            await session(sock_path, number)
            with anyio.fail_after(5):
                while backend.connected or remote.statistics().channels:
                    await anyio.sleep(0.001)  # until the remote bus has seen the reset
            gc.collect()
            assert mapped_frontend_memory() == 0
        assert not backend.closed and not remote.closed
        stats = backend.statistics()
        assert stats.frontends == 3 and stats.protocol_errors == 0
        assert remote.statistics().rx_messages == 150


async def test_a_second_frontend_is_turned_away(sock_path: Path) -> None:
    backend = listen_vhost_user(sock_path)
    async with backend:
        frontend = await connect_while_serving(backend, sock_path)
        intruder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        intruder.connect(str(sock_path))
        async with serving(backend):
            with anyio.fail_after(5):
                while backend.statistics().turned_away == 0:
                    await anyio.sleep(0.001)
        intruder.settimeout(5)
        assert intruder.recv(1) == b""  # hung up at once
        intruder.close()
        assert backend.connected and not backend.closed
        await frontend.aclose()


# -- a frontend that vanishes, a frontend that lies ---------------------------------------------
class RawFrontend:
    """A frontend at the byte level: a memfd of ``size`` bytes at GUEST (guest == user)."""

    def __init__(self, path: Path, size: int = 0x100000) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(5)
        self.size = size
        self.fds: list[int] = []

    def send_raw(self, data: bytes, fds: list[int] = ()) -> None:  # type: ignore[assignment]
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        self.sock.sendmsg([data], ancillary)

    def send(self, request: Request) -> None:
        data, fds = encode_request(request)
        self.send_raw(data, fds)

    def memfd(self, size: int | None = None) -> int:
        fd = os.memfd_create("raw-frontend")
        os.ftruncate(fd, self.size if size is None else size)
        self.fds.append(fd)
        return fd

    def eventfd(self) -> int:
        fd = os.eventfd(0, os.EFD_NONBLOCK)
        self.fds.append(fd)
        return fd

    def setup(self, *, enable: bool = True) -> None:
        """Everything Linux sends, without REPLY_ACK (no replies to wait for but GET_*)."""
        self.send(Simple(Code.SET_OWNER))
        self.send(SetU64(Code.SET_FEATURES, 1 | 1 << 30 | 1 << 32))
        self.send(MemTable((MemoryRegion(GUEST, self.size, GUEST, 0, self.memfd()),)))
        layout = VringLayout(256, 4096)
        for index in range(2):
            desc = GUEST + 0x1000 + index * 0x4000
            self.send(VringState(Code.SET_VRING_NUM, index, 256))
            self.send(VringAddr(index, 0, desc, desc + layout.used, desc + layout.avail, 0))
            self.send(VringFd(Code.SET_VRING_CALL, index, self.eventfd()))
            self.send(VringFd(Code.SET_VRING_KICK, index, self.eventfd()))
            if enable:
                self.send(VringState(Code.SET_VRING_ENABLE, index, 1))

    def close(self) -> None:
        self.sock.close()
        for fd in self.fds:
            os.close(fd)


async def closed_reason(backend: VhostUserBackend) -> str:
    with pytest.raises(TransportClosedError) as caught, anyio.fail_after(5):
        while True:
            await backend.wait_notification()
    return str(caught.value)


async def test_a_vanished_frontend_closes_the_transport_not_orderly(sock_path: Path) -> None:
    async with listen_vhost_user(sock_path) as backend:
        assert isinstance(backend, VhostUserBackend)
        raw = RawFrontend(sock_path)
        raw.setup()
        raw.close()  # rings still enabled: killed, not halted
        reason = await closed_reason(backend)
        assert reason.endswith("the frontend disconnected") and not backend.peer_closed


async def test_a_frontend_that_disabled_its_rings_left_in_order(sock_path: Path) -> None:
    async with listen_vhost_user(sock_path) as backend:
        assert isinstance(backend, VhostUserBackend)
        raw = RawFrontend(sock_path)
        raw.setup()
        for index in (1, 0):  # Linux at halt: disable (in reverse), GET_FEATURES, hang up
            raw.send(VringState(Code.SET_VRING_ENABLE, index, 0))
        raw.send(Simple(Code.GET_FEATURES))
        raw.close()
        await closed_reason(backend)
        assert backend.peer_closed


def bad_table(raw: RawFrontend) -> tuple[bytes, list[int]]:
    region = MemoryRegion(GUEST, 0x100000, GUEST, 0, raw.memfd(0x1000))  # file too small
    return encode_request(MemTable((region,)))


def pipe_table(raw: RawFrontend) -> tuple[bytes, list[int]]:
    r, w = os.pipe()
    raw.fds += [r, w]
    return encode_request(MemTable((MemoryRegion(GUEST, 0x1000, GUEST, 0, r),)))


def ring_outside(raw: RawFrontend) -> tuple[bytes, list[int]]:
    table, fds = encode_request(MemTable((MemoryRegion(GUEST, raw.size, GUEST, 0, raw.memfd()),)))
    return table + encode_request(VringAddr(0, 0, 0x10, 0x2010, 0x1010, 0))[0], fds


HOSTILE = {
    "unknown request": (lambda raw: (HEADER.pack(77, VERSION, 0), []), "unsupported request 77"),
    "huge size": (
        lambda raw: (HEADER.pack(5, VERSION, 1 << 31), [raw.eventfd()]),
        "payload of 2147483648 bytes",
    ),
    "region past the end of its file": (bad_table, "lies past the end of its 0x1000-byte file"),
    "region of a pipe": (pipe_table, "not a regular file"),
    "fd count": (
        lambda raw: (
            HEADER.pack(5, VERSION, 40) + MEMORY.pack(1, 0) + MEMORY_REGION.pack(0, 4096, 0, 0),
            [raw.memfd(), raw.memfd()],
        ),
        "2 file descriptors, expected 1",
    ),
    "ring outside the table": (ring_outside, "not inside one memory region"),
    "reply bit": (lambda raw: (HEADER.pack(1, VERSION | 4, 0), []), "reply bit"),
    "kick fd of a file": (
        lambda raw: encode_request(VringFd(Code.SET_VRING_KICK, 0, raw.memfd())),
        "SET_VRING_KICK: vring 0: unusable fd",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_request_ends_the_connection_with_its_reason(
    sock_path: Path, case: str
) -> None:
    make, message = HOSTILE[case]
    async with listen_vhost_user(sock_path) as backend:
        assert isinstance(backend, VhostUserBackend)
        raw = RawFrontend(sock_path)
        raw.send(Simple(Code.SET_OWNER))
        raw.send(VringState(Code.SET_VRING_NUM, 0, 256))
        data, fds = make(raw)
        raw.send_raw(data, fds)
        reason = await closed_reason(backend)
        assert message in reason and not backend.peer_closed
        assert backend.statistics().protocol_errors == 1
        assert message in (backend.statistics().last_error or "")
        assert raw.sock.recv(64) == b""  # the backend hung up
        raw.close()


async def test_a_flood_of_requests_is_served_in_turns(sock_path: Path) -> None:
    """500 requests at once: served a quota per wake-up, every one answered, in order."""
    async with listen_vhost_user(sock_path) as backend:
        raw = RawFrontend(sock_path)
        raw.send_raw(encode_request(Simple(Code.GET_FEATURES))[0] * 500)
        reply = reply_u64(Code.GET_FEATURES, DEVICE_FEATURES)
        received = b""
        raw.sock.setblocking(False)
        async with serving(backend):
            with anyio.fail_after(10):
                while len(received) < 500 * len(reply):
                    await anyio.wait_readable(raw.sock)
                    received += raw.sock.recv(65536)
        assert received == reply * 500
        raw.close()


async def test_after_a_hostile_frontend_reconnect_serves_the_next(sock_path: Path) -> None:
    backend = listen_vhost_user(sock_path, reconnect=True)
    async with backend, remote_echo(backend):
        raw = RawFrontend(sock_path)
        raw.setup()
        raw.send_raw(HEADER.pack(77, VERSION, 0))
        with anyio.fail_after(5):
            while backend.statistics().protocol_errors == 0:
                await anyio.sleep(0.001)
        raw.close()
        frontend = await connect_vhost_user(sock_path)  # the remote bus serves the backend
        async with frontend, RpmsgBus(frontend, name="host") as host:
            await ping(host, 20)
        assert "unsupported request 77" in (backend.statistics().last_error or "")


async def test_a_descriptor_outside_mapped_memory_is_refused_and_counted() -> None:
    """The frontend points a tx descriptor outside its memory table: the remote refuses and
    counts it, touches nothing, and keeps running."""
    async with (
        vhost_user_link() as (host_t, remote_t),
        RpmsgBus(host_t, name="host") as host,
        remote_echo(remote_t) as remote,  # type: ignore[arg-type]
    ):
        if True:
            await ping(host, 3)
            info = host_t.vdev.vring(1)  # host -> remote
            layout = VringLayout(info.num, info.align)
            ring = host_t.memory.view(info.da, layout.size)
            head = info.num - 1  # the descriptor the host hands out last: never in flight here
            ring[16 * head : 16 * head + 16] = (
                (0x7000_0000).to_bytes(8, "little") + (64).to_bytes(4, "little") + bytes(4)
            )
            idx = int.from_bytes(ring[layout.avail + 2 : layout.avail + 4], "little")
            slot = layout.avail_ring + 2 * (idx % info.num)
            ring[slot : slot + 2] = head.to_bytes(2, "little")
            ring[layout.avail + 2 : layout.avail + 4] = ((idx + 1) & 0xFFFF).to_bytes(2, "little")
            host_t.kick(1)
            with anyio.fail_after(5):
                while remote.statistics().drops["ring_error"] == 0:
                    await anyio.sleep(0.001)
            assert "outside" in (remote.statistics().last_ring_error or "")
            assert not remote.closed and not remote_t.closed
