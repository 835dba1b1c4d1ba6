"""Links for the conformance suite: how each backend's two ends are made, as URLs, and the
``link`` fixture's object (fresh transports or running buses on demand).

A backend is a :class:`Backend`: a name and a :class:`UrlFactory`. Everything is opened with
:func:`transports.open_transport`, so a backend that has a URL scheme needs nothing else here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

import anyio
import attrs
from peers import Link

from rpmsg import RpmsgBus
from transports import Role, SharedLayout, Transport, open_transport

from .support import LAYOUT, OPEN_TIMEOUT, ROLES, WAIT

T = TypeVar("T")


class UrlFactory(Protocol):
    """``(env, layout, server) -> {"host": URL, "remote": URL}``: the URLs the two ends of one
    fresh link open with :func:`transports.open_transport`, in this process or in a
    ``tests/peers.py`` process. ``env`` hands out unique names (:meth:`peers.Link.new`),
    ``layout`` is what the test asks for (a backend with a fixed layout ignores it) and
    ``server`` is the role that creates the link where one side must (shm: the socket
    server, which creates and removes the shared object)."""

    def __call__(self, env: Link, layout: SharedLayout, server: Role) -> dict[Role, str]: ...


@attrs.frozen
class Backend:
    """A transport backend under test: its name and how to make a link's URLs."""

    name: str
    urls: UrlFactory
    #: Whether one end may live in another OS process (tests/peers.py).
    cross_process: bool = True
    #: Whether closing the host's end resets the device before the link goes (vhost-user:
    #: the frontend disables its vrings, as Linux does at halt), so that the remote removes
    #: the host's channels first.
    host_close_resets: bool = False


def _layout_query(layout: SharedLayout) -> str:
    return (
        f"num={layout.num}&align={layout.align}"
        f"&buffer_size={layout.buffer_size}&buffers={layout.buffer_count}"
    )


def loop_urls(env: Link, layout: SharedLayout, server: Role) -> dict[Role, str]:
    name, _ = env.new()
    url = f"loop://{name}?{_layout_query(layout)}"
    return {"host": url, "remote": url}


def _socket_urls(base: str, server: Role) -> dict[Role, str]:
    return {role: f"{base}&listen={int(role == server)}" for role in ROLES}


def shm_urls(env: Link, layout: SharedLayout, server: Role) -> dict[Role, str]:
    name, sock = env.new()
    return _socket_urls(f"shm://{name}?socket={sock}&{_layout_query(layout)}", server)


def openamp_urls(env: Link, layout: SharedLayout, server: Role) -> dict[Role, str]:
    """OpenAMP's Linux machine layout (fixed: ``layout`` is ignored), on unique names."""
    name, sock = env.new()
    return _socket_urls(f"openamp:?shm={name}&socket={sock}", server)


@attrs.frozen
class Ends(Generic[T]):
    """The host's and the remote's side of something; unpacks as ``(host, remote)``."""

    host: T
    remote: T

    def __getitem__(self, role: Role) -> T:
        return self.host if role == "host" else self.remote

    def __iter__(self) -> Iterator[T]:
        return iter((self.host, self.remote))


async def open_ends(urls: dict[Role, str]) -> Ends[Transport]:
    """Both ends of a link, opened concurrently (a socket server waits for its client);
    on failure whatever opened is closed again."""
    opened: dict[Role, Transport] = {}

    async def open_one(role: Role) -> None:
        opened[role] = await open_transport(urls[role], role=role)

    try:
        with anyio.fail_after(OPEN_TIMEOUT):
            async with anyio.create_task_group() as tg:
                for role in ROLES:
                    tg.start_soon(open_one, role)
    except BaseException:
        for transport in opened.values():
            await transport.aclose()
        raise
    return Ends(opened["host"], opened["remote"])


@attrs.frozen
class TransportLink:
    """One backend's links for one test: fresh transports or running buses on demand."""

    backend: Backend
    env: Link

    def urls(self, layout: SharedLayout = LAYOUT, server: Role = "host") -> dict[Role, str]:
        return self.backend.urls(self.env, layout, server)

    @asynccontextmanager
    async def transports(self, layout: SharedLayout = LAYOUT) -> AsyncIterator[Ends[Transport]]:
        """Both ends of a fresh link, open; closed on exit."""
        ends = await open_ends(self.urls(layout))
        async with ends.host, ends.remote:
            yield ends

    @asynccontextmanager
    async def buses(
        self, layout: SharedLayout = LAYOUT, **bus_kw: Any
    ) -> AsyncIterator[Ends[RpmsgBus]]:
        """An ``RpmsgBus`` running on each end of a fresh link (the remote's started once
        the host set DRIVER_OK); both buses and both transports closed on exit."""
        async with self.transports(layout) as ends, AsyncExitStack() as stack:
            host = await stack.enter_async_context(RpmsgBus(ends.host, name="host", **bus_kw))
            remote = await stack.enter_async_context(
                RpmsgBus(ends.remote, name="remote", ready_timeout=WAIT, **bus_kw)
            )
            yield Ends(host, remote)
