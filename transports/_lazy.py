"""Lazy re-exports for a package ``__init__``: its public API by name, each imported from its
module on first use, so importing one pure module of the package (``remoteproc.lifecycle``)
does not load the package's shell (asyncio, anyio, sockets).

Typing sees the names through the ``__init__``'s ``if TYPE_CHECKING:`` imports; the layering
tests check that those, ``__all__`` and the map given here agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping


def lazy_exports(
    namespace: MutableMapping[str, object], exports: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], object], list[str]]:
    """A module ``__getattr__`` for the package whose globals are ``namespace``, and its
    ``__all__``. ``exports`` maps each (relative) module to the names it provides."""
    package = str(namespace["__name__"])
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups find it without this function
        return value

    return __getattr__, sorted(where)
