"""The one-way runs of the benchmarks time the steady state: the warm-up messages are sent and
consumed before the clock starts (and before the kick counters are read)."""

from __future__ import annotations

import anyio

from benchmarks import inproc
from benchmarks.common import WARMUP_MESSAGES


async def test_the_clock_starts_after_the_warm_up_was_consumed() -> None:
    count = inproc._Count()
    tx, rx = anyio.create_memory_object_stream[int](8)
    seen_at_mark: list[int] = []
    sent = [0]

    async def send() -> None:
        sent[0] += 1
        await tx.send(sent[0])

    async def consume() -> None:
        async for _ in rx:
            count.add()

    async with anyio.create_task_group() as tg, tx, rx:
        tg.start_soon(consume)
        elapsed = await inproc._timed(send, count, 100, mark=lambda: seen_at_mark.append(count.n))
        tg.cancel_scope.cancel()
    assert seen_at_mark == [WARMUP_MESSAGES]  # all of the warm-up consumed, none timed yet
    assert count.n == sent[0] == WARMUP_MESSAGES + 100
    assert elapsed > 0


async def test_every_endpoint_is_warm_before_the_clock_starts() -> None:
    result = await inproc.endpoints_throughput(1000, 100)  # fewer timed messages than endpoints
    assert result == {"endpoints": 1000, "msgs_per_s": result["msgs_per_s"]}
    assert result["msgs_per_s"] > 0
