"""One parametrised link over every transport backend: the conformance suite's fixtures.

Every test in this folder that takes the ``link`` fixture runs once per backend in
:data:`BACKENDS` and per vring implementation (the ``vring_impl`` fixture of tests/conftest.py:
the pure classes and the C accelerator's). The tests only use what every backend offers: the
public rpmsg API, and for the hostile-peer tests the transport's ``memory``, ``vdev``, ``pool``,
``buffer_size`` and ``kick``. Sizes (ring entries, buffers, MTU) are read from the transports,
never assumed, because ``openamp:`` has OpenAMP's fixed layout.

Adding a backend is one line in :data:`BACKENDS`::

    pytest.param(Backend("vhost-user", vhost_user_urls, host_close_resets=True), id="vhost-user"),

where ``vhost_user_urls`` is a :class:`~.links.UrlFactory` (see links.py): given the test's
:class:`peers.Link` (the ``env`` fixture of tests/conftest.py: unique shm names and socket
paths, checked for leftovers after the test), the layout the test asks for and which role
serves the link, it returns the URL each role opens with :func:`transports.open_transport`.
A backend whose two ends cannot live in different processes says ``cross_process=False`` (its
process-peer tests are then skipped).

Usage (async context managers, not async fixtures, so the buses' task groups live in the
test's own task)::

    async with link.buses() as (host, remote): ...          # two running RpmsgBus
    async with link.transports() as (host_t, remote_t): ...  # two open transport ends
"""

from __future__ import annotations

from typing import Any

import pytest
from peers import Link

from .links import Backend, TransportLink, loop_urls, openamp_urls, shm_urls
from .vhost_user_link import vhost_user_urls

#: Every backend the suite runs on. One line per backend.
BACKENDS = [
    pytest.param(Backend("loop", loop_urls, cross_process=False), id="loop"),
    pytest.param(Backend("shm", shm_urls), id="shm"),
    pytest.param(Backend("openamp", openamp_urls), id="openamp"),
    pytest.param(Backend("vhost-user", vhost_user_urls, host_close_resets=True), id="vhost-user"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend of :data:`BACKENDS` in turn."""
    value: Backend = request.param
    return value


@pytest.fixture
def link(backend: Backend, env: Link, vring_impl: Any) -> TransportLink:
    """Links of each backend, with each vring implementation driving the buses."""
    return TransportLink(backend, env)


@pytest.fixture
def process_link(backend: Backend, env: Link) -> TransportLink:
    """Links of each backend whose ends may live in two processes (others are skipped)."""
    if not backend.cross_process:
        pytest.skip(f"{backend.name}: both ends live in one process")
    return TransportLink(backend, env)
