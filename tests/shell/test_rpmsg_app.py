"""The application of docs/linux.md (examples/rpmsg_app.py) over shm://, with an aioamp peer as
the remote core: two processes, as on a development machine. tests/e2e/test_rpmsg_app_linux.py
runs the same file over linux: in the UML guest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import Link

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "rpmsg_app.py"
DOC = ROOT / "docs" / "linux.md"


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    lk = Link(tmp_path)
    yield lk
    assert lk.finish() == [], "shared-memory objects or sockets left behind"


def test_the_application_over_shm_with_an_aioamp_remote_core(link: Link) -> None:
    name, sock = link.new()
    url = f"shm://{name}?socket={sock}"
    core = subprocess.Popen(
        [sys.executable, str(APP), "--serve", url + "&listen=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        app = subprocess.run(
            [sys.executable, str(APP), url + "&listen=0&timeout=30", "--count", "5"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert app.returncode == 0, app.stderr
        assert app.stdout.splitlines() == [f"reading {i}: ok" for i in range(5)]
        _out, err = core.communicate(timeout=30)  # the application's goodbye ends the core
        assert core.returncode == 0, err
    finally:
        if core.poll() is None:
            core.kill()
            core.communicate()


def test_the_documentation_shows_the_applications_real_code() -> None:
    """docs/linux.md quotes examples/rpmsg_app.py; the quote must not drift from the file."""
    text = DOC.read_text()
    start = text.index("<!-- quoted from examples/rpmsg_app.py -->")
    block = text[text.index("```python\n", start) + len("```python\n") :]
    block = block[: block.index("```")]
    assert block.strip() and block in APP.read_text()
