"""What the two roles' rings share: vdev setup, the state of the link, drops. Pure.

Theory of operation (drivers/rpmsg/virtio_rpmsg_bus.c; OpenAMP rpmsg_virtio.c):

* vq 0 carries remote -> host messages, vq 1 host -> remote. The host is the virtio *driver*
  and owns every buffer (:class:`~rpmsg.rings.host.HostRings`); the remote is the virtio
  *device* and fills or empties the host's buffers (:class:`~rpmsg.rings.remote.RemoteRings`).
* Negotiation lives in the vdev entry: the host writes ``gfeatures`` and the status bits
  ACKNOWLEDGE | DRIVER, posts its rx buffers, then sets DRIVER_OK. A remote touches the rings
  only once it sees the DRIVER_OK bit.
* Per message, each side makes one call into its vring half: ``add_message`` /
  ``get_message`` (host), ``put_message`` / ``take_message`` (remote), typed through
  :mod:`transports.virtio.vring` whichever implementation (pure or C) runs. Validating what the peer
  wrote (indices, descriptor ids, buffer addresses, lengths) is theirs.

The rings never block and never raise for the peer's bad bytes: malformed ring entries and
headers are counted in :attr:`Rings.drops` (by reason) and their buffers are recycled. They call
``kick(vq)`` when the peer asked to be notified; the bus shell decides when to drain and when
to wait.
"""

from __future__ import annotations

import abc
import enum
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from transports.errors import MemoryAccessError, RemoteProtocolError
from transports.virtio.constants import VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F_NS
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.messages import MSG_BAD_LENGTH, MSG_SHORT, RxResult, parse_header
from transports.virtio.vdev import LINUX_QUIRKS, VdevView, VirtioQuirks
from transports.virtio.vring import VringLayout

from ..errors import PayloadTooLargeError, RpmsgError, VdevSetupError
from ..wire import DEFAULT_BUFFER_SIZE, HDR_SIZE, as_payload
from .loans import Lease, Loans

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

RX_VQ = 0  # remote -> host
TX_VQ = 1  # host -> remote
#: Features this implementation understands (offered by a remote, accepted by a host).
SUPPORTED_FEATURES = 1 << VIRTIO_RPMSG_F_NS

KickFn = Callable[[int], None]
#: A received message: ``(src, dst, flags, payload)``.
RawMessage = tuple[int, int, int, "bytes | memoryview"]
#: What a receive call gives: a message, a drop code (int) or None (nothing pending). The
#: payload is bytes, or for a holding endpoint a read-only view into its leased buffer.
RxItem = RawMessage | int | None
#: The drop reason of each per-message receive result code.
RX_DROPS = {MSG_SHORT: "short_buffer", MSG_BAD_LENGTH: "bad_length"}


def _not_started() -> RxResult:
    raise RpmsgError("the rings have not started")


class Poll(enum.Enum):
    """What :meth:`Rings.poll` found."""

    IDLE = "idle"  # not running (remote: no DRIVER_OK yet)
    READY = "ready"  # running
    STARTED = "started"  # just started (remote: DRIVER_OK seen): announce, bind NS
    RESET = "reset"  # just stopped (remote: the host withdrew DRIVER_OK): drop the peer's state


class Rings(abc.ABC):
    """The rings and buffers of one rpmsg vdev, for one role.

    Args:
        memory: the shared memory, by device address.
        vdev: the live vdev entry.
        kick: called with a vq index when the peer must be notified.
        pool: the buffer pool: where the host carves its buffers and the remote finds them.
        buffer_size: bytes per buffer (512 by default, as Linux and OpenAMP).
        quirks: how the peer does the virtio handshake.
    """

    def __init__(
        self,
        memory: DeviceMemory,
        vdev: VdevView,
        *,
        kick: KickFn,
        pool: Region | None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        quirks: VirtioQuirks = LINUX_QUIRKS,
    ) -> None:
        if buffer_size <= HDR_SIZE:
            raise ValueError(f"buffer_size {buffer_size} leaves no room for a payload")
        self.memory = memory
        self.vdev = vdev
        self.pool = pool
        self.buffer_size = buffer_size
        self.quirks = quirks
        self.mtu = buffer_size - HDR_SIZE
        self._kick = self._held_kick = kick
        self._kick_owed: int | None = None  # a kick held back by hold_kicks()
        self.drops: Counter[str] = Counter()
        self.last_ring_error: str | None = None
        self.ns_enabled = False
        self.ready = False
        self.resets = 0
        self.rx_messages = self.rx_bytes = self.tx_messages = self.tx_bytes = 0
        # Every buffer lies in the pool: the per-message calls translate by offset.
        self._pool_da = 0
        self._pool_mem = memoryview(bytearray())
        self._tx_waiters = 0
        # The role's one receive call with its arguments bound (get_message or take_message
        # over the pool), and whether a pass gave buffers back to the peer since its last
        # notification (finish_rx).
        self._receive: Callable[[], RxItem] = _not_started
        self._rx_recycled = False
        # Set when the receive ring's index itself is corrupt: rx_pending() then reports
        # nothing pending until the next drain attempt (the next notification), so the bus
        # does not spin on an entry it can neither consume nor skip.
        self._rx_halted = False
        # Zero-copy (:mod:`rpmsg.rings.loans`): the buffers lent out, and the endpoints whose
        # messages are held in their buffers rather than copied (receiving then takes the
        # generic path, _receive_held, instead of the one-call copy, _copying).
        self.loans = Loans()
        self.hold_addrs: set[int] = set()
        self._copying: Callable[[], RxResult] = _not_started

    # -- the link -----------------------------------------------------------------------------
    @abc.abstractmethod
    def activate(self) -> bool:
        """Start what can start right away (the host: negotiate, post, DRIVER_OK); True if
        the rings now run."""

    @abc.abstractmethod
    def poll(self) -> Poll:
        """Look at the vdev status before a receive pass: start or stop with the peer."""

    @abc.abstractmethod
    def reset_peer(self) -> None:
        """Host: virtio-reset the device before going away while the remote keeps running."""

    def _vrings(self) -> tuple[tuple[memoryview, VringLayout], tuple[memoryview, VringLayout]]:
        """``(memory, layout)`` of vq 0 and vq 1, checked."""
        vdev = self.vdev
        try:
            if vdev.id != VIRTIO_ID_RPMSG:
                raise VdevSetupError(f"vdev id {vdev.id} is not rpmsg ({VIRTIO_ID_RPMSG})")
            if vdev.num_of_vrings < 2:
                raise VdevSetupError(f"rpmsg needs 2 vrings, the vdev has {vdev.num_of_vrings}")
            out = []
            for i in (RX_VQ, TX_VQ):
                info = vdev.vring(i)
                layout = VringLayout(info.num, info.align)
                out.append((self.memory.view(info.da, layout.size), layout))
        except (RemoteProtocolError, MemoryAccessError) as exc:
            raise VdevSetupError(f"vdev unusable for rpmsg: {exc}") from exc
        return out[0], out[1]

    def _use_pool(self, pool: Region) -> None:
        self._pool_da, self._pool_mem = pool.da, pool.mem

    # -- receive ------------------------------------------------------------------------------
    def _receive_with(self, copying: Callable[[], RxResult]) -> None:
        """Set the role's one-call receive (at start), or the holding one if an endpoint
        receives zero-copy."""
        self._copying = copying
        self._receive = self._receive_held if self.hold_addrs else copying

    def set_holding(self, addr: int, on: bool) -> None:
        """Messages to ``addr`` are (``on``) held in their ring buffers, not copied."""
        if on:
            self.hold_addrs.add(addr)
        else:
            self.hold_addrs.discard(addr)
        if self._receive is not _not_started:
            self._receive_with(self._copying)

    @abc.abstractmethod
    def _receive_held(self) -> RxItem:
        """The next message, its payload a read-only view into its buffer (leased: given
        back on release) when it goes to a holding endpoint and the bound allows."""

    @abc.abstractmethod
    def _give_now(self, token: int) -> None:
        """Give a received buffer back within the receive pass (finish_rx notifies)."""

    @abc.abstractmethod
    def release_held(self, token: int) -> None:
        """Give a held buffer back after its pass: and notify the peer if it wants that."""

    def _parse_into(self, off: int, length: int, token: int) -> RxItem:
        """The message in the ``length``-byte buffer at pool offset ``off`` (parsed as the
        per-message methods do: transports.virtio.messages): held, or copied and given back."""
        pool = self._pool_mem
        header = parse_header(pool, off, length)
        if isinstance(header, int):  # MSG_SHORT, MSG_BAD_LENGTH
            self._give_now(token)
            return header
        src, dst, n, flags = header
        start = off + HDR_SIZE
        loans = self.loans
        if dst in self.hold_addrs:
            if loans.can_hold():
                release = partial(self.release_held, token)
                lease = Lease("rx", pool, start, n, readonly=True, give_back=release, token=token)
                return src, dst, flags, loans.lend(lease)  # to a holding endpoint's _deliver
            loans.hold_fallbacks += 1
        payload = bytes(pool[start : start + n])
        self._give_now(token)
        return src, dst, flags, payload

    def next_rx(self) -> RawMessage | None:
        """The next received message, or None if none is pending (call only while
        :attr:`ready`). Bad entries are counted and skipped; their buffers are recycled."""
        self._rx_halted = False
        receive = self._receive
        while True:
            try:
                msg = receive()
            except RemoteProtocolError as exc:
                if self._rx_error(exc):
                    continue
                return None
            if msg is None:
                return None
            self._rx_recycled = True
            if isinstance(msg, int):
                self.drops[RX_DROPS[msg]] += 1
                continue
            self.rx_messages += 1
            self.rx_bytes += len(msg[3])
            return msg

    @abc.abstractmethod
    def finish_rx(self) -> None:
        """After draining: notify the peer once about recycled buffers, if it wants that."""

    @abc.abstractmethod
    def rx_pending(self) -> bool:
        """Whether the receive ring has entries waiting (a re-check after a wake-up)."""

    @abc.abstractmethod
    def tx_available(self) -> bool:
        """Whether a send would find a tx buffer now (what a busy-polling sender watches)."""

    @abc.abstractmethod
    def set_rx_notifications(self, enabled: bool) -> None:
        """Suppress (or re-enable) the peer's notifications for our receive ring while we are
        busy draining it anyway."""

    @abc.abstractmethod
    def _recycle(self, head: int) -> None:
        """Give back the receive buffer of a bad entry (descriptor ``head``)."""

    def _ring_error(self, exc: RemoteProtocolError) -> None:
        self.drops["ring_error"] += 1
        self.last_ring_error = str(exc)

    def _rx_error(self, exc: RemoteProtocolError) -> bool:
        """Count a bad receive entry and recycle its buffer; False when the ring index itself
        is not trusted (receiving stops until the next notification)."""
        self._ring_error(exc)
        if not exc.consumed:
            self._rx_halted = True
            return False
        if exc.head is not None:
            self._recycle(exc.head)
        return True

    # -- send ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def try_send(self, src: int, dst: int, payload: Buffer, flags: int = 0) -> int:
        """Send one message if a tx buffer is free: its size in bytes, or -1 if none is.

        ``payload`` is any C-contiguous buffer; its raw bytes are sent and its size is its
        byte count, never ``len()`` (an ``array('d')`` of 62 items is 496 bytes). It is
        checked before a buffer is claimed, whoever the caller is: an argument the header or
        the ring refuses gives the claimed buffer back, so a refused send never consumes one.

        Raises:
            InvalidPayloadError: not a C-contiguous buffer.
            PayloadTooLargeError: more than ``mtu`` bytes.
            RpmsgError: the rings never started.
        """

    @abc.abstractmethod
    def borrow_tx(self) -> Lease | None:
        """Lend a free tx buffer's payload area (zero-copy send), or None if none is free."""

    @abc.abstractmethod
    def send_borrowed(self, lease: Lease, src: int, dst: int, n: int, flags: int = 0) -> None:
        """Send the first ``n`` bytes of a borrowed buffer (its views released)."""

    def hold_kicks(self) -> None:
        """Until :meth:`release_kicks`, the kicks sends would make are held back: a batch
        costs the peer one notification, however many messages it has."""
        self._held_kick, self._kick = self._kick, self._note_kick

    def _note_kick(self, vq: int) -> None:
        self._kick_owed = vq

    def release_kicks(self) -> None:
        """End :meth:`hold_kicks`: one kick if any send of the batch asked for one."""
        self._kick = self._held_kick
        owed, self._kick_owed = self._kick_owed, None
        if owed is not None:
            self._kick(owed)

    def _checked(self, payload: Buffer) -> bytes | memoryview:
        """A payload that is not plain bytes within the MTU, checked: a flat byte view."""
        flat = as_payload(payload)  # len() is now its size in bytes
        if len(flat) > self.mtu:
            raise PayloadTooLargeError(
                f"payload of {len(flat)} bytes exceeds the MTU of {self.mtu}"
            )
        return flat

    def _not_ready(self) -> int:
        if self.resets:
            return -1  # reset by the host: senders wait (with their deadline) for a new one
        raise RpmsgError("the vdev is not ready (no DRIVER_OK yet)")

    @abc.abstractmethod
    def _tx_notifications(self, enabled: bool) -> None:
        """Ask the peer to (not) notify us when a tx buffer frees."""

    def tx_wait_begin(self) -> None:
        """A sender is about to wait for a buffer: ask the peer to notify us when one frees."""
        self._tx_waiters += 1
        if self._tx_waiters == 1 and self.ready:
            self._tx_notifications(True)

    def tx_wait_end(self) -> None:
        self._tx_waiters -= 1
        if self._tx_waiters == 0 and self.ready:
            self._tx_notifications(False)
