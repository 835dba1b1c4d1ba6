"""``aioamp demo``: the rpmsg client sample between a host and a remote."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio

from rpmsg import RpmsgBus
from rpmsg.samples import DEFAULT_COUNT, register_client, run_service
from transports import loopback_pair

from .loop import run


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the rpmsg client sample and print the exchange")
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help="messages to exchange")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=demo_main)


def demo_main(args: argparse.Namespace) -> int:
    ok: bool = run(_loopback_demo, args.count, args.quiet)
    return 0 if ok else 1


async def _loopback_demo(count: int, quiet: bool) -> bool:
    def say(who: str) -> Any:
        def report(line: str) -> None:
            if not quiet:
                print(f"[{who}] {line}", flush=True)

        return report

    start = time.perf_counter()
    host_end, remote_end = loopback_pair()
    async with RpmsgBus(host_end, name="host") as host:
        driver, result = register_client(host, count=count, report=say("host"))
        async with RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote:
            await run_service(remote, count=count, report=say("remote"))
            with anyio.fail_after(10):
                while driver.channels:
                    await anyio.sleep(0.001)
        stats = host.statistics()
    elapsed = time.perf_counter() - start
    print(
        f"client sample: {result.replies}/{count} echoes, payloads "
        f"{'ok' if result.payloads_ok else 'CORRUPT'}, {elapsed * 1e3:.1f} ms; host sent "
        f"{stats.tx_messages} / received {stats.rx_messages} messages, "
        f"drops {sum(stats.drops.values())}"
    )
    return result.finished and result.payloads_ok and result.replies == count
