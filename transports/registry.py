"""Transport URLs: ``open_transport("loop://demo", role="host")``.

Theory of operation: a scheme maps to a factory, imported lazily on first use so that a
missing optional dependency (python-periphery for omap4) or a non-Linux host never breaks
``import transports`` or ``import rpmsg``. Third parties add schemes through the
``aioamp.transports`` entry-point group (the entry point names a factory callable with the
signature of :data:`Factory`). The query string reaches a factory as a dict, an option given
twice already refused; the built-in schemes refuse unknown options too, and
:func:`check_transport_url` runs their checks without opening anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Protocol, TypeVar
from urllib.parse import SplitResult, urlsplit

from .base import Role, Transport
from .errors import TransportURLError
from .url import parse_query
from .virtio.layout import SharedLayout

Factory = Callable[[SplitResult, dict[str, str], Role], Awaitable[Transport]]

# scheme -> "module:function", resolved lazily.
_BUILTIN: dict[str, str] = {
    "loop": "transports.backends.loopback:open_loopback_url",
    "shm": "transports.backends.shm.url:open_shm_url",
    "openamp": "transports.backends.shm.url:open_openamp_url",
    "vhost-user": "transports.backends.vhost_user.url:open_vhost_user_url",
}
_FACTORIES: dict[str, Factory] = {}
# scheme -> "module:function" parsing a built-in scheme's URL into its configuration.
_CONFIGS: dict[str, str] = {
    "loop": "transports.backends.loopback:loop_config",
    "shm": "transports.backends.shm.url:shm_config",
    "openamp": "transports.backends.shm.url:openamp_config",
    "vhost-user": "transports.backends.vhost_user.url:vhost_user_config",
}


class HasLayout(Protocol):
    """A parsed URL configuration: at least the memory layout it implies."""

    @property
    def layout(self) -> SharedLayout: ...


def register_transport(scheme: str, factory: Factory) -> None:
    """Make ``scheme://`` URLs open through ``factory`` (whose options only it knows)."""
    _FACTORIES[scheme] = factory
    _CONFIGS.pop(scheme, None)


F = TypeVar("F")


def resolve_lazily(
    kind: str,
    *,
    builtin: dict[str, str],
    cache: dict[str, F],
    group: str,
    what: str,
    error: Callable[[str], Exception],
) -> F:
    """The factory registered for ``kind``: from ``cache``, else a ``"module:attr"`` of
    ``builtin`` imported now, else the entry point ``kind`` of ``group``. Missing kinds and
    failed imports become ``error(message)``. Shared by the transport and platform registries.
    """
    if kind in cache:
        return cache[kind]
    target = builtin.get(kind)
    if target is None:
        for ep in entry_points(group=group):
            if ep.name == kind:
                found: F = ep.load()
                cache[kind] = found
                return found
        known = sorted({*builtin, *cache, *(ep.name for ep in entry_points(group=group))})
        raise error(f"unknown {what} {kind!r} (known: {', '.join(known)})")
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{what} {kind!r} is unavailable: {exc}") from exc
    factory: F = getattr(module, attr)
    cache[kind] = factory
    return factory


def _resolve(scheme: str) -> Factory:
    return resolve_lazily(
        scheme,
        builtin=_BUILTIN,
        cache=_FACTORIES,
        group="aioamp.transports",
        what="transport scheme",
        error=TransportURLError,
    )


def _split(url: str) -> tuple[SplitResult, dict[str, str]]:
    parts = urlsplit(url)
    if not parts.scheme:
        raise TransportURLError(f"transport URL {url!r} has no scheme (e.g. loop://NAME)")
    return parts, parse_query(parts.query)


def check_transport_url(url: str) -> SharedLayout | None:
    """Validate ``url`` without opening anything: a known scheme and, for the built-in ones,
    known options with valid values. Returns the memory layout the URL implies (so a caller
    can check payload sizes against ``layout.buffer_size`` first), or None for a scheme
    registered by a third party, whose options only its factory knows.

    Raises:
        TransportURLError: the URL is malformed, its scheme unknown, or an option is unknown,
            given twice or invalid.
    """
    config = transport_config(url)
    return None if config is None else config.layout


def transport_config(url: str) -> HasLayout | None:
    """What a built-in scheme's ``url`` says (its layout, and per scheme more: ``shm://``'s
    ``socket``, ...), validated without opening anything; None for a third party's scheme.

    Raises:
        TransportURLError: as :func:`check_transport_url`.
    """
    parts, query = _split(url)
    _resolve(parts.scheme)  # an unknown scheme fails here
    target = _CONFIGS.get(parts.scheme)
    if target is None:
        return None
    module_name, attr = target.split(":")
    config: HasLayout = getattr(importlib.import_module(module_name), attr)(parts, query)
    return config


async def open_transport(url: str, *, role: Role) -> Transport:
    """Open the ``role`` end of the transport named by ``url``."""
    parts, query = _split(url)
    transport = await _resolve(parts.scheme)(parts, query, role)
    transport.url = url
    return transport
