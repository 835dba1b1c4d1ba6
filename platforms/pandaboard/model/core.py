"""A modelled remote core (Cortex-M3 of the IPU, or the DSP) running a simulated firmware.

Theory of operation: the core sits in reset until the modelled PRCM releases its reset line;
then it runs the firmware program its image names (:mod:`platforms.runtime`), with the firmware's
own view of memory: the device addresses its MMU (the :class:`MmuModel`) translates, backed by
a separate mapping of the model's RAM file (another bus master on the same DDR). It speaks the
OMAP remoteproc mailbox protocol as its mailbox user: it answers ECHO_REQUEST with
ECHO_REPLY, routes notify ids to the program's vrings and kicks the host by writing notify ids
into its tx fifo (queued, coalesced, while the fifo is full). A program that crashes (or
:meth:`CoreModel.crash`) sends RP_MBOX_CRASH and halts, like TI's exception handler. Holding
the reset again cancels the program. A core with a boot address register (the DSP) starts
executing at the address the PRCM model latched from CONTROL_DSP_BOOTADDR at the reset
release: if that is not the installed image's entry point it runs garbage, so it never
services its mailbox nor starts the program (:attr:`CoreModel.boot_faults`).
"""

from __future__ import annotations

import collections
import logging

import anyio
import anyio.abc

from platforms.pandaboard.hw import OmapMessage
from platforms.runtime import Faults, FirmwareContext, get_program, run_firmware
from remoteproc.firmware import FirmwareImage
from transports.virtio.memory import DeviceMemory, Region

from ..config import ProcessorConfig
from .bus import ModelBus
from .mailbox import MailboxModel
from .mmu import MmuModel

log = logging.getLogger("aioamp.platform.pandaboard.model")


class CoreModel:
    """One remote core of the model (``ipu``, ``ipu-core1``, ``dsp``)."""

    def __init__(
        self, config: ProcessorConfig, mailbox: MailboxModel, mmu: MmuModel, bus: ModelBus
    ) -> None:
        self.config = config
        self.name = config.name
        self.mailbox = mailbox
        self.mmu = mmu
        self.bus = bus
        self.image: FirmwareImage | None = None
        self.args: dict[str, str] = {}
        self.faults = Faults()
        self.context: FirmwareContext | None = None
        self.running = False
        self.halted = False
        self.starts = 0
        self.echo_requests = 0
        self.host_kicks = 0
        self.unknown = 0
        self.kicks_coalesced = 0
        self.posted = 0  # values written into the core's tx fifo (the host's rx fifo)
        self.boot_address: int | None = None  # latched at the last reset release
        self.boot_faults = 0  # releases from a boot address that is not the image's entry
        self._pending: collections.deque[int] = collections.deque()
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        mailbox.watch(self._watch)

    def install(
        self,
        image: FirmwareImage,
        *,
        args: dict[str, str] | None = None,
        faults: Faults | None = None,
    ) -> None:
        """Put ``image`` in the core's (modelled) flash: the program it runs and where its
        resource table is linked."""
        self.image = image
        self.args = dict(args or {})
        self.faults = faults or Faults()

    def bind(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg

    # -- reset -----------------------------------------------------------------------------------
    def reset_changed(self, held: bool, boot_address: int | None = None) -> None:
        """The core's reset line changed; ``boot_address`` is what CONTROL_DSP_BOOTADDR held
        when it was released (cores with a boot address register only)."""
        if held:
            self.running = False
            if self._scope is not None:
                self._scope.cancel()
                self._scope = None
            return
        if self._tg is None:
            raise RuntimeError(f"{self.name}: model not running (use `async with OmapModel()`)")
        self.running, self.halted = True, False
        self.starts += 1
        self.boot_address = boot_address
        image = self.image
        wrong = image is not None and boot_address != image.entry
        if self.config.bootaddr_reg is not None and wrong:
            self.boot_faults += 1
            log.warning(
                "%s: released at boot address %s: not the image's entry",
                self.name,
                None if boot_address is None else hex(boot_address),
                extra={"processor": self.name, "reason": "wrong_boot_address"},
            )
            self.halted = True  # executing garbage: no mailbox service, no program
            return
        self._scope = anyio.CancelScope()
        self._tg.start_soon(self._run, self._scope, name=f"model core {self.name}")

    # -- mailbox ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        if not self.running:
            return
        cfg = self.mailbox.config
        fifos = self.mailbox.fifos
        if fifos[self.config.tx_fifo] or (
            self._pending and len(fifos[self.config.rx_fifo]) < cfg.depth
        ):
            self._wake.set()

    def _post(self, value: int) -> None:
        fifo = self.config.rx_fifo  # the core's tx is the host's rx
        if self._pending or len(self.mailbox.fifos[fifo]) >= self.mailbox.config.depth:
            if value in self._pending:
                self.kicks_coalesced += 1
            else:
                self._pending.append(value)
            return
        self.mailbox.post(fifo, value)
        self.posted += 1

    def interrupt_host(self, notifyid: int) -> None:
        if self.running and not self.halted:
            self._post(notifyid)

    def crash(self) -> None:
        """Make the firmware crash now: RP_MBOX_CRASH to the host, then halt."""
        self._post(OmapMessage.CRASH)
        self.halted = True
        if self._scope is not None:
            self._scope.cancel()

    def _service(self) -> None:
        cfg = self.mailbox.config
        user, rx = self.config.remote_user, self.config.tx_fifo
        while self.mailbox.read32(cfg.msgstatus(rx)) & cfg.msgstatus_mask:
            value = self.mailbox.read32(cfg.message(rx))
            if self.halted:
                continue
            if value == OmapMessage.ECHO_REQUEST:
                self.echo_requests += 1
                self._post(OmapMessage.ECHO_REPLY)
            elif value <= self.config.max_notifyid:
                self.host_kicks += 1
                if self.context is not None:
                    self.context.host_kicked(value)
            else:
                self.unknown += 1
        self.mailbox.write32(cfg.irqstatus_clr(user), cfg.newmsg_bit(rx))
        tx = self.config.rx_fifo
        while self._pending and len(self.mailbox.fifos[tx]) < cfg.depth:
            self.mailbox.post(tx, self._pending.popleft())
            self.posted += 1

    # -- the firmware ----------------------------------------------------------------------------
    def _memory(self) -> DeviceMemory:
        memory = DeviceMemory()
        ram = self.bus
        for da, pa, size in self.mmu.runs():
            if ram.ram_base <= pa and pa + size <= ram.ram_base + ram.ram_size:
                memory.add(Region(da, ram.ram_view(pa, size), f"{self.name}@{da:#x}"))
        return memory

    async def _run(self, scope: anyio.CancelScope) -> None:
        cfg = self.mailbox.config
        self.mailbox.write32(
            cfg.irqenable_set(self.config.remote_user), cfg.newmsg_bit(self.config.tx_fifo)
        )
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._mailbox_loop)
                await self._firmware()

    async def _mailbox_loop(self) -> None:
        while True:
            self._service()
            self._wake = anyio.Event()
            self._watch()
            await self._wake.wait()

    async def _firmware(self) -> None:
        image = self.image
        if image is None or image.program is None:
            log.warning(
                "%s: released from reset with no firmware installed: idling",
                self.name,
                extra={"processor": self.name, "reason": "no_firmware"},
            )
            await anyio.sleep_forever()
            return
        program = get_program(image.program)
        if program is None:
            self.crash()
            return
        table = image.resource_table
        ctx = FirmwareContext(
            name=self.name,
            memory=self._memory(),
            table_da=None if table is None else table.addr,
            table_size=0 if table is None else table.size,
            faults=self.faults,
            args=self.args,
            interrupt_host=self.interrupt_host,
        )
        self.context = ctx
        crash = await run_firmware(program, ctx)  # injected faults, FirmwareCrash, a bug
        if crash is not None:  # the exception handler reports it
            log.info(
                "%s: firmware crashed: %s: %s",
                *(self.name, crash.kind.value, crash.detail),
                extra={"processor": self.name, "reason": f"{crash.kind.value}: {crash.detail}"},
            )
            if self.faults.one_shot:
                self.faults = Faults()
            self.crash()
        await anyio.sleep_forever()
