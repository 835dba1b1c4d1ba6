"""Shared test helpers: a connected loopback bus pair, a polling wait, the loop matrix, and the
vring implementation matrix.

Async tests run under pytest-asyncio (``asyncio_mode = auto``). A test marked
``@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])`` runs once per event loop; every
other async test keeps the single stock asyncio loop.

A test (or module, with ``pytestmark = pytest.mark.usefixtures("vring_impl")``) that uses the
``vring_impl`` fixture runs once with the pure vring classes and once with the C accelerator's,
which the rpmsg rings then use; the accelerator run is skipped where it is not built.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import anyio
import pytest

import rpmsg.rings.host
import rpmsg.rings.remote
from platforms.uml import KernelNotFoundError, find_kernel
from rpmsg import RpmsgBus
from transports import LoopbackTransport, Region, SharedLayout, Transport, loopback_pair
from transports.virtio.vring import PyVringDevice, PyVringDriver

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is an optional extra
    uvloop = None

try:
    from transports import _vring_accel
except ImportError as exc:  # not built (no compiler at install time) or AIOAMP_PURE_PYTHON set
    _vring_accel = None
    ACCEL_MISSING = f"the C accelerator transports._vring_accel is not available: {exc}"
else:
    ACCEL_MISSING = ""


class VringImpl(NamedTuple):
    """One implementation of the vring halves."""

    name: str
    driver: type[Any]  # PyVringDriver or the C VringDriver (same interface)
    device: type[Any]


PURE_VRING = VringImpl("pure", PyVringDriver, PyVringDevice)
#: The C classes (same interface as the pure ones), or None where the accelerator is missing.
ACCEL_VRING: VringImpl | None = (
    None
    if _vring_accel is None
    else VringImpl("accel", _vring_accel.VringDriver, _vring_accel.VringDevice)
)
#: ``pytest.mark.parametrize`` values over both implementations; the C one is skipped with a
#: reason when it is missing.
VRING_IMPLS = [
    pytest.param(PURE_VRING, id="pure"),
    pytest.param(
        ACCEL_VRING, id="accel", marks=pytest.mark.skipif(ACCEL_VRING is None, reason=ACCEL_MISSING)
    ),
]


@pytest.fixture(params=VRING_IMPLS)
def vring_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> VringImpl:
    """Each vring implementation in turn, installed as the one the rpmsg rings construct."""
    impl: VringImpl = request.param
    monkeypatch.setattr(rpmsg.rings.host, "VringDriver", impl.driver)
    monkeypatch.setattr(rpmsg.rings.remote, "VringDevice", impl.device)
    return impl


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


class WrappedEnd(Transport):
    """Another transport end's memory, vdev and notifications, under a separate Transport
    (tests change one thing about an end: hold its notifications, hide its pool, ...). The
    pool is the inner end's unless given; ``pool=None`` hides it."""

    def __init__(self, inner: Transport, *, pool: Region | Literal["inner"] | None = "inner"):
        super().__init__(
            role=inner.role,
            memory=inner.memory,
            vdev=inner.vdev,
            pool=inner.pool if pool == "inner" else pool,
        )
        self.inner = inner
        self.stats = inner.stats
        self.quirks = inner.quirks

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def kick(self, vq: int) -> None:
        self.inner.kick(vq)

    async def wait_notification(self) -> int:
        return await self.inner.wait_notification()

    async def aclose(self) -> None:
        await self.inner.aclose()


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


@pytest.fixture
def kernel() -> Path:
    """The User-Mode Linux kernel binary (``make kernel``); skips (or fails under
    AIOAMP_REQUIRE_KERNEL=1) when it is missing, saying how to build it."""
    try:
        return find_kernel()
    except KernelNotFoundError as exc:
        if os.environ.get("AIOAMP_REQUIRE_KERNEL") == "1":
            pytest.fail(f"AIOAMP_REQUIRE_KERNEL=1 but {exc}")
        pytest.skip(str(exc))


async def _wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(predicate, timeout=2.0)``: poll until true, fail after timeout."""
    return _wait_until
