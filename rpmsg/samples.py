"""The rpmsg client sample, both halves (Linux samples/rpmsg/rpmsg_client_sample.c).

The *service* side announces ``rpmsg-client-sample`` and echoes every message back to its
sender; after ``count`` echoes it withdraws the service (NS DESTROY), which tears the channel
down. The *client* side is a driver probed on that channel: it sends "hello world!", and
answers each echo with another, until ``count`` messages have gone back and forth. Either half
runs on either bus role.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .channel import Channel, Driver, Probe
from .protocol import Bus

SERVICE_NAME = "rpmsg-client-sample"
MESSAGE = b"hello world!"
DEFAULT_COUNT = 100

Report = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@attrs.define
class ClientResult:
    """What the client half saw."""

    replies: int = 0
    payloads_ok: bool = True
    finished: bool = False


def client_driver(
    *, count: int = DEFAULT_COUNT, report: Report = _quiet
) -> tuple[Probe, ClientResult]:
    """The client half as a probe coroutine (for ``register_driver`` on a bus or a
    processor) and the result it fills in."""
    result = ClientResult()

    async def probe(channel: Channel) -> None:
        report(f"new channel: 0x{channel.src:x} -> 0x{channel.dst:x}!")
        await channel.send(MESSAGE)
        async for msg in channel:
            result.replies += 1
            result.payloads_ok &= msg.payload == MESSAGE
            report(f"incoming msg {result.replies} (src: 0x{msg.src:x}): {msg.payload!r}")
            if result.replies >= count:
                report("goodbye!")
                result.finished = True
                # Keep iterating: the service withdraws itself after its last echo, which
                # ends this loop.
                continue
            await channel.send(MESSAGE)
        report(f"rpmsg client sample channel removed after {result.replies} replies")

    return probe, result


def register_client(
    bus: Bus, *, count: int = DEFAULT_COUNT, report: Report = _quiet
) -> tuple[Driver, ClientResult]:
    """Register the client driver on ``bus``; returns it and the result it fills in."""
    probe, result = client_driver(count=count, report=report)
    return bus.register_driver(SERVICE_NAME, probe), result


async def run_service(
    bus: Bus, *, count: int = DEFAULT_COUNT, report: Report = _quiet, name: str = SERVICE_NAME
) -> int:
    """Announce the service, echo ``count`` messages, then withdraw it. Returns echoes sent."""
    ep = await bus.create_service(name)
    report(f"announced {name!r} at 0x{ep.addr:x}")
    echoed = 0
    try:
        async for msg in ep:
            await ep.send_to(msg.src, msg.payload)
            echoed += 1
            if echoed >= count:
                break
    finally:
        await ep.aclose()
    report(f"echoed {echoed} messages, service withdrawn")
    return echoed
