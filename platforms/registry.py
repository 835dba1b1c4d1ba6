"""Platform drivers by name: ``create_platform("sim", name="m3", process=True)``.

Theory of operation: like transport URLs, platform kinds map to factories imported lazily, so
a missing optional dependency (python-periphery for the PandaBoard) only matters when that kind
is asked for. Third parties add kinds through the ``aioamp.platforms`` entry-point group (the
entry point names a callable returning a :class:`~remoteproc.platform.PlatformDriver`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from remoteproc.errors import RemoteprocError
from remoteproc.platform import PlatformDriver

Factory = Callable[..., PlatformDriver]

_BUILTIN: dict[str, str] = {
    "sim": "platforms.sim.platform:SimPlatform",
}
_FACTORIES: dict[str, Factory] = {}


class PlatformUnavailableError(RemoteprocError, LookupError):
    """No such platform kind, or its optional dependencies are missing."""


def register_platform(kind: str, factory: Factory) -> None:
    """Make ``create_platform(kind, ...)`` call ``factory``."""
    _FACTORIES[kind] = factory


def platform_kinds() -> list[str]:
    names = {*_BUILTIN, *_FACTORIES}
    names.update(ep.name for ep in entry_points(group="aioamp.platforms"))
    return sorted(names)


def _resolve(kind: str) -> Factory:
    if kind in _FACTORIES:
        return _FACTORIES[kind]
    target = _BUILTIN.get(kind)
    if target is None:
        for ep in entry_points(group="aioamp.platforms"):
            if ep.name == kind:
                factory: Factory = ep.load()
                _FACTORIES[kind] = factory
                return factory
        raise PlatformUnavailableError(
            f"unknown platform {kind!r} (known: {', '.join(platform_kinds())})"
        )
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PlatformUnavailableError(f"platform {kind!r} is unavailable: {exc}") from exc
    factory = getattr(module, attr)
    _FACTORIES[kind] = factory
    return factory


def create_platform(kind: str, **options: Any) -> PlatformDriver:
    """A new platform driver of ``kind`` built with ``options``."""
    return _resolve(kind)(**options)
