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


def _resolve(scheme: str) -> Factory:
    if scheme in _FACTORIES:
        return _FACTORIES[scheme]
    target = _BUILTIN.get(scheme)
    if target is None:
        for ep in entry_points(group="aioamp.transports"):
            if ep.name == scheme:
                factory: Factory = ep.load()
                _FACTORIES[scheme] = factory
                return factory
        known = sorted({*_BUILTIN, *_FACTORIES})
        raise TransportError(f"unknown transport scheme {scheme!r} (known: {', '.join(known)})")
    module_name, func = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransportError(f"transport {scheme!r} is unavailable: {exc}") from exc
    factory = getattr(module, func)
    _FACTORIES[scheme] = factory
    return factory


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
