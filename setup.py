"""The compiled parts of aioamp; everything else is in pyproject.toml.

Both are optional: where one does not build (no compiler, no Python headers, no mypyc) the
install goes on and the pure Python modules run, as they do with ``AIOAMP_PURE_PYTHON=1``.

* ``transports._vring_accel``: the C vrings (see :mod:`transports.virtio.vring`).
* The per-message path compiled by mypyc from the same, ``mypy --strict`` clean sources
  (:data:`transports._compiled.COMPILED` lists them; issue 15 says why mypyc and not
  hand-written C). Their shared runtime is one extension inside the package
  (``transports._path__mypyc``), so an editable install finds it too.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiled_list() -> tuple[tuple[str, ...], str]:
    """transports/_compiled.py's COMPILED and GROUP (its package cannot be imported here)."""
    path = Path(__file__).parent / "transports" / "_compiled.py"
    spec = importlib.util.spec_from_file_location("_aioamp_compiled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COMPILED, module.GROUP


COMPILED, GROUP = _compiled_list()

VRING_ACCEL = Extension(
    "transports._vring_accel",
    sources=["transports/_vring_accel.c"],
    depends=["transports/_vring_accel.c"],
    extra_compile_args=["-std=c11", "-fno-strict-aliasing", "-Wall", "-Wextra"],
    optional=True,
)


def _mypyc_extensions() -> list[Extension]:
    if os.environ.get("AIOAMP_NO_MYPYC", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("aioamp: mypyc not available, the per-message path stays pure Python")
        return []
    paths = [name.replace(".", "/") + ".py" for name in COMPILED]
    try:
        exts: list[Extension] = mypycify(paths, group_name=GROUP, opt_level="3")
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error: pure Python
        print(f"aioamp: mypyc failed ({exc!r}), the per-message path stays pure Python")
        return []
    return exts


class OptionalBuildExt(build_ext):  # type: ignore[misc]  # setuptools is untyped here
    """Builds the mypyc group all or nothing: a module's extension without the group's shared
    runtime would fail at import instead of falling back to its pure source."""

    def build_extensions(self) -> None:
        mypyc: list[Extension] = [ext for ext in self.extensions if ext is not VRING_ACCEL]
        try:
            for ext in mypyc:
                self.build_extension(ext)
        except Exception as exc:
            print(f"aioamp: building the mypyc modules failed ({exc}): pure Python instead")
            for ext in mypyc:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            mypyc = []  # nothing of theirs to copy into the tree or the wheel
        self.extensions = [VRING_ACCEL]
        super().build_extensions()
        self.extensions = [VRING_ACCEL, *mypyc]


kwargs: dict[str, Any] = {
    "ext_modules": [VRING_ACCEL, *_mypyc_extensions()],
    "cmdclass": {"build_ext": OptionalBuildExt},
}
setup(**kwargs)
