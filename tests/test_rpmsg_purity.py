"""rpmsg's pure modules import no I/O and no shell, checked in fresh interpreters.

Each pure module is imported alone in a new subprocess, whose ``sys.modules`` must then hold no
asyncio, anyio, socket, selectors or mmap and no shell module of ours. (tests/test_layering.py
reads import statements; this sees what an import really loads, through package ``__init__``s
and everything else.) Also: ``rpmsg``'s lazy public names all resolve.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest

import rpmsg

PURE = [
    "rpmsg",
    "rpmsg.addresses",
    "rpmsg.channel",
    "rpmsg.core",
    "rpmsg.errors",
    "rpmsg.message",
    "rpmsg.protocol",
    "rpmsg.rings",
    "rpmsg.rings.base",
    "rpmsg.rings.host",
    "rpmsg.rings.remote",
    "rpmsg.stats",
    "rpmsg.wire",
]
IO = {"asyncio", "anyio", "socket", "selectors", "mmap"}
#: Our modules with I/O or an event loop in them (the shells).
SHELL = {
    "rpmsg.core_bus",
    "rpmsg.endpoint",
    "rpmsg.open",
    "rpmsg.receive",
    "rpmsg.samples",
    "rpmsg.vring_bus",
    "rpmsg.vring_port",
    "transports.base",
    "transports.doorbell",
    "transports.loopback",
    "transports.registry",
    "transports.shm",
}


# Imports transports' submodules without running transports/__init__.py (eager until the
# package re-exports lazily): what rpmsg itself loads, whatever that __init__ does.
_BYPASS = (
    "import sys, types, pathlib, importlib.util; "
    "spec = importlib.util.find_spec('transports'); "
    "pkg = types.ModuleType('transports'); "
    "pkg.__path__ = list(spec.submodule_search_locations); "
    "sys.modules['transports'] = pkg; "
)


@cache
def loaded_by(module: str, *, bypass: bool = False) -> frozenset[str]:
    """``sys.modules`` of a fresh interpreter after ``import module``."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", (_BYPASS if bypass else "") + code],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return frozenset(json.loads(out))


def _io_and_shell(modules: frozenset[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in IO or m in SHELL}


@pytest.mark.parametrize("module", PURE)
def test_a_pure_rpmsg_module_loads_no_io_of_its_own(module: str) -> None:
    """Strict, with transports' package __init__ out of the way."""
    found = _io_and_shell(loaded_by(module, bypass=True))
    assert not found, f"import {module} loads {sorted(found)}"


@pytest.mark.parametrize("module", PURE)
def test_a_pure_rpmsg_module_loads_no_io(module: str) -> None:
    """The same through the real ``transports/__init__``; xfail while that one loads I/O."""
    found = _io_and_shell(loaded_by(module))
    eager = _io_and_shell(loaded_by("transports"))
    if found and found <= eager:
        top = sorted({m.split(".")[0] for m in eager})
        pytest.xfail(f"import transports (its __init__ is not lazy yet) loads {top}")
    assert not found, f"import {module} loads {sorted(found)}"


def test_the_lazy_public_names_all_resolve() -> None:
    defined = {name for names in rpmsg._MODULES.values() for name in names}
    assert defined == set(rpmsg.__all__) and len(rpmsg.__all__) == len(set(rpmsg.__all__))
    for name in rpmsg.__all__:
        value = getattr(rpmsg, name)
        assert getattr(value, "__name__", name) in (name, "open_bus", "register_bus"), name
    assert set(rpmsg.__all__) <= set(dir(rpmsg))
    with pytest.raises(AttributeError, match="no attribute 'bus'"):
        rpmsg.bus  # noqa: B018 - the old module is gone, not aliased
