"""The newcomer's path runs as written: every program of ``examples/``, every code block of
the README and every Python block of the docs pages, each as its own process, from an empty
directory.

A README shell block either runs (``.venv/bin/`` becomes this interpreter's bin folder, and
``shm://demo`` a name of this test's, so parallel runs do not meet) or names, in
:data:`NOT_RUN`, why it cannot run here and which test covers it instead; a new block that does
neither fails :func:`test_every_readme_block_is_run_or_explained`.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"^```(?P<lang>\w+)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)

# What each example prints, in part: a program that ran but did nothing useful fails.
EXPECTED = {
    "loopback_echo.py": "echoed b'pong' from 0x400",
    "boot_sim.py": "reply: b'hello world!'",
    "sim_process_firmware.py": "reply: b'HELLO FROM THE HOST'",
    "shm_two_processes.py": "aioamp echo exited with 0",
    "capture_to_pcapng.py": "records=6, bytes=804, dropped=0",
}
# Not run here: modules the examples import, and programs that take arguments and have
# tests of their own.
NOT_PROGRAMS = {
    "my_firmware.py": "a module that sim_process_firmware.py imports",
    "rpmsg_app.py": "tests/shell/test_rpmsg_app.py (shm://), tests/e2e/test_rpmsg_app_linux.py",
}

# README shell blocks that cannot run here, by their first line: why, and what tests it.
NOT_RUN = {
    "make demo": "the Makefile's set-up; `aioamp demo` itself runs in tests/e2e/test_cli_*.py",
    "# aioamp as host": "needs OpenAMP's C demo apps; the openamp: layout is tested byte for "
    "byte in tests/shell/test_openamp.py",
    "make kernel && make demo-kernel": "needs the UML kernel (make kernel); "
    "tests/e2e/test_kernel_demo.py and test_kernel_rpmsg.py run it",
    "apt-get update && apt-get install": "root's package installation, then the kernel build "
    "and the whole suite: what .ci/run does on every CI run",
    ".venv/bin/aioamp rproc list": "needs a board's kernel (remoteproc, /dev/rpmsg*); "
    "tests/shell/test_linux_rproc_cli.py runs these commands on a model of its sysfs",
}


def run(
    argv: list[str], cwd: Path, timeout: float = 60, pythonpath: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(cwd), "PYTHONPATH": pythonpath}
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}"
    return result


def readme_blocks(lang: str, page: Path = ROOT / "README.md") -> list[str]:
    return [m["code"] for m in BLOCK.finditer(page.read_text()) if m["lang"] == lang]


DOC_BLOCKS = [
    pytest.param(code, id=f"{page.stem}-{i}")
    for page in sorted((ROOT / "docs").glob("*.md"))
    for i, code in enumerate(readme_blocks("python", page))
]


def programs() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in NOT_PROGRAMS)


def test_every_example_has_its_expected_output() -> None:
    assert set(programs()) == set(EXPECTED), "add the new example's output to EXPECTED"


@pytest.mark.parametrize("name", programs())
def test_example_runs(name: str, tmp_path: Path) -> None:
    result = run([sys.executable, str(EXAMPLES / name)], tmp_path)
    assert EXPECTED[name] in result.stdout


@pytest.mark.parametrize("index", range(len(readme_blocks("python"))))
def test_readme_python_block_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(readme_blocks("python")[index])
    result = run([sys.executable, str(script)], tmp_path)
    assert result.stdout.strip(), "a README example that prints nothing shows nothing"


@pytest.mark.parametrize("code", DOC_BLOCKS)
def test_docs_python_block_runs(code: str, tmp_path: Path) -> None:
    """The docs pages' own examples (the README's arrive as snippets, tested above). A
    complete program (it calls ``anyio.run``) runs, and may import the modules of
    ``examples/``; a fragment (the body of an async function, often for hardware or the UML
    kernel) must compile as one, and its imports must import: renamed APIs fail here; one
    without imports must be an excerpt of a program of ``examples/``, word for word."""
    script = tmp_path / "block.py"
    if "anyio.run(" in code:
        script.write_text(code)
        result = run([sys.executable, str(script)], tmp_path, pythonpath=str(EXAMPLES))
        assert result.stdout.strip()
        return
    body = ast.parse("async def fragment():\n" + textwrap.indent(code, "    "))
    imports = [n for n in ast.walk(body) if isinstance(n, ast.Import | ast.ImportFrom)]
    if not imports:  # an excerpt of an example, which runs: it must be there as shown
        assert any(code in p.read_text() for p in EXAMPLES.glob("*.py")), (
            "a fragment without imports must be an excerpt of examples/"
        )
        return
    script.write_text("\n".join(ast.unparse(node) for node in imports))
    run([sys.executable, str(script)], tmp_path)


def shell_blocks() -> list[str]:
    return [b for b in readme_blocks("sh") if not b.startswith(tuple(NOT_RUN))]


def test_every_readme_block_is_run_or_explained() -> None:
    blocks = readme_blocks("sh")
    skipped = [b for b in blocks if b.startswith(tuple(NOT_RUN))]
    assert len(skipped) == len(NOT_RUN), "a NOT_RUN entry matches no README block any more"
    assert blocks and len(shell_blocks()) + len(skipped) == len(blocks)
    assert readme_blocks("python"), "the README's Python examples were not found"


@pytest.mark.parametrize("index", range(len(shell_blocks())))
def test_readme_shell_block_runs(index: int, tmp_path: Path) -> None:
    script = shell_blocks()[index].replace(".venv/bin/", f"{BIN}/")
    script = script.replace("shm://demo", f"shm://readme-{os.getpid()}")
    script = re.sub(r"^wireshark ", "tshark -r ", script, flags=re.MULTILINE)  # no GUI here
    if "tshark" in script and not (BIN / "tshark").exists() and not _on_path("tshark"):
        script = "\n".join(line for line in script.splitlines() if "tshark" not in line)
    run(["bash", "-euo", "pipefail", "-c", script + "\nwait"], tmp_path, timeout=120)


def _on_path(tool: str) -> bool:
    return any((Path(d) / tool).exists() for d in os.environ.get("PATH", "").split(os.pathsep))
