"""In-process measurements: rpmsg over loopback against asyncio.Queue and anyio memory object
streams, kicks per message, allocations per message and dispatch across many endpoints."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio

from rpmsg import Message, RpmsgBus
from transports import loopback_pair

from .common import WARMUP_MESSAGES, rtt_stats

_WARMUP = 50


class _Count:
    """Messages a consumer has taken; :meth:`reach` waits until it has taken ``k``."""

    def __init__(self) -> None:
        self.n = 0
        self._want = 0
        self._event = anyio.Event()

    def add(self) -> None:
        self.n += 1
        if self.n == self._want:
            self._event.set()

    async def reach(self, k: int) -> None:
        if self.n < k:
            self._want, self._event = k, anyio.Event()
            await self._event.wait()


async def _timed(
    send: Callable[[], Awaitable[object]],
    count: _Count,
    n: int,
    *,
    warmup: int = WARMUP_MESSAGES,
    mark: Callable[[], None] = lambda: None,
) -> float:
    """Seconds to send ``n`` messages one way until the consumer took them all, after
    ``warmup`` messages outside the clock (steady state: rings and queues already cycling);
    ``mark`` runs just before the clock starts."""
    for _ in range(warmup):
        await send()
    await count.reach(warmup)
    mark()
    t0 = time.perf_counter()
    for _ in range(n):
        await send()
    await count.reach(warmup + n)
    return time.perf_counter() - t0


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
    """One way, host -> remote, a consumer task draining the endpoint; also kicks/message
    (of the timed messages only)."""
    async with _pair() as (host, remote):
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        data = bytes(size)
        count = _Count()

        def kicks() -> int:
            return host.statistics().kicks_sent + remote.statistics().kicks_sent

        async def consume() -> None:
            async for _msg in sink:
                count.add()

        before = [0]
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            elapsed = await _timed(
                lambda: src.send_to(sink.addr, data), count, n, mark=lambda: before.append(kicks())
            )
            sent_kicks = kicks() - before[-1]
            tg.cancel_scope.cancel()
    return {"msgs_per_s": n / elapsed, "kicks_per_msg": sent_kicks / n}


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
    count = _Count()

    async def consume() -> None:
        while True:
            await q.get()
            count.add()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        elapsed = await _timed(lambda: q.put(data), count, n)
        tg.cancel_scope.cancel()
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
    count = _Count()

    async def consume() -> None:
        async for _item in rx:
            count.add()

    async with anyio.create_task_group() as tg, tx, rx:
        tg.start_soon(consume)
        elapsed = await _timed(lambda: tx.send(data), count, n)
        tg.cancel_scope.cancel()
    return {"msgs_per_s": n / elapsed}


async def endpoints_throughput(count: int, n: int, size: int = 16) -> dict[str, float]:
    """One-way throughput spread round-robin over ``count`` remote endpoints (rx callbacks, so
    the figure is the bus's dispatch, not the scheduling of ``count`` consumer tasks). Every
    endpoint gets a message before the clock starts: the first delivery to each is cold, and
    a short run over many endpoints would be mostly first deliveries."""
    async with _pair() as (host, remote):
        got = _Count()
        dsts = [
            remote.create_endpoint(callback=lambda _ep, _msg: got.add()).addr for _ in range(count)
        ]
        src = host.create_endpoint()
        data = bytes(size)
        turn = itertools.cycle(dsts)
        elapsed = await _timed(
            lambda: src.send_to(next(turn), data), got, n, warmup=max(WARMUP_MESSAGES, count)
        )
    return {"endpoints": count, "msgs_per_s": n / elapsed}


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
            half = n // 2
            for _ in range(half):
                await src.send_to(sink.addr, data)
            while len(kept) < half:
                await anyio.sleep(0)
            mid = tracemalloc.take_snapshot()
            for _ in range(n - half):
                await src.send_to(sink.addr, data)
            while len(kept) < n:
                await anyio.sleep(0)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    # Every live block counts, wherever it was made: the compiled per-message path (mypyc)
    # runs without Python frames, so its blocks are attributed to whichever Python line called
    # into it (the event loop's), and a filter on our file names would not see them.
    diff = after.compare_to(before, "lineno")
    sites = {
        f"{stat.traceback[0].filename.rsplit('/', 2)[-2]}/"
        f"{stat.traceback[0].filename.rsplit('/', 1)[-1]}:{stat.traceback[0].lineno}": round(
            stat.count_diff / n, 3
        )
        for stat in diff
        if stat.count_diff / n >= 0.01
    }
    # Net growth over all sites over the second half only: a block allocated on one line that
    # replaces one allocated on another (a ring's bookkeeping) is no growth, and one-off
    # growth (a free list, a dict resize: ~35 blocks in all) is behind us by then.
    own = [tracemalloc.Filter(False, tracemalloc.__file__)]  # the snapshots themselves
    second = after.filter_traces(own).compare_to(mid.filter_traces(own), "lineno")
    blocks = sum(stat.count_diff for stat in second) / (n - half)
    handed = 2.0  # the payload bytes and its Message
    return {
        "blocks_per_msg": round(blocks, 3),
        "handed_to_user_per_msg": handed,
        "extra_per_msg": round(max(0.0, blocks - handed), 2),  # one-offs on a hot line: < 0.01
        "sites": sites,
    }
