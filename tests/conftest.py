"""Shared test helpers: a connected loopback bus pair, a polling wait, and the loop matrix.

Async tests run under pytest-asyncio (``asyncio_mode = auto``). A test marked
``@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])`` runs once per event loop; every
other async test keeps the single stock asyncio loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest

from rpmsg import RpmsgBus
from transports import LoopbackTransport, SharedLayout, loopback_pair

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is an optional extra
    uvloop = None


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    marker = item.get_closest_marker("asyncio")
    wanted = marker.kwargs.get("loop_factories", ()) if marker is not None else ()
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if "uvloop" in wanted and uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


BusPair = tuple[RpmsgBus, RpmsgBus, LoopbackTransport, LoopbackTransport]


@asynccontextmanager
async def _bus_pair(layout: SharedLayout | None = None, **bus_kw: Any) -> AsyncIterator[BusPair]:
    host_t, remote_t = loopback_pair(layout)
    async with (
        RpmsgBus(host_t, name="host", **bus_kw) as host,
        RpmsgBus(remote_t, name="remote", ready_timeout=5, **bus_kw) as remote,
    ):
        yield host, remote, host_t, remote_t


@pytest.fixture
def bus_pair() -> Callable[..., AbstractAsyncContextManager[BusPair]]:
    """``async with bus_pair(layout, **bus_kw) as (host, remote, host_t, remote_t)``: both
    buses started over a fresh loopback pair (an async context manager, not an async fixture,
    so the buses' task groups live in the test's own task)."""
    return _bus_pair


async def _wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(predicate, timeout=2.0)``: poll until true, fail after timeout."""
    return _wait_until
