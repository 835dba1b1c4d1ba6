"""Doorbell.park: a notification wakes a parked receiver directly, which runs the handler.

The contract under test: every ring reaches the handler exactly once per coalesced batch,
whether a parked sleeper runs it, a cancelled sleeper hands it back to the loop, or nobody was
parked; and at the rpmsg level no message is lost or duplicated on the way.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
from conftest import loop_turns

from rpmsg import RpmsgBus
from transports import loopback_pair
from transports.doorbell import Doorbell, Wakeup


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []
        self.tasks: list[asyncio.Task[object] | None] = []

    def __call__(self, count: int, closed: str | None) -> None:
        self.calls.append((count, closed))
        self.tasks.append(asyncio.current_task())


async def test_ring_wakes_parked_sleeper_which_runs_the_handler() -> None:
    bell, rec, waker = Doorbell(), Recorder(), Wakeup()
    assert bell.set_handler(rec)
    ran_in: list[asyncio.Task[object] | None] = []

    async def receiver() -> None:
        bell.park(waker)
        await waker.sleep()
        bell.unpark(waker, run=True)
        ran_in.append(asyncio.current_task())

    task = asyncio.create_task(receiver())
    await loop_turns(5)
    bell.ring()
    bell.ring()  # coalesces with the first: one handler call with count 2
    await task
    await loop_turns(5)
    assert rec.calls == [(2, None)]
    assert rec.tasks == ran_in == [task]  # ran inside the receiver, not from call_soon


async def test_cancelled_parked_sleeper_hands_the_notification_to_the_loop() -> None:
    bell, rec, waker = Doorbell(), Recorder(), Wakeup()
    bell.set_handler(rec)

    async def receiver() -> None:
        bell.park(waker)
        try:
            await waker.sleep()
        except BaseException:
            bell.unpark(waker, run=False)
            raise
        bell.unpark(waker, run=True)

    task = asyncio.create_task(receiver())
    await loop_turns(5)
    bell.ring()  # wakes the receiver...
    task.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await task
    await loop_turns(5)
    assert rec.calls == [(1, None)]
    assert rec.tasks == [None]  # from the loop


async def test_parked_but_not_sleeping_falls_back_to_call_soon() -> None:
    bell, rec, waker = Doorbell(), Recorder(), Wakeup()
    bell.set_handler(rec)
    bell.park(waker)  # parked, but nobody sleeps on it
    bell.ring()
    await loop_turns(5)
    assert rec.calls == [(1, None)]
    bell.unpark(waker, run=True)  # nothing owed: no second call
    await loop_turns(5)
    assert rec.calls == [(1, None)]


async def test_park_without_handler_is_ignored() -> None:
    bell, waker = Doorbell(), Wakeup()
    bell.park(waker)
    bell.ring()
    assert await bell.wait() == 1  # the waiting-task path is untouched


async def test_close_reaches_a_parked_receiver() -> None:
    bell, rec, waker = Doorbell(), Recorder(), Wakeup()
    bell.set_handler(rec)

    async def receiver() -> None:
        bell.park(waker)
        await waker.sleep()
        bell.unpark(waker, run=True)

    task = asyncio.create_task(receiver())
    await loop_turns(5)
    bell.close("gone")
    await task
    await loop_turns(5)
    assert rec.calls == [(0, "gone")]


async def test_rpmsg_recv_cancelled_mid_delivery_loses_nothing() -> None:
    """The notification wakes the parked receiver, which is cancelled before it runs: the
    receive pass still happens (from the loop) and the message waits in the queue."""
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end) as host, RpmsgBus(remote_end) as remote:
        sink = remote.create_endpoint()
        src = host.create_endpoint()
        for i in range(20):
            receiver = asyncio.create_task(sink.recv())
            await loop_turns(5)  # asleep and parked
            src.try_send_to(sink.addr, b"%d" % i)  # kick: wakes the receiver directly...
            receiver.cancel()  # ...which is cancelled before it runs the pass
            with pytest.raises(asyncio.CancelledError):
                await receiver
            await loop_turns(5)
            msg = sink.try_recv()
            assert msg is not None and msg.payload == b"%d" % i
            assert sink.try_recv() is None
        stats = remote.statistics()
        assert stats.rx_messages == 20
        assert sum(stats.drops.values()) == 0


async def test_two_receivers_on_one_bus_both_get_their_messages() -> None:
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end) as host, RpmsgBus(remote_end) as remote:
        a, b = remote.create_endpoint(), remote.create_endpoint()
        src = host.create_endpoint()
        got: dict[int, list[bytes]] = {a.addr: [], b.addr: []}

        async def drain(ep: object, n: int) -> None:
            for _ in range(n):
                msg = await ep.recv(timeout=5)  # type: ignore[attr-defined]
                got[msg.dst].append(msg.payload)

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, a, 100)
            tg.start_soon(drain, b, 100)
            await anyio.sleep(0.01)  # both asleep; the later one is parked
            for i in range(100):
                await src.send_to(a.addr, b"a%d" % i)
                await src.send_to(b.addr, b"b%d" % i)
                if i % 7 == 0:
                    await anyio.sleep(0)
        assert got[a.addr] == [b"a%d" % i for i in range(100)]
        assert got[b.addr] == [b"b%d" % i for i in range(100)]
