"""The whole modelled PandaBoard: bus, mailbox, PRCM, MMUs, fake UIO and the remote cores.

Theory of operation: :class:`OmapModel` wires the device models onto one :class:`ModelBus`
at the addresses of :mod:`platforms.pandaboard.config`, connects the host's mailbox line and
the IPU MMU's fault line to :class:`FakeUio` devices, the PRCM reset lines to the MMU and core
models, and runs the model's tasks (the fake UIOs' irqcontrol handling, the cores' firmware)
while ``async with`` is open. A core can be *plugged* instead of modelled (``cores=``): a
factory builds it from a :class:`~platforms.pandaboard.model.port.CorePort`, e.g. an emulated
Cortex-M that executes the firmware image's code.
:meth:`OmapModel.board` returns the real :class:`~platforms.pandaboard.driver.PandaBoard`
driver wired to the model, so tests and the demo exercise the code a board runs.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Self

import anyio

from platforms.pandaboard.hw import UioDevice

from ..config import PANDABOARD, BoardConfig
from ..driver import PandaBoard
from .bus import ModelBus
from .core import CoreModel
from .mailbox import MailboxModel
from .mmu import MmuModel
from .port import CoreFactory, CorePort, RemoteCore
from .prcm import PrcmModel
from .uio import FakeUio


class OmapModel(anyio.AsyncContextManagerMixin):
    """A register-level OMAP4 for tests and ``aioamp demo --platform pandaboard-model``.

    Args:
        config: the board description (addresses, bits, memory windows).
        ram_path: file backing the reserved DDR (a sparse temporary file by default).
        cores: processors whose core is plugged in rather than modelled, with the factory
            that builds it (see :mod:`platforms.pandaboard.model.port`).
    """

    def __init__(
        self,
        config: BoardConfig = PANDABOARD,
        *,
        ram_path: str | None = None,
        cores: Mapping[str, CoreFactory] | None = None,
    ) -> None:
        self.config = config
        self.bus = ModelBus(config.reserved.pa, config.reserved.size, ram_path)
        mbox = config.mailbox
        self.mailbox = MailboxModel(mbox)
        self.bus.add_device(mbox.base, mbox.window, self.mailbox, "mailbox")
        self.prcm = PrcmModel(config)
        self.prcm.attach(self.bus)
        self.uio = FakeUio(config.mailbox_uio_name, self.bus.lock)
        self.mailbox.listen(mbox.user, self.uio.set_line)
        self.mmu_uio = FakeUio(config.ipu_mmu_uio_name, self.bus.lock)
        self.mmus: dict[int, MmuModel] = {}
        self.cores: dict[str, CoreModel] = {}
        self.plugged: dict[str, RemoteCore] = {}
        for proc in config.processors:
            base = proc.mmu.base
            if base not in self.mmus:
                self.mmus[base] = MmuModel(
                    f"mmu@{base:#x}",
                    proc.mmu.tlb_entries,
                    accessible=functools.partial(
                        self._mmu_accessible, proc.reset.rstctrl, proc.reset.mmu_bit
                    ),
                )
                self.bus.add_device(base, proc.mmu.window, self.mmus[base], f"mmu@{base:#x}")
            if cores and proc.name in cores:
                port = CorePort(proc, self.bus, self.mmus[base], self.mailbox)
                self.plugged[proc.name] = cores[proc.name](port)
            else:
                self.cores[proc.name] = CoreModel(proc, self.mailbox, self.mmus[base], self.bus)
        unknown = set(cores or ()) - {p.name for p in config.processors}
        if unknown:
            raise LookupError(f"no processor {sorted(unknown)} on this board to plug a core in")
        ipu = next(p for p in config.processors if p.name.startswith("ipu"))
        self.mmus[ipu.mmu.base].listen(self.mmu_uio.set_line)
        self.prcm.listen(self._reset_changed)
        self._boards: list[PandaBoard] = []

    def _mmu_accessible(self, rstctrl: int, bit: int) -> bool:
        clock = next(p.clock for p in self.config.processors if p.reset.rstctrl == rstctrl)
        return not self.prcm.in_reset(rstctrl, bit) and self.prcm.module_enabled(clock)

    def _reset_changed(self, rstctrl: int, bit: int, held: bool) -> None:
        for proc in self.config.processors:
            if proc.reset.rstctrl != rstctrl:
                continue
            if bit == proc.reset.mmu_bit and held:
                self.mmus[proc.mmu.base].reset()
            if bit == proc.reset.core_bits[proc.core]:
                if proc.name in self.plugged:
                    self.plugged[proc.name].reset_changed(held)
                    continue
                boot = None if proc.bootaddr_reg is None else self.prcm.value(proc.bootaddr_reg)
                self.cores[proc.name].reset_changed(held, boot)

    def core(self, name: str) -> CoreModel:
        return self.cores[name]

    def mmu(self, name: str) -> MmuModel:
        return self.mmus[self.config.processor(name).mmu.base]

    def uio_device(self) -> UioDevice:
        return UioDevice(f"/dev/uio0:{self.uio.name}", opener=self.uio.opener)

    def mmu_uio_device(self) -> UioDevice:
        return UioDevice(f"/dev/uio1:{self.mmu_uio.name}", opener=self.mmu_uio.opener)

    def board(self) -> PandaBoard:
        """The real driver, on the model's bus and fake UIO devices."""
        ipu_mmu = next(p.mmu.base for p in self.config.processors if p.name.startswith("ipu"))
        board = PandaBoard(
            self.bus, self.uio_device(), self.config, mmu_uios={ipu_mmu: self.mmu_uio_device()}
        )
        self._boards.append(board)
        return board

    def reset_releases(self) -> list[tuple[str, int]]:
        """``(rstctrl register name, bit)`` of every reset release, in order."""
        names = {
            p.reset.rstctrl: ("ducati" if p.name.startswith("ipu") else "tesla")
            for p in self.config.processors
        }
        return [(names[pa], bit) for pa, bit, held in self.prcm.resets if not held]

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        """Run the model's tasks (fake UIO, the cores' firmware); on exit cancel them and
        close the boards, the fake UIO and the bus."""
        try:
            async with anyio.create_task_group() as tg:
                for core in self.cores.values():
                    core.bind(tg)
                tg.start_soon(self.uio.serve, name="fake uio")
                tg.start_soon(self.mmu_uio.serve, name="fake mmu uio")
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            for plugged in self.plugged.values():
                plugged.close()
            for board in self._boards:
                board.close()
            self.uio.close()
            self.mmu_uio.close()
            self.bus.close()
