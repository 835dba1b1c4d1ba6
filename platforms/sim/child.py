"""The child side of a simulated core running in its own process (see ``process.py``).

Started by :class:`~platforms.sim.platform.SimPlatform` as
``python -m platforms.sim.child CONFIG_JSON`` with the memory descriptor and the doorbell
socket inherited. It imports only the modules the host configuration names (never something a
firmware file names), looks the program up in the registry and runs it. Its log records go to
the host over the doorbell (LOG frames), never to its own stderr.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import anyio

from platforms.runtime import Faults, FirmwareContext, get_program, run_firmware
from platforms.runtime.programs import import_program_modules
from remoteproc.errors import BootError
from remoteproc.platform import CrashKind
from transports.shm_object import map_object
from transports.socket_doorbell import SocketDoorbell
from transports.virtio.memory import DeviceMemory, Region

from .process import FrameReader, crash_frame, kick_frame, log_frame

log = logging.getLogger("aioamp.platform.sim")


class ForwardHandler(logging.Handler):
    """Sends every record to the host as a LOG frame (what the socket cannot take now waits
    in the doorbell's bounded pending buffer; beyond it records are dropped and counted)."""

    def __init__(self, bell: SocketDoorbell) -> None:
        super().__init__()
        self.bell = bell

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bell.send(log_frame(record))
        except Exception:
            self.handleError(record)


def _ignore_result(func: Callable[[int], object]) -> Callable[[int], None]:
    def call(value: int) -> None:
        func(value)

    return call


def _memory(cfg: dict[str, Any]) -> DeviceMemory:
    fd = cfg["mem_fd"]
    view = memoryview(map_object(fd, cfg["mem_size"], f"(descriptor {fd})"))
    memory = DeviceMemory()
    for da, offset, size in cfg["regions"]:
        memory.add(Region(da, view[offset : offset + size], f"da{da:#x}"))
    return memory


async def _run(cfg: dict[str, Any], bell: SocketDoorbell, memory: DeviceMemory) -> int:
    send = bell.send
    ctx = FirmwareContext(
        name=cfg["name"],
        memory=memory,
        table_da=cfg["table_da"],
        table_size=cfg["table_size"],
        faults=Faults(**cfg["faults"]),
        args=cfg["args"],
        interrupt_host=_ignore_result(lambda nid: send(kick_frame(nid))),
    )
    program = get_program(cfg["program"])
    if program is None:
        modules = ", ".join(cfg.get("modules", [])) or "none"
        detail = (
            f"firmware program {cfg['program']!r} is not registered in the core process, "
            f"which knows only the built-in programs and those its program_modules register "
            f"({modules}): name the module that registers it in program_modules="
        )
        send(crash_frame(CrashKind.FATAL_ERROR.value, detail))
        return 2
    log.info(
        "%s: program %r runs in process %d",
        *(ctx.name, cfg["program"], os.getpid()),
        extra={"processor": ctx.name, "program": cfg["program"]},
    )
    status = 0
    async with anyio.create_task_group() as tg:

        async def doorbell() -> None:
            reader = FrameReader(_ignore_result(ctx.host_kicked), lambda k, d: None)
            received = memoryview(bell.buffer)
            await bell.run(lambda count: reader.feed(received[:count]))
            tg.cancel_scope.cancel()  # the host went away or reset us

        async def firmware() -> None:
            nonlocal status
            crash = await run_firmware(program, ctx)
            if crash is not None:
                if crash.error is not None:  # one run per process: its traceback, once
                    log.error(
                        "%s: firmware program raised",
                        ctx.name,
                        exc_info=crash.error,
                        extra={"processor": ctx.name, "reason": crash.detail},
                    )
                send(crash_frame(crash.kind.value, crash.detail))
                status = 3
            tg.cancel_scope.cancel()

        tg.start_soon(doorbell)
        tg.start_soon(firmware)
    return status


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    bell = SocketDoorbell(socket.socket(fileno=cfg["sock_fd"]), where="the host's doorbell")
    root = logging.getLogger()
    root.addHandler(ForwardHandler(bell))
    root.setLevel(cfg.get("log_level", logging.WARNING))
    # What the host can import, the core can: its script's folder, PYTHONPATH, tests/ ...
    sys.path.extend(entry for entry in cfg.get("sys_path", []) if entry not in sys.path)
    try:
        import_program_modules(cfg.get("modules", []), "the core process")
    except BootError as exc:
        bell.send(crash_frame(CrashKind.FATAL_ERROR.value, str(exc)))
        bell.drain(timeout=2.0)
        return 2
    memory = _memory(cfg)
    backend_options = {"use_uvloop": cfg.get("uvloop", False)}
    try:
        return anyio.run(_run, cfg, bell, memory, backend_options=backend_options)
    finally:
        bell.drain(timeout=2.0)  # the last records, a crash report


if __name__ == "__main__":
    sys.exit(main(sys.argv))
