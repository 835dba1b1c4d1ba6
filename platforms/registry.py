"""Platform drivers by name: ``create_platform("sim", name="m3", process=True)``.

Theory of operation: like transport URLs, platform kinds map to factories imported lazily, so
a missing optional dependency (python-periphery for the PandaBoard, unicorn for ``emu``) only
matters when that kind is asked for. Third parties add kinds through the ``aioamp.platforms``
entry-point group (the entry point names a callable returning a
:class:`~remoteproc.platform.PlatformDriver`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from remoteproc.errors import RemoteprocError
from remoteproc.platform import PlatformDriver
from transports.registry import resolve_lazily

Factory = Callable[..., PlatformDriver]

_BUILTIN: dict[str, str] = {
    "sim": "platforms.sim.platform:SimPlatform",
    "emu": "platforms.emu.platform:EmuPlatform",
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
    return resolve_lazily(
        kind,
        builtin=_BUILTIN,
        cache=_FACTORIES,
        group="aioamp.platforms",
        what="platform",
        error=PlatformUnavailableError,
    )


def create_platform(kind: str, **options: Any) -> PlatformDriver:
    """A new platform driver of ``kind`` built with ``options``."""
    return _resolve(kind)(**options)
