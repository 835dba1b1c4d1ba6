"""Long runs show a progress bar (tqdm) on a terminal and stay quiet when piped or ``-q``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from peers import Link

BAR = "ping 16 B:"


def _run(
    argv: list[str], *, terminal: bool, during: Callable[[], None] = lambda: None
) -> tuple[int, str, str]:
    """``python -m aioamp ARGV`` with stderr on a pseudo-terminal or a pipe; ``during`` runs
    while it does. Returns the status, stdout and what stderr showed."""
    master, slave = pty.openpty() if terminal else (-1, -1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aioamp", *argv],
        stdout=subprocess.PIPE,
        stderr=slave if terminal else subprocess.PIPE,
    )
    screen = bytearray()
    reader = None
    if terminal:
        os.close(slave)

        def read() -> None:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed its end
                    return
                if not chunk:
                    return
                screen.extend(chunk)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
    try:
        during()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if reader is not None:
            reader.join(10)
            os.close(master)
    text = screen.decode(errors="replace") if terminal else err.decode()
    return proc.returncode, out.decode(), text


def _ping(link: Link, *extra: str, terminal: bool) -> tuple[int, str, str]:
    """``aioamp ping`` against an echo peer."""
    name, sock = link.new()
    url = f"shm://{name}?socket={sock}"
    argv = ["ping", "--transport", url, "--role", "host", "--count", "300", "--size", "16"]

    def peer() -> None:
        link.spawn(url + "&listen=0", "remote", "echo")

    return _run([*argv, *extra], terminal=terminal, during=peer)


def test_ping_shows_progress_on_a_terminal(link: Link) -> None:
    status, out, screen = _ping(link, terminal=True)
    assert status == 0, screen
    assert BAR in screen and "/300" in screen  # tqdm's "ping 16 B:  40%|####  | 120/300"
    assert "all echoes matched" in out  # stdout is untouched


def test_ping_is_quiet_when_piped(link: Link) -> None:
    status, _out, err = _ping(link, terminal=False)
    assert status == 0, err
    assert BAR not in err and "%|" not in err
    assert err.startswith("waiting for a peer on ")


def test_ping_q_shows_no_progress_even_on_a_terminal(link: Link) -> None:
    status, _out, screen = _ping(link, "-q", terminal=True)
    assert status == 0, screen
    assert BAR not in screen and "waiting for" not in screen


def test_bench_shows_its_stages_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    argv = ["bench", "--smoke", "--no-ipc", "--no-kernel", "--no-plots", "--loops", "asyncio"]
    argv += ["--out", str(tmp_path)]
    status, out, screen = _run(argv, terminal=True)
    assert status == 0, screen
    assert "bench:" in screen and "/9 " in screen  # its steps; the stage names change fast
    status, out, err = _run(argv, terminal=False)
    assert status == 0 and err == ""
    assert "| goal |" in out
