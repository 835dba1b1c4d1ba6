"""A connected aioamp <-> aioamp pair over ``vhost-user:`` for the transport conformance suite.

The backend (role remote) listens on a socket in a fresh temporary directory; the frontend
(role host) connects and sets the device up over the protocol, with a memfd, eventfds and
SCM_RIGHTS, exactly as against any other backend. While the frontend's setup runs, a task
serves the backend's socket (no bus drives the backend yet). No kernel needed.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from transports import SharedLayout, Transport
from transports.backends.vhost_user.client import connect_vhost_user
from transports.backends.vhost_user.server import listen_vhost_user


@contextlib.asynccontextmanager
async def vhost_user_link(
    layout: SharedLayout | None = None, *, reconnect: bool = False
) -> AsyncIterator[tuple[Transport, Transport]]:
    """``(host, remote)``: a frontend and a backend connected through a unix socket; both are
    closed (and the socket removed) on exit."""
    with tempfile.TemporaryDirectory(prefix="aioamp-vhost-") as tmp:
        path = Path(tmp) / "vhost.sock"
        backend = listen_vhost_user(path, reconnect=reconnect)
        if layout is not None:
            backend.buffer_size = layout.buffer_size
        async with backend:
            frontend = await connect_while_serving(backend, path, layout)
            async with frontend:
                yield frontend, backend


@contextlib.asynccontextmanager
async def serving(backend: Transport) -> AsyncIterator[None]:
    """Serve ``backend``'s socket meanwhile: no bus drives it yet, so nothing else would
    answer a frontend's setup requests."""
    async with anyio.create_task_group() as tg:

        async def serve() -> None:
            while True:
                await backend.wait_notification()

        tg.start_soon(serve)
        yield
        tg.cancel_scope.cancel()


async def connect_while_serving(
    backend: Transport, path: Path, layout: SharedLayout | None = None
) -> Transport:
    """Connect a frontend to ``backend`` (listening on ``path``)."""
    async with serving(backend):
        return await connect_vhost_user(path, layout=layout, timeout=10)
