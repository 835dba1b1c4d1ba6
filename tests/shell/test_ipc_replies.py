"""aioamp echo's replies on a bus that hides sources (aioamp.ipc._Replies): the watcher of the
peer's channel ends the session when the channel goes, in order or with its bus, and never
raises into the echo's task group (which would turn an orderly end into exit status 1)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from aioamp.ipc import _Replies


async def test_a_channel_that_ends_with_its_bus_ends_the_session_quietly(
    bus_pair: Callable[..., AbstractAsyncContextManager[Any]],
) -> None:
    async with bus_pair() as (host, remote, _h, _r):
        await remote.create_service("svc")
        channel = await host.wait_for_service("svc", timeout=5)
        ended = anyio.Event()
        replies = _Replies(host, channel.endpoint, "svc", 5)
        replies.ended = ended.set
        async with anyio.create_task_group() as tg:
            tg.start_soon(replies._until_removed, channel)
            await anyio.wait_all_tasks_blocked()
            host.fail(ConnectionResetError("the device went away"))  # as a removed ctrl does
            with anyio.fail_after(5):
                await ended.wait()
