"""Two-process measurements: rpmsg over shared memory against a bare socket ping-pong through
the loop's reader, asyncio unix streams with length framing, multiprocessing.Pipe and pyzmq
PAIR over ipc. Every client runs the same round-trip and one-way loops."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

import anyio

from rpmsg import NoBufferError

from . import floors
from .common import ACK, ECHO, SINK, WARMUP_MESSAGES, payload, rtt_stats, run_on

KINDS = (
    "shm",
    "shm-nopoll",
    "shm-batch",
    "shm-zc",
    "socket",
    "streams",
    "pipe",
    "zmq",
    "blocking",
    "spin",
)
#: Round trips only: no one-way figure (a floor, or the bare socket's reader).
_RTT_ONLY = ("socket", "blocking", "spin")
#: Seconds of silence over which the idle CPU of a bound shm peer is measured.
IDLE_SECONDS = 1.0
_LEN = struct.Struct("<I")
_WARMUP = 50


class Client(Protocol):
    async def send(self, data: bytes) -> None: ...
    async def recv(self, size: int) -> bytes: ...
    async def aclose(self) -> None: ...


async def _rtt(client: Client, size: int, n: int) -> dict[str, float]:
    data = payload(ECHO, size)
    samples = []
    clock = time.perf_counter
    for i in range(n + _WARMUP):
        t0 = clock()
        await client.send(data)
        await client.recv(size)
        if i >= _WARMUP:
            samples.append(clock() - t0)
    return rtt_stats(samples)


async def _sink(client: Client, size: int, n: int) -> None:
    """``n`` messages the peer swallows, then one it acknowledges: all of them arrived."""
    data = payload(SINK, size)
    if isinstance(client, _ShmBatchClient):
        await client.send_many(data, n)
    else:
        for _ in range(n):
            await client.send(data)
    await client.send(payload(ACK, size))
    await client.recv(size)


async def _throughput(
    client: Client, size: int, n: int, mark: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """One way, timed after a warm-up outside the clock (see ``WARMUP_MESSAGES``); ``mark``
    runs just before the clock starts."""
    await _sink(client, size, WARMUP_MESSAGES)
    mark()
    t0 = time.perf_counter()
    await _sink(client, size, n)
    return {"msgs_per_s": n / (time.perf_counter() - t0)}


class _ShmClient:
    """The measuring side is the rpmsg host and serves the doorbell socket."""

    async def open(self, address: str) -> None:
        from rpmsg import RpmsgBus
        from transports.backends.shm.transport import open_shm

        name, sock_path, busy_poll, _zero_copy = address.split("|")
        self.transport = await open_shm(
            name, role="host", listen=True, socket_path=sock_path, accept_timeout=30
        )
        self.bus = RpmsgBus(
            self.transport, name="bench-host", busy_poll=float(busy_poll) if busy_poll else None
        )
        await self.bus.__aenter__()
        channel = await self.bus.wait_for_service("bench-echo", timeout=30)
        self.ep = channel.endpoint
        self.kicks0 = 0

    async def send(self, data: bytes) -> None:
        await self.ep.send(data)

    async def recv(self, size: int) -> bytes:
        return (await self.ep.recv()).payload

    async def aclose(self) -> None:
        await self.bus.__aexit__(None, None, None)
        await self.transport.aclose()


class _ShmBatchClient(_ShmClient):
    """One-way runs with ``send_many``: a ring-full per notification."""

    async def send_many(self, data: bytes, n: int) -> None:
        await self.ep.send_many([data] * n)


class _ShmZeroCopyClient(_ShmClient):
    """Sends from borrowed tx buffers (the payload written into the shared buffer, sent
    without a further copy); the peer holds what it receives (zero_copy=True) and releases it.
    """

    async def send(self, data: bytes) -> None:
        ep = self.ep
        try:
            buf = ep.try_borrow_tx()
        except NoBufferError:
            buf = await ep.borrow_tx()
        n = len(data)
        buf.data[:n] = data
        buf.send(n)


class _SocketClient:
    """A persistent loop reader on a nonblocking unix socket: the cheapest wake-up there is."""

    async def open(self, address: str) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(1)
        server.setblocking(False)
        await anyio.wait_readable(server)
        self.sock, _ = server.accept()
        server.close()
        self.sock.setblocking(False)
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None
        self.loop.add_reader(self.sock, self._on_readable)

    def _on_readable(self) -> None:
        try:
            self.buf += self.sock.recv(65536)
        except BlockingIOError:
            return
        waiter = self.waiter
        if waiter is not None and len(self.buf) >= self.want and not waiter.done():
            waiter.set_result(None)

    async def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    async def recv(self, size: int) -> bytes:
        if len(self.buf) < size:
            self.want = size
            self.waiter = self.loop.create_future()
            await self.waiter
            self.waiter = None
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    async def aclose(self) -> None:
        self.loop.remove_reader(self.sock)
        self.sock.close()


class _StreamsClient:
    async def open(self, address: str) -> None:
        ready = asyncio.get_running_loop().create_future()

        async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            ready.set_result((r, w))

        self.server = await asyncio.start_unix_server(on_client, address)
        self.reader, self.writer = await ready

    async def send(self, data: bytes) -> None:
        self.writer.write(_LEN.pack(len(data)) + data)
        await self.writer.drain()

    async def recv(self, size: int) -> bytes:
        (n,) = _LEN.unpack(await self.reader.readexactly(4))
        data: bytes = await self.reader.readexactly(n)
        return data

    async def aclose(self) -> None:
        self.writer.close()
        self.server.close()


class _PipeClient:
    """Sends block (the pipe has room); receives go through the loop's reader on its fd."""

    def __init__(self, conn: Connection, out: Connection) -> None:
        self.conn = conn
        self.out = out

    async def open(self, address: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.inbox: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.loop.add_reader(self.conn.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        while self.conn.poll():
            self.inbox.append(self.conn.recv_bytes())
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, data: bytes) -> None:
        self.out.send_bytes(data)

    async def recv(self, size: int) -> bytes:
        while not self.inbox:
            self.waiter = self.loop.create_future()
            await self.waiter
            self.waiter = None
        return self.inbox.popleft()

    async def aclose(self) -> None:
        self.loop.remove_reader(self.conn.fileno())
        self.out.close()
        self.conn.close()


class _ZmqClient:
    async def open(self, address: str) -> None:
        import zmq
        import zmq.asyncio

        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.linger = 0
        self.sock.connect(address)

    async def send(self, data: bytes) -> None:
        await self.sock.send(data, copy=True)

    async def recv(self, size: int) -> bytes:
        data: bytes = await self.sock.recv()
        return data

    async def aclose(self) -> None:
        await self.sock.send(b"Q")
        await anyio.sleep(0.05)
        self.sock.close()
        self.ctx.term()


async def _measure(client: Any, address: str, sizes: list[int], n_rtt: int, n_thr: int) -> Any:
    await client.open(address)
    out: dict[str, Any] = {}
    marks: list[tuple[int, int]] = []

    def mark() -> None:  # the shm bus's counters as the clock starts
        if isinstance(client, _ShmClient):
            st = client.bus.statistics()
            marks.append((st.kicks_sent, st.tx_messages))

    try:
        for size in sizes:
            rtt = await _rtt(client, size, n_rtt)
            extra: dict[str, float] = {}
            marks.clear()
            thr = await _throughput(client, size, n_thr, mark) if n_thr else {}
            if marks:
                st = client.bus.statistics()
                k0, m0 = marks[-1]
                extra["kicks_per_msg"] = (st.kicks_sent - k0) / (st.tx_messages - m0)
            out[str(size)] = {**rtt, **thr, **extra}
        pid = getattr(client, "peer_pid", None)
        if pid is not None:  # a bound, silent shm peer: its CPU and ours over a silence
            peer0, own0 = floors.cpu_seconds(pid), time.process_time()
            await anyio.sleep(IDLE_SECONDS)
            out["idle_cpu"] = {
                "peer": (floors.cpu_seconds(pid) - peer0) / IDLE_SECONDS,
                "host": (time.process_time() - own0) / IDLE_SECONDS,
            }
    finally:
        await client.aclose()
    return out


def measure_kind(
    kind: str,
    loop: str,
    sizes: list[int],
    n_rtt: int,
    n_thr: int,
    *,
    busy_poll: float | None = None,
) -> Any:
    """Start the peer process for ``kind`` on ``loop``, measure every size, stop it.
    ``busy_poll``: both shm buses' budget (None: the default)."""
    from . import peer

    ctx = multiprocessing.get_context("spawn")
    tmp = tempfile.mkdtemp(prefix="aioamp-bench-")
    sock_path = os.path.join(tmp, "s.sock")
    child_conn: Connection | None = None
    child_extra: Connection | None = None
    target: Any = peer.main
    if kind.startswith("shm"):
        budget = "0" if kind == "shm-nopoll" else "" if busy_poll is None else str(busy_poll)
        zero_copy = "zc" if kind == "shm-zc" else ""
        address = f"aioamp-bench-{os.getpid()}-{loop}|{sock_path}|{budget}|{zero_copy}"
        client: Any = {"shm-batch": _ShmBatchClient, "shm-zc": _ShmZeroCopyClient}.get(
            kind, _ShmClient
        )()
        args: tuple[Any, ...] = ("shm", loop, address, None, None)
    elif kind in ("blocking", "spin"):
        address = os.path.join(tmp, "floor")
        client = floors.BlockingClient() if kind == "blocking" else floors.SpinClient()
        target, args = floors.serve, (kind, address)
    elif kind == "socket":
        address, client = sock_path, _SocketClient()
    elif kind == "streams":
        address, client = sock_path, _StreamsClient()
    elif kind == "pipe":
        # Two one-way pipes: the loop's reader may make its fd non-blocking (uvloop does), and
        # our sends must stay blocking, so they cannot share one duplex fd.
        down_rx, down_tx = ctx.Pipe(duplex=False)
        up_rx, up_tx = ctx.Pipe(duplex=False)
        child_conn = down_rx
        address, client = "", _PipeClient(up_rx, down_tx)
        child_extra = up_tx
    else:
        address, client = f"ipc://{tmp}/z.ipc", _ZmqClient()
    if target is peer.main and not kind.startswith("shm"):
        args = (kind, loop, address, child_conn, child_extra)
    proc = ctx.Process(target=target, args=args, daemon=True)
    proc.start()
    if kind == "shm":
        client.peer_pid = proc.pid
    for end in (child_conn, child_extra):
        if end is not None:
            end.close()
    try:
        n_thr = 0 if kind in _RTT_ONLY else n_thr
        return run_on(loop, _measure, client, address, sizes, n_rtt, n_thr)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        with contextlib.suppress(OSError):
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)
