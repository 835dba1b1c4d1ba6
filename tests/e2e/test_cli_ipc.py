"""``aioamp echo`` and ``aioamp ping`` as real processes over ``shm://`` (auto mode: whichever
starts first serves the socket), each test with its own object name and socket, and over
``vhost-user:``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from peers import SHM_DIR, Link, Peer, shm_url

DEFAULT_SERVICE = "rpmsg-openamp-demo-channel"
RESULT_LINE = re.compile(
    r"^ *(\d+) B x (\d+): (\d+) matched, round trip median [\d.]+ us, p99 [\d.]+ us, "
    r"\d+ msg/s$"
)


class Cli:
    """Starts ``python -m aioamp`` processes on ``loop`` (``AIOAMP_EVENT_LOOP``; ``""``: the
    default); kills (by pid) any still running at the end."""

    def __init__(self, link: Link, loop: str = "") -> None:
        self.link = link
        self.env = {**os.environ, "AIOAMP_EVENT_LOOP": loop}
        self.procs: list[subprocess.Popen[str]] = []

    def url(self) -> str:
        return shm_url(*self.link.new())

    def start(self, command: str, url: str, role: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aioamp", command, "--transport", url, "--role", role, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture(params=["", "trio"], ids=["default-loop", "trio"])
def cli(link: Link, request: pytest.FixtureRequest) -> Iterator[Cli]:
    """Every test runs its commands on the default loop, then on trio."""
    runner = Cli(link, request.param)
    yield runner
    runner.kill_all()  # the link fixture checks for leftovers after this


def finish(proc: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("ping_role", ["host", "remote"])
def test_ping_and_echo(cli: Cli, ping_role: str) -> None:
    """ping prints one result line per size and exits 0; its NS DESTROY ends the echo (0)."""
    url = cli.url()
    echo = cli.start("echo", url, "remote" if ping_role == "host" else "host")
    ping = cli.start("ping", url, ping_role, "--count", "20", "--size", "16", "64", "496")
    status, out, err = finish(ping)
    assert status == 0, err
    lines = out.splitlines()
    assert [RESULT_LINE.match(line).groups() for line in lines[:3]] == [  # type: ignore[union-attr]
        ("16", "20", "20"),
        ("64", "20", "20"),
        ("496", "20", "20"),
    ]
    assert lines[3:] == ["all echoes matched"]
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.splitlines() == [
        f"{DEFAULT_SERVICE}: endpoint 0x400 announced, echoing",
        "echoed 60 messages",
    ]
    assert "Traceback" not in err


FLOOD_LINE = re.compile(r"^ *(\d+) B x (\d+): (\d+) matched, flood \d+ echoed msg/s$")


def test_ping_flood(cli: Cli) -> None:
    """--flood keeps the rings full (more messages than a ring holds) and checks every echo
    in order; the echo side saw each message once."""
    url = cli.url()
    echo = cli.start("echo", url, "remote")
    ping = cli.start("ping", url, "host", "--flood", "--count", "1000", "--size", "16", "496")
    status, out, err = finish(ping, timeout=60)
    assert status == 0, err
    lines = out.splitlines()
    assert [FLOOD_LINE.match(line).groups() for line in lines[:2]] == [  # type: ignore[union-attr]
        ("16", "1000", "1000"),
        ("496", "1000", "1000"),
    ]
    assert lines[2:] == ["all echoes matched"]
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.splitlines()[-1] == "echoed 2000 messages"


def test_ping_json(cli: Cli) -> None:
    url = cli.url()
    echo = cli.start("echo", url, "host", "--service", "json-svc")
    args = ("--service", "json-svc", "--count", "10", "--size", "4", "200", "--json")
    ping = cli.start("ping", url, "remote", *args)
    status, out, err = finish(ping)
    assert status == 0, err
    report = json.loads(out)
    assert set(report) == {"transport", "role", "service", "results", "ok"}
    assert (report["transport"], report["role"], report["service"]) == (url, "remote", "json-svc")
    assert report["ok"] is True
    assert [r["size"] for r in report["results"]] == [4, 200]
    for r in report["results"]:
        assert set(r) == {"size", "count", "matched", "rtt_median_us", "rtt_p99_us", "msgs_per_s"}
        assert (r["count"], r["matched"]) == (10, 10)
        assert 0 < r["rtt_median_us"] <= r["rtt_p99_us"]
        assert r["msgs_per_s"] > 0
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.splitlines() == ["json-svc: endpoint 0x400 announced, echoing", "echoed 20 messages"]


def test_echo_count_exits_after_n_messages(cli: Cli) -> None:
    url = cli.url()
    echo = cli.start("echo", url, "remote", "--count", "5")
    ping = cli.start("ping", url, "host", "--count", "50", "--size", "16")
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.splitlines()[-1] == "echoed 5 messages"
    # The ping loses its service half-way: the peer is gone, a clean error, not a traceback.
    status, out, err = finish(ping)
    assert status == 3
    assert "\naioamp ping: error: " in err
    # Its NS DESTROY, or (when the goodbye is read in the same pass) the link's close.
    assert "the peer withdrew the service after 5 of 50" in err or "closed the link" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("buffer_size", "size", "mtu"), [(None, 497, 496), (1024, 1009, 1008)])
def test_ping_size_over_mtu_is_refused_before_connecting(
    cli: Cli, buffer_size: int | None, size: int, mtu: int
) -> None:
    """The MTU follows from the URL (buffer_size - 16): a larger --size is a usage error
    (exit 2) before any peer is looked for or anything is created."""
    name, sock = cli.link.new()
    url = shm_url(name, sock, buffer_size=buffer_size)
    ping = cli.start("ping", url, "host", "--size", "16", str(size))
    status, out, err = finish(ping)
    assert status == 2
    assert (
        err == f"aioamp ping: error: --size {size} exceeds the MTU of {mtu} (buffer size "
        f"{mtu + 16} less the 16-byte rpmsg header)\n"
    )
    assert out == ""
    assert cli.link.leftovers() == [] and not Path(f"{sock}.lock").exists()


def test_ping_without_peer_times_out(cli: Cli) -> None:
    url = cli.url()
    ping = cli.start("ping", url, "host", "--timeout", "1")
    status, out, err = finish(ping, timeout=30)  # a hang guard; the message names the 1 s
    assert status == 3  # no peer came
    assert f"aioamp ping: error: {url}: no peer within 1 s" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("state", ["waiting-for-peer", "in-session"])
def test_sigterm_ends_echo_and_removes_its_files(cli: Cli, state: str) -> None:
    name, sock = cli.link.new()
    url = shm_url(name, sock)
    echo = cli.start("echo", url, "remote")
    deadline = time.monotonic() + 30  # a hang guard for a slow process start
    while not (sock.exists() and (SHM_DIR / name).exists()):
        assert time.monotonic() < deadline and echo.poll() is None
        time.sleep(0.01)
    if state == "in-session":
        peer = cli.link.spawn(url + "&listen=0", "host", "send", "--count", "3", "--hold")
        anyio.run(peer.event, "done")
    else:
        peer = None
        time.sleep(0.2)
    echo.send_signal(signal.SIGTERM)
    status, _out, err = finish(echo, timeout=30)  # a hang guard; 130 says SIGTERM ended it
    assert status == 130, err
    assert "Traceback" not in err
    assert not (SHM_DIR / name).exists() and not sock.exists()
    if isinstance(peer, Peer):
        peer.release()  # its bus already failed (the echo is gone): it just exits
        assert peer.proc.wait(timeout=5) == 0


def test_echo_exits_0_when_the_peer_closes_the_link(cli: Cli) -> None:
    """A peer that closes its transport in order (here a ping that gave up on a service the
    echo does not offer) ends the echo session: exit 0, not 'process gone?' and 1."""
    url = cli.url()
    echo = cli.start("echo", url, "remote", "--service", "offered")
    ping = cli.start("ping", url, "host", "--service", "other", "--timeout", "1")
    status, _out, err = finish(ping)
    assert status == 1 and "service 'other' not announced in 1.0 s" in err
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.splitlines()[-1] == "echoed 0 messages; the peer closed the link"
    assert "process gone" not in err and "Traceback" not in err


def test_echo_exits_3_when_the_peer_vanishes(cli: Cli) -> None:
    name, sock = cli.link.new()
    url = shm_url(name, sock)
    echo = cli.start("echo", url, "remote")
    peer = cli.link.spawn(url + "&listen=0", "host", "send", "--count", "3", "--hold")
    anyio.run(peer.event, "done")
    peer.kill()
    status, out, err = finish(echo)
    assert status == 3  # peer gone
    assert "the peer closed the connection (process gone?)" in err
    assert "Traceback" not in err and "echoed" not in out


def test_echo_and_ping_over_vhost_user(cli: Cli) -> None:
    """``aioamp echo --role remote`` serves the socket (the vhost-user backend), ``aioamp ping
    --role host`` drives it (the frontend); the socket and its lock go with the echo."""
    _name, sock = cli.link.new()
    url = f"vhost-user:{sock}"
    echo = cli.start("echo", url, "remote", "--service", "rpmsg-raw")
    ping = cli.start(
        "ping", url, "host", "--service", "rpmsg-raw", "--count", "20", "--size", "16", "496"
    )
    status, out, err = finish(ping, timeout=30)
    assert status == 0, err
    assert "all echoes matched" in out
    status, out, err = finish(echo)
    assert status == 0, err
    assert out.strip().splitlines()[-1].startswith("echoed 40 messages")
