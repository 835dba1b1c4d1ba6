"""The aioamp virtual board's peripherals: a doorbell and a UART (docs/emulated-firmware.md).

Theory of operation: the board is as small as a port of OpenAMP's or RPMsg-Lite's IPI layer
needs. The *doorbell* carries notify ids both ways: the host's kicks queue in RX (a value
already queued is not queued twice: a notification says "look at this ring", once is enough)
and hold interrupt line :data:`DOORBELL_IRQ` high while any is queued; the firmware pops them
from RX (0xFFFFFFFF when empty), writes TX to notify the host and CRASH to report a crash.
The *UART* takes one byte per write to DATA and hands complete lines to the host. Register
accesses arrive from the core's thread under the board's lock; the host's side calls
(:meth:`Doorbell.host_kick`) take the same lock.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from .memory import BusError

DOORBELL_DA = 0x4000_0000
UART_DA = 0x4000_1000
DOORBELL_IRQ = 0
#: Doorbell registers (offsets from DOORBELL_DA).
DB_ID, DB_TX, DB_RX, DB_STATUS, DB_CRASH = 0x00, 0x04, 0x08, 0x0C, 0x10
DB_MAGIC = 0x4150_4D44  # "DMPA" little endian: "AMPD" read as bytes
DB_EMPTY = 0xFFFF_FFFF
DB_DEPTH = 64
#: UART registers.
UART_DATA, UART_STATUS = 0x00, 0x04
UART_LINE_MAX = 256


class Doorbell:
    """The doorbell (see the module docstring).

    Args:
        line: called with the interrupt line's level when it changes.
        to_host: called with each value the firmware writes to TX.
        crashed: called with each value the firmware writes to CRASH.
    """

    def __init__(
        self,
        line: Callable[[bool], None],
        to_host: Callable[[int], None],
        crashed: Callable[[int], None],
    ) -> None:
        self._line, self._to_host, self._crashed = line, to_host, crashed
        self.rx: collections.deque[int] = collections.deque()
        self.level = False
        self.coalesced = 0
        self.overflows = 0

    def _update(self) -> None:
        level = bool(self.rx)
        if level != self.level:
            self.level = level
            self._line(level)

    def host_kick(self, value: int) -> None:
        """The host notifies the core (caller holds the board's lock)."""
        if value in self.rx:
            self.coalesced += 1
        elif len(self.rx) >= DB_DEPTH:
            self.overflows += 1
        else:
            self.rx.append(value & 0xFFFF_FFFF)
        self._update()

    def read32(self, offset: int) -> int:
        if offset == DB_ID:
            return DB_MAGIC
        if offset == DB_RX:
            value = self.rx.popleft() if self.rx else DB_EMPTY
            self._update()
            return value
        if offset == DB_STATUS:
            return int(bool(self.rx))
        if offset in (DB_TX, DB_CRASH):
            return 0
        raise BusError(f"doorbell: no register at +{offset:#x}")

    def write32(self, offset: int, value: int) -> None:
        if offset == DB_TX:
            self._to_host(value)
        elif offset == DB_CRASH:
            self._crashed(value)
        elif offset not in (DB_ID, DB_RX, DB_STATUS):
            raise BusError(f"doorbell: no register at +{offset:#x}")


class Uart:
    """A transmit-only UART: bytes in, lines out (``line`` is called without the newline)."""

    def __init__(self, line: Callable[[str], None]) -> None:
        self._line = line
        self._buf = bytearray()

    def read32(self, offset: int) -> int:
        if offset == UART_STATUS:
            return 1  # always ready to transmit
        if offset == UART_DATA:
            return 0
        raise BusError(f"uart: no register at +{offset:#x}")

    def write32(self, offset: int, value: int) -> None:
        if offset == UART_STATUS:
            return
        if offset != UART_DATA:
            raise BusError(f"uart: no register at +{offset:#x}")
        byte = value & 0xFF
        if byte == 0x0A or len(self._buf) >= UART_LINE_MAX:
            self._line(self._buf.decode("utf-8", "replace"))
            self._buf.clear()
            if byte == 0x0A:
                return
        self._buf.append(byte)
