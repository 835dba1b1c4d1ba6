"""What a firmware program sees: its memory, its resource table, a trace buffer.

Theory of operation: real firmware knows only its own device addresses. The platform running
the program (the simulator, in-process or in a core process; the PandaBoard model's cores)
builds its view from the mappings the host programmed (an IOMMU, simulated or modelled) plus
the core's internal memories, and hands the program a :class:`FirmwareContext`. The program
finds its vdev in its resource table (at the table's device address, as linked), waits for the
host's DRIVER_OK, and runs the remote side of rpmsg through :class:`FirmwareTransport`: kicks
go to the host through the platform's ``interrupt_host(notifyid)``, the host's kicks ring the
program's doorbell (:meth:`FirmwareContext.host_kicked`). :func:`run_firmware` runs a program
as a core would and says how it crashed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, NamedTuple, NoReturn

import anyio
import attrs

from remoteproc.platform import CrashKind
from remoteproc.rsc_table import ResourceTable, parse_resource_table, vdev_entry_view_offset
from rpmsg import RpmsgBus
from transports.base import DoorbellTransport
from transports.virtio.constants import VIRTIO_ID_RPMSG
from transports.virtio.memory import DeviceMemory
from transports.virtio.vdev import VdevView


@attrs.define
class Faults:
    """Failures to inject into the next run of a firmware program.

    Attributes:
        crash_on_start: report a crash as soon as the program starts.
        crash_after_messages: report a fatal error after handling N messages.
        hang_after_messages: stop responding (the core hangs) after N messages.
        never_announce: create endpoints without announcing them.
        one_shot: clear these faults once they fired, so recovery succeeds.
    """

    crash_on_start: bool = False
    crash_after_messages: int | None = None
    hang_after_messages: int | None = None
    never_announce: bool = False
    one_shot: bool = True


class FirmwareCrash(Exception):
    """Raised inside a program to make its core crash."""

    def __init__(self, kind: CrashKind, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


class FirmwareTransport(DoorbellTransport):
    """The firmware's (remote, virtio device) end of one vdev."""

    def __init__(
        self,
        memory: DeviceMemory,
        vdev: VdevView,
        interrupt_host: Callable[[int], None],
        name: str,
    ) -> None:
        super().__init__(role="remote", memory=memory, vdev=vdev, pool=None)
        self.name = name
        self._interrupt_host = interrupt_host

    def kick(self, vq: int) -> None:
        self._check_open()
        self.stats.kicks_sent += 1
        self._interrupt_host(self.vdev.vring(vq).notifyid)

    async def aclose(self) -> None:
        self._close_inbox(f"{self.name}: core stopped")


class FirmwareContext:
    """The environment of one run of a firmware program."""

    def __init__(
        self,
        *,
        name: str,
        memory: DeviceMemory,
        table_da: int | None,
        table_size: int,
        faults: Faults,
        args: dict[str, str],
        interrupt_host: Callable[[int], None],
    ) -> None:
        self.name = name
        self.memory = memory
        self.table_da = table_da
        self.table_size = table_size
        self.faults = faults
        self.args = args
        self.messages = 0
        self._interrupt_host = interrupt_host
        self.transports: list[FirmwareTransport] = []
        self._trace_pos = 0
        self._trace: memoryview | Literal[False] | None = None  # None: not looked up yet
        self.trace_overflows = 0

    # -- the resource table, as linked into the image -------------------------------------------
    def resource_table(self) -> ResourceTable:
        if self.table_da is None:
            raise LookupError(f"{self.name}: the image has no resource table")
        return parse_resource_table(self.memory.view(self.table_da, self.table_size))

    # -- trace buffer -----------------------------------------------------------------------------
    def log(self, line: str) -> None:
        """Append ``line`` to trace buffer 0 (NUL-terminated, as firmware does); lines that
        do not fit are counted in ``trace_overflows``."""
        buf = self._trace_buffer()
        if buf is None:
            return
        data = (line + "\n").encode("utf-8", "replace")
        if self._trace_pos + len(data) + 1 > buf.nbytes:
            self.trace_overflows += 1
            return
        buf[self._trace_pos : self._trace_pos + len(data)] = data
        self._trace_pos += len(data)
        buf[self._trace_pos] = 0

    def _trace_buffer(self) -> memoryview | None:
        """Trace buffer 0, found in the resource table once (it does not move)."""
        if self._trace is None:
            table = self.resource_table() if self.table_da is not None else None
            if table is None or not table.traces:
                self._trace = False
            else:
                trace = table.traces[0]
                self._trace = self.memory.view(trace.da, trace.len)
        return None if self._trace is False else self._trace

    # -- faults -----------------------------------------------------------------------------------
    def crash(self, kind: CrashKind = CrashKind.FATAL_ERROR, detail: str = "") -> NoReturn:
        raise FirmwareCrash(kind, detail or "firmware crashed")

    async def message_handled(self) -> None:
        """Programs call this per message so count-based faults fire."""
        self.messages += 1
        faults = self.faults
        if faults.crash_after_messages is not None and self.messages >= faults.crash_after_messages:
            self.log(f"fatal error after {self.messages} messages (injected)")
            self.crash(CrashKind.FATAL_ERROR, f"injected after {self.messages} messages")
        if faults.hang_after_messages is not None and self.messages >= faults.hang_after_messages:
            self.log(f"hanging after {self.messages} messages (injected)")
            await anyio.sleep_forever()

    # -- rpmsg ------------------------------------------------------------------------------------
    def _vdev_view(self, index: int) -> VdevView:
        table = self.resource_table()
        vdevs = [v for v in table.vdevs if v.id == VIRTIO_ID_RPMSG]
        if index >= len(vdevs):
            raise LookupError(f"{self.name}: no rpmsg vdev {index} in the resource table")
        assert self.table_da is not None
        live = self.memory.view(self.table_da, self.table_size)
        return VdevView(live[vdev_entry_view_offset(vdevs[index]) :])

    @asynccontextmanager
    async def rpmsg(
        self, vdev: int = 0, *, ready_timeout: float | None = None
    ) -> AsyncIterator[RpmsgBus]:
        """The remote-role bus of rpmsg vdev ``vdev``, once the host has set DRIVER_OK."""
        transport = FirmwareTransport(
            self.memory, self._vdev_view(vdev), self._interrupt_host, f"{self.name}-fw-vdev{vdev}"
        )
        self.transports.append(transport)
        try:
            async with RpmsgBus(
                transport, name=f"{self.name}-fw", ready_timeout=ready_timeout
            ) as bus:
                self.log(f"vdev{vdev}: DRIVER_OK, rpmsg up (mtu {bus.mtu})")
                yield bus
        finally:
            await transport.aclose()
            self.transports.remove(transport)

    def host_kicked(self, notifyid: int) -> bool:
        """Route a host kick to the transport owning ``notifyid``; False if none does."""
        hit = False
        for transport in self.transports:
            vdev = transport.vdev
            if notifyid == vdev.notifyid or any(
                vdev.vring(i).notifyid == notifyid for i in range(vdev.num_of_vrings)
            ):
                transport.notify()
                hit = True
        return hit


def _find_crash(exc: BaseException) -> FirmwareCrash | None:
    """The FirmwareCrash in ``exc``, also when task groups wrapped it in exception groups."""
    if isinstance(exc, FirmwareCrash):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_crash(inner)
            if found is not None:
                return found
    return None


class Crash(NamedTuple):
    """How a program run ended in a crash; ``error`` is the program's own exception (a bug in
    the program, whose traceback its author wants) or None for a FirmwareCrash."""

    kind: CrashKind
    detail: str
    error: Exception | None = None


async def run_firmware(
    program: Callable[[FirmwareContext], Awaitable[None]], ctx: FirmwareContext
) -> Crash | None:
    """Run ``program`` as the core would, in this process or a core process; returns the
    crash it ended with (injected, a FirmwareCrash, or any other exception), or None. Nothing
    is logged here: the caller decides how often a repeated traceback is worth showing."""
    try:
        if ctx.faults.crash_on_start:
            ctx.crash(CrashKind.WATCHDOG, "injected crash on start")
        await program(ctx)
    except Exception as exc:
        crash = _find_crash(exc)
        if crash is not None:
            return Crash(crash.kind, crash.detail)
        return Crash(CrashKind.FATAL_ERROR, f"program raised {exc!r}", exc)
    return None
