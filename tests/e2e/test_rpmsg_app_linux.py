"""The application of docs/linux.md (examples/rpmsg_app.py), unchanged, over linux: in the UML
guest; the remote core's side is the same file's ``remote_core`` on the kernel's vhost-user
remote. tests/shell/test_rpmsg_app.py runs it over shm://.

Marked ``kernel``: skipped, saying how to build the kernel, when build/uml/linux is missing.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from .linux_guest import ROOT, guest_with_remote

pytestmark = pytest.mark.kernel

APP = ROOT / "examples" / "rpmsg_app.py"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rpmsg_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_application_over_linux_in_the_guest(kernel: Path, tmp_path: Path) -> None:
    app = load_app()
    command = [sys.executable, str(APP), "linux:", "--count", "5"]
    async with (
        guest_with_remote(kernel, tmp_path, command) as (uml, bus),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(app.remote_core, bus)
        run = await uml.wait()
    run.check()
    lines = list(run.lines)
    start = lines.index("reading 0: ok")
    assert lines[start : start + 5] == [f"reading {i}: ok" for i in range(5)]
