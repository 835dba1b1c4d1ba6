"""``vhost-user:`` URLs (options per role, paths) and ``aioamp echo`` / ``aioamp ping`` over
it as real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from transports import TransportError, TransportURLError, open_transport
from transports.registry import check_transport_url


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "vhost.sock"


# -- URLs and the command line ------------------------------------------------------------------
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


def test_cli_echo_and_ping(sock_path: Path) -> None:
    """``aioamp echo --role remote`` serves the socket, ``aioamp ping --role host`` drives it."""
    url = f"vhost-user:{sock_path}"
    base = [sys.executable, "-m", "aioamp"]
    echo = subprocess.Popen(
        [*base, "echo", "--transport", url, "--role", "remote", "--service", "rpmsg-raw"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ping = subprocess.run(
            [
                *base,
                "ping",
                "--transport",
                url,
                "--role",
                "host",
                "--service",
                "rpmsg-raw",
                "--count",
                "20",
                "--size",
                "16",
                "496",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ping.returncode == 0, ping.stderr
        assert "all echoes matched" in ping.stdout
        out, err = echo.communicate(timeout=15)
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.communicate()
    assert echo.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("echoed 40 messages")
    assert not sock_path.exists() and not Path(f"{sock_path}.lock").exists()
