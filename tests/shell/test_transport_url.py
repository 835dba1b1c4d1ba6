"""Transport URLs are parsed strictly: unknown options, repeated options and bad values are
refused with ``TransportURLError`` (a ``ValueError``) naming the problem, before anything is
created, for every built-in scheme."""

from __future__ import annotations

from pathlib import Path

import pytest
from peers import SHM_DIR, Link, shm_url

from transports import (
    RoleClashError,
    TransportError,
    TransportURLError,
    open_transport,
)
from transports.registry import check_transport_url
from transports.virtio.layout import OPENAMP_LAYOUT

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

BAD_URLS = {
    # unknown options, listed with the known ones
    "shm://u?bogus=1": "unknown option 'bogus' (known: align, buffer_size, buffers, listen,",
    "loop://u?listen=1": "unknown option 'listen' (known: align, buffer_size, buffers, num)",
    "openamp:?num=64": "unknown option 'num' (known: listen, shm, socket, timeout)",
    "shm://u?a=1&b=2": "unknown options 'a', 'b'",
    # repeated options: which would win?
    "shm://u?num=64&num=128": "option 'num' is given twice",
    "loop://u?num=64&num=64": "option 'num' is given twice",
    "openamp:?listen=1&listen=0": "option 'listen' is given twice",
    # invalid values
    "shm://u?num=3": "vring num 3 is not a power of two",
    "loop://u?num=0": "vring num 0 is not a power of two",
    "shm://u?num=abc": "option num='abc' is not an integer",
    "shm://u?align=48": "vring align 48 is not a power of two",
    "shm://u?buffer_size=16": "buffer_size >= 32",
    "shm://u?buffer_size=70000": "option buffer_size=70000 is over 65536",
    "loop://u?num=4&buffers=64": "option buffers=64 is over 2 x num = 8",
    "shm://u?buffers=3": "even buffer_count",
    "shm://u?listen=maybe": "option listen='maybe' is not a boolean",
    "shm://u?listen": "option listen='' is not a boolean",
    "shm://u?timeout=nan": "option timeout='nan' must be a finite number >= 0",
    "openamp:?timeout=-1": "option timeout='-1' must be a finite number >= 0",
    "shm://u?timeout=soon": "option timeout='soon' is not a number",
    "shm://u?socket=": "socket path '' must be 1..107 bytes",
    "openamp:?socket=/" + "s" * 120: "must be 1..107 bytes without NUL",
    "openamp:?shm=a/b": "invalid shared-memory object name 'a/b'",
    "openamp:?shm=..": "invalid shared-memory object name '..'",
    "shm://" + "n" * 256: "invalid shared-memory object name",
    "openamp:demo": "openamp: takes no name ('demo'); use openamp:?shm=NAME",
    "shm://u#frag": "URLs take no #fragment ('frag')",
    # names and schemes
    "shm://": "shm:// needs an object name",
    "loop://": "loop:// needs a name",
    "nope://x": "unknown transport scheme 'nope' (known: loop, openamp, shm, vhost-user)",
    "just-a-name": "has no scheme",
}


@pytest.mark.parametrize("url", list(BAD_URLS))
def test_check_refuses_bad_urls(url: str) -> None:
    with pytest.raises(TransportURLError) as info:
        check_transport_url(url)
    assert BAD_URLS[url] in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TransportError)


#: What opening the URLs above could create (their objects, sockets and lock files).
MIGHT_CREATE = [
    SHM_DIR / "u",
    SHM_DIR / "openamp.shm",
    *(
        Path(p + suffix)
        for p in ("/tmp/aioamp-u.sock", "/tmp/openamp.event.0")
        for suffix in ("", ".lock")
    ),
]


@pytest.mark.parametrize("url", list(BAD_URLS))
async def test_open_refuses_bad_urls_and_creates_nothing(url: str) -> None:
    before = [p.exists() for p in MIGHT_CREATE]
    with pytest.raises(TransportURLError) as info:
        await open_transport(url, role="host")
    assert BAD_URLS[url] in str(info.value)
    assert [p.exists() for p in MIGHT_CREATE] == before


def test_check_returns_the_layout() -> None:
    layout = check_transport_url("shm://u?num=64&buffer_size=0x400&listen=yes&timeout=2.5")
    assert layout is not None
    assert (layout.num, layout.buffer_size, layout.buffer_count) == (64, 1024, 128)
    assert check_transport_url("openamp:?shm=x&socket=/tmp/x.sock") is OPENAMP_LAYOUT
    loop = check_transport_url("loop://u?buffers=4&num=2")
    assert loop is not None and (loop.num, loop.buffer_count) == (2, 4)


async def test_loop_second_end_cannot_contradict_the_first() -> None:
    host = await open_transport("loop://contradict?num=64", role="host")
    with pytest.raises(TransportURLError, match="contradict the layout of the end opened first"):
        await open_transport("loop://contradict?num=128", role="remote")
    remote = await open_transport("loop://contradict?num=64", role="remote")  # same: fine
    assert remote.vdev.vring(0).num == host.vdev.vring(0).num == 64
    await host.aclose()
    await remote.aclose()


async def test_loop_same_role_twice_is_a_role_clash() -> None:
    host = await open_transport("loop://clash", role="host")
    with pytest.raises(RoleClashError, match="role clash, the host end is already open"):
        await open_transport("loop://clash", role="host")
    remote = await open_transport("loop://clash", role="remote")  # the link is still usable
    await host.aclose()
    await remote.aclose()


async def test_good_options_still_open(link: Link) -> None:
    """Valid options get through to the transport (here: a client finding no server)."""
    name, sock = link.new()
    with pytest.raises(TransportError, match="could not connect"):
        await open_transport(shm_url(name, sock, listen=0, timeout=0), role="host")
