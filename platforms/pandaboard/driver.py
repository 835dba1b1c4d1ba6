"""The OMAP4 remoteproc driver in userspace: IPU (dual Cortex-M3) and DSP on a PandaBoard.

Theory of operation (Linux ``drivers/remoteproc/omap_remoteproc.c`` plus the hwmod/PRCM code it
relies on, redone over a :class:`~platforms.pandaboard.hw.PhysicalBus`): a :class:`PandaBoard` owns
what the processors share (the mailbox and its UIO interrupt, the PRCM registers, one MMU
programmer per L2 MMU, clock reference counts); :meth:`PandaBoard.platform` hands out one
:class:`PandaBoardPlatform` per processor for :class:`~remoteproc.manager.RemoteprocManager`.

* Memory: the processor's reserved window is mapped through the bus (``/dev/mem`` with
  ``O_SYNC`` on a board, a file in the model) and becomes its ``PhysicalMemory``. ``map()``
  only records translations, after checking them against the window and the DEVMEM allowlist:
  the MMU is held in reset while the loader runs, so :meth:`start` programs it.
* Start: refuse what cannot work before touching anything (MMU plan, boot address); enable the
  clock domain and module; release the MMU reset (RSTST handshake) and load locked TLB
  entries; flush stale mailbox messages; queue ECHO_REQUEST; release the core reset (clear
  RSTST, deassert, poll RSTST with a timeout, sleeping between polls).
* Messages from the core (mailbox rx fifo, via :meth:`Mailbox.serve`): a notify id becomes
  ``vq_interrupt``, CRASH a crash report, ECHO_REPLY is counted and awaitable, the other
  control messages are counted, anything else is dropped and counted.
* Kicks are synchronous for remoteproc but the fifo may be full: a kick that cannot be
  written at once is queued (coalesced per notify id) and written by a task that waits for
  NOTFULL.
* Stop asserts the core reset; the last core of an MMU asserts the MMU reset, the last user of
  a clock domain lets it idle.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from platforms.pandaboard.hw import (
    OMAP_MESSAGE_MAX,
    DevMemBus,
    Mailbox,
    OmapMessage,
    PhysicalBus,
    RegisterWindow,
    UioDevice,
)
from remoteproc.errors import BootError, DevmemNotAllowedError
from remoteproc.firmware import FirmwareImage
from remoteproc.memory import PhysicalMemory
from remoteproc.platform import CrashKind, PlatformDriver, RprocEvents

from .config import PANDABOARD, BoardConfig, ClockConfig, ProcessorConfig, ResetConfig
from .mmu import MmuError, MmuProgrammer, TlbEntry, plan_entries

log = logging.getLogger("aioamp.platform.pandaboard")

PAGE = 0x1000
_CONTROL = frozenset(int(m) for m in OmapMessage)


@attrs.define
class PandaStatistics:
    """Per-processor mailbox counters."""

    kicks_sent: int = 0
    kicks_queued: int = 0
    kicks_coalesced: int = 0
    kicks_dropped: int = 0  # the core was not running
    vq_interrupts: int = 0
    echo_replies: int = 0
    crashes: int = 0
    control: dict[str, int] = attrs.field(factory=dict)  # other control messages by name
    unknown: int = 0  # values above max_notifyid that are no control message: dropped
    ignored_after_crash: int = 0


class PandaBoard:
    """The hardware the processors share.

    Args:
        bus: the physical address space (``DevMemBus()`` on a board, the model's bus).
        mailbox_uio: the UIO device of the mailbox's host interrupt line.
        config: addresses and bits (:data:`~platforms.pandaboard.config.PANDABOARD`).
    """

    def __init__(
        self, bus: PhysicalBus, mailbox_uio: UioDevice, config: BoardConfig = PANDABOARD
    ) -> None:
        self.bus = bus
        self.config = config
        cfg = config.mailbox
        self.mailbox = Mailbox(bus.map(cfg.base, cfg.window), mailbox_uio, cfg)
        self._pages: dict[int, RegisterWindow] = {}
        self._mmus: dict[int, MmuProgrammer] = {}
        self._clock_users: dict[int, set[str]] = collections.defaultdict(set)
        self._mmu_users: dict[int, set[str]] = collections.defaultdict(set)
        self._platforms: dict[str, PandaBoardPlatform] = {}

    @classmethod
    def open(
        cls,
        config: BoardConfig = PANDABOARD,
        *,
        devmem: str = "/dev/mem",
        sysfs: str | os.PathLike[str] = "/sys/class/uio",
        dev: str | os.PathLike[str] = "/dev",
    ) -> PandaBoard:
        """The real board: ``/dev/mem`` through periphery, the mailbox UIO found by name."""
        uio = UioDevice.by_name(config.mailbox_uio_name, sysfs=sysfs, dev=dev)
        return cls(DevMemBus(devmem), uio, config)

    def close(self) -> None:
        """Close the mailbox's UIO device (the processors must be shut down)."""
        self.mailbox.uio.close()

    def platform(self, name: str) -> PandaBoardPlatform:
        """The platform driver of processor ``name`` (one per name)."""
        if name not in self._platforms:
            self._platforms[name] = PandaBoardPlatform(self, self.config.processor(name))
        return self._platforms[name]

    # -- register access -------------------------------------------------------------------------
    def _reg(self, pa: int) -> tuple[RegisterWindow, int]:
        page = pa & ~(PAGE - 1)
        window = self._pages.get(page)
        if window is None:
            window = self._pages[page] = self.bus.map(page, PAGE)
        return window, pa - page

    def read32(self, pa: int) -> int:
        window, off = self._reg(pa)
        return window.read32(off)

    def write32(self, pa: int, value: int) -> None:
        window, off = self._reg(pa)
        window.write32(off, value)

    def mmu(self, base: int, tlb_entries: int) -> MmuProgrammer:
        if base not in self._mmus:
            self._mmus[base] = MmuProgrammer(self.bus.map(base, PAGE), tlb_entries)
        return self._mmus[base]

    # -- shared resources --------------------------------------------------------------------------
    def clock_on(self, clock: ClockConfig, user: str) -> None:
        users = self._clock_users[clock.clkctrl]
        if not users:
            st = self.read32(clock.clkstctrl) & ~clock.clktrctrl_mask
            self.write32(clock.clkstctrl, st | clock.clktrctrl_sw_wkup)
            ctl = self.read32(clock.clkctrl) & ~clock.modulemode_mask
            self.write32(clock.clkctrl, ctl | clock.modulemode_hw_auto)
        users.add(user)

    def clock_off(self, clock: ClockConfig, user: str) -> None:
        users = self._clock_users[clock.clkctrl]
        users.discard(user)
        if not users:
            ctl = self.read32(clock.clkctrl) & ~clock.modulemode_mask
            self.write32(clock.clkctrl, ctl | clock.modulemode_disabled)
            st = self.read32(clock.clkstctrl) & ~clock.clktrctrl_mask
            self.write32(clock.clkstctrl, st | clock.clktrctrl_hw_auto)

    def assert_reset(self, reset: ResetConfig, bit: int) -> None:
        self.write32(reset.rstctrl, self.read32(reset.rstctrl) | 1 << bit)

    def in_reset(self, reset: ResetConfig, bit: int) -> bool:
        return bool(self.read32(reset.rstctrl) & 1 << bit)

    async def deassert_reset(self, reset: ResetConfig, bit: int, what: str) -> None:
        """``omap4_prminst_deassert_hardreset``: clear RSTST, deassert, wait for RSTST."""
        mask = 1 << bit
        ctrl = self.read32(reset.rstctrl)
        if not ctrl & mask:
            raise BootError(f"{what}: reset line {bit} is already released")
        self.write32(reset.rstst, mask)  # write 1 to clear the old status
        self.write32(reset.rstctrl, ctrl & ~mask)
        with anyio.move_on_after(reset.timeout):
            while not self.read32(reset.rstst) & mask:
                await anyio.sleep(reset.poll_interval)
            return
        self.assert_reset(reset, bit)
        raise BootError(f"{what}: reset did not complete within {reset.timeout * 1000:.0f} ms")

    def ensure_mailbox_served(self, events: RprocEvents) -> None:
        if not self.mailbox.serving:
            self.mailbox.serving = True  # claimed now; serve() sets it again when it runs

            async def serve() -> None:
                self.mailbox.serving = False
                await self.mailbox.serve()

            events.spawn(serve, "omap4 mailbox interrupt")


class PandaBoardPlatform(PlatformDriver):
    """One OMAP4 remote processor (``ipu``, ``ipu-core1`` or ``dsp``).

    Create through :meth:`PandaBoard.platform`.
    """

    def __init__(self, board: PandaBoard, config: ProcessorConfig) -> None:
        super().__init__()
        self.board = board
        self.config = config
        self.name = config.name
        window = config.memory
        self.physical = PhysicalMemory(
            window.pa, board.bus.map_memory(window.pa, window.size), f"{config.name}-ipc"
        )
        self.devmem_allowlist = config.devmem_allowlist
        self.translations: dict[int, tuple[int, int]] = {}  # da -> (pa, size)
        self.tlb: list[TlbEntry] = []
        self._image: FirmwareImage | None = None
        self._running = False
        self._powered = False
        self._crashed = False
        self._pending: collections.deque[int] = collections.deque()
        self._pending_event: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._echo_event = anyio.Event()
        self._stats = PandaStatistics()

    # -- memory --------------------------------------------------------------------------------
    def _allowed(self, pa: int, size: int) -> bool:
        if self.physical.contains(pa, size):
            return True
        return any(base <= pa and pa + size <= base + n for base, n in self.devmem_allowlist)

    def map(self, da: int, pa: int, size: int) -> None:
        if not self._allowed(pa, size):
            raise DevmemNotAllowedError(
                f"{self.name}: refusing to map pa [{pa:#x}, +{size:#x}) at da {da:#x}: outside "
                "the reserved window and the DEVMEM allowlist"
            )
        self.translations[da] = (pa, size)

    def map_devmem(self, da: int, pa: int, size: int) -> memoryview | None:
        self.check_devmem(da, pa, size, "devmem")
        self.map(da, pa, size)
        return None  # peripherals: the host has its own drivers, no view

    def unmap(self, da: int, size: int) -> None:
        self.translations.pop(da, None)

    def plan(self) -> list[TlbEntry]:
        """The TLB entries :meth:`start` will lock (pure; raises BootError if impossible)."""
        try:
            return plan_entries(
                [(da, pa, size) for da, (pa, size) in self.translations.items()],
                self.config.mmu.tlb_entries,
            )
        except MmuError as exc:
            raise BootError(f"{self.name}: {exc}") from exc

    # -- control ---------------------------------------------------------------------------------
    def firmware_loaded(self, image: FirmwareImage) -> None:
        self._image = image

    async def start(self, entry: int) -> None:
        cfg, board = self.config, self.board
        events = self.events
        if events is None:
            raise BootError(f"{self.name}: platform not bound to a processor")
        # Everything that can be refused is refused before a register is written.
        entries = self.plan()
        if cfg.bootaddr_reg is not None and entry % cfg.bootaddr_align:
            raise BootError(
                f"{self.name}: boot address {entry:#x} is not {cfg.bootaddr_align:#x}-aligned"
            )
        reset, mmu_key = cfg.reset, cfg.mmu.base
        self._powered = True
        board.clock_on(cfg.clock, self.name)
        try:
            mmu = board.mmu(cfg.mmu.base, cfg.mmu.tlb_entries)
            if board.in_reset(reset, reset.mmu_bit):
                await board.deassert_reset(reset, reset.mmu_bit, f"{self.name} mmu")
                mmu.reset()
                mmu.enable()
            board._mmu_users[mmu_key].add(self.name)
            mmu.load(self.name, entries)
            self.tlb = entries
            mailbox = board.mailbox
            stale = mailbox.flush(cfg.rx_fifo) + mailbox.flush(cfg.tx_fifo)  # both, always
            if stale:
                log.info(
                    "%s: discarded %d stale mailbox messages",
                    *(self.name, len(stale)),
                    extra={"processor": self.name, "dropped": len(stale)},
                )
            mailbox.subscribe(cfg.rx_fifo, self._on_message)
            board.ensure_mailbox_served(events)
            self._echo_event = anyio.Event()
            self._crashed = False
            self._pending.clear()
            await mailbox.send(cfg.tx_fifo, OmapMessage.ECHO_REQUEST)
            if cfg.bootaddr_reg is not None:
                board.write32(cfg.bootaddr_reg, entry)
            self._running = True
            self._scope = anyio.CancelScope()
            events.spawn(self._kick_writer(self._scope), "mailbox kick writer")
            await board.deassert_reset(reset, reset.core_bits[cfg.core], self.name)
        except MmuError as exc:
            await self._power_down()
            raise BootError(f"{self.name}: {exc}") from exc
        except BaseException:
            await self._power_down()
            raise
        log.info(
            "%s: released from reset (%d TLB entries)",
            *(self.name, len(entries)),
            extra={"processor": self.name, "state": "running"},
        )

    def _kick_writer(self, scope: anyio.CancelScope) -> Callable[[], Any]:
        async def run() -> None:
            with scope:
                while True:
                    while self._pending:
                        await self.board.mailbox.send(self.config.tx_fifo, self._pending[0])
                        self._pending.popleft()
                        self._stats.kicks_sent += 1
                    self._pending_event = anyio.Event()
                    await self._pending_event.wait()

        return run

    async def _power_down(self) -> None:
        cfg, board = self.config, self.board
        self._running = False
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        if not self._powered:
            return  # never started (a refused load): touch nothing
        self._powered = False
        board.mailbox.unsubscribe(cfg.rx_fifo)
        reset = cfg.reset
        board.assert_reset(reset, reset.core_bits[cfg.core])
        users = board._mmu_users[cfg.mmu.base]
        users.discard(self.name)
        mmu = board.mmu(cfg.mmu.base, cfg.mmu.tlb_entries)
        if users:
            mmu.unload_last(self.name)
        else:
            board.assert_reset(reset, reset.mmu_bit)
            mmu.reset()
        self.tlb = []
        board.clock_off(cfg.clock, self.name)

    async def stop(self) -> None:
        await self._power_down()
        log.info("%s: held in reset", self.name, extra={"processor": self.name, "state": "reset"})

    def kick(self, notifyid: int) -> None:
        if not self._running:
            self._stats.kicks_dropped += 1
            return
        if not self._pending and self.board.mailbox.try_send(self.config.tx_fifo, notifyid):
            self._stats.kicks_sent += 1
            return
        if notifyid in self._pending:
            self._stats.kicks_coalesced += 1  # the core will look at that ring anyway
            return
        self._pending.append(notifyid)
        self._stats.kicks_queued += 1
        if self._pending_event is not None:
            self._pending_event.set()

    def is_running(self) -> bool:
        return False  # attach is not supported: we always boot from reset

    # -- messages from the core ------------------------------------------------------------------
    def _on_message(self, value: int) -> None:
        stats, events = self._stats, self.events
        if self._crashed:
            stats.ignored_after_crash += 1
            return
        if value <= self.config.max_notifyid:
            stats.vq_interrupts += 1
            if events is not None:
                events.vq_interrupt(value)
        elif value == OmapMessage.CRASH:
            stats.crashes += 1
            self._crashed = True
            self._running = False
            if events is not None:
                events.report_crash(CrashKind.FATAL_ERROR, "the core sent RP_MBOX_CRASH")
        elif value == OmapMessage.ECHO_REPLY:
            stats.echo_replies += 1
            self._echo_event.set()
        elif (
            OmapMessage.READY <= value <= OMAP_MESSAGE_MAX
            and value in OmapMessage._value2member_map_
        ):
            name = OmapMessage(value).name
            stats.control[name] = stats.control.get(name, 0) + 1
        else:
            stats.unknown += 1
            log.warning(
                "%s: dropped unknown mailbox message %#x",
                *(self.name, value),
                extra={"processor": self.name, "reason": "unknown_message"},
            )

    async def wait_echo_reply(self, timeout: float = 1.0) -> None:
        """Wait for the ECHO_REPLY to the ECHO_REQUEST queued by the last :meth:`start`."""
        with anyio.fail_after(timeout):
            await self._echo_event.wait()

    def statistics(self) -> PandaStatistics:
        stats = attrs.evolve(self._stats)
        stats.control = dict(self._stats.control)
        return stats
