"""The library logs under one documented hierarchy and never configures logging itself
(README, "Logging"): checked on the sources (ast) and by importing everything."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("transports", "rpmsg", "remoteproc", "platforms")
#: aioamp.rpmsg, aioamp.remoteproc, aioamp.transport[.<scheme>], aioamp.platform.<name>[.<part>]
HIERARCHY = re.compile(r"aioamp\.(rpmsg|remoteproc|transport(\.\w+)?|platform\.\w+(\.\w+)?)")
#: Calls that configure logging: the application's business (the CLI's), not the library's.
CONFIGURING = {"basicConfig", "addHandler", "setLevel", "dictConfig", "fileConfig"}
#: The core process's entry point is an application: it forwards its records to the parent.
ENTRY_POINTS = {Path("platforms/sim/child.py")}


def _calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _sources() -> list[Path]:
    return sorted(p for pkg in LIBRARY for p in (ROOT / pkg).rglob("*.py"))


def test_every_library_logger_is_in_the_hierarchy() -> None:
    names = {}
    for path in _sources():
        for call in _calls(path):
            if _name(call) == "getLogger" and call.args:
                arg = call.args[0]
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                if isinstance(arg, ast.Constant):
                    names[where] = str(arg.value)
                elif isinstance(arg, ast.JoinedStr):  # f"aioamp.transport.{scheme}"
                    head = arg.values[0]
                    assert isinstance(head, ast.Constant), where
                    names[where] = f"{head.value!s}x"
                else:  # a name looked up at run time: forwarded records, the root
                    assert path.name == "process.py", where
    assert names, "no getLogger call found: the walk is broken"
    wrong = {where: name for where, name in names.items() if not HIERARCHY.fullmatch(name)}
    assert not wrong


def test_the_library_configures_no_logging() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{call.lineno}: {_name(call)}"
        for path in _sources()
        if path.relative_to(ROOT) not in ENTRY_POINTS
        for call in _calls(path)
        if _name(call) in CONFIGURING
    ]
    assert not found


def test_importing_everything_adds_no_handler_and_sets_no_level() -> None:
    code = f"""
import importlib, json, logging, pkgutil
for pkg in {LIBRARY!r}:
    module = importlib.import_module(pkg)
    for info in pkgutil.walk_packages(module.__path__, pkg + "."):
        if not info.name.endswith((".child", ".__main__")):
            importlib.import_module(info.name)
loggers = [logging.getLogger()] + [
    v for k, v in logging.Logger.manager.loggerDict.items()
    if k.startswith("aioamp") and isinstance(v, logging.Logger)
]
print(json.dumps({{
    "names": sorted(l.name for l in loggers),
    "configured": [l.name for l in loggers if l.handlers or (l.level and l.name != "root")],
}}))
"""
    # Every module is imported, the C extensions too, which refuse to load under
    # AIOAMP_PURE_PYTHON (by design): this test is about logging, whichever path runs.
    env = {k: v for k, v in os.environ.items() if k != "AIOAMP_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    report = json.loads(done.stdout)
    assert "aioamp.rpmsg" in report["names"] and "aioamp.remoteproc" in report["names"]
    assert report["configured"] == []
