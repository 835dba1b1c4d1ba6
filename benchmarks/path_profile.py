"""The per-message path, step by step (issue 15): interpreted frames and nanoseconds per step.

``python -m benchmarks.path_profile`` (``AIOAMP_PURE_PYTHON=1`` for the pure path). Two views:

* **frames per message**: Python function calls seen by ``sys.setprofile`` over a loopback
  round trip (per message: half a round trip) and a one-way run. Code compiled by mypyc or
  written in C makes no frame, so this counts what is still interpreted, the event loop's
  own functions included.
* **ns per step**: each step of the path timed alone over ring-fulls of 16-byte messages
  between a host and a remote bus, the clock around the step's calls only (the other steps
  run outside it): the send fast path (``Endpoint.send_to`` while buffers are free), the ring
  get (``Rings.next_rx``), the route (``RpmsgCore.route``), the delivery
  (``Endpoint._deliver``: the Message, the queue, the wake-up) and the take (``Endpoint._pop``),
  then a whole receive pass (``RxPasses._drain`` of a ring-full) per message.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from rpmsg import RpmsgBus
from transports import loopback_pair

from . import inproc

ROUNDS = 200  # ring-fulls per step
SIZE = 16


def _count_frames(run: Callable[[int, int], Coroutine[Any, Any, object]], n: int) -> float:
    calls: collections.Counter[str] = collections.Counter()

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            calls[frame.f_code.co_name] += 1

    async def main() -> None:
        await run(SIZE, 200)  # warm: imports, first-use caches
        sys.setprofile(profile)
        try:
            await run(SIZE, n)
        finally:
            sys.setprofile(None)

    asyncio.run(main())
    return sum(calls.values()) / n


def _finish(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that completes without waiting (a send while buffers are free)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("the send waited")


async def _steps() -> dict[str, float]:
    host_t, remote_t = loopback_pair()
    clock = time.perf_counter_ns
    totals = dict.fromkeys(("send", "ring get", "route", "deliver", "take", "receive pass"), 0)
    steps = passes = 0  # messages through the steps one by one, and through whole passes
    async with RpmsgBus(host_t, name="host") as host, RpmsgBus(remote_t, name="remote") as rem:
        await asyncio.sleep(0.01)
        sink = rem.create_endpoint(maxsize=1 << 20)
        src = host.create_endpoint()
        data = bytes(SIZE)
        rings, route, rx = rem.rings, rem.core.route, rem._rx
        send_to, addr = src.send_to, sink.addr
        rx.detach()  # the steps are driven here, not by notifications
        for _ in range(ROUNDS):
            for timed_pass in (False, True):
                t0 = clock()
                n = 0
                while host.rings.tx_available():
                    _finish(send_to(addr, data))
                    n += 1
                totals["send"] += clock() - t0
                if timed_pass:
                    passes += n
                    t0 = clock()
                    rx._drain()
                    totals["receive pass"] += clock() - t0
                    rings.finish_rx()
                else:
                    msgs = []
                    t0 = clock()
                    for _ in range(n):
                        msgs.append(rings.next_rx())
                    totals["ring get"] += clock() - t0
                    t0 = clock()
                    sinks = [route(m[1]) for m in msgs if m is not None]
                    totals["route"] += clock() - t0
                    t0 = clock()
                    for s, m in zip(sinks, msgs, strict=True):
                        s._deliver(m)  # type: ignore[union-attr,arg-type]
                    totals["deliver"] += clock() - t0
                    rings.finish_rx()
                    steps += n
                t0 = clock()
                while sink.try_recv() is not None:
                    pass
                totals["take"] += clock() - t0
                await asyncio.sleep(0)  # the host sees its tx buffers back
    both = steps + passes
    per = {"send": both, "take": both, "receive pass": passes}
    return {k: v / per.get(k, steps) for k, v in totals.items()}


def main() -> None:
    import rpmsg.receive

    print(f"receive passes from {rpmsg.receive.__file__}")
    rtt = _count_frames(inproc.rpmsg_rtt, 5000) / 2
    one_way = _count_frames(inproc.rpmsg_throughput, 20000)
    print(f"interpreted frames per message: round trip {rtt:.1f}, one way {one_way:.1f}")
    for step, ns in asyncio.run(_steps()).items():
        print(f"  {step:<13} {ns:7.0f} ns per message")


if __name__ == "__main__":
    main()
