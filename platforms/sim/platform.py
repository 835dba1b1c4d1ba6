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

import logging

import anyio

from remoteproc.errors import BootError
from remoteproc.firmware import FirmwareImage
from remoteproc.memory import PhysicalMemory
from remoteproc.platform import CrashKind, PlatformDriver
from transports.memory import DeviceMemory, Region

from .context import Faults, FirmwareContext, FirmwareCrash
from .programs import get_program, program_names

log = logging.getLogger("platforms.sim")

DEFAULT_DDR_PA = 0x8000_0000
DEFAULT_DDR_SIZE = 8 << 20


class SimPlatform(PlatformDriver):
    """A simulated remote processor.

    Args:
        name: processor name.
        ddr_pa, ddr_size: the simulated physical memory carveouts come from.
        internal: ``(da, size)`` internal memories (TCM/SRAM) at fixed device addresses.
        devmem_allowlist: ``(pa, size)`` windows DEVMEM entries may map.
        faults: failures to inject into the next run (see :class:`Faults`).
        args: parameters for the program (e.g. ``{"count": "100"}``).
        stop_timeout: how long ``stop()`` waits for the program to unwind.
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
    ) -> None:
        super().__init__()
        self.name = name
        self.ddr = bytearray(ddr_size)
        self.physical = PhysicalMemory(ddr_pa, memoryview(self.ddr), f"{name}-ddr")
        self.devmem_allowlist = devmem_allowlist
        self._internal = [
            Region(da, memoryview(bytearray(size)), f"{name}-sram{i}")
            for i, (da, size) in enumerate(internal)
        ]
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
        program = get_program(image.program)
        if program is None:
            raise BootError(
                f"{self.name}: the image names firmware program {image.program!r}, which is "
                f"not registered (known: {', '.join(program_names())})"
            )
        if self.events is None:
            raise BootError(f"{self.name}: platform not bound to a processor")
        table = image.resource_table
        ctx = FirmwareContext(
            name=self.name,
            memory=self.firmware_view(),
            table_da=None if table is None else table.addr,
            table_size=0 if table is None else table.size,
            faults=self.faults,
            args=self.args,
            interrupt_host=self.events.vq_interrupt,
        )
        self._ctx = ctx
        self._done = anyio.Event()
        self._scope = anyio.CancelScope()
        self.starts += 1
        self.running = True
        log.info("%s: released from reset at %#x, running %r", self.name, entry, image.program)
        scope, done = self._scope, self._done

        async def run() -> None:
            try:
                with scope:
                    if self.faults.crash_on_start:
                        self._consume_faults()
                        ctx.crash(CrashKind.WATCHDOG, "injected crash on start")
                    await program(ctx)
            except FirmwareCrash as crash:
                self._crashed(crash.kind, crash.detail)
            except Exception as exc:
                log.exception("%s: firmware program raised", self.name)
                self._crashed(CrashKind.FATAL_ERROR, f"program raised {exc!r}")
            finally:
                done.set()

        self.events.spawn(run, f"firmware {image.program}")

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
        self._crashed(kind, detail)

    async def stop(self) -> None:
        self.stops += 1
        self.running = False
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
        ctx = self._ctx
        if ctx is None or not ctx.host_kicked(notifyid):
            self.dropped_kicks += 1

    @property
    def context(self) -> FirmwareContext | None:
        """The running program's context (for tests and debugging)."""
        return self._ctx
