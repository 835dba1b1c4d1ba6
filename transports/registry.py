"""Transport URLs: ``open_transport("loop://demo", role="host")``.

Theory of operation: a scheme maps to a factory, imported lazily on first use so that a
missing optional dependency (python-periphery for omap4) or a non-Linux host never breaks
``import transports`` or ``import rpmsg``. Third parties add schemes through the
``aioamp.transports`` entry-point group (the entry point names a factory callable with the
signature of :data:`Factory`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

from .base import Role, Transport
from .errors import TransportError
from .layout import SharedLayout, default_buffer_count

Factory = Callable[[SplitResult, dict[str, str], Role], Awaitable[Transport]]

# scheme -> "module:function", resolved lazily.
_BUILTIN: dict[str, str] = {
    "loop": "transports.loopback_url:open_loopback_url",
    "shm": "transports.shm_url:open_shm_url",
    "openamp": "transports.shm_url:open_openamp_url",
}
_FACTORIES: dict[str, Factory] = {}


def register_transport(scheme: str, factory: Factory) -> None:
    """Make ``scheme://`` URLs open through ``factory``."""
    _FACTORIES[scheme] = factory


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
        error=TransportError,
    )


def layout_from_query(query: dict[str, str], scheme: str) -> SharedLayout:
    """A :class:`SharedLayout` from the ``num``, ``align``, ``buffer_size`` and ``buffers``
    query options shared by the ``loop://`` and ``shm://`` schemes."""
    try:
        num = int(query.get("num", "256"), 0)
        return SharedLayout(
            num=num,
            align=int(query.get("align", "4096"), 0),
            buffer_size=int(query.get("buffer_size", "512"), 0),
            buffer_count=int(query.get("buffers", str(default_buffer_count(num))), 0),
        )
    except ValueError as exc:
        raise TransportError(f"bad {scheme}:// option: {exc}") from exc


async def open_transport(url: str, *, role: Role) -> Transport:
    """Open the ``role`` end of the transport named by ``url``."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise TransportError(f"transport URL {url!r} has no scheme (e.g. loop://NAME)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return await _resolve(parts.scheme)(parts, query, role)
