"""POSIX shared-memory objects as shm:// and sim's process mode make them."""

from __future__ import annotations

import os

import pytest

from transports import TransportError
from transports.shm_object import (
    SHM_DIR,
    anonymous_object,
    create_object,
    map_object,
    open_object,
)

pytestmark = pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs POSIX shm")


def test_a_created_object_replaces_a_stale_one_and_is_shared_with_an_opener() -> None:
    path = SHM_DIR / f"aioamp-test-object-{os.getpid()}"
    path.write_bytes(b"stale contents, never trusted" * 1000)
    try:
        mine = create_object(path, 4096)
        assert path.stat().st_size == 4096 and mine[:5] == bytes(5)
        theirs = open_object(path, 4096)
        mine[:5] = b"hello"
        assert theirs[:5] == b"hello"
        with pytest.raises(TransportError, match=r"is 0x1000 bytes < 0x2000"):
            open_object(path, 8192)
    finally:
        path.unlink()
    with pytest.raises(TransportError, match="does not exist"):
        open_object(path, 4096)


def test_an_anonymous_object_has_no_name_and_maps_through_its_descriptor() -> None:
    before = {e for e in os.listdir(SHM_DIR) if e.startswith(f"aioamp-test-{os.getpid()}-")}
    fd, mine = anonymous_object(8192, "aioamp-test")
    try:
        after = {e for e in os.listdir(SHM_DIR) if e.startswith(f"aioamp-test-{os.getpid()}-")}
        assert after == before  # unlinked at once: nothing can be left behind
        theirs = map_object(fd, 8192, "(descriptor)")  # as the child maps what it inherits
        mine[8191] = 7
        assert theirs[8191] == 7
        with pytest.raises(TransportError, match=r"\(descriptor\) is 0x2000 bytes < 0x4000"):
            map_object(fd, 16384, "(descriptor)")
    finally:
        os.close(fd)
