"""``open_bus("linux:...")``: the bus factory the ``linux`` scheme is registered with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rpmsg.errors import InvalidArgumentError
from rpmsg.protocol import Bus
from rpmsg.tap import Capture
from transports.base import Role

from .bus import LinuxRpmsgBus
from .url import linux_config


@asynccontextmanager
async def open_linux_bus(
    url: str,
    *,
    role: Role,
    name: str,
    send_timeout: float | None,
    ready_timeout: float | None,
    capture: Capture | None = None,
) -> AsyncIterator[Bus]:
    """The kernel bus ``url`` names (:mod:`platforms.linux.url`), running; ``ready_timeout``
    (or the URL's ``timeout``) waits for its control device to appear."""
    config = linux_config(url)
    if role != "host":
        raise InvalidArgumentError(
            f"{url}: the kernel is always the rpmsg host (it runs the rings): open it with "
            f"role='host', not {role!r}"
        )
    bus = LinuxRpmsgBus(
        config.ctrl,
        rproc=config.rproc,
        mtu=config.mtu,
        send_timeout=send_timeout,
        ready_timeout=config.timeout if config.timeout is not None else ready_timeout,
        uevents=config.uevents,
        bind=config.bind,
        name=name,
        capture=capture,
    )
    async with bus:
        yield bus
