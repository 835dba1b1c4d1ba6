"""Fixtures of the tests that run aioamp as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from peers import Link


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    """Unique shm names and sockets; at the end, nothing of them may be left behind."""
    link = Link(tmp_path)
    yield link
    assert link.finish() == [], "shared-memory objects or sockets left behind"
