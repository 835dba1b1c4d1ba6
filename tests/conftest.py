"""Shared test helpers of every folder: the loop matrix, the vring implementation matrix, a
connected loopback bus pair, a polling wait and loop turns, shared-memory names checked for
leftovers, a remote processor's echo round trip and first transitions, and a core of the
OMAP4 model with the platform that drives it.

Test modules import the plain helpers (``from conftest import NO_DROPS``): ``tests/`` is on
``sys.path`` and this file is the only top-level ``conftest`` module (the folders are packages,
so their own conftest files are ``shell.conftest`` and so on).

Async tests run under pytest-asyncio (``asyncio_mode = auto``). A test marked
``@pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])`` runs once per event loop; every
other async test keeps the single stock asyncio loop.

The modules marked ``trio`` (``pytestmark``) run a second time under anyio's trio backend:
``make test-trio`` (part of ``make test``) runs ``-m "trio and not asyncio_only"`` with
pytest-asyncio off (``-p no:asyncio``) and anyio's plugin in auto mode, so the same unmodified
tests drive the library on trio. ``asyncio_only`` marks a test of asyncio itself (handler mode,
its tasks or loop), which the trio run leaves out.

A test (or module, with ``pytestmark = pytest.mark.usefixtures("vring_impl")``) that uses the
``vring_impl`` fixture runs once with the pure vring classes and once with the C accelerator's,
which the rpmsg rings then use; the accelerator run is skipped where it is not built.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

import anyio
import anyio.lowlevel
import pytest
from peers import Link

import rpmsg.rings.host
import rpmsg.rings.remote
from platforms.pandaboard.driver import PandaBoardPlatform, PandaStatistics
from platforms.pandaboard.model import CoreModel, OmapModel
from platforms.runtime import Faults
from remoteproc.firmware import FirmwareImage
from remoteproc.lifecycle import Transition
from remoteproc.rproc import RemoteProc
from rpmsg import DROP_REASONS, RpmsgBus
from rpmsg.samples import ClientResult
from transports import LoopbackTransport, Region, Role, SharedLayout, Transport, loopback_pair
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


@pytest.hookimpl(optionalhook=True)  # pytest-asyncio's hook: absent from the trio run
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


def pytest_configure(config: pytest.Config) -> None:
    if in_trio_run(config):  # keep pytest-asyncio's marks valid
        config.addinivalue_line("markers", "asyncio: pytest-asyncio's mark (off in this run)")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The backend of anyio's pytest plugin, which runs the async tests only in the trio run
    (``make test-trio``, pytest-asyncio off): trio."""
    return "trio"


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


# -- rpmsg, polling, loop turns -----------------------------------------------------------------
#: A bus's drop counters when nothing was dropped.
NO_DROPS = dict.fromkeys(DROP_REASONS, 0)
ROLES: tuple[Role, Role] = ("host", "remote")


def other(role: Role) -> Role:
    return "remote" if role == "host" else "host"


#: The type of the ``wait_until`` fixture.
WaitUntil = Callable[..., Awaitable[None]]


async def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


@pytest.fixture
def wait_until() -> WaitUntil:
    """``await wait_until(predicate, timeout=10.0)``: poll until true; the deadline only stops
    a hung test (nothing here is timed)."""
    return _wait_until


def in_trio_run(config: pytest.Config) -> bool:
    """Whether this is the trio run (``make test-trio``): pytest-asyncio is off."""
    return not config.pluginmanager.has_plugin("asyncio")


def running_tasks() -> set[int]:
    """The ids of the tasks of the running event loop, on asyncio and trio alike: what a test
    compares to find a task left behind."""
    return {task.id for task in anyio.get_running_tasks()}


async def loop_turns(count: int) -> None:
    """Let the event loop run ``count`` times: what was ready runs, nothing timed."""
    for _ in range(count):
        await anyio.lowlevel.checkpoint()


async def within_loop_turns(predicate: Callable[[], bool], turns: int = 20) -> None:
    """Let the event loop run until ``predicate()`` holds, which must take at most ``turns``
    turns: "promptly", measured without a clock (no timer or poll can be in between)."""
    for _ in range(turns):
        if predicate():
            return
        await anyio.lowlevel.checkpoint()
    assert predicate(), f"not within {turns} event-loop turns"


# -- shared-memory links -------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path: Path) -> Iterator[Link]:
    """Unique shm object names and doorbell sockets for the test (:class:`peers.Link`), and the
    peer processes it starts; afterwards no object, socket or ``SOCKET.lock`` may be left."""
    lk = Link(tmp_path)
    yield lk
    assert lk.finish() == [], "shared-memory objects, sockets or lock files left behind"


@pytest.fixture
def link(env: Link) -> Link:
    """``env`` by the name the shared-memory tests use (tests/conformance/ has its own ``link``,
    a link over each backend, built on ``env``)."""
    return env


# -- remote processors ---------------------------------------------------------------------------
async def echo_round_trip(rp: RemoteProc, payload: bytes = b"ping", timeout: float = 10.0) -> None:
    """``payload`` through the processor's ``rpmsg-echo`` service and back, unchanged."""
    channel = await rp.wait_for_service("rpmsg-echo", timeout=timeout)
    await channel.send(payload)
    assert (await channel.recv(timeout=timeout)).payload == payload


async def boot_watching(rp: RemoteProc, count: int, timeout: float = 10.0) -> list[Transition]:
    """Boot ``rp`` and return its first ``count`` state transitions from then on."""
    seen: list[Transition] = []
    async with rp.transitions() as stream:
        await rp.boot()
        with anyio.fail_after(timeout):
            while len(seen) < count:
                seen.append(await anext(stream))
    return seen


def labels(transitions: Iterable[Transition]) -> list[tuple[str, str]]:
    """``(old, new)`` state labels of each transition."""
    return [(t.old.label, t.new.label) for t in transitions]


def omap_processor(
    model: OmapModel, name: str, image: FirmwareImage, *, faults: Faults | None = None
) -> tuple[CoreModel, PandaBoardPlatform]:
    """The OMAP4 model's core ``name`` with ``image`` installed (and ``faults`` injected), and
    the PandaBoard platform driving it, on a board of its own."""
    core = model.core(name)
    core.install(image, faults=faults)
    return core, model.board().platform(name)


async def client_sample_completes(
    rp: RemoteProc, plat: PandaBoardPlatform, result: ClientResult
) -> PandaStatistics:
    """The core's ``rpmsg-client-sample`` is announced at 0x400 and runs its 100 exchanges
    with the driver that fills ``result``; the platform counted every kick both ways and
    nothing unknown. Returns the platform's statistics."""
    channel = await rp.wait_for_service("rpmsg-client-sample", timeout=10)
    assert channel.dst == 0x400
    await _wait_until(lambda: result.finished)
    assert result.replies == 100 and result.payloads_ok
    assert "echoed 100 messages" in rp.trace(0)
    stats = plat.statistics()
    assert stats.kicks_sent >= 100 and stats.vq_interrupts >= 100 and stats.unknown == 0
    return stats
