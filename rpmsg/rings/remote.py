"""The remote's rings: the virtio device side, which fills and empties the host's buffers. Pure.

Theory of operation (OpenAMP rpmsg_virtio.c, device role): the remote sends by taking an empty
host buffer from vq 0's avail ring and giving it back filled (``put_message``); it receives by
taking a full buffer from vq 1 and giving it back empty (``take_message``). It starts on the
host's DRIVER_OK and drops the rings when the host withdraws it (a virtio reset: the host
detached), to start again on the next DRIVER_OK.

The buffer window: every buffer the host posts must lie in it, or it is refused and counted
(``ring_error``), never dereferenced. It is the transport's pool when the transport knows it.
Otherwise it is derived at DRIVER_OK: Linux (``rpmsg_probe``) and OpenAMP allocate all rpmsg
buffers as one contiguous block, receive buffers first, and post the receive buffers before
setting DRIVER_OK; so the window runs from the first buffer posted on vq 0 to the end of the
shared-memory region that holds it. A host that posted nothing by DRIVER_OK gets an empty
window: each of its buffers is then a counted ring error.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from transports.errors import RemoteProtocolError
from transports.virtio.constants import (
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_RPMSG_F_NS,
    VRING_DESC_F_WRITE,
)
from transports.virtio.memory import Region
from transports.virtio.messages import PUT_KICK, PUT_NONE, PUT_REFUSED
from transports.virtio.vring import VringDevice, VringLayout, first_posted

from ..wire import HDR_SIZE, RPMSG_HDR
from .base import RX_VQ, TX_VQ, Poll, Rings, RxItem, _not_started
from .loans import Lease

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12


class RemoteRings(Rings):
    """The remote role: vq 1 receives (``take_message``), vq 0 sends (``put_message``)."""

    __deletable__ = ("_rx", "_tx")  # mypyc: _stop() deletes them
    _rx: VringDevice
    _tx: VringDevice

    _tx_spare: list[tuple[int, int, int]]  # borrowed, returned unsent: (head, addr, len)

    def activate(self) -> bool:
        return False  # the rings start when the host sets DRIVER_OK (poll)

    def poll(self) -> Poll:
        status = self.vdev.status
        driver_ok = bool(status & VIRTIO_CONFIG_S_DRIVER_OK) and not (
            status & VIRTIO_CONFIG_S_NEEDS_RESET
        )
        if self.ready:
            if driver_ok:
                return Poll.READY
            self._stop()
            return Poll.RESET
        if not driver_ok:
            return Poll.IDLE
        self._start()
        return Poll.STARTED

    def _start(self) -> None:
        (rx_mem, rx_layout), (tx_mem, tx_layout) = self._vrings()
        self.ns_enabled = self.vdev.has_feature(VIRTIO_RPMSG_F_NS)
        window = self.pool if self.pool is not None else self._window(rx_mem, rx_layout)
        self._use_pool(window)
        # vq 0: we take the host's empty buffers to send; vq 1: we take its messages.
        self._tx = VringDevice(rx_mem, rx_layout, region_check=window.contains)
        self._rx = VringDevice(tx_mem, tx_layout, region_check=window.contains)
        # Kicks for refilled rx buffers only while a sender waits for one (OpenAMP's default).
        self._tx.set_notifications(self._tx_waiters > 0)
        self._receive_with(partial(self._rx.take_message, self._pool_mem, self._pool_da))
        self.loans.max_held = max(1, tx_layout.num // 2)
        self._held_len = [0] * tx_layout.num
        self._rx_recycled = False
        self._tx_spare = []
        self.ready = True

    def _window(self, vq0: memoryview, layout: VringLayout) -> Region:
        """The buffer window, from the first receive buffer the host posted (module doc)."""
        first = first_posted(vq0, layout)
        region = None if first is None else self.memory.find(first)
        if first is None or region is None:
            self.last_ring_error = "no buffer posted on vq 0 at DRIVER_OK: no buffer window"
            return Region(0, memoryview(bytearray()), "no buffer window")
        start = first - region.da
        return Region(first, region.mem[start:], f"buffers in {region.name or 'memory'}")

    def _stop(self) -> None:
        """The host reset the device: forget the rings until it sets DRIVER_OK anew, and hold
        no view of its memory meanwhile: that memory may be going away with the host (a
        vhost-user frontend's memfd, a halted kernel's RAM), to be unmapped once unused."""
        self._rx_halted = False
        self.ready = False
        self.resets += 1
        del self._rx, self._tx  # used only while ready: _start makes new ones
        self.loans.invalidate("the host reset the device")
        self._tx_spare.clear()
        self._receive = self._copying = _not_started
        self._use_pool(Region(0, memoryview(bytearray()), "no host"))

    def reset_peer(self) -> None:
        return  # only a host resets its peer

    # -- receive ------------------------------------------------------------------------------
    def _receive_held(self) -> RxItem:
        taken = self._rx.take()
        if taken is None:
            return None
        head, addr, length, _flags = taken
        self._held_len[head] = length
        return self._parse_into(addr - self._pool_da, length, head)

    def _give_now(self, token: int) -> None:
        self._rx.give(token, self._held_len[token])  # as take_message gives back

    def release_held(self, token: int) -> None:
        if not self.ready:
            return
        self._give_now(token)
        if self._rx.interrupt_needed():
            self._kick(TX_VQ)

    def _recycle(self, head: int) -> None:
        self._rx.give(head, 0)
        self._rx_recycled = True

    def finish_rx(self) -> None:
        if self._rx_recycled:
            self._rx_recycled = False
            if self._rx.interrupt_needed():
                self._kick(TX_VQ)

    def rx_pending(self) -> bool:
        return not self._rx_halted and self._rx.has_avail()

    def set_rx_notifications(self, enabled: bool) -> None:
        self._rx.set_notifications(enabled)

    def tx_available(self) -> bool:
        return self.ready and (bool(self._tx_spare) or self._tx.has_avail())

    # -- send ---------------------------------------------------------------------------------
    def try_send(self, src: int, dst: int, payload: Buffer, flags: int = 0) -> int:
        if type(payload) is not bytes or len(payload) > self.mtu:
            payload = self._checked(payload)
        if not self.ready:
            return self._not_ready()
        if self._tx_spare:  # buffers borrowed and returned unsent go first
            sent = self._send_spare(src, dst, payload, flags)
            if sent >= 0:
                return sent
        tx = self._tx
        while True:
            try:
                code = tx.put_message(self._pool_mem, self._pool_da, src, dst, flags, payload)
            except RemoteProtocolError as exc:
                self._ring_error(exc)
                if not exc.consumed:
                    return -1
                if exc.head is not None:
                    tx.give(exc.head, 0)
                continue
            if code == PUT_REFUSED:
                # Too small or read-only: given back empty; the host counts and reposts it.
                self.drops["short_buffer"] += 1
                continue
            if code == PUT_NONE:
                return -1
            if code == PUT_KICK:
                self._kick(RX_VQ)
            n = len(payload)
            self.tx_messages += 1
            self.tx_bytes += n
            return n

    # -- zero-copy send (rpmsg_get_tx_payload_buffer, rpmsg_send_nocopy) ----------------------
    # A borrowed buffer returned unsent is kept for reuse, as OpenAMP's
    # rpmsg_virtio_release_tx_buffer puts it on its reclaimer list (lib/rpmsg/rpmsg_virtio.c):
    # giving it back to the host empty would be a zero-length message the host counts.
    def borrow_tx(self) -> Lease | None:
        """Lend an empty host buffer's payload area (its size after the header slot, at most
        ``mtu``), or None if the host has none posted."""
        if not self.ready:
            self._not_ready()
            return None
        if self._tx_spare:
            head, addr, length = self._tx_spare.pop()
        else:
            taken = self._take_tx()
            if taken is None:
                return None
            head, addr, length = taken
        lease = Lease(
            "tx",
            self._pool_mem,
            addr - self._pool_da + HDR_SIZE,
            min(length - HDR_SIZE, self.mtu),
            readonly=False,
            give_back=partial(self._tx_spare.append, (head, addr, length)),
            token=head,
        )
        self.loans.lend(lease)
        return lease

    def _take_tx(self) -> tuple[int, int, int] | None:
        """An empty, writable host buffer with room for a header: ``(head, addr, len)``."""
        tx = self._tx
        while True:
            try:
                taken = tx.take()
            except RemoteProtocolError as exc:
                self._ring_error(exc)
                if not exc.consumed:
                    return None
                if exc.head is not None:
                    tx.give(exc.head, 0)
                continue
            if taken is None:
                return None
            head, addr, length, flags = taken
            if length <= HDR_SIZE or not flags & VRING_DESC_F_WRITE:
                tx.give(head, 0)  # as put_message refuses it: the host counts and reposts
                self.drops["short_buffer"] += 1
                continue
            return head, addr, length

    def send_borrowed(self, lease: Lease, src: int, dst: int, n: int, flags: int = 0) -> None:
        """Send the first ``n`` bytes of a borrowed buffer whose views are released: the
        header in place, then the buffer goes back to the host holding ``HDR + n`` bytes."""
        self._give_written(lease.token, lease.offset - HDR_SIZE, src, dst, n, flags)

    def _send_spare(self, src: int, dst: int, payload: bytes | memoryview, flags: int) -> int:
        """:meth:`try_send` into a buffer kept for reuse (its payload is checked)."""
        head, addr, length = self._tx_spare[-1]
        n = len(payload)
        if HDR_SIZE + n > length:
            return -1  # too small for this one: the ring's next buffer, then
        self._tx_spare.pop()
        off = addr - self._pool_da
        self._pool_mem[off + HDR_SIZE : off + HDR_SIZE + n] = payload
        self._give_written(head, off, src, dst, n, flags)
        return n

    def _give_written(self, head: int, off: int, src: int, dst: int, n: int, flags: int) -> None:
        """The ``n`` payload bytes are in place after the header slot at pool offset ``off``:
        write the header, give the buffer back to the host with ``HDR + n``, count it."""
        RPMSG_HDR.pack_into(self._pool_mem, off, src, dst, 0, n, flags)
        self._tx.give(head, HDR_SIZE + n)
        if self._tx.interrupt_needed():
            self._kick(RX_VQ)
        self.tx_messages += 1
        self.tx_bytes += n

    def _tx_notifications(self, enabled: bool) -> None:
        self._tx.set_notifications(enabled)
