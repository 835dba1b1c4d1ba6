"""``rpmsg.open_bus(url, role=...)``: the right running bus for a URL, and its registry.

A transport URL (``loop://``, ``shm://``, ``openamp:``) gets the vring bus over the transport
the URL opens; a scheme registered as a bus (``register_bus``, entry points ``aioamp.buses``)
is used directly. Leaving the context closes the bus and the transport it opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import EntryPoint

import anyio
import pytest
from peers import Link, openamp_url, shm_url

import rpmsg.open
import transports.registry
from rpmsg import (
    Bus,
    Capture,
    MemoryCapture,
    RpmsgBus,
    RpmsgTimeoutError,
    open_bus,
    register_bus,
)
from transports import TransportClosedError, TransportError, loopback_pair, open_transport
from transports.base import Role

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


async def echo_once(host_url: str, remote_url: str) -> tuple[Bus, Bus]:
    """Both ends of one link, each through open_bus in its own task: the remote announces
    "echo" and echoes one message; returns both buses, closed by then."""
    buses: dict[str, Bus] = {}
    done = anyio.Event()

    async def remote_side() -> None:
        async with open_bus(remote_url, role="remote", ready_timeout=5) as bus:
            buses["remote"] = bus
            ep = await bus.create_service("echo")
            msg = await ep.recv(timeout=5)
            await ep.send_to(msg.src, msg.payload)
            await done.wait()

    async def host_side() -> None:
        async with open_bus(host_url, role="host") as bus:
            buses["host"] = bus
            channel = await bus.wait_for_service("echo", timeout=5)
            await channel.send(b"ping")
            assert (await channel.recv(timeout=5)).payload == b"ping"
            done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(remote_side)
            tg.start_soon(host_side)
    return buses["host"], buses["remote"]


def _check_closed(*buses: Bus) -> None:
    for bus in buses:
        assert isinstance(bus, RpmsgBus) and bus.closed and bus.transport.closed


async def test_loop_urls_get_a_vring_bus() -> None:
    host, remote = await echo_once("loop://open-bus", "loop://open-bus")
    assert (host.statistics().role, remote.statistics().role) == ("host", "remote")
    _check_closed(host, remote)


async def test_shm_urls_get_a_vring_bus_with_the_urls_buffer_size(link: Link) -> None:
    name, sock = link.new()
    host, remote = await echo_once(
        *(shm_url(name, sock, buffer_size=256, listen=x) for x in (True, False))
    )
    assert host.mtu == remote.mtu == 256 - 16  # the layout's buffers, as the transport says
    _check_closed(host, remote)


async def test_openamp_urls_get_a_vring_bus(link: Link) -> None:
    name, sock = link.new()
    host, remote = await echo_once(*(openamp_url(name, sock, listen=x) for x in (True, False)))
    _check_closed(host, remote)


async def test_a_failed_start_comes_out_unwrapped_and_closes_the_transport() -> None:
    opened: list[Bus] = []
    with pytest.raises(RpmsgTimeoutError):  # not an ExceptionGroup
        async with open_bus("loop://nobody-home", role="remote", ready_timeout=0.01) as bus:
            opened.append(bus)
    assert opened == []
    # The remote end it opened was closed: the host end of that link sees its peer gone.
    host_end = await open_transport("loop://nobody-home", role="host")
    with pytest.raises(TransportClosedError, match="the remote end closed the link"):
        await host_end.wait_notification()


async def test_an_unknown_scheme_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="unknown transport scheme 'nowhere'"):
        async with open_bus("nowhere://x", role="host"):
            pass


# -- schemes registered as buses ----------------------------------------------------------------
@asynccontextmanager
async def loop_backed_bus(
    url: str,
    *,
    role: Role,
    name: str,
    send_timeout: float | None,
    ready_timeout: float | None,
    capture: Capture | None,
) -> AsyncIterator[Bus]:
    """A bus backend of its own (as the kernel's will be): here, the host end of a fresh
    loopback link with a remote bus serving "echo" on the other end."""
    host_t, remote_t = loopback_pair()
    async with (
        RpmsgBus(host_t, name=name, send_timeout=send_timeout, capture=capture) as host,
        RpmsgBus(remote_t, name=f"{name}-peer", ready_timeout=ready_timeout) as remote,
    ):
        ep = await remote.create_service("echo", callback=lambda e, m: e.try_send_to(m.src, b"!"))
        assert ep.announced
        yield host


async def _ping(scheme: str) -> None:
    async with open_bus(f"{scheme}://anything", role="host", ready_timeout=5) as bus:
        assert isinstance(bus, RpmsgBus) and bus.name == "rpmsg-host"
        channel = await bus.wait_for_service("echo", timeout=5)
        await channel.send(b"?")
        assert (await channel.recv(timeout=5)).payload == b"!"


async def test_a_registered_bus_scheme_is_used_instead_of_a_transport() -> None:
    register_bus("testbus", loop_backed_bus)
    try:
        await _ping("testbus")
    finally:
        del rpmsg.open._FACTORIES["testbus"]


async def test_a_bus_scheme_from_an_entry_point_is_imported_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point = EntryPoint("epbus", f"{__name__}:loop_backed_bus", "aioamp.buses")
    real: Callable[..., object] = rpmsg.open.entry_points

    def points(*, group: str) -> object:
        return [point] if group == "aioamp.buses" else real(group=group)

    for module in (rpmsg.open, transports.registry):  # both look the group up
        monkeypatch.setattr(module, "entry_points", points)
    monkeypatch.delitem(rpmsg.open._FACTORIES, "epbus", raising=False)
    await _ping("epbus")
    assert "epbus" in rpmsg.open._FACTORIES
    monkeypatch.delitem(rpmsg.open._FACTORIES, "epbus")


def test_the_factory_protocol_fits_a_bus_backend() -> None:
    factory: rpmsg.open.BusFactory = loop_backed_bus
    opened = factory("x://", role="host", name="n", send_timeout=1, ready_timeout=1, capture=None)
    assert isinstance(opened, AbstractAsyncContextManager)


async def test_a_bus_scheme_records_into_the_capture_given_to_open_bus() -> None:
    register_bus("testbus", loop_backed_bus)
    capture = MemoryCapture()
    try:
        async with open_bus("testbus://x", role="host", ready_timeout=5, capture=capture) as bus:
            channel = await bus.wait_for_service("echo", timeout=5)
            await channel.send(b"?")
            assert (await channel.recv(timeout=5)).payload == b"!"
    finally:
        del rpmsg.open._FACTORIES["testbus"]
    assert [link.bus for link in capture.links] == ["rpmsg-host"]  # the host bus only
    assert [(r.direction.name, r.payload) for r in capture.records if r.ns is None] == [
        ("TX", b"?"),
        ("RX", b"!"),
    ]
