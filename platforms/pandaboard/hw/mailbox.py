"""The OMAP4 system mailbox, driven from userspace.

Theory of operation: the mailbox (OMAP4 TRM "Mailbox", Linux ``drivers/mailbox/omap-mailbox.c``)
has 8 hardware FIFOs of 4 32-bit messages and 3 interrupt users; Linux (the Cortex-A9) is user
0. Writing ``MESSAGE_m`` enqueues, reading it dequeues, ``MSGSTATUS_m`` counts unread messages
and ``FIFOSTATUS_m`` bit 0 says FULL. Each user has a raw status, a masked status that is also
the write-1-to-clear acknowledge register, and set/clear enable registers; fifo ``m`` raises
NEWMSG on bit ``2m`` and NOTFULL on bit ``2m + 1``. The line of user 0 reaches us through a
UIO device (``uio_pdrv_genirq``): a 4-byte read waits for the next interrupt, a 4-byte write of
1 re-enables the interrupt the kernel masked when it fired.

:meth:`Mailbox.serve` is the interrupt thread: per interrupt it drains every subscribed fifo
while ``MSGSTATUS != 0`` (one 32-bit read of MESSAGE per message), acknowledges NEWMSG (and
reads the status back so the posted write reached the device before the line is unmasked),
handles NOTFULL for blocked senders, then unmasks. :meth:`Mailbox.send` never spins: when the
fifo is full it enables NOTFULL for that fifo and sleeps until :meth:`serve` sees it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import anyio
import attrs

from .errors import MailboxError
from .mmio import RegisterWindow
from .uio import UioDevice


class OmapMessage(enum.IntEnum):
    """Control messages (Linux ``drivers/remoteproc/omap_remoteproc.h``, ``enum omap_rp_mbox_
    messages``); any smaller value is a vring notify id."""

    READY = 0xFFFFFF00
    PENDING_MSG = 0xFFFFFF01
    CRASH = 0xFFFFFF02
    ECHO_REQUEST = 0xFFFFFF03
    ECHO_REPLY = 0xFFFFFF04
    ABORT_REQUEST = 0xFFFFFF05
    SUSPEND_AUTO = 0xFFFFFF10
    SUSPEND_SYSTEM = 0xFFFFFF11
    SUSPEND_ACK = 0xFFFFFF12
    SUSPEND_CANCEL = 0xFFFFFF13


#: The highest control message value; anything above it is unknown.
OMAP_MESSAGE_MAX = int(OmapMessage.SUSPEND_CANCEL)


@attrs.frozen
class MailboxConfig:
    """Where the mailbox is and how its registers are laid out.

    Offsets: OMAP4 TRM (mailbox register manual) and ``omap-mailbox.c`` (``MAILBOX_MESSAGE(m)
    0x40 + 4m``, ``MAILBOX_FIFOSTATUS(m) 0x80 + 4m``, ``MAILBOX_MSGSTATUS(m) 0xc0 + 4m``,
    ``OMAP4_MAILBOX_IRQSTATUS(u) 0x104 + 0x10u``, ``OMAP4_MAILBOX_IRQENABLE(u) 0x108 + 0x10u``,
    ``OMAP4_MAILBOX_IRQENABLE_CLR(u) 0x10c + 0x10u``; ``MAILBOX_IRQ_NEWMSG(m) 1 << 2m``,
    ``MAILBOX_IRQ_NOTFULL(m) 1 << (2m + 1)``); OMAP4 DT: ``ti,mbox-num-users = 3``,
    ``ti,mbox-num-fifos = 8``, 4 messages per fifo.
    """

    base: int = 0x4A0F_4000  # L4_CFG, OMAP4 TRM memory map "System Mailbox"
    window: int = 0x200
    fifo_count: int = 8
    depth: int = 4
    users: int = 3
    user: int = 0  # the interrupt user the host (Linux on the Cortex-A9) owns
    revision: int = 0x000
    sysconfig: int = 0x010
    sysconfig_softreset: int = 1 << 0
    message_base: int = 0x040
    fifostatus_base: int = 0x080
    fifostatus_full: int = 1 << 0
    msgstatus_base: int = 0x0C0
    msgstatus_mask: int = 0x7  # bits 2:0, unread messages
    irqstatus_raw_base: int = 0x100
    irqstatus_clr_base: int = 0x104
    irqenable_set_base: int = 0x108
    irqenable_clr_base: int = 0x10C
    user_stride: int = 0x10

    def message(self, fifo: int) -> int:
        return self.message_base + 4 * fifo

    def fifostatus(self, fifo: int) -> int:
        return self.fifostatus_base + 4 * fifo

    def msgstatus(self, fifo: int) -> int:
        return self.msgstatus_base + 4 * fifo

    def irqstatus_raw(self, user: int) -> int:
        return self.irqstatus_raw_base + self.user_stride * user

    def irqstatus_clr(self, user: int) -> int:
        return self.irqstatus_clr_base + self.user_stride * user

    def irqenable_set(self, user: int) -> int:
        return self.irqenable_set_base + self.user_stride * user

    def irqenable_clr(self, user: int) -> int:
        return self.irqenable_clr_base + self.user_stride * user

    @staticmethod
    def newmsg_bit(fifo: int) -> int:
        return 1 << (2 * fifo)

    @staticmethod
    def notfull_bit(fifo: int) -> int:
        return 1 << (2 * fifo + 1)


@attrs.define
class MailboxStatistics:
    """Counters of one :class:`Mailbox` (a snapshot from :meth:`Mailbox.statistics`)."""

    sent: int = 0
    received: int = 0
    send_waits: int = 0  # sends that found the fifo full and waited for NOTFULL
    interrupts: int = 0
    missed_interrupts: int = 0  # UIO event-count jumps beyond one per read
    spurious_interrupts: int = 0  # interrupts with no message and no NOTFULL to handle
    unclaimed: int = 0  # messages read from a fifo nobody subscribes to any more
    flushed: int = 0  # stale messages discarded by :meth:`Mailbox.flush`


Receiver = Callable[[int], None]


class Mailbox:
    """The host's side (one interrupt user) of the OMAP4 system mailbox.

    Args:
        regs: the mailbox register window (``config.window`` bytes at ``config.base``).
        uio: the UIO device delivering this user's interrupt line.
        config: register layout and the host's user number.
    """

    def __init__(
        self, regs: RegisterWindow, uio: UioDevice, config: MailboxConfig | None = None
    ) -> None:
        self.regs = regs
        self.uio = uio
        self.config = config or MailboxConfig()
        self._receivers: dict[int, Receiver] = {}
        self._notfull: dict[int, anyio.Event] = {}
        self._send_locks: dict[int, anyio.Lock] = {}
        self._stats = MailboxStatistics()
        self.serving = False

    # -- configuration ---------------------------------------------------------------------------
    def _check_fifo(self, fifo: int) -> None:
        if not 0 <= fifo < self.config.fifo_count:
            raise MailboxError(f"mailbox fifo {fifo} does not exist (0..{self.config.fifo_count})")

    def subscribe(self, fifo: int, receiver: Receiver) -> None:
        """Deliver every message of ``fifo`` to ``receiver`` (called synchronously from the
        interrupt task) and enable its NEWMSG interrupt."""
        self._check_fifo(fifo)
        if fifo in self._receivers:
            raise MailboxError(f"mailbox fifo {fifo} already has a receiver")
        self._receivers[fifo] = receiver
        cfg = self.config
        self.regs.write32(cfg.irqenable_set(cfg.user), cfg.newmsg_bit(fifo))

    def unsubscribe(self, fifo: int) -> None:
        """Stop receiving ``fifo`` and disable its NEWMSG interrupt."""
        if self._receivers.pop(fifo, None) is not None:
            cfg = self.config
            self.regs.write32(cfg.irqenable_clr(cfg.user), cfg.newmsg_bit(fifo))

    def flush(self, fifo: int) -> list[int]:
        """Read and return everything queued in ``fifo`` (stale messages before a core
        starts); counted in ``flushed``."""
        self._check_fifo(fifo)
        out = self._drain(fifo)
        self._stats.flushed += len(out)
        return out

    def statistics(self) -> MailboxStatistics:
        stats = attrs.evolve(self._stats)
        stats.missed_interrupts = self.uio.missed
        return stats

    # -- sending ---------------------------------------------------------------------------------
    def _full(self, fifo: int) -> bool:
        cfg = self.config
        return bool(self.regs.read32(cfg.fifostatus(fifo)) & cfg.fifostatus_full)

    def try_send(self, fifo: int, value: int) -> bool:
        """Enqueue ``value`` unless the fifo is full (or a sender is already waiting on it, so
        order is kept); never waits."""
        self._check_fifo(fifo)
        lock = self._send_locks.get(fifo)
        if (lock is not None and lock.locked()) or self._full(fifo):
            return False
        self.regs.write32(self.config.message(fifo), value & 0xFFFF_FFFF)
        self._stats.sent += 1
        return True

    async def send(self, fifo: int, value: int) -> None:
        """Enqueue ``value``; if the fifo is full, sleep until its NOTFULL interrupt (which
        :meth:`serve` must be running to see). Sends to one fifo keep their order."""
        self._check_fifo(fifo)
        cfg = self.config
        lock = self._send_locks.setdefault(fifo, anyio.Lock())
        async with lock:
            while self._full(fifo):
                if not self.serving:
                    raise MailboxError("mailbox fifo full and no interrupt task is serving")
                event = self._notfull.setdefault(fifo, anyio.Event())
                self._stats.send_waits += 1
                self.regs.write32(cfg.irqenable_set(cfg.user), cfg.notfull_bit(fifo))
                try:
                    await event.wait()
                finally:
                    self._notfull.pop(fifo, None)
                    self.regs.write32(cfg.irqenable_clr(cfg.user), cfg.notfull_bit(fifo))
            self.regs.write32(cfg.message(fifo), value & 0xFFFF_FFFF)
            self._stats.sent += 1

    # -- receiving -------------------------------------------------------------------------------
    def _drain(self, fifo: int) -> list[int]:
        cfg = self.config
        out = []
        # Bounded by the depth: a misbehaving device cannot keep us here forever.
        for _ in range(cfg.depth * 4):
            if not self.regs.read32(cfg.msgstatus(fifo)) & cfg.msgstatus_mask:
                break
            out.append(self.regs.read32(cfg.message(fifo)))
        return out

    def handle_interrupt(self) -> int:
        """Service one interrupt (without the UIO read/unmask); returns messages delivered."""
        cfg = self.config
        user = cfg.user
        status = self.regs.read32(cfg.irqstatus_clr(user))  # masked (enabled) status
        delivered = 0
        ack = 0
        for fifo in list(self._receivers):
            values = self._drain(fifo)
            ack |= cfg.newmsg_bit(fifo)
            for value in values:
                receiver = self._receivers.get(fifo)
                if receiver is None:
                    self._stats.unclaimed += 1
                    continue
                self._stats.received += 1
                delivered += 1
                receiver(value)
        woke = False
        for fifo, event in list(self._notfull.items()):
            bit = cfg.notfull_bit(fifo)
            if status & bit or not self._full(fifo):
                # Disable before unmasking: NOTFULL stays asserted while there is room.
                self.regs.write32(cfg.irqenable_clr(user), bit)
                ack |= bit
                event.set()
                woke = True
        if ack:
            self.regs.write32(cfg.irqstatus_clr(user), ack)
            self.regs.read32(cfg.irqstatus_clr(user))  # flush the posted write
        if not delivered and not woke:
            self._stats.spurious_interrupts += 1
        return delivered

    async def serve(self) -> None:
        """The interrupt loop: wait on UIO, service, unmask; runs until cancelled."""
        if self.serving:
            raise MailboxError("the mailbox interrupt loop is already running")
        self.serving = True
        try:
            self.uio.unmask()
            # Messages that arrived before we listened: their interrupt may be long gone.
            self.handle_interrupt()
            while True:
                await self.uio.wait()
                self._stats.interrupts += 1
                self.handle_interrupt()
                self.uio.unmask()
        finally:
            self.serving = False
            for event in self._notfull.values():
                event.set()  # senders re-check and fail instead of hanging
