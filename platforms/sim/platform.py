"""The simulated remote processor: a first-class platform, not a test helper.

Theory of operation: :class:`SimPlatform` owns a window of simulated DDR (a bytearray at a
physical address) from which remoteproc allocates carveouts, vrings and buffer pools, plus
optional internal memories at fixed device addresses. ``map(da, pa)`` calls from the loader are
recorded as a simulated IOMMU, and the firmware's view of memory is built from them, so the
program sees device addresses, never host objects. ``start(entry)`` runs the Python firmware
program named by the image's ``.aioamp.program`` section (looked up in the program registry);
``stop()`` cancels it, as a reset would. Kicks in both directions are notify ids. A program that
raises, or is told to fail, is reported to remoteproc as a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import weakref

import anyio
import anyio.abc
import attrs

from platforms.runtime import (
    Crash,
    Faults,
    FirmwareContext,
    run_firmware,
)
from platforms.runtime.programs import resolve_program
from remoteproc.errors import BootError
from remoteproc.firmware import FirmwareImage
from remoteproc.memory import PhysicalMemory
from remoteproc.platform import CrashKind, PlatformDriver
from transports.shm_object import anonymous_object
from transports.socket_doorbell import SocketDoorbell
from transports.virtio.memory import DeviceMemory, Region

from .process import FrameReader, forwarded_level, kick_frame

log = logging.getLogger("aioamp.platform.sim")

DEFAULT_DDR_PA = 0x8000_0000
DEFAULT_DDR_SIZE = 8 << 20
#: Bytes of host kicks that may wait for the core process to read (then kicks are dropped).
KICK_BACKLOG = 1 << 16


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


class SimPlatform(PlatformDriver):
    """A simulated remote processor.

    Args:
        name: processor name.
        ddr_pa: where the simulated memory that carveouts come from starts (physical).
        ddr_size: its size in bytes.
        internal: ``(da, size)`` internal memories (TCM/SRAM) at fixed device addresses.
        devmem_allowlist: ``(pa, size)`` windows DEVMEM entries may map.
        faults: failures to inject into the next run (see :class:`Faults`).
        args: parameters for the program (e.g. ``{"count": "100"}``).
        stop_timeout: how long ``stop()`` waits for the program to unwind.
        process: run the program in a separate OS process (``python -m
            platforms.sim.child``) that shares only memory and a doorbell with the host; a
            killed process is reported as a crash.
        program_modules: modules that register your own programs (``register_program``),
            imported before the program is looked up: at each start here, and in the core
            process, a fresh interpreter (with this process's ``sys.path``) that knows only
            the built-in programs and those these modules register. Needed with
            ``process=True`` for any program of yours.
    """

    def __init__(
        self,
        name: str = "sim",
        *,
        ddr_pa: int = DEFAULT_DDR_PA,
        ddr_size: int = DEFAULT_DDR_SIZE,
        internal: tuple[tuple[int, int], ...] = (),
        devmem_allowlist: tuple[tuple[int, int], ...] = (),
        faults: Faults | None = None,
        args: dict[str, str] | None = None,
        stop_timeout: float = 5.0,
        process: bool = False,
        program_modules: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.name = name
        self.process = process
        self.program_modules = program_modules
        self._mem_fd: int | None = None
        total = ddr_size + sum(size for _da, size in internal)
        if process:
            # Unlinked at once: it lives as long as our descriptor and mappings (and a child's).
            self._mem_fd, self._mapping = anonymous_object(total, "aioamp-sim")
            weakref.finalize(self, os.close, self._mem_fd)
            backing = memoryview(self._mapping)
        else:
            backing = memoryview(bytearray(total))
        self.ddr = backing[:ddr_size]
        self.physical = PhysicalMemory(ddr_pa, self.ddr, f"{name}-ddr")
        self.devmem_allowlist = devmem_allowlist
        self._internal: list[Region] = []
        self._internal_offsets: dict[int, int] = {}
        offset = ddr_size
        for i, (da, size) in enumerate(internal):
            self._internal.append(Region(da, backing[offset : offset + size], f"{name}-sram{i}"))
            self._internal_offsets[da] = offset
            offset += size
        self._proc: anyio.abc.Process | None = None
        self._bell: SocketDoorbell | None = None
        self._expected_exit = False
        self.faults = faults or Faults()
        self.args = dict(args or {})
        self.stop_timeout = stop_timeout
        self.iommu: dict[int, tuple[int, int]] = {}  # da -> (pa, size)
        self._image: FirmwareImage | None = None
        self._ctx: FirmwareContext | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self.starts = self.stops = 0
        self.running = False
        self.dropped_kicks = 0
        self._last_program_error: str | None = None

    # -- memory -------------------------------------------------------------------------------
    def internal_memory(self) -> list[Region]:
        return list(self._internal)

    def map(self, da: int, pa: int, size: int) -> None:
        if not self.physical.contains(pa, size):
            raise BootError(f"{self.name}: cannot map pa {pa:#x} (+{size:#x}): not in DDR")
        self.iommu[da] = (pa, size)

    def unmap(self, da: int, size: int) -> None:
        self.iommu.pop(da, None)

    def map_devmem(self, da: int, pa: int, size: int) -> memoryview | None:
        # Simulated peripherals: the core gets zeroed scratch memory there; the host no view.
        self.iommu[da] = (pa, size)
        return None

    def _regions(self) -> list[tuple[int, int, int]]:
        """``(da, offset in the backing object, size)`` of everything the core can see."""
        out = [(r.da, self._internal_offsets[r.da], r.size) for r in self._internal]
        base = self.physical.base_pa
        for da, (pa, size) in sorted(self.iommu.items()):
            if self.physical.contains(pa, size):
                out.append((da, pa - base, size))
        return out

    def firmware_view(self) -> DeviceMemory:
        """The processor's own view of memory: internal memories plus the IOMMU mappings."""
        memory = DeviceMemory(list(self._internal))
        base = self.physical.base_pa
        for da, (pa, size) in sorted(self.iommu.items()):
            if self.physical.contains(pa, size):
                off = pa - base
                memory.add(Region(da, self.physical.mem[off : off + size], f"da{da:#x}"))
        return memory

    # -- control ------------------------------------------------------------------------------
    def firmware_loaded(self, image: FirmwareImage) -> None:
        self._image = image

    async def start(self, entry: int) -> None:
        image = self._image
        if image is None:
            raise BootError(f"{self.name}: start without a loaded image")
        if image.program is None:
            raise BootError(f"{self.name}: the image has no .aioamp.program section")
        program = resolve_program(
            image.program, self.program_modules, where=self.name, process=self.process
        )
        if self.events is None:
            raise BootError(f"{self.name}: platform not bound to a processor")
        if self.process:
            await self._start_process(image.program, entry)
            return
        table = image.resource_table
        ctx = FirmwareContext(
            name=self.name,
            memory=self.firmware_view(),
            table_da=None if table is None else table.addr,
            table_size=0 if table is None else table.size,
            faults=self.faults,
            args=self.args,
            interrupt_host=self._interrupt_host,
        )
        self._ctx = ctx
        self._done = anyio.Event()
        self._scope = anyio.CancelScope()
        self.starts += 1
        self.running = True
        log.info(
            "%s: released from reset at %#x, running %r",
            *(self.name, entry, image.program),
            extra={"processor": self.name, "program": image.program},
        )
        scope, done = self._scope, self._done

        async def run() -> None:
            try:
                with scope:
                    crash = await run_firmware(program, ctx)
                    if crash is not None:
                        self._log_program_error(crash)
                        self._crashed(crash.kind, crash.detail)  # also consumes one-shot faults
            finally:
                done.set()

        self.events.spawn(run, f"firmware {image.program}")

    async def _start_process(self, program: str, entry: int) -> None:
        image = self._image
        assert image is not None and self._mem_fd is not None and self.events is not None
        table = image.resource_table
        parent, child = socket.socketpair()
        cfg = {
            "name": self.name,
            "program": program,
            "modules": list(self.program_modules),
            "sys_path": sys.path,
            "mem_fd": self._mem_fd,
            "mem_size": len(self._mapping),
            "sock_fd": child.fileno(),
            "regions": self._regions(),
            "table_da": None if table is None else table.addr,
            "table_size": 0 if table is None else table.size,
            "faults": attrs.asdict(self.faults),
            "args": self.args,
            "uvloop": _uvloop_available(),
            "log_level": forwarded_level(),
        }
        try:
            proc = await anyio.open_process(
                [sys.executable, "-m", "platforms.sim.child", json.dumps(cfg)],
                pass_fds=(self._mem_fd, child.fileno()),
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
            )
        except OSError as exc:
            parent.close()
            raise BootError(f"{self.name}: cannot start the core process: {exc}") from exc
        finally:
            child.close()
        if self.faults.one_shot and (
            self.faults.crash_on_start
            or self.faults.crash_after_messages is not None
            or self.faults.hang_after_messages is not None
        ):
            self._consume_faults()  # the child got them; a recovery boots clean
        bell = SocketDoorbell(
            parent, where=f"{self.name}: core", pending_limit=KICK_BACKLOG, logger=log
        )
        self._proc, self._bell = proc, bell
        self._expected_exit = False
        self.starts += 1
        self.running = True
        log.info(
            "%s: core process %d released from reset at %#x, running %r",
            *(self.name, proc.pid, entry, program),
            extra={"processor": self.name, "pid": proc.pid, "program": program},
        )
        self.events.spawn(lambda: self._doorbell(proc, bell), f"core process {proc.pid}")

    async def _doorbell(self, proc: anyio.abc.Process, bell: SocketDoorbell) -> None:
        """Read the child's kicks and crash reports; EOF means the core went away."""
        crashed: list[tuple[str, str]] = []
        reader = FrameReader(self._interrupt_host, lambda k, d: crashed.append((k, d)))
        received = memoryview(bell.buffer)
        await bell.run(lambda count: reader.feed(received[:count]))
        if proc is not self._proc or self._expected_exit:
            return  # stopped on purpose
        with anyio.move_on_after(2):
            await proc.wait()
        if crashed:
            kind, detail = crashed[-1]
            self._crashed(CrashKind(kind), detail)
        else:
            self._crashed(
                CrashKind.WATCHDOG,
                f"core process {proc.pid} died (exit status {proc.returncode})",
            )

    def _interrupt_host(self, notifyid: int) -> None:
        """The core kicked the host: deliver to whichever processor owns us now (after a
        detach and attach that is a new one)."""
        if self.events is not None:
            self.events.vq_interrupt(notifyid)

    # -- attach support: a core started by another host keeps running -------------------------
    def is_running(self) -> bool:
        return self.running

    def loaded_table(self) -> tuple[int, memoryview] | None:
        image = self._image
        if not self.running or image is None or image.resource_table is None:
            return None
        table = image.resource_table
        return table.addr, self.firmware_view().view(table.addr, table.size)

    async def attach(self) -> None:
        if not self.running:
            raise BootError(f"{self.name}: the core is not running, nothing to attach to")

    async def detach(self) -> None:
        """Nothing to do: the core keeps running and keeps its memory."""

    def _log_program_error(self, crash: Crash) -> None:
        """A program that raised is a bug in the program: its author gets the traceback once
        per distinct error, not once per recovery (remoteproc logs each crash in one line)."""
        if crash.error is None:
            return
        if crash.detail == self._last_program_error:
            log.debug(
                "%s: firmware program raised again",
                self.name,
                exc_info=crash.error,
                extra={"processor": self.name, "reason": crash.detail},
            )
        else:
            log.warning(
                "%s: firmware program raised",
                self.name,
                exc_info=crash.error,
                extra={"processor": self.name, "reason": crash.detail},
            )
        self._last_program_error = crash.detail

    def _consume_faults(self) -> None:
        if self.faults.one_shot:
            self.faults = Faults()

    def _crashed(self, kind: CrashKind, detail: str) -> None:
        self.running = False
        self._consume_faults()
        if self.events is not None:
            self.events.report_crash(kind, detail)

    def crash_now(self, kind: CrashKind = CrashKind.WATCHDOG, detail: str = "injected") -> None:
        """Make the running core crash at once (e.g. a watchdog firing)."""
        if self._scope is not None:
            self._scope.cancel()
        if self._proc is not None and self._proc.returncode is None:
            self._expected_exit = True
            self._proc.kill()
        self._crashed(kind, detail)

    @property
    def pid(self) -> int | None:
        """The core process's pid in process mode, while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def stop(self) -> None:
        self.stops += 1
        self.running = False
        proc, bell = self._proc, self._bell
        if proc is not None:
            self._expected_exit = True
            self._proc = self._bell = None
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # a reset: the core stops wherever it is
            with anyio.move_on_after(self.stop_timeout):
                await proc.wait()
            await proc.aclose()
            if bell is not None:
                bell.close()
        scope, done = self._scope, self._done
        self._scope = None
        self._ctx = None
        if scope is not None:
            scope.cancel()
        if done is not None:
            with anyio.move_on_after(self.stop_timeout):
                await done.wait()
            if not done.is_set():
                raise BootError(f"{self.name}: firmware program did not stop in time")

    def kick(self, notifyid: int) -> None:
        if self.process:
            # Dropped: no core process, KICK_BACKLOG bytes of kicks it has not read, or it died
            # (the doorbell reader reports that).
            bell = self._bell
            if bell is None or not bell.send(kick_frame(notifyid)):
                self.dropped_kicks += 1
            return
        ctx = self._ctx
        if ctx is None or not ctx.host_kicked(notifyid):
            self.dropped_kicks += 1

    @property
    def context(self) -> FirmwareContext | None:
        """The running program's context (for tests and debugging)."""
        return self._ctx
