"""The other process of the two-process measurements: echoes ECHO and ACK messages, swallows
SINK ones. One peer per (kind, loop); it runs on the same loop kind as the measuring side."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from multiprocessing.connection import Connection
from typing import Any, cast

from .common import SINK

_LEN = struct.Struct("<I")


def main(
    kind: str,
    loop: str,
    address: str,
    conn: Connection | None = None,
    out: Connection | None = None,
) -> None:
    """multiprocessing target."""
    if kind == "pipe":
        assert conn is not None and out is not None
        _pipe(conn, out)
        return
    coro: Any = {"shm": _shm, "socket": _socket, "streams": _streams, "zmq": _zmq}[kind](address)
    if kind == "shm":
        from .common import run_on

        run_on(loop, lambda: coro)
        return
    if loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


def _pipe(conn: Connection, out: Connection) -> None:
    """Blocking: the fastest a Pipe peer can be."""
    try:
        while True:
            data = conn.recv_bytes()
            if data[0] != SINK:
                out.send_bytes(data)
    except EOFError:
        pass


async def _shm(address: str) -> None:
    from collections import deque

    import anyio

    from rpmsg import Endpoint, Message, NoBufferError, RpmsgBus, RpmsgError, ZeroCopyEndpoint
    from transports import TransportError
    from transports.backends.shm.transport import open_shm

    logging.getLogger("aioamp.rpmsg").setLevel(logging.ERROR)  # the end of the run is not news
    name, sock_path, budget, zero_copy = address.split("|")
    transport = await open_shm(
        name, role="remote", listen=False, socket_path=sock_path, connect_timeout=30
    )
    backlog: deque[Message] = deque()
    more = anyio.Event()

    def on_rx(ep: Endpoint, msg: Message) -> None:
        # Echo from the receive pass, as the bare-socket peer echoes from its reader callback
        # (and Linux's rpmsg client sample from its rx callback). No free buffer: a task
        # sends it once one is, in order.
        if msg.payload[0] == SINK:
            return
        if not backlog:
            try:
                ep.try_send_to(msg.src, msg.payload)
                return
            except NoBufferError:
                pass
        backlog.append(msg)
        more.set()

    async def send_backlog(ep: Endpoint) -> None:
        nonlocal more
        while True:
            await more.wait()
            more = anyio.Event()
            while backlog:
                await ep.send_to(backlog[0].src, backlog[0].payload)
                backlog.popleft()

    async def held_echo(ep: Endpoint) -> None:
        """Zero-copy: messages held in the ring's buffers, each released once handled."""
        held = cast(ZeroCopyEndpoint, ep)
        while True:
            for msg in await held.recv_batch(256):
                with msg:
                    if msg.payload[0] != SINK:
                        await ep.send_to(msg.src, msg.payload)

    try:
        async with (
            transport,
            RpmsgBus(
                transport,
                name="peer",
                ready_timeout=30,
                busy_poll=float(budget) if budget else None,
            ) as bus,
        ):
            if zero_copy:
                ep = await bus.create_service("bench-echo", zero_copy=True)
            else:
                ep = await bus.create_service("bench-echo", callback=on_rx)
            async with anyio.create_task_group() as tg:
                tg.start_soon(held_echo if zero_copy else send_backlog, ep)
                await bus.wait_closed()  # the measuring side closed the link
                tg.cancel_scope.cancel()
    except* (RpmsgError, TransportError):
        pass  # the measuring side closed the link: done


async def _socket(address: str) -> None:
    """Bare byte echo through the loop's reader (no framing: the measuring side knows sizes)."""
    sock = _connect(address)
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    def on_readable() -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(sock)
            closed.set_result(None)
            return
        sock.sendall(data)

    loop.add_reader(sock, on_readable)
    await closed
    sock.close()


def _connect(address: str) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        sock.setblocking(False)
        return sock


async def _streams(address: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            reader, writer = await asyncio.open_unix_connection(address)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
    try:
        while True:
            (n,) = _LEN.unpack(await reader.readexactly(4))
            data = await reader.readexactly(n)
            if data[0] != SINK:
                writer.write(_LEN.pack(n) + data)
                await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    writer.close()


async def _zmq(address: str) -> None:
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.linger = 0
    sock.bind(address)
    try:
        while True:
            data = await sock.recv()
            if data[:1] == b"Q":
                break
            if data[0] != SINK:
                await sock.send(data)
    finally:
        sock.close()
        ctx.term()
