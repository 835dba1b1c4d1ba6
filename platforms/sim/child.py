"""The child side of a simulated core running in its own process (see ``process.py``).

Started by :class:`~platforms.sim.platform.SimPlatform` as
``python -m platforms.sim.child CONFIG_JSON`` with the memory descriptor and the doorbell
socket inherited. It imports only the modules the host configuration names (never something a
firmware file names), looks the program up in the registry and runs it.
"""

from __future__ import annotations

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
from transports.memory import DeviceMemory, Region

from .process import FrameReader, crash_frame, kick_frame

log = logging.getLogger("platforms.sim")


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


async def _run(cfg: dict[str, Any], sock: socket.socket, memory: DeviceMemory) -> int:
    def send(data: bytes) -> None:
        try:
            sock.sendall(data)
        except BlockingIOError:
            # The host is not reading (stalled): a kick may be dropped, it is only a hint.
            pass
        except OSError:
            pass

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
    return status


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    for module in cfg.get("modules", []):
        importlib.import_module(module)
    mm = mmap.mmap(cfg["mem_fd"], cfg["mem_size"])
    sock = socket.socket(fileno=cfg["sock_fd"])
    sock.setblocking(False)
    memory = _memory(cfg, mm)
    backend_options = {"use_uvloop": cfg.get("uvloop", False)}
    return anyio.run(_run, cfg, sock, memory, backend_options=backend_options)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
