"""Random receive/send scenarios over a loopback pair, run in a process of their own and
printed as one JSON trace: tests/unit/test_compiled_path.py runs the same scenarios with the
mypyc-compiled per-message path and with ``AIOAMP_PURE_PYTHON=1`` and compares the traces.

``python tests/compiled_scenarios.py SEED COUNT``: COUNT scenarios from SEED. Each binds a few
endpoints on the remote bus (queue bound, overflow policy, none / a logging / a raising rx
callback), then interleaves host sends (to them, to unbound addresses, garbage to the name
service at 53), receives and loop turns, some with a tap (capture) on the remote bus; the
trace is every message and error seen, every statistics() snapshot of both buses and all
endpoints, and what the tap recorded. (Hostile ring contents are compared by the conformance
suites, tests/conformance/test_hostile_*.py, which make test runs both ways.)
"""

from __future__ import annotations

import json
import logging
import random
import sys
from typing import Any

import anyio

from rpmsg import MemoryCapture, Message, Overflow, RpmsgBus
from rpmsg.endpoint import Endpoint
from rpmsg.errors import RpmsgError
from transports import loopback_pair
from transports._compiled import active

NS_ADDR = 53
POLICIES = list(Overflow)


def _scenario(rng: random.Random) -> list[list[Any]]:
    ops: list[list[Any]] = [["tap", rng.random() < 0.3]]
    for i in range(rng.randint(1, 4)):
        ops.append(["ep", 1024 + i, rng.choice([1, 2, 3, 256]), rng.randrange(3), rng.randrange(3)])
    for _ in range(rng.randint(1, 120)):
        kind = rng.random()
        if kind < 0.6:
            dst = rng.choice([1024, 1025, 1026, 1027, 2000, NS_ADDR])
            ops.append(["send", dst, rng.choice([0, 1, 16, 40, 496])])
        elif kind < 0.85:
            ops.append(["recv", 1024 + rng.randrange(4), rng.randint(1, 4)])
        else:
            ops.append(["turns", rng.randint(1, 3)])
    return ops


async def _run(ops: list[list[Any]]) -> dict[str, Any]:
    trace: list[Any] = []
    host_t, remote_t = loopback_pair()
    tap = MemoryCapture() if ops[0][1] else None  # the remote bus's tap, in some scenarios
    async with (
        RpmsgBus(host_t, name="host") as host,
        RpmsgBus(remote_t, name="remote", capture=tap) as rem,
    ):
        src = host.create_endpoint()
        eps: dict[int, Endpoint] = {}

        def log_cb(ep: Endpoint, msg: Message) -> None:
            trace.append(["cb", ep.addr, msg.src, msg.dst, msg.payload.hex(), msg.flags])

        def bad_cb(ep: Endpoint, msg: Message) -> None:
            trace.append(["bad-cb", ep.addr, len(msg.payload)])
            raise ValueError("the user's callback failed")

        callbacks = [None, log_cb, bad_cb]
        for n, op in enumerate(ops):
            if op[0] == "tap":
                continue
            if op[0] == "ep":
                _, addr, maxsize, policy, cb = op
                eps[addr] = rem.create_endpoint(
                    addr, maxsize=maxsize, overflow=POLICIES[policy], callback=callbacks[cb]
                )
            elif op[0] == "send":
                try:
                    src.try_send_to(op[1], bytes([n % 256]) * op[2])
                    trace.append(["sent", n])
                except RpmsgError as exc:
                    trace.append(["send-error", type(exc).__name__])
            elif op[0] == "recv":
                ep = eps.get(op[1])
                for _ in range(op[2] if ep is not None else 0):
                    msg = ep.try_recv() if ep is not None else None
                    trace.append(None if msg is None else [msg.src, msg.dst, msg.payload.hex()])
            else:
                for _ in range(op[1]):
                    await anyio.lowlevel.checkpoint()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        stats = [repr(host.statistics()), repr(rem.statistics())]
        stats += [repr(ep.statistics()) for ep in [src, *eps.values()]]
        taps = (
            [[r.direction, r.src, r.dst, r.flags, r.payload.hex()] for r in tap.records]
            if tap
            else []
        )
        return {"trace": trace, "stats": stats, "tap": taps}


async def _main(seed: int, count: int) -> None:
    rng = random.Random(seed)
    results = [await _run(_scenario(rng)) for _ in range(count)]
    json.dump({"compiled": active(), "results": results}, sys.stdout)


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # the dropped NS messages and failing callbacks log
    anyio.run(_main, int(sys.argv[1]), int(sys.argv[2]))
