"""The package as a user gets it: the sdist and the wheel built from a copy of the source
tree, the wheel installed into a fresh venv, and the CLI run from there, away from the
checkout. Checks what only a real install shows: package data (the dissector, the doctor's
schema), ``py.typed`` and the accelerator's stub, and the optional C extension with a compiler
and without one.

Slow (two builds, two venvs, about a minute): ``make test-slow``, which CI runs. It needs the
package index for the build requirements and the dependencies, as ``pip install`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

PACKAGE_DATA = [
    "aioamp/py.typed",
    "transports/py.typed",
    "rpmsg/py.typed",
    "remoteproc/py.typed",
    "platforms/py.typed",
    "transports/_vring_accel.pyi",
    "rpmsg/capture/aioamp-rpmsg.lua",
    "aioamp/doctor/schema.json",
]
# Not part of a source tree's copy: what a checkout grows (venvs, builds, caches, the
# extension built in place, the docs site).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "site", "*.egg-info", "__pycache__", "*.so", ".*_cache"
)


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` on a copy of the source tree: the sdist, then the wheel built from
    the unpacked sdist (so a file the sdist lacks is missing from the wheel too)."""
    work = tmp_path_factory.mktemp("packaging")
    shutil.copytree(ROOT, work / "src", ignore=NOT_SOURCE, symlinks=True)
    run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(work / "src")], work)
    return work / "dist"


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A venv that sees no site-packages, with ``wheel`` and its dependencies: its bin dir."""
    run([sys.executable, "-m", "venv", str(where)], where.parent)
    bin_dir = where / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], where.parent)
    return bin_dir


def only(pattern: str, folder: Path) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_sdist_and_the_wheel_hold_the_package_data(dist: Path) -> None:
    with tarfile.open(only("*.tar.gz", dist)) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert "transports/_vring_accel.c" in in_sdist  # the wheel is built from it
    with zipfile.ZipFile(only("*.whl", dist)) as wheel:
        in_wheel = set(wheel.namelist())
    for name in PACKAGE_DATA:
        assert name in in_sdist and name in in_wheel, name
    assert any(name.startswith("transports/_vring_accel.") for name in in_wheel)
    # The mypyc-compiled modules (setup.py) and their shared runtime, beside their sources.
    assert {"setup.py", "transports/_compiled.py"} <= in_sdist
    for module in ("transports/_path__mypyc.", "rpmsg/receive.", "rpmsg/endpoint_rx."):
        assert any(n.startswith(module) and n.endswith(".so") for n in in_wheel), module
    assert {"rpmsg/receive.py", "rpmsg/endpoint_rx.py"} <= in_wheel


def test_the_wheel_works_in_a_fresh_venv(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", only("*.whl", dist))
    aioamp = str(bin_dir / "aioamp")
    version = run([aioamp, "--version"], tmp_path)
    assert "C accelerator" in version, version
    assert "per-message path: compiled (mypyc)" in version, version
    run([aioamp, "demo", "--count", "5"], tmp_path)
    run([aioamp, "fw", "build-sample", "fw.elf"], tmp_path)
    assert "rpmsg-client-sample" in run([aioamp, "fw", "inspect", "fw.elf"], tmp_path)
    # The installed copy is the one imported (not the checkout), with its data files.
    where = run(
        [
            str(bin_dir / "python"),
            "-c",
            "import rpmsg.capture, aioamp.doctor; "
            "from importlib.resources import files; "
            "print(rpmsg.__file__); "
            "print(files('rpmsg.capture').joinpath('aioamp-rpmsg.lua').is_file())",
        ],
        tmp_path,
    )
    assert str(tmp_path / "venv") in where and where.split()[-1] == "True"
    # py.typed and the stub: mypy, run for the fresh venv's interpreter, type-checks a user's
    # code against the installed packages (PEP 561) and the accelerator's stub.
    user = tmp_path / "user.py"
    user.write_text(
        "from rpmsg import RpmsgBus\nfrom transports import _vring_accel\n"
        "x: int = RpmsgBus\n"  # a deliberate error: only a typed package can report it
    )
    mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
    checked = subprocess.run(
        [*mypy, "--python-executable", str(bin_dir / "python"), str(user)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 'Incompatible types in assignment (expression has type "type[RpmsgBus]"' in (
        checked.stdout
    ), checked.stdout
    assert "Found 1 error" in checked.stdout, checked.stdout


def test_without_a_compiler_the_wheel_is_pure_and_works(dist: Path, tmp_path: Path) -> None:
    """The C extension is optional: with no working compiler (``CC=false``) the wheel still
    builds, from the sdist, and the installed library runs on the pure-Python vrings."""
    with tarfile.open(only("*.tar.gz", dist)) as sdist:
        sdist.extractall(tmp_path / "sdist", filter="data")
    src = only("aioamp-*", tmp_path / "sdist")
    out = tmp_path / "dist"
    run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)],
        tmp_path,
        env={"CC": "false"},
    )
    wheel = only("*.whl", out)
    with zipfile.ZipFile(wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".so")]
    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    version = run([str(bin_dir / "aioamp"), "--version"], tmp_path)
    assert "vrings: pure Python" in version and "per-message path: pure Python" in version
    run([str(bin_dir / "aioamp"), "demo", "--count", "5"], tmp_path)
