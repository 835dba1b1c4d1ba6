"""A register-level model of the OMAP4 system mailbox.

Theory of operation (OMAP4 TRM, mailbox chapter): 8 FIFOs of 4 messages. A write to
``MESSAGE_m`` enqueues (a write to a full FIFO is lost, counted in ``overflows``), a read
dequeues (an empty FIFO reads 0, counted in ``underflows``). Interrupt status per user: NEWMSG
(bit 2m) and NOTFULL (bit 2m+1) are *latched* by events (a write, a read that leaves room) and
also held while their condition lasts (FIFO not empty / not full), so write-1-to-clear only
removes a status whose condition went away. ``IRQSTATUS_CLR`` reads the enabled status, the
enable registers read the mask; a user's line is asserted while ``raw & enable != 0``, and
listeners are told on every change. SYSCONFIG.SOFTRESET empties everything and self-clears.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from platforms.pandaboard.hw import MailboxConfig

from .bus import ModelError

LineListener = Callable[[bool], None]

#: The value the model's REVISION register reads (not checked by the driver).
REVISION = 0x0000_0400


class MailboxModel:
    """The mailbox as every user sees it (offsets relative to ``config.base``)."""

    def __init__(self, config: MailboxConfig | None = None) -> None:
        self.config = config or MailboxConfig()
        cfg = self.config
        self.fifos: list[collections.deque[int]] = [
            collections.deque() for _ in range(cfg.fifo_count)
        ]
        self.latched = [0] * cfg.users
        self.enabled = [0] * cfg.users
        self.lines = [False] * cfg.users
        self._listeners: list[list[LineListener]] = [[] for _ in range(cfg.users)]
        self._watchers: list[Callable[[], None]] = []
        self.overflows = self.underflows = 0
        self.sysconfig = 0
        self.reads: list[int] = []  # offsets read, for tests of single accesses

    # -- interrupt logic -------------------------------------------------------------------------
    def _conditions(self) -> int:
        bits = 0
        for m, fifo in enumerate(self.fifos):
            if fifo:
                bits |= self.config.newmsg_bit(m)
            if len(fifo) < self.config.depth:
                bits |= self.config.notfull_bit(m)
        return bits

    def raw(self, user: int) -> int:
        return self.latched[user] | self._conditions()

    def status(self, user: int) -> int:
        return self.raw(user) & self.enabled[user]

    def listen(self, user: int, listener: LineListener) -> None:
        """Call ``listener(level)`` whenever user ``user``'s interrupt line changes."""
        self._listeners[user].append(listener)
        listener(self.lines[user])

    def watch(self, watcher: Callable[[], None]) -> None:
        """Call ``watcher()`` after every register access (remote-core models use it as
        their interrupt: they look at their own user's status)."""
        self._watchers.append(watcher)

    def _update(self) -> None:
        for watcher in list(self._watchers):
            watcher()
        for user in range(self.config.users):
            level = self.status(user) != 0
            if level != self.lines[user]:
                self.lines[user] = level
                for listener in list(self._listeners[user]):
                    listener(level)

    def _event(self, bit: int) -> None:
        for user in range(self.config.users):
            self.latched[user] |= bit

    # -- registers -------------------------------------------------------------------------------
    def _decode(self, offset: int) -> tuple[str, int]:
        cfg = self.config
        if offset == cfg.revision:
            return "revision", 0
        if offset == cfg.sysconfig:
            return "sysconfig", 0
        for name, base, count, stride in (
            ("message", cfg.message_base, cfg.fifo_count, 4),
            ("fifostatus", cfg.fifostatus_base, cfg.fifo_count, 4),
            ("msgstatus", cfg.msgstatus_base, cfg.fifo_count, 4),
            ("irqstatus_raw", cfg.irqstatus_raw_base, cfg.users, cfg.user_stride),
            ("irqstatus_clr", cfg.irqstatus_clr_base, cfg.users, cfg.user_stride),
            ("irqenable_set", cfg.irqenable_set_base, cfg.users, cfg.user_stride),
            ("irqenable_clr", cfg.irqenable_clr_base, cfg.users, cfg.user_stride),
        ):
            index, rem = divmod(offset - base, stride)
            if rem == 0 and 0 <= index < count:
                return name, index
        raise ModelError(f"mailbox: no register at offset {offset:#x}")

    def read32(self, offset: int) -> int:
        name, i = self._decode(offset)
        self.reads.append(offset)
        if name == "revision":
            return REVISION
        if name == "sysconfig":
            return self.sysconfig
        if name == "message":
            fifo = self.fifos[i]
            if not fifo:
                self.underflows += 1
                return 0
            was_full = len(fifo) == self.config.depth
            value = fifo.popleft()
            if was_full:
                self._event(self.config.notfull_bit(i))
            self._update()
            return value
        if name == "fifostatus":
            return int(len(self.fifos[i]) >= self.config.depth)
        if name == "msgstatus":
            return len(self.fifos[i]) & self.config.msgstatus_mask
        if name == "irqstatus_raw":
            return self.raw(i)
        if name == "irqstatus_clr":
            return self.status(i)
        return self.enabled[i]  # irqenable_set / irqenable_clr read the mask

    def write32(self, offset: int, value: int) -> None:
        name, i = self._decode(offset)
        if name == "revision":
            return  # read-only
        if name == "sysconfig":
            if value & self.config.sysconfig_softreset:
                for fifo in self.fifos:
                    fifo.clear()
                self.latched = [0] * self.config.users
                self.enabled = [0] * self.config.users
                value &= ~self.config.sysconfig_softreset  # self-clearing
            self.sysconfig = value
        elif name == "message":
            fifo = self.fifos[i]
            if len(fifo) >= self.config.depth:
                self.overflows += 1  # the hardware drops it
            else:
                fifo.append(value)
                self._event(self.config.newmsg_bit(i))
        elif name in ("fifostatus", "msgstatus"):
            return  # read-only
        elif name == "irqstatus_raw":
            self.latched[i] |= value  # software-set, for testing interrupt paths
        elif name == "irqstatus_clr":
            self.latched[i] &= ~value
        elif name == "irqenable_set":
            self.enabled[i] |= value
        else:
            self.enabled[i] &= ~value
        self._update()

    # -- convenience for remote-core models (same registers, another user) -----------------------
    def post(self, fifo: int, value: int) -> bool:
        """Write ``MESSAGE_fifo`` as a remote core would; False if the FIFO was full."""
        full = len(self.fifos[fifo]) >= self.config.depth
        self.write32(self.config.message(fifo), value)
        return not full
