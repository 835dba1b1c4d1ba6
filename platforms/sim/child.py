"""The child side of a simulated core running in its own process (see ``process.py``).

Started by :class:`~platforms.sim.platform.SimPlatform` as
``python -m platforms.sim.child CONFIG_JSON`` with the memory descriptor and the doorbell
socket inherited. It imports only the modules the host configuration names (never something a
firmware file names), looks the program up in the registry and runs it. Its log records go to
the host over the doorbell (LOG frames), never to its own stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import mmap
import socket
import sys
from collections.abc import Callable
from typing import Any

import anyio

from platforms.runtime import Faults, FirmwareContext, get_program, run_firmware
from remoteproc.platform import CrashKind
from transports.virtio.memory import DeviceMemory, Region

from .process import FrameReader, crash_frame, kick_frame, log_frame

log = logging.getLogger("platforms.sim")


class Outbox:
    """Frames to the host, whole and in order, on a non-blocking socket: what does not fit
    now waits (:meth:`flush_forever` sends it when the socket has room). Past ``limit``
    bytes waiting (the host stopped reading) frames are dropped and counted; the count is
    logged once the host reads again."""

    def __init__(self, sock: socket.socket, limit: int = 1 << 20) -> None:
        self.sock = sock
        self.limit = limit
        self.dropped = 0
        self.broken = False
        self._pending = bytearray()
        self._wake: anyio.Event | None = None

    def send(self, frame: bytes) -> None:
        if self.broken:
            return
        if self._pending:
            if len(self._pending) + len(frame) > self.limit:
                self.dropped += 1
                return
            self._pending += frame
            return
        try:
            sent = self.sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True  # the host went away: the doorbell reader ends the run
            return
        if sent < len(frame):
            self._pending += frame[sent:]
            if self._wake is not None:
                self._wake.set()

    async def flush_forever(self) -> None:
        while not self.broken:
            if not self._pending:
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            await anyio.wait_writable(self.sock)
            try:
                sent = self.sock.send(self._pending)
            except BlockingIOError:
                continue
            except OSError:
                self.broken = True
                return
            del self._pending[:sent]
            if not self._pending and self.dropped:
                dropped, self.dropped = self.dropped, 0
                log.warning("%d frames to the host dropped: it did not read", dropped)

    def drain(self, timeout: float) -> None:
        """Before exiting: send what still waits (the last records, a crash report), for at
        most ``timeout`` s in all."""
        if self.broken or not self._pending:
            return
        self.sock.settimeout(timeout)
        with contextlib.suppress(OSError):
            self.sock.sendall(self._pending)


class ForwardHandler(logging.Handler):
    """Sends every record to the host as a LOG frame."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.outbox.send(log_frame(record))
        except Exception:
            self.handleError(record)


def _ignore_result(func: Callable[[int], object]) -> Callable[[int], None]:
    def call(value: int) -> None:
        func(value)

    return call


def _memory(cfg: dict[str, Any], mm: mmap.mmap) -> DeviceMemory:
    view = memoryview(mm)
    memory = DeviceMemory()
    for da, offset, size in cfg["regions"]:
        memory.add(Region(da, view[offset : offset + size], f"da{da:#x}"))
    return memory


async def _run(cfg: dict[str, Any], outbox: Outbox, memory: DeviceMemory) -> int:
    sock, send = outbox.sock, outbox.send
    ctx = FirmwareContext(
        name=cfg["name"],
        memory=memory,
        table_da=cfg["table_da"],
        table_size=cfg["table_size"],
        faults=Faults(**cfg["faults"]),
        args=cfg["args"],
        interrupt_host=lambda nid: send(kick_frame(nid)),
    )
    program = get_program(cfg["program"])
    if program is None:
        send(crash_frame(CrashKind.FATAL_ERROR.value, f"unknown program {cfg['program']!r}"))
        return 2
    status = 0
    async with anyio.create_task_group() as tg:

        async def doorbell() -> None:
            reader = FrameReader(_ignore_result(ctx.host_kicked), lambda k, d: None)
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    await anyio.wait_readable(sock)
                    continue
                except OSError:
                    data = b""
                if not data:  # the host went away or reset us
                    tg.cancel_scope.cancel()
                    return
                reader.feed(data)

        async def firmware() -> None:
            nonlocal status
            crash = await run_firmware(program, ctx)
            if crash is not None:
                if crash.error is not None:  # one run per process: its traceback, once
                    log.error("%s: firmware program raised", ctx.name, exc_info=crash.error)
                send(crash_frame(crash.kind.value, crash.detail))
                status = 3
            tg.cancel_scope.cancel()

        tg.start_soon(doorbell)
        tg.start_soon(firmware)
        tg.start_soon(outbox.flush_forever)
    return status


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    sock = socket.socket(fileno=cfg["sock_fd"])
    sock.setblocking(False)
    outbox = Outbox(sock)
    root = logging.getLogger()
    root.addHandler(ForwardHandler(outbox))
    root.setLevel(cfg.get("log_level", logging.WARNING))
    for module in cfg.get("modules", []):
        importlib.import_module(module)
    mm = mmap.mmap(cfg["mem_fd"], cfg["mem_size"])
    memory = _memory(cfg, mm)
    backend_options = {"use_uvloop": cfg.get("uvloop", False)}
    try:
        return anyio.run(_run, cfg, outbox, memory, backend_options=backend_options)
    finally:
        outbox.drain(timeout=2.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
