"""Fixtures and helpers of the shell tests: a sim program registry that forgets what a test
registered, a counting client of the sample service, and both ends of one ``shm://`` link in
this event loop.

The shared ones of every folder (loopback bus pairs, ``wait_until``, the ``link`` of unique shm
names, a processor's echo round trip) are in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from platforms.runtime import programs
from rpmsg import Channel
from rpmsg.channel import Probe
from rpmsg.samples import MESSAGE
from transports import Role
from transports.backends.shm.transport import ShmTransport, open_shm


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Programs registered by the test disappear afterwards; the built-ins stay."""
    monkeypatch.setattr(programs, "_PROGRAMS", dict(programs._PROGRAMS))


def counting_client(runs: list[int], done: anyio.Event, count: int = 100) -> Probe:
    """A driver probe for ``rpmsg-client-sample`` that sends MESSAGE and checks each echo up
    to ``count``; each run (one per channel: a recovered core probes it again) appends the
    echoes it saw to ``runs``, and a run that saw all ``count`` sets ``done``."""

    async def probe(channel: Channel) -> None:
        n = 0
        await channel.send(MESSAGE)
        async for msg in channel:
            assert msg.payload == MESSAGE
            n += 1
            if n < count:
                await channel.send(MESSAGE)
        runs.append(n)
        if n == count:
            done.set()

    return probe


async def open_shm_pair(
    name: str, sock: Path, *, host_listen: bool | None = True, remote_listen: bool | None = None
) -> tuple[ShmTransport, ShmTransport]:
    """Both ends of ``name`` in this event loop, opened concurrently: ``(host, remote)``.
    ``remote_listen`` defaults to the opposite of ``host_listen`` (None for both: auto)."""
    ends: dict[Role, ShmTransport] = {}
    if remote_listen is None and host_listen is not None:
        remote_listen = not host_listen

    async def open_end(role: Role, listen: bool | None) -> None:
        ends[role] = await open_shm(
            name, role=role, listen=listen, socket_path=sock, connect_timeout=5
        )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(open_end, "host", host_listen)
            tg.start_soon(open_end, "remote", remote_listen)
    return ends["host"], ends["remote"]
