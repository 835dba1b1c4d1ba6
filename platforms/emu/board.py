"""The aioamp virtual board as its core sees it: RAM windows, a doorbell and a UART.

Theory of operation: :class:`VirtualBoard` is the :class:`~platforms.emu.memory.CoreBus` of
:class:`~platforms.emu.platform.EmuPlatform`. The host's RAM window (a bytearray at
``ram_pa``) is where remoteproc allocates carveouts, vrings and buffer pools; ``map(da, pa)``
calls record where the core sees them (a simple IOMMU, as on the simulator), and
:meth:`VirtualBoard.resolve` answers the core's first touch of a page from those records, so
an address the host never mapped is a bus fault. The peripherals sit at fixed device addresses
(:mod:`platforms.emu.vboard`). One reentrant lock serialises the core's register accesses
with the host's kicks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from remoteproc.memory import PhysicalMemory

from .memory import PAGE, Window
from .vboard import DOORBELL_DA, DOORBELL_IRQ, UART_DA, Doorbell, Uart

#: Where the board's RAM sits in the host's physical address space, and its size.
RAM_PA = 0x9000_0000
RAM_SIZE = 16 << 20


class VirtualBoard:
    """RAM, IOMMU records and peripherals of one virtual board.

    Args:
        name: for the memory window's label.
        ram_pa, ram_size: the host RAM window.
    """

    def __init__(self, name: str, ram_pa: int = RAM_PA, ram_size: int = RAM_SIZE) -> None:
        self.physical = PhysicalMemory(ram_pa, bytearray(ram_size), f"{name}-ram")
        self.translations: dict[int, tuple[int, int]] = {}  # da -> (pa, size)
        self._lock = threading.RLock()
        self.doorbell: Doorbell | None = None
        self.uart: Uart | None = None

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def attach(
        self,
        set_irq: Callable[[int, bool], None],
        to_host: Callable[[int], None],
        crashed: Callable[[int], None],
        uart_line: Callable[[str], None],
    ) -> None:
        """Fresh peripherals for a new run of the core (a reset clears them)."""
        with self._lock:
            self.doorbell = Doorbell(lambda level: set_irq(DOORBELL_IRQ, level), to_host, crashed)
            self.uart = Uart(uart_line)

    def detach(self) -> None:
        with self._lock:
            self.doorbell = self.uart = None

    def kick(self, value: int) -> bool:
        """The host notifies the core; False when no core is attached."""
        with self._lock:
            if self.doorbell is None:
                return False
            self.doorbell.host_kick(value)
            return True

    def mapped(self, da: int) -> bool:
        """Whether the host mapped ``da`` (RAM) or a peripheral answers there."""
        return self._ram_window(da) is not None or da & ~(PAGE - 1) in (DOORBELL_DA, UART_DA)

    def _ram_window(self, da: int) -> Window | None:
        for start, (pa, size) in self.translations.items():
            if start <= da < start + size:
                base = start & ~(PAGE - 1)
                end = -(-(start + size) // PAGE) * PAGE
                off = pa - (start - base) - self.physical.base_pa
                if off < 0 or off + (end - base) > self.physical.size:
                    return None  # the page rounding would leave the RAM window
                return Window(base, end - base, ram=self.physical.mem[off : off + end - base])
        return None

    def resolve(self, da: int) -> Window | None:
        """What the core finds at page ``da`` (see the module docstring)."""
        with self._lock:
            if da == DOORBELL_DA and self.doorbell is not None:
                return Window(da, PAGE, device=self.doorbell, name="doorbell")
            if da == UART_DA and self.uart is not None:
                return Window(da, PAGE, device=self.uart, name="uart")
            return self._ram_window(da)
