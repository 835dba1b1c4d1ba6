"""Which modules of the per-message path setup.py compiles with mypyc, and the switch back to
their pure sources.

mypyc compiles each listed module from its own ``mypy --strict`` clean source into an
extension beside it, which Python's import prefers to the ``.py``. The sources stay the
reference: with ``AIOAMP_PURE_PYTHON`` set (non-empty, not ``"0"``, as for the C vrings) a
finder placed first on ``sys.meta_path`` loads them instead, so one install runs either way
(tests/unit/test_compiled_path.py compares the two). In a source checkout the same happens
when a source is newer than the build (:func:`stale`): an edit takes effect at once instead of
the stale extension running the old code.

What stays out, and why (mypyc refuses or changes it): :mod:`rpmsg.endpoint` (a compiled
function checks its arguments' annotated types itself, so ``send_to(1.5, ...)`` would raise a
bare TypeError instead of AddressTypeError; its per-message receive side is compiled from
:mod:`rpmsg.endpoint_rx`, and the compiled functions that take a caller's value unchecked
annotate it ``object`` and check it themselves); :mod:`transports.base` (its
``Transport`` is subclassed by interpreted backends and tests); :mod:`rpmsg.core` (its attrs
classes crashed the compiled module at import); :mod:`rpmsg.message` (attrs fields with
converters fail at class creation). Stdlib only: setup.py imports this file on its own.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

#: The compiled modules (setup.py builds them as one group, all or nothing).
COMPILED = (
    "rpmsg.busy_poll",
    "rpmsg.endpoint_rx",
    "rpmsg.receive",
    "rpmsg.rings.base",
    "rpmsg.rings.host",
    "rpmsg.rings.remote",
    "rpmsg.vring_port",
    "transports.backends.loopback",
    "transports.doorbell",
)
#: The mypyc group: its shared runtime is the extension ``transports._path__mypyc``.
GROUP = "transports._path"


def pure_requested() -> bool:
    return os.environ.get("AIOAMP_PURE_PYTHON", "") not in ("", "0")


class _PureSources(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` source of a compiled module where the extension would be found."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return spec
        source = Path(spec.origin).with_name(fullname.rpartition(".")[2] + ".py")
        return importlib.util.spec_from_file_location(fullname, source)


def stale(root: Path) -> bool:
    """Whether, in the source checkout at ``root`` (it has setup.py; an installed package has
    not), a compiled module's source changed after the group was built: its extension would
    run the old code, so the whole group (they call each other natively) runs from source
    until ``pip install -e .`` builds it again."""
    if not (root / "setup.py").is_file():
        return False
    runtimes = list((root / "transports").glob("_path__mypyc.*"))
    if not runtimes:
        return False
    built = min(p.stat().st_mtime for p in runtimes)
    for name in COMPILED:
        source = root.joinpath(*name.split(".")).with_suffix(".py")
        if source.is_file() and source.stat().st_mtime > built:
            return True
    return False


#: Why the pure sources run, once :func:`install` decided they do (None: they do not).
pure_reason: str | None = None


def install() -> None:
    """The pure sources from now on (once per process) under ``AIOAMP_PURE_PYTHON``, or when
    the compiled group is older than a source in a checkout (:func:`stale`)."""
    global pure_reason
    if any(isinstance(f, _PureSources) for f in sys.meta_path):
        return
    if pure_requested():
        pure_reason = f"AIOAMP_PURE_PYTHON={os.environ['AIOAMP_PURE_PYTHON']}"
    elif stale(Path(__file__).resolve().parent.parent):
        pure_reason = "compiled before their sources last changed: pip install -e . again"
    else:
        return
    sys.meta_path.insert(0, _PureSources())


def active() -> bool:
    """Whether the compiled modules run in this process (built, and not switched off)."""
    if any(isinstance(f, _PureSources) for f in sys.meta_path):
        return False
    return importlib.util.find_spec(GROUP + "__mypyc") is not None
