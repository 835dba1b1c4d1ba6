"""The documentation site builds in strict mode, so a broken link, cross-reference, snippet
or docstring fails the tests (and CI), and its API reference covers every public name.

The build needs the ``docs`` extra (``make test`` installs it); without it these tests skip,
except under CI (``CI=true``), where they must run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("transports", "rpmsg", "remoteproc", "platforms")

if importlib.util.find_spec("mkdocs") is None:  # pragma: no cover - depends on the install
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but mkdocs is not installed (pip install '.[docs]')")
    pytest.skip("mkdocs is not installed (pip install '.[docs]')", allow_module_level=True)

import yaml  # noqa: E402  (mkdocs's dependency)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
    return subprocess.run(
        [*argv, "-d", str(site)],
        cwd=ROOT,  # the README snippets are found from here
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def inventory(site: Path) -> set[str]:
    """The object names of the site's ``objects.inv`` (Sphinx's format, which mkdocstrings
    writes): a zlib stream after four header lines."""
    data = (site / "objects.inv").read_bytes()
    body = data.split(b"\n", 4)[4]
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr
    return out


def test_every_public_name_has_a_reference_entry(site: Path) -> None:
    documented = inventory(site)
    for package in PACKAGES:
        names = importlib.import_module(package).__all__
        missing = [name for name in names if f"{package}.{name}" not in documented]
        assert not missing, f"{package}: not in the API reference: {missing}"


def test_every_page_is_in_the_navigation_and_built(site: Path) -> None:
    pages = list((ROOT / "docs").rglob("*.md"))
    assert len(pages) > 10
    for page in pages:
        rel = page.relative_to(ROOT / "docs").with_suffix("")
        built = site / rel / "index.html" if rel.name != "index" else site / "index.html"
        assert built.is_file(), f"{page} was not built"
    # The README sections the pages include arrived, without their markers.
    getting_started = (site / "getting-started" / "index.html").read_text()
    assert "loopback_pair" in getting_started and "--8&lt;--" not in getting_started


def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    """Strict mode really is on: one cross-reference to a name that does not exist fails."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    with (docs / "errors.md").open("a") as page:
        page.write("\nSee [`rpmsg.NoSuchError`][rpmsg.NoSuchError].\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.update(docs_dir=str(docs), hooks=[str(ROOT / "docs" / "hooks.py")])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "rpmsg.NoSuchError" in result.stderr
