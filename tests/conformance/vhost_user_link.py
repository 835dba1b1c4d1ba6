"""``vhost-user:`` for the transport conformance suite: aioamp's frontend (the host) and
backend (the remote) as a pair, no kernel needed.

:func:`vhost_user_urls` is the suite's :class:`~.links.UrlFactory`: the backend always
listens on the socket and the frontend connects to it, whichever role "serves"; the frontend
lays the memory out as the test asks (a memfd, sent with the vrings' eventfds by SCM_RIGHTS),
the backend takes that layout from it (the region the frontend sends ends with its pool, so
the backend's buffer window is the pool). It is the suite's ``vhost-user`` backend (conftest.py).

:func:`vhost_user_link` gives the same pair without URLs, for tests of the transport itself.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from peers import Link

from transports import Role, SharedLayout, Transport
from transports.backends.vhost_user.client import connect_vhost_user
from transports.backends.vhost_user.server import listen_vhost_user


def vhost_user_urls(env: Link, layout: SharedLayout, server: Role) -> dict[Role, str]:
    _name, sock = env.new()
    frontend = (
        f"num={layout.num}&align={layout.align}&buffer_size={layout.buffer_size}"
        f"&buffers={layout.buffer_count}"
    )
    return {
        "host": f"vhost-user:{sock}?{frontend}",
        "remote": f"vhost-user:{sock}?buffer_size={layout.buffer_size}",
    }


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
