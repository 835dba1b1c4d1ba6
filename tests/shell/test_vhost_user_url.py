"""``vhost-user:`` URLs (options per role, paths) and opening its ends. (``aioamp echo`` and
``aioamp ping`` over it as processes: tests/e2e/test_cli_ipc.py.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from transports import (
    Transport,
    TransportClosedError,
    TransportError,
    TransportURLError,
    open_transport,
)
from transports.backends.vhost_user.protocol import HEADER, VERSION
from transports.backends.vhost_user.server import VhostUserBackend
from transports.registry import check_transport_url

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "vhost.sock"


# -- URLs ----------------------------------------------------------------------------------------
def test_url_options() -> None:
    layout = check_transport_url("vhost-user:/tmp/x.sock?buffer_size=1024")
    assert layout is not None and layout.buffer_size == 1024
    check_transport_url("vhost-user:/tmp/x.sock?reconnect=1")
    for url, message in [
        ("vhost-user:/tmp/x.sock?bogus=1", "unknown option 'bogus'"),
        ("vhost-user:", "needs a socket path"),
        ("vhost-user:/tmp/x.sock?reconnect=maybe", "not a boolean"),
        ("vhost-user:/" + "x" * 200, "must be 1..107 bytes"),
    ]:
        with pytest.raises(TransportURLError, match=message):
            check_transport_url(url)


@pytest.mark.parametrize(
    ("url", "role", "message"),
    [
        ("vhost-user:{}?reconnect=1", "host", "option reconnect does not apply to the frontend"),
        (
            "vhost-user:{}?num=64&timeout=1",
            "remote",
            "options num, timeout do not apply to the backend",
        ),
    ],
)
async def test_url_options_of_the_other_role_are_refused(
    sock_path: Path, url: str, role: str, message: str
) -> None:
    with pytest.raises(TransportURLError, match=message):
        await open_transport(url.format(sock_path), role=role)  # type: ignore[arg-type]


async def test_a_file_in_the_way_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.write_text("data")
    with pytest.raises(TransportError, match="exists and is not a socket"):
        await open_transport(f"vhost-user:{path}", role="remote")
    assert path.read_text() == "data" and not Path(f"{path}.lock").exists()


async def test_no_backend(sock_path: Path) -> None:
    with pytest.raises(TransportError, match="could not connect"):
        await open_transport(f"vhost-user:{sock_path}?timeout=0.1", role="host")


async def test_opening_the_backend_waits_for_a_frontend_to_set_it_up(sock_path: Path) -> None:
    """As an shm:// server waits for its peer: open_transport(role="remote") returns once a
    frontend has connected and enabled both vrings (before that nothing would answer it)."""
    opened: list[Transport] = []

    async def open_backend() -> None:
        opened.append(await open_transport(f"vhost-user:{sock_path}", role="remote"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(open_backend)
        with anyio.fail_after(5):
            while not sock_path.exists():
                await anyio.sleep(0.001)
        await anyio.sleep(0.05)
        assert opened == []  # listening, no frontend yet
        frontend = await open_transport(f"vhost-user:{sock_path}?timeout=5", role="host")
    assert len(opened) == 1
    async with frontend, opened[0] as backend:
        assert isinstance(backend, VhostUserBackend) and backend.connected
        assert backend.statistics().requests["SET_VRING_ENABLE"] == 2


async def test_a_refused_frontend_fails_the_open_and_removes_the_socket(sock_path: Path) -> None:
    async def refused_frontend() -> None:
        with anyio.fail_after(5):
            while not sock_path.exists():
                await anyio.sleep(0.001)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.connect(str(sock_path))
            raw.sendall(HEADER.pack(77, VERSION, 0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(refused_frontend)
        with pytest.raises(TransportClosedError, match="unsupported request 77"):
            await open_transport(f"vhost-user:{sock_path}", role="remote")
    assert not sock_path.exists() and not Path(f"{sock_path}.lock").exists()


async def test_cancelling_the_open_removes_the_socket(sock_path: Path) -> None:
    with anyio.move_on_after(0.1):
        await open_transport(f"vhost-user:{sock_path}", role="remote")
    assert not sock_path.exists() and not Path(f"{sock_path}.lock").exists()


async def test_a_killed_backends_socket_is_replaced_by_the_next_backend(sock_path: Path) -> None:
    """A backend killed with SIGKILL leaves its socket and lock file behind, stale (its flock
    died with it; transports.unix_server): a frontend finds no server there, and the next
    backend on the path replaces them and removes both when it closes."""
    code = (
        "import sys, time\n"
        "from transports.backends.vhost_user.server import listen_vhost_user\n"
        "listen_vhost_user(sys.argv[1]); print('listening', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(sock_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"listening\n"
        with pytest.raises(TransportError, match="another aioamp process already serves"):
            await open_transport(f"vhost-user:{sock_path}", role="remote")
    finally:
        proc.kill()
        proc.communicate()
    lock = Path(f"{sock_path}.lock")
    assert sock_path.exists() and lock.exists()
    with pytest.raises(TransportError, match="could not connect"):
        await open_transport(f"vhost-user:{sock_path}?timeout=0.1", role="host")
    async with anyio.create_task_group() as tg:
        ends: list[Transport] = []

        async def open_end(role: str) -> None:
            ends.append(await open_transport(f"vhost-user:{sock_path}", role=role))  # type: ignore[arg-type]

        tg.start_soon(open_end, "remote")
        tg.start_soon(open_end, "host")
    for end in ends:
        await end.aclose()
    assert not sock_path.exists() and not lock.exists()
