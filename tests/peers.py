"""The other process of the shared-memory tests, and the test-side helpers that drive it.

As a script (``python tests/peers.py URL ROLE MODE ...`` or ``python -m tests.peers ...``) it
runs one aioamp end of a transport in its own OS process:

* ``echo``: announce ``--service`` and send every message back to its sender, until the peer
  destroys its endpoint (NS DESTROY) or ``--count`` messages; ``--sink NAME`` also announces a
  second service whose 1-message queue is never read, so that once a message waits there the
  bus stops draining and the peer's sends run out of buffers.
* ``send``: announce ``--service``, wait for the peer's service of that name, send ``--count``
  numbered messages (``--window`` in flight) and check every echo, in order, byte for byte.

Every event is one JSON line on stdout: ``ready`` (service announced: ``addr``), ``bound`` (the
peer's endpoint is known: ``addr``, ``dst``), ``done`` (counters and bus statistics) or
``error``. With ``--hold`` the session stays up after ``done`` until stdin closes (the test
inspects the shared memory meanwhile). Exit status 0 only if everything checked out.

Imported by the tests (the ``tests`` directory is on ``sys.path`` under pytest), it provides
:class:`Peer` (such a process, read asynchronously), :class:`Link` (unique shm names and socket
paths, checked for leftovers after each test by the ``env``/``link`` fixture of conftest.py),
the ``shm://`` and ``openamp:`` URLs on them, and the numbered-payload helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from rpmsg import Endpoint, RpmsgBus, RpmsgError
from transports import TransportError, open_transport
from transports.unix_server import remove_stale_socket

PEERS_PY = Path(__file__).resolve()
SHM_DIR = Path("/dev/shm")
SEQ = struct.Struct("<I")
#: 251 filler patterns of 0..31 bytes: payload lengths and contents vary with the sequence.
_FILL = [bytes((j * 7 + i) & 0xFF for i in range(j % 32)) for j in range(251)]


def payload(seq: int) -> bytes:
    """Message ``seq``: its number, then a filler depending on it (4..35 bytes in all)."""
    return SEQ.pack(seq) + _FILL[seq % 251]


# -- the peer process -----------------------------------------------------------------------------
def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _stats(bus: RpmsgBus) -> dict[str, Any]:
    s = bus.statistics()
    return {"tx": s.tx_messages, "rx": s.rx_messages, "drops": s.drops}


async def pump(ep: Endpoint, dst: int, count: int, window: int, timeout: float = 10.0) -> None:
    """Send ``count`` numbered messages to ``dst`` (``window`` awaiting their echo at most) and
    check the echoes arrive in order, each exactly once, byte for byte."""
    credits = anyio.Semaphore(window)

    async def sender() -> None:
        for seq in range(count):
            await credits.acquire()
            await ep.send_to(dst, payload(seq))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        for seq in range(count):
            msg = await ep.recv(timeout)
            if msg.payload != payload(seq) or msg.src != dst:
                got = SEQ.unpack_from(msg.payload)[0] if len(msg.payload) >= 4 else None
                raise AssertionError(f"echo {seq}: got #{got} from {msg.src:#x}: {msg!r}")
            credits.release()


async def _wait_stdin_eof() -> None:
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    while True:
        await anyio.wait_readable(fd)
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            continue


async def _peer(args: argparse.Namespace) -> int:
    transport = await open_transport(args.url, role=args.role)
    async with (
        transport,
        RpmsgBus(
            transport, ready_timeout=args.timeout, name="peer", busy_poll=args.busy_poll
        ) as bus,
    ):
        ep = await bus.create_service(args.service)
        if args.sink:
            await bus.create_service(args.sink, maxsize=1)
        emit("ready", addr=ep.addr)
        channel = await bus.wait_for_service(args.service, timeout=args.timeout)
        emit("bound", addr=channel.endpoint.addr, dst=channel.dst)
        count = 0
        if args.mode == "echo":
            async for msg in ep:
                await ep.send_to(msg.src, msg.payload)
                count += 1
                if count == args.count:
                    break
        else:
            start = time.perf_counter()
            await pump(ep, channel.dst, args.count, args.window, args.timeout)
            count = args.count
            emit("sent", count=count, seconds=time.perf_counter() - start)
        emit("done", count=count, stats=_stats(bus))
        if args.hold:
            await _wait_stdin_eof()
        await ep.aclose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="peers.py", description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("role", choices=["host", "remote"])
    p.add_argument("mode", choices=["echo", "send"])
    p.add_argument("--service", default="rpmsg-openamp-demo-channel")
    p.add_argument("--sink", help="also announce this never-read service")
    p.add_argument("--count", type=int, default=0, help="echo: stop after N (0: until DESTROY)")
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--hold", action="store_true", help="after 'done', wait for stdin EOF")
    p.add_argument("--busy-poll", type=float, help="the bus's busy_poll= (default: the bus's)")
    args = p.parse_args(argv)
    status = 1
    try:
        status = anyio.run(_peer, args, backend_options={"use_uvloop": True})
    except* (RpmsgError, TransportError, AssertionError) as group:
        emit("error", error="; ".join(str(e) for e in group.exceptions))
    return status


# -- test-side helpers ----------------------------------------------------------------------------
_names = itertools.count()


def _query(options: dict[str, object]) -> str:
    return "".join(
        f"&{key}={int(value) if isinstance(value, bool) else value}"
        for key, value in options.items()
        if value is not None
    )


def shm_url(name: str, sock: Path, **options: object) -> str:
    """``shm://NAME?socket=SOCK`` with ``options`` (a bool as 0 or 1; None is left out)."""
    return f"shm://{name}?socket={sock}{_query(options)}"


def openamp_url(name: str, sock: Path, **options: object) -> str:
    """``openamp:?shm=NAME&socket=SOCK`` with ``options``, as :func:`shm_url`."""
    return f"openamp:?shm={name}&socket={sock}{_query(options)}"


class Peer:
    """A ``peers.py`` process; its JSON events are read without blocking the event loop."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buf = b""
        self.events: list[dict[str, Any]] = []
        #: The files it held a flock on when it was killed (the lock files of what it served).
        self.held_locks: set[tuple[int, int, int]] = set()

    @classmethod
    def spawn(cls, url: str, role: str, mode: str, *options: str) -> Peer:
        proc = subprocess.Popen(
            [sys.executable, str(PEERS_PY), url, role, mode, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return cls(proc)

    async def event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next event called ``name`` (earlier ones of other names are kept in
        :attr:`events`); fails on EOF, timeout or an ``error`` event."""
        with anyio.fail_after(timeout):
            while True:
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    ev: dict[str, Any] = json.loads(line)
                    self.events.append(ev)
                    if ev["event"] == name:
                        return ev
                    if ev["event"] == "error":
                        raise AssertionError(f"peer {self.pid} failed: {ev['error']}")
                await anyio.wait_readable(self._fd)
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    raise AssertionError(
                        f"peer {self.pid} exited ({self.proc.poll()}) before {name!r}: "
                        f"{self.events}"
                    )
                self._buf += data

    def release(self) -> None:
        """Close its stdin: a ``--hold`` peer ends its session."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    async def wait(self, timeout: float = 10.0) -> int:
        with anyio.fail_after(timeout):
            while (rc := self.proc.poll()) is None:
                await anyio.sleep(0.01)
        return rc

    def kill(self) -> None:
        """SIGKILL, if it still runs (only this process, by its pid)."""
        if self.proc.poll() is None:
            self.held_locks = flocks_of(self.pid)
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self.release()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def flocks_of(pid: int) -> set[tuple[int, int, int]]:
    """``(major, minor, inode)`` of every file process ``pid`` holds a flock on, from
    ``/proc/locks`` (proc(5): ``1: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE 0 EOF``)."""
    held = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[4] == str(pid):
            major, minor, inode = fields[5].split(":")
            held.add((int(major, 16), int(minor, 16), int(inode)))
    return held


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


class Link:
    """Unique shm object names and doorbell sockets for one test, and the processes it started.

    :meth:`finish` (run by each test module's fixture) kills leftover processes, then checks
    that no shared-memory object, socket or ``SOCKET.lock`` of the test is left behind, and
    removes any that are (so a failing test does not leak them). A server the test killed
    cannot clean up: its socket and lock file stay, stale, until the next server for the path
    replaces them (transports.unix_server). Those are cleaned up the library's way
    (``remove_stale_socket``, which refuses a live server's) and not counted; every other
    leftover is.
    """

    def __init__(self, directory: Path) -> None:
        # Unix socket paths are limited to 107 bytes: fall back to a short directory.
        self._tmp: str | None = None
        if len(str(directory)) > 70:
            import tempfile

            self._tmp = tempfile.mkdtemp(prefix="aioamp-")
            directory = Path(self._tmp)
        self.dir = directory
        self.names: list[str] = []
        self.sockets: list[Path] = []
        self.peers: list[Peer] = []

    def new(self, tag: str = "") -> tuple[str, Path]:
        """A fresh ``(shm name, socket path)`` pair, unique across processes and tests."""
        n = next(_names)
        name = f"aioamp-test-{os.getpid()}-{n}{tag}"
        sock = self.dir / f"s{n}.sock"
        self.names.append(name)
        self.sockets.append(sock)
        return name, sock

    def spawn(self, url: str, role: str, mode: str, *options: str) -> Peer:
        peer = Peer.spawn(url, role, mode, *options)
        self.peers.append(peer)
        return peer

    def _remove_stale_sockets(self) -> None:
        killed_servers = set().union(*(peer.held_locks for peer in self.peers))
        for sock in self.sockets:
            if _file_id(Path(f"{sock}.lock")) in killed_servers:
                remove_stale_socket(sock)

    def leftovers(self) -> list[str]:
        left = [str(SHM_DIR / n) for n in self.names if (SHM_DIR / n).exists()]
        files = [f for s in self.sockets for f in (s, Path(f"{s}.lock"))]
        return left + [str(f) for f in files if f.exists() or f.is_symlink()]

    def finish(self) -> list[str]:
        for peer in self.peers:
            peer.close()
        self._remove_stale_sockets()
        left = self.leftovers()
        for path in left:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
        return left


if __name__ == "__main__":
    raise SystemExit(main())
