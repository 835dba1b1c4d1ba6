"""``aioamp`` as a process: one-line errors prefixed ``aioamp <command>:``, the documented exit
statuses, ``--version``, what a waiting command says, and its logging options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from peers import Link

from transports import _compiled
from transports.virtio.vring import ACCELERATED


def aioamp(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aioamp", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# -- errors and exit statuses -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "prefix", "reason"),
    [
        (["bogus"], "aioamp: error: ", "invalid choice: 'bogus'"),
        (["ping"], "aioamp ping: error: ", "the following arguments are required: --transport"),
        (["ping", "--transport", "foo://x", "--role", "host"], "aioamp ping: error: ", "'foo'"),
        (
            ["echo", "--transport", "shm://x", "--role", "host", "--count", "-1"],
            "aioamp echo: ",
            "",
        ),
        (["fw", "inspect", "/nonexistent.elf"], "aioamp fw inspect: error: ", "no such file"),
        (["fw", "inspect", "/dev/zero"], "aioamp fw inspect: error: ", "not a regular file"),
        (["fw"], "aioamp fw: error: ", "required: ACTION"),
        (["demo", "--log-level", "loud"], "aioamp demo: error: ", "argument --log-level"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_status_2(
    argv: list[str], prefix: str, reason: str
) -> None:
    done = aioamp(*argv)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(prefix) and reason in lines[0]


def test_an_invalid_image_is_exit_status_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    done = aioamp("fw", "inspect", str(bad))
    assert done.returncode == 1
    assert done.stderr.startswith(f"aioamp fw inspect: error: {bad}: invalid firmware image")
    assert len(done.stderr.splitlines()) == 1


def test_no_peer_says_what_it_waits_for_then_exit_status_3(link: Link) -> None:
    name, sock = link.new()
    url = f"shm://{name}?socket={sock}"
    done = aioamp("ping", "--transport", url, "--role", "host", "--timeout", "0.5")
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"waiting for a peer on {url} (socket {sock}), up to 0.5 s ...",
        f"aioamp ping: error: {url}: no peer within 0.5 s",
    ]
    quiet = aioamp("ping", "-q", "--transport", url, "--role", "host", "--timeout", "0.5")
    assert quiet.returncode == 3
    assert quiet.stderr.splitlines() == [f"aioamp ping: error: {url}: no peer within 0.5 s"]


def test_a_vanished_peer_is_one_error_line_and_exit_status_3(link: Link) -> None:
    """The lost link is reported once, by the command: the bus's own account of it is an INFO
    record (before, a WARNING printed by Python's last-resort handler came first)."""
    name, sock = link.new()
    url = f"shm://{name}?socket={sock}"
    argv = ["ping", "--transport", url, "--role", "host", "--count", "1000000", "--size", "16"]
    ping = subprocess.Popen(
        [sys.executable, "-m", "aioamp", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        peer = link.spawn(url + "&listen=0", "remote", "echo")
        anyio.run(peer.event, "bound")  # ping is pinging
        peer.kill()
        out, err = ping.communicate(timeout=30)
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.communicate()
    assert ping.returncode == 3, err
    errors = [line for line in err.splitlines() if not line.startswith("waiting for ")]
    assert len(errors) == 1, err
    assert errors[0].startswith("aioamp ping: error: ") and "peer" in errors[0]
    assert out == ""


# -- --version ------------------------------------------------------------------------------------
def test_version_names_the_library_the_vrings_and_the_loop() -> None:
    done = aioamp("--version")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("aioamp 0.")
    vrings = "vrings: C accelerator" if ACCELERATED else "vrings: pure Python"
    assert lines[1].startswith(vrings)
    path = "compiled (mypyc)" if _compiled.active() else "pure Python"
    assert lines[2].startswith(f"per-message path: {path}")
    try:
        import uvloop  # noqa: F401

        assert lines[3].startswith("event loop: uvloop ")
    except ImportError:
        assert lines[3].startswith("event loop: asyncio")
    assert lines[4].startswith("python: ")


def test_version_says_when_the_pure_vrings_were_forced() -> None:
    done = aioamp("--version", env={"AIOAMP_PURE_PYTHON": "1"})
    assert "vrings: pure Python" in done.stdout
    if ACCELERATED:  # built, but refused by the variable
        assert "vrings: pure Python (AIOAMP_PURE_PYTHON=1)" in done.stdout
    assert "per-message path: pure Python (AIOAMP_PURE_PYTHON=1)" in done.stdout


# -- logging --------------------------------------------------------------------------------------
def test_warnings_only_by_default_info_with_v() -> None:
    quiet = aioamp("demo", "--loopback", "--count", "2")
    assert quiet.returncode == 0 and quiet.stderr == ""
    verbose = aioamp("demo", "--loopback", "--count", "2", "-v")
    assert verbose.returncode == 0
    assert " INFO aioamp.rpmsg: host: 'rpmsg-client-sample': local 1024 -> remote " in (
        verbose.stderr
    )
    assert "INFO" not in verbose.stdout  # logs never go to stdout
    assert len(verbose.stdout.splitlines()) == len(quiet.stdout.splitlines())


def test_log_json_has_the_extra_fields_and_the_core_process_records() -> None:
    """With a core in its own process: its records arrive here (pid is the core's), and every
    line on stderr is one JSON object with the record's extra fields."""
    done = aioamp("demo", "--count", "2", "-v", "--log-json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert all({"time", "level", "logger", "message", "pid"} <= set(r) for r in records)
    transitions = [r for r in records if r["logger"] == "aioamp.remoteproc" and "state" in r]
    assert [(r["processor"], r["old_state"], r["state"]) for r in transitions] == [
        ("sim0", "offline", "running"),
        ("sim0", "running", "offline"),
    ]
    channel = next(r for r in records if r.get("service") == "rpmsg-client-sample")
    assert channel["logger"] == "aioamp.rpmsg" and channel["bus"] == "sim0-vdev0"
    core = [
        r
        for r in records
        if r["logger"] == "aioamp.platform.sim" and "runs in process" in r["message"]
    ]
    assert len(core) == 1 and core[0]["pid"] != records[0]["pid"]
    assert core[0]["processor"] == "sim0" and core[0]["program"] == "rpmsg-client-sample"


def test_log_level_overrides_v_and_q() -> None:
    done = aioamp("demo", "--loopback", "--count", "1", "-q", "--log-level", "INFO")
    assert " INFO aioamp.rpmsg: " in done.stderr
    assert "incoming msg" not in done.stdout  # -q still hides the per-message lines
