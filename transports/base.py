"""The abstract vring transport: what the rpmsg bus needs from any backend.

Theory of operation: a transport is one end of a virtio link. It gives the bus

* ``memory``: the shared memory, addressed by device address, bounds-checked;
* ``vdev``: the live ``fw_rsc_vdev`` (features, status byte, the two vrings' da/align/num);
* ``pool``: the region where the host carves its rx/tx buffers (host role) and a remote finds
  them (None: the remote derives it from the buffers the host posts);
* a notifier: :meth:`kick` tells the peer "look at the rings" (never blocks; backends that
  can stall, such as a full mailbox FIFO, queue and coalesce), and
  :meth:`wait_notification` waits for the peer's next kick.

Notifications carry no queue id on the wire of every backend we support (OpenAMP's Linux
port sends one byte), so receivers rescan both rings. Loopback, shm and omap4 differ only in how
they provide these; the ring code on top is the same everywhere.
"""

from __future__ import annotations

import abc
from typing import Literal

import attrs

from .doorbell import Doorbell, NotifyHandler, Wakeup
from .errors import TransportClosedError, TransportInUseError
from .virtio.memory import DeviceMemory, Region
from .virtio.vdev import LINUX_QUIRKS, VdevView, VirtioQuirks

Role = Literal["host", "remote"]


@attrs.define
class NotifierStats:
    """Counters of one transport end."""

    kicks_sent: int = 0
    notifications_received: int = 0


class Transport(abc.ABC):
    """One end of a vring link. Subclasses provide the notifier and the memory."""

    role: Role
    memory: DeviceMemory
    vdev: VdevView
    pool: Region | None
    #: How this link's peer does the virtio handshake (Linux unless a backend says otherwise).
    quirks: VirtioQuirks = LINUX_QUIRKS
    #: Bytes per rpmsg buffer this link was laid out for (the bus's default buffer size).
    buffer_size: int = 512
    #: The URL this end was opened by (:func:`~transports.registry.open_transport`), if any:
    #: what logs and captures name the link by.
    url: str | None = None
    #: Whether the peer runs on another CPU and writes the shared memory while we run, so
    #: that watching the rings for a moment (busy polling) can see its messages without a
    #: notification: shared-memory links between processes or cores, not in-process ones.
    pollable: bool = False

    def __init__(
        self, *, role: Role, memory: DeviceMemory, vdev: VdevView, pool: Region | None
    ) -> None:
        if role not in ("host", "remote"):
            raise ValueError(f"role must be 'host' or 'remote', not {role!r}")
        self.role = role
        self.memory = memory
        self.vdev = vdev
        self.pool = pool
        self.stats = NotifierStats()
        self._closed = False
        self._close_reason = "transport closed"
        self._claim: tuple[object, str] | None = None
        self._peer_closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        """Why the transport closed (meaningful once :attr:`closed`)."""
        return self._close_reason

    @property
    def peer_closed(self) -> bool:
        """Whether the peer closed the link in an orderly way (it said goodbye), as opposed
        to vanishing (killed, crashed). Backends that cannot tell leave it False."""
        return self._peer_closed

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError(self._close_reason)

    def claim(self, owner: str) -> object:
        """Make ``owner`` (a label such as ``"bus 'host'"``) the one user of this end until it
        calls :meth:`release` with the token returned: two rpmsg buses on one end would both
        drain its rings and kick its peer, and break each other silently.

        Raises:
            TransportInUseError: another owner holds this end.
        """
        if self._claim is not None:
            raise TransportInUseError(
                f"the {self.role} end of {type(self).__name__} is already driven by "
                f"{self._claim[1]}: one at a time, until it lets go"
            )
        token = object()
        self._claim = (token, owner)
        return token

    def release(self, token: object) -> None:
        """End the claim that returned ``token``; a stale token (its claim ended) does nothing."""
        if self._claim is not None and self._claim[0] is token:
            self._claim = None

    @abc.abstractmethod
    def kick(self, vq: int) -> None:
        """Notify the peer that virtqueue ``vq`` has new work. Never blocks."""

    def kick_pending(self) -> bool:
        """Whether the peer has not yet consumed our previous notification.

        The peer rescans every ring when it does, so a new kick would only coalesce with the
        pending one: the bus skips it. Backends that cannot tell return False (always kick).
        """
        return False

    def set_notify_handler(self, handler: NotifyHandler | None) -> bool:
        """Have notifications call ``handler(count, closed)`` from the event loop instead of
        waking :meth:`wait_notification` (one task wake-up less per message). Returns False
        when the backend or the event loop cannot (the caller keeps a waiting task)."""
        return False

    def park(self, wakeup: Wakeup) -> None:
        """Handler mode: let the next notification wake the task sleeping on ``wakeup``, which
        runs the handler itself after waking (:meth:`unpark`). An optimisation for receivers
        that wait anyway; backends whose notifications arrive through the loop's reader
        already cost no extra iteration and ignore it."""
        return

    def unpark(self, wakeup: Wakeup, *, run: bool) -> None:
        """End a :meth:`park`: run the handler now if the notification woke ``wakeup``
        (``run=False``: the sleeper is cancelled, schedule it instead)."""
        return

    @abc.abstractmethod
    async def wait_notification(self) -> int:
        """Wait until the peer notified us; returns how many notifications were coalesced.

        Raises:
            TransportClosedError: this end was closed or the peer went away.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close this end; pending and later waits fail with TransportClosedError."""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class DoorbellTransport(Transport):
    """A transport whose incoming notifications ring a :class:`Doorbell` (loopback, a remote
    processor's vdev, a simulated core): waiting, handler mode and closing are shared."""

    def __init__(
        self,
        *,
        role: Role,
        memory: DeviceMemory,
        vdev: VdevView,
        pool: Region | None,
        inbox: Doorbell | None = None,
    ) -> None:
        super().__init__(role=role, memory=memory, vdev=vdev, pool=pool)
        self.inbox = inbox if inbox is not None else Doorbell()

    def notify(self) -> None:
        """The peer notified us (called by whatever carries its kicks)."""
        self.inbox.ring()

    def set_notify_handler(self, handler: NotifyHandler | None) -> bool:
        if handler is None:
            return self.inbox.set_handler(None)

        def counted(count: int, closed: str | None) -> None:
            self.stats.notifications_received += count
            handler(count, closed)

        return self.inbox.set_handler(counted)

    def park(self, wakeup: Wakeup) -> None:
        self.inbox.park(wakeup)

    def unpark(self, wakeup: Wakeup, *, run: bool) -> None:
        self.inbox.unpark(wakeup, run=run)

    async def wait_notification(self) -> int:
        n = await self.inbox.wait()
        self.stats.notifications_received += n
        return n

    def _close_inbox(self, reason: str) -> None:
        """Mark this end closed and fail every waiter / the handler with ``reason``."""
        if not self._closed:
            self._closed = True
            self._close_reason = reason
        self.inbox.close(reason)
