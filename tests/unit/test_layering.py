"""The import rules of docs/design.md, checked by walking every module's imports (ast, no
execution), and by importing each pure core alone in a fresh interpreter (what it really loads)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["transports", "rpmsg", "remoteproc", "platforms", "aioamp"]
# Who may import whom (our packages only).
ALLOWED = {
    "transports": set(),
    "rpmsg": {"transports"},
    "remoteproc": {"transports", "rpmsg"},
    "platforms": {"transports", "rpmsg", "remoteproc"},
    "aioamp": {"transports", "rpmsg", "remoteproc", "platforms"},
}
#: rpmsg sees only the abstract parts of transports, never a concrete backend.
TRANSPORTS_ABSTRACT_PREFIXES = ("transports.virtio",)
TRANSPORTS_ABSTRACT = {
    "transports",
    "transports.errors",
    "transports._vring_accel",
    "transports.base",
    "transports.doorbell",
    "transports.registry",
    "transports.url",
    "transports._lazy",
    "transports._tasks",
}
#: Pure cores: stdlib without I/O, attrs, and each other.
PURE = {
    "transports.virtio",
    "transports.virtio.constants",
    "transports.virtio.vring",
    "transports.virtio.messages",
    "transports.virtio.ring_layout",
    "transports.virtio.ring_half",
    "transports.virtio.vring_driver",
    "transports.virtio.vring_device",
    "transports._vring_accel",  # the C twin of vring's classes (no I/O)
    "transports.virtio.vdev",
    "transports.virtio.memory",
    "transports.virtio.layout",
    "transports.errors",
    "transports.url",
    "transports.backends",  # docstrings only
    "transports.backends.vhost_user",
    "transports.backends.vhost_user.protocol",
    "transports.backends.vhost_user.backend",
    "transports.backends.vhost_user.reader",
    "transports.backends.vhost_user.table",
    "rpmsg.wire",
    "rpmsg.addresses",
    "rpmsg.core",
    "rpmsg.rings",
    "rpmsg.rings.base",
    "rpmsg.rings.loans",
    "rpmsg.rings.host",
    "rpmsg.rings.remote",
    "rpmsg.message",
    "rpmsg.stats",
    "rpmsg.protocol",
    "rpmsg.channel",
    "rpmsg.errors",
    "rpmsg.capture",  # lazy re-exports only
    "rpmsg.capture.pcapng",
    "platforms.emu",  # lazy re-exports only
    "platforms.emu.nvic",  # the emulated core's exception rules, no unicorn
    "platforms.emu.faults",
    "remoteproc.rsc_table",
    "remoteproc.rsc_table.entries",
    "remoteproc.rsc_table.parse",
    "remoteproc.rsc_table.rules",
    "remoteproc.rsc_table.build",
    "remoteproc.rsc_table.export",
    "remoteproc.lifecycle",
    "remoteproc.crash_plan",
    "remoteproc.image",
    "transports._lazy",  # the lazy re-exports of every package __init__ (importlib only)
    "remoteproc.recovery",
    "remoteproc.states",
    "remoteproc.errors",
    "platforms.linux",  # lazy re-exports only
    "platforms.linux.uapi",
    "platforms.linux.sysfs_text",
    "platforms.linux.errors",
    "platforms.linux.url",
    "platforms.linux.uevent_source",
    "platforms.linux.bus_state",
    "platforms.linux.channels",
    "platforms.linux.rproc_sysfs",
}
IO_MODULES = {
    "os",
    "io",
    "socket",
    "time",
    "asyncio",
    "anyio",
    "threading",
    "subprocess",
    "select",
    "selectors",
    "mmap",
    "signal",
    "multiprocessing",
    "elftools",
    "logging",
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        # .pyi: the typed face of a C extension (transports/_vring_accel.pyi)
        for path in sorted([*(ROOT / pkg).rglob("*.py"), *(ROOT / pkg).rglob("*.pyi")]):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks (imports for type
    checkers only: they run in no interpreter)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(name: str, path: Path, *, runtime_only: bool = False) -> set[str]:
    """What ``name`` imports; ``runtime_only``: not what it imports for type checkers."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree) if runtime_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` may name submodules only (then pkg itself is not used)
            subs = {f"{mod}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(subs)
            if node.module is not None or len(subs) < len(node.names):
                found.add(mod)
    return found


def test_modules_found() -> None:
    assert "transports.virtio.vring" in MODULES and "rpmsg.vring_bus" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_layers(name: str) -> None:
    top = name.split(".")[0]
    for imported in _imports(name, MODULES[name]):
        other = imported.split(".")[0]
        if other in ALLOWED and other != top:
            assert other in ALLOWED[top], f"{name} imports {imported}: {top} may not use {other}"
        if top == "rpmsg" and other == "transports":
            abstract = imported in TRANSPORTS_ABSTRACT or imported.startswith(
                TRANSPORTS_ABSTRACT_PREFIXES
            )
            assert abstract, (
                f"{name} imports {imported}: rpmsg may use only the abstract transport modules"
            )


@pytest.mark.parametrize("name", sorted(PURE & set(MODULES)))
def test_pure_cores_do_no_io(name: str) -> None:
    for imported in _imports(name, MODULES[name], runtime_only=True):
        root = imported.split(".")[0]
        assert root not in IO_MODULES, f"pure core {name} imports {imported}"
        if root in ALLOWED:
            assert imported in PURE, f"pure core {name} imports non-pure {imported}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_pyelftools_confined(name: str) -> None:
    if name == "remoteproc.firmware":
        return
    for imported in _imports(name, MODULES[name]):
        assert imported.split(".")[0] != "elftools", f"{name} imports pyelftools"


def _reachable(name: str) -> set[str]:
    """Every module of ours ``name`` imports, directly or not (TYPE_CHECKING and function-level
    imports too: a cycle through them is still a cycle of the design)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for imported in _imports(current, MODULES[current]):
            if imported in MODULES and imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_the_processor_does_not_know_its_manager() -> None:
    assert "remoteproc.manager" not in _reachable("remoteproc.rproc")


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.split(".")[0] in ("remoteproc", "platforms"))
)
def test_no_import_cycles(name: str) -> None:
    assert name not in _reachable(name), f"{name} imports itself through other modules"


#: The platforms (sim, pandaboard, uml, ...) and the floor they share (the firmware runtime).
PLATFORMS = sorted(p.parent.name for p in (ROOT / "platforms").glob("*/__init__.py"))
PLATFORM_FLOOR = "runtime"


def _platform(module: str) -> str | None:
    parts = module.split(".")
    return (
        parts[1] if parts[0] == "platforms" and len(parts) > 1 and parts[1] in PLATFORMS else None
    )


def test_platforms_found() -> None:
    assert {"sim", "pandaboard", PLATFORM_FLOOR} <= set(PLATFORMS)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _platform(n)))
def test_no_sideways_imports_between_platforms(name: str) -> None:
    """platforms/<x> never imports platforms/<y> for a sibling y: what two platforms share
    moves down into the runtime, which imports no platform itself."""
    mine = _platform(name)
    for imported in _imports(name, MODULES[name]):
        other = _platform(imported)
        if other is None or other == mine:
            continue
        assert other == PLATFORM_FLOOR, f"{name} imports {imported}: {mine} may not use {other}"


#: What a pure core may not load, even through a package __init__ (checked for real).
FORBIDDEN_AT_RUNTIME = {"asyncio", "anyio", "socket", "selectors", "mmap", "trio", "uvloop"}
#: Package __init__s are lazy (PEP 562): loading them is allowed, they import nothing shell.
#: transports' also installs the switch to the pure sources of the mypyc-compiled modules,
#: whose shared runtime the compiled pure cores load.
PACKAGE_INITS = {*PACKAGES, "transports._compiled", "transports._path__mypyc"}

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "name", sorted(n for n in PURE & set(MODULES) if n != "transports._vring_accel")
)
def test_pure_cores_load_no_io_or_shell_in_a_fresh_interpreter(name: str) -> None:
    """The ast check above sees direct imports only; a package ``__init__`` that imports a
    shell module would slip through it. Here each pure module is imported alone in a new
    interpreter and everything it pulled in is inspected."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, name],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    loaded = set(json.loads(out))
    io = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN_AT_RUNTIME)
    ours = {m for m in loaded if m.split(".")[0] in ALLOWED}
    shell = sorted(ours - PURE - PACKAGE_INITS)
    assert not io, f"importing {name} loads {io}"
    assert not shell, f"importing {name} loads shell modules {shell}"


def _backend(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["transports", "backends"] and len(parts) > 2 else None


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _backend(n)))
def test_no_sideways_imports_between_transport_backends(name: str) -> None:
    """transports/backends/<x> never imports backends/<y>: what two backends share (the unix
    socket server of shm:// and vhost-user:) lives in a neutral module under transports/."""
    mine = _backend(name)
    for imported in _imports(name, MODULES[name]):
        other = _backend(imported)
        assert other in (None, mine), f"{name} imports {imported}: {mine} may not use {other}"
