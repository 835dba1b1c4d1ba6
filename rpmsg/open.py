"""``open_bus(url, role=...)``: a running rpmsg bus for a URL, whatever runs it. Shell.

Theory of operation: a URL scheme is either registered as a *bus* (a backend that runs the rpmsg
bus itself, such as the Linux kernel's rpmsg char devices, where the kernel is the host) or it
names a transport (``loop://``, ``shm://``, ``openamp:``): the transport is then opened with
:func:`transports.open_transport` and driven by the vring bus
(:class:`~rpmsg.vring_bus.RpmsgBus`). Bus schemes come from :func:`register_bus` and from the
entry-point group ``aioamp.buses``; built-in ones are ``"module:attr"`` strings imported on
first use, so a missing optional backend never breaks ``import rpmsg``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import entry_points
from typing import Protocol
from urllib.parse import urlsplit

from transports.base import Role
from transports.registry import open_transport, resolve_lazily

from .core_bus import DEFAULT_SEND_TIMEOUT
from .errors import RpmsgError
from .protocol import Bus
from .tap import Capture
from .vring_bus import RpmsgBus

#: The entry-point group naming bus factories by URL scheme.
GROUP = "aioamp.buses"


class BusFactory(Protocol):
    """Opens the ``role`` end of the bus named by ``url``; the context manager yields it
    running and closes it on exit. The bus records its link into ``capture`` and the
    process-wide captures (:mod:`rpmsg.tap`)."""

    def __call__(
        self,
        url: str,
        *,
        role: Role,
        name: str,
        send_timeout: float | None,
        ready_timeout: float | None,
        capture: Capture | None,
    ) -> AbstractAsyncContextManager[Bus]: ...


# scheme -> "module:attr", resolved lazily (a string: rpmsg imports no platform).
_BUILTIN: dict[str, str] = {"linux": "platforms.linux.open:open_linux_bus"}
_FACTORIES: dict[str, BusFactory] = {}


def register_bus(scheme: str, factory: BusFactory) -> None:
    """Make ``scheme:`` URLs open through ``factory`` instead of a transport."""
    _FACTORIES[scheme] = factory


def is_bus_scheme(scheme: str) -> bool:
    """Whether ``scheme:`` URLs name a bus (registered, built in, or an entry point) rather
    than a transport."""
    return (
        scheme in _FACTORIES
        or scheme in _BUILTIN
        or any(ep.name == scheme for ep in entry_points(group=GROUP))
    )


def _bus_factory(scheme: str) -> BusFactory | None:
    """The factory of a scheme registered as a bus, or None (a transport scheme)."""
    if not is_bus_scheme(scheme):
        return None
    return resolve_lazily(
        scheme,
        builtin=_BUILTIN,
        cache=_FACTORIES,
        group=GROUP,
        what="bus scheme",
        error=RpmsgError,
    )


@asynccontextmanager
async def open_bus(
    url: str,
    *,
    role: Role,
    name: str | None = None,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    ready_timeout: float | None = None,
    capture: Capture | None = None,
) -> AsyncIterator[Bus]:
    """``async with open_bus("shm://demo", role="host") as bus:`` the ``role`` end of the bus
    named by ``url``, running; closed (with its transport, if it opened one) on exit.

    Args:
        url: a bus scheme's URL, or a transport URL (``loop://NAME``, ``shm://NAME``,
            ``openamp:``), whose layout (buffer size included) the vring bus then uses.
        role: ``"host"`` or ``"remote"``.
        name: a label for logs (default: ``rpmsg-<role>``).
        send_timeout: as for :class:`~rpmsg.vring_bus.RpmsgBus`.
        ready_timeout: as for :class:`~rpmsg.vring_bus.RpmsgBus`.
        capture: record every message of the link there (:mod:`rpmsg.tap`), as well as in
            the process-wide captures.

    Raises:
        TransportError: the URL names no transport or bus scheme, or opening it failed.
        RpmsgTimeoutError: remote role: the host did not set DRIVER_OK within
            ``ready_timeout``.
    """
    label = name if name is not None else f"rpmsg-{role}"
    scheme = urlsplit(url).scheme
    factory = _bus_factory(scheme) if scheme else None
    if factory is not None:
        opened = factory(
            url,
            role=role,
            name=label,
            send_timeout=send_timeout,
            ready_timeout=ready_timeout,
            capture=capture,
        )
        async with opened as bus:
            yield bus
        return
    transport = await open_transport(url, role=role)
    async with (
        transport,
        RpmsgBus(
            transport,
            name=label,
            send_timeout=send_timeout,
            ready_timeout=ready_timeout,
            capture=capture,
        ) as vring_bus,
    ):
        yield vring_bus
