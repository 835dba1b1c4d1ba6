"""Packages re-export their public API with __all__; the lazy ones stay consistent.

A lazy package ``__init__`` names each export three times on purpose: in the map its module
``__getattr__`` imports from, in ``__all__`` (computed from that map) and in the
``if TYPE_CHECKING:`` imports that type checkers read. These tests keep the three equal.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "transports",
    "rpmsg",
    "rpmsg.capture",
    "remoteproc",
    "platforms",
    "platforms.sim",
    "platforms.pandaboard",
    "platforms.runtime",
]
#: Packages whose __init__ re-exports through transports._lazy.lazy_exports.
LAZY = ["transports", "rpmsg", "rpmsg.capture", "remoteproc", "platforms"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def _type_checking_names(package: str) -> set[str]:
    path = ROOT / package.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    names: set[str] = set()
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: re-export as itself"
            names.add(alias.name)
    return names


@pytest.mark.parametrize("package", LAZY)
def test_lazy_exports_agree_with_what_type_checkers_see(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == _type_checking_names(package)


@pytest.mark.parametrize("package", LAZY)
def test_a_lazy_package_imports_nothing_until_asked(package: str) -> None:
    ours = (  # a subpackage (rpmsg.capture) loads its parent's lazy __init__, and itself
        "sorted(m for m in sys.modules if m.split('.')[0] in PKGS and '.' in m "
        f"and m != {package!r})"
    )
    code = f"import sys, {package}; PKGS = {LAZY!r}; print({ours})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The helpers every lazy __init__ uses (transports' picks the compiled or the pure path);
    # nothing else of ours until a name is asked for.
    assert out.stdout.strip() == "['transports._compiled', 'transports._lazy']"
    heavy = "sorted({'asyncio', 'anyio', 'socket', 'selectors', 'mmap'} & set(sys.modules))"
    code = f"import sys, {package}; print({heavy})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", LAZY)
def test_the_lazy_names_come_from_their_modules(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        defined_in = getattr(value, "__module__", None)
        if isinstance(defined_in, str) and defined_in.startswith(package + "."):
            assert getattr(sys.modules[defined_in], name, value) is value, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    import remoteproc

    with pytest.raises(AttributeError, match="module 'remoteproc' has no attribute 'Nope'"):
        remoteproc.Nope  # noqa: B018


def test_the_readme_names_come_from_the_packages() -> None:
    from platforms.sim import SimPlatform, build_sample_image, register_program
    from remoteproc import RecoveryPolicy, RemoteprocManager
    from remoteproc.manager import RemoteprocManager as Direct

    assert RemoteprocManager is Direct
    assert callable(build_sample_image) and callable(register_program)
    assert SimPlatform.__module__ == "platforms.sim.platform"
    assert RecoveryPolicy().max_consecutive == 5
