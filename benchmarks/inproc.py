"""In-process measurements: rpmsg over loopback against asyncio.Queue and anyio memory object
streams, kicks per message, allocations per message and dispatch across many endpoints."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio

from rpmsg import Endpoint, Message, RpmsgBus
from transports import loopback_pair

from .common import rtt_stats

_WARMUP = 50


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[RpmsgBus, RpmsgBus]]:
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end, name="host") as host, RpmsgBus(remote_end, name="remote") as rem:
        yield host, rem


async def _ping_pong(
    echo: Callable[[], Coroutine[Any, Any, None]],
    send: Callable[[], Awaitable[object]],
    receive: Callable[[], Awaitable[object]],
    n: int,
) -> dict[str, float]:
    """Round trips timed one by one (after a warm-up) against an ``echo`` task."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        samples = []
        clock = time.perf_counter
        for i in range(n + _WARMUP):
            t0 = clock()
            await send()
            await receive()
            if i >= _WARMUP:
                samples.append(clock() - t0)
        tg.cancel_scope.cancel()
    return rtt_stats(samples)


async def rpmsg_rtt(size: int, n: int) -> dict[str, float]:
    """send -> echo task -> reply, one message in flight."""
    async with _pair() as (host, remote):
        service = await remote.create_service("bench-echo")
        channel = await host.wait_for_service("bench-echo", timeout=5)
        ep = channel.endpoint
        data = bytes(size)

        async def echo() -> None:
            async for msg in service:
                await service.send_to(msg.src, msg.payload)

        return await _ping_pong(echo, lambda: ep.send(data), ep.recv, n)


async def rpmsg_throughput(size: int, n: int) -> dict[str, float]:
    """One way, host -> remote, a consumer task draining the endpoint; also kicks/message."""
    async with _pair() as (host, remote):
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        data = bytes(size)
        done = anyio.Event()

        async def consume() -> None:
            got = 0
            async for _msg in sink:
                got += 1
                if got == n:
                    done.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            before = host.statistics().kicks_sent + remote.statistics().kicks_sent
            t0 = time.perf_counter()
            for _ in range(n):
                await src.send_to(sink.addr, data)
            await done.wait()
            elapsed = time.perf_counter() - t0
            kicks = host.statistics().kicks_sent + remote.statistics().kicks_sent - before
    return {"msgs_per_s": n / elapsed, "kicks_per_msg": kicks / n}


async def queue_rtt(size: int, n: int) -> dict[str, float]:
    a: asyncio.Queue[bytes] = asyncio.Queue()
    b: asyncio.Queue[bytes] = asyncio.Queue()
    data = bytes(size)

    async def echo() -> None:
        while True:
            b.put_nowait(await a.get())

    return await _ping_pong(echo, lambda: a.put(data), b.get, n)


async def queue_throughput(size: int, n: int) -> dict[str, float]:
    q: asyncio.Queue[bytes] = asyncio.Queue(256)  # as many slots as rpmsg has tx buffers
    data = bytes(size)
    done = anyio.Event()

    async def consume() -> None:
        for _ in range(n):
            await q.get()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        t0 = time.perf_counter()
        for _ in range(n):
            await q.put(data)
        await done.wait()
        elapsed = time.perf_counter() - t0
    return {"msgs_per_s": n / elapsed}


async def anyio_rtt(size: int, n: int) -> dict[str, float]:
    a_tx, a_rx = anyio.create_memory_object_stream[bytes](256)
    b_tx, b_rx = anyio.create_memory_object_stream[bytes](256)
    data = bytes(size)

    async def echo() -> None:
        async for item in a_rx:
            await b_tx.send(item)

    async with a_tx, a_rx, b_tx, b_rx:
        return await _ping_pong(echo, lambda: a_tx.send(data), b_rx.receive, n)


async def anyio_throughput(size: int, n: int) -> dict[str, float]:
    tx, rx = anyio.create_memory_object_stream[bytes](256)
    data = bytes(size)
    done = anyio.Event()

    async def consume() -> None:
        for _ in range(n):
            await rx.receive()
        done.set()

    async with anyio.create_task_group() as tg, tx, rx:
        tg.start_soon(consume)
        t0 = time.perf_counter()
        for _ in range(n):
            await tx.send(data)
        await done.wait()
        elapsed = time.perf_counter() - t0
    return {"msgs_per_s": n / elapsed}


async def endpoints_throughput(count: int, n: int, size: int = 16) -> dict[str, float]:
    """One-way throughput spread round-robin over ``count`` remote endpoints (rx callbacks, so
    the figure is the bus's dispatch, not the scheduling of ``count`` consumer tasks)."""
    async with _pair() as (host, remote):
        got = [0]
        done = anyio.Event()

        def on_rx(_ep: Endpoint, _msg: Message) -> None:
            got[0] += 1
            if got[0] == n:
                done.set()

        dsts = [remote.create_endpoint(callback=on_rx).addr for _ in range(count)]
        src = host.create_endpoint()
        data = bytes(size)
        t0 = time.perf_counter()
        for i in range(n):
            await src.send_to(dsts[i % count], data)
        await done.wait()
        elapsed = time.perf_counter() - t0
    return {"endpoints": count, "msgs_per_s": n / elapsed}


_OUR_CODE = ("/rpmsg/", "/transports/")


async def allocations(size: int, n: int) -> dict[str, Any]:
    """Blocks our packages allocated and that are still alive after ``n`` messages in a steady
    one-way state, while the user keeps every received message. Per message, the payload bytes
    and the Message handed to the user are expected; anything more is a per-message leak or
    cache growth. (tracemalloc sees live blocks only: freed temporaries do not show here; the
    cProfile/py-spy call counts in the README cover those.)"""
    async with _pair() as (host, remote):
        kept: list[Message] = []
        src = host.create_endpoint()
        # A bound endpoint, as a channel's is (dst = its peer).
        sink = remote.create_endpoint(dst=src.addr, callback=lambda _ep, msg: kept.append(msg))
        data = bytes(size)
        for _ in range(300):  # warm up: every buffer used once, caches filled
            await src.send_to(sink.addr, data)
        await anyio.sleep(0)
        kept.clear()
        gc.collect()
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(n):
                await src.send_to(sink.addr, data)
            while len(kept) < n:
                await anyio.sleep(0)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    filters = [tracemalloc.Filter(True, f"*{part}*") for part in _OUR_CODE]
    diff = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    sites = {
        f"{stat.traceback[0].filename.rsplit('/', 2)[-2]}/"
        f"{stat.traceback[0].filename.rsplit('/', 1)[-1]}:{stat.traceback[0].lineno}": round(
            stat.count_diff / n, 3
        )
        for stat in diff
        if stat.count_diff > 0
    }
    # Sites below 0.01 blocks/message are one-off growth (a free list, a dict resize) that
    # does not scale with the message count; they are listed but not counted per message.
    blocks = sum(rate for rate in sites.values() if rate >= 0.01)
    handed = 2.0  # the payload bytes and its Message
    return {
        "blocks_per_msg": round(blocks, 3),
        "handed_to_user_per_msg": handed,
        "extra_per_msg": round(max(0.0, blocks - handed), 2),  # one-offs on a hot line: < 0.01
        "sites": sites,
    }
