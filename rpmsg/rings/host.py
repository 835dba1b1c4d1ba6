"""The host's rings: the virtio driver side, which owns every buffer. Pure.

Theory of operation (virtio_rpmsg_bus.c ``rpmsg_probe``): the host carves a pool of
``min(512, 2 x num)`` buffers of ``buffer_size`` bytes; the first half is posted, writable, on
vq 0 for the remote to fill (before DRIVER_OK, so a remote finds them there); the second half
is for sending on vq 1. Each send takes a never-used buffer first, then one the remote has
given back on vq 1's used ring. Receiving reposts each buffer at once. Tx-complete
notifications are wanted only while a sender waits for a buffer (as Linux does).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from transports.errors import RemoteProtocolError
from transports.virtio.constants import (
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_RPMSG_F_NS,
)
from transports.virtio.vring import VringDriver

from ..errors import VdevSetupError
from ..wire import HDR_SIZE, RPMSG_HDR
from .base import RX_VQ, SUPPORTED_FEATURES, TX_VQ, Poll, Rings, RxItem
from .loans import Lease

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12


class HostRings(Rings):
    """The host role: vq 0 receives (``get_message``), vq 1 sends (``add_message``)."""

    _rx: VringDriver
    _tx: VringDriver

    def activate(self) -> bool:
        """Negotiate, post the rx buffers and set DRIVER_OK (the host's probe)."""
        pool = self.pool
        if pool is None:
            raise VdevSetupError("the host role needs a buffer pool region")
        (rx_mem, rx_layout), (tx_mem, tx_layout) = self._vrings()
        vdev, quirks, size = self.vdev, self.quirks, self.buffer_size
        if not quirks.driver_ok_only:
            vdev.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER
        vdev.gfeatures = vdev.dfeatures & SUPPORTED_FEATURES
        if quirks.kick_after_features:
            self._kick(RX_VQ)
        self.ns_enabled = vdev.has_feature(VIRTIO_RPMSG_F_NS)
        count = min(512, rx_layout.num + tx_layout.num, pool.size // size)
        count -= count % 2
        if count < 2:
            raise VdevSetupError(f"pool of {pool.size} bytes holds fewer than 2 buffers of {size}")
        half = count // 2
        addrs = [pool.da + i * size for i in range(count)]
        self._rx = VringDriver(rx_mem, rx_layout)
        self._tx = VringDriver(tx_mem, tx_layout)
        for addr in addrs[: min(half, rx_layout.num)]:
            self._rx.post(addr, size, writable=True)
        self._tx_addrs = addrs[half : half + min(half, tx_layout.num)]
        self._tx_fresh = 0
        self._tx_count = len(self._tx_addrs)
        self._tx_post_whole = quirks.tx_len_whole_buffer
        self._use_pool(pool)
        # Each buffer is reposted as it was posted here.
        self._receive_with(partial(self._rx.get_message, self._pool_mem, self._pool_da, size))
        self.loans.max_held = max(1, half // 2)
        self._tx.set_interrupts(self._tx_waiters > 0)
        if quirks.driver_ok_only:
            vdev.status = VIRTIO_CONFIG_S_DRIVER_OK
        else:
            vdev.status = (
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK
            )
        self.ready = True
        self._kick(RX_VQ)
        return True

    def poll(self) -> Poll:
        return Poll.READY if self.ready else Poll.IDLE

    def reset_peer(self) -> None:
        """Virtio reset from the host side (status 0), as Linux does when the device goes
        away: a remote that keeps running stops using the rings until DRIVER_OK returns."""
        self.vdev.status = 0
        self._kick(RX_VQ)

    # -- receive ------------------------------------------------------------------------------
    def _recycle(self, head: int) -> None:
        addr, length = self._rx.buffer_of(head)
        self._rx.post(addr, length, writable=True)
        self._rx_recycled = True

    def _receive_held(self) -> RxItem:
        used = self._rx.get_used()
        if used is None:
            return None
        _head, addr, used_len = used
        return self._parse_into(addr - self._pool_da, used_len, addr)

    def _give_now(self, token: int) -> None:
        self._rx.post(token, self.buffer_size, writable=True)  # as get_message reposts

    def release_held(self, token: int) -> None:
        if not self.ready:
            return
        self._give_now(token)
        if self._rx.kick_needed():
            self._kick(RX_VQ)

    def finish_rx(self) -> None:
        if self._rx_recycled:
            self._rx_recycled = False
            if self._rx.kick_needed():
                self._kick(RX_VQ)

    def rx_pending(self) -> bool:
        return not self._rx_halted and self._rx.has_used()

    def set_rx_notifications(self, enabled: bool) -> None:
        self._rx.set_interrupts(enabled)

    def tx_available(self) -> bool:
        return self.ready and (self._tx_fresh < self._tx_count or self._tx.has_used())

    # -- send ---------------------------------------------------------------------------------
    def _next_tx_addr(self) -> int:
        """A free tx buffer's address, or -1: a never-used buffer first, then one the remote
        has given back (a native call when compiled: nothing to save by inlining it)."""
        fresh = self._tx_fresh
        if fresh < self._tx_count:
            self._tx_fresh = fresh + 1
            return self._tx_addrs[fresh]
        try:
            used = self._tx.get_used()
        except RemoteProtocolError as exc:
            used = self._reclaim_after(exc)
        return -1 if used is None else used[1]

    def try_send(self, src: int, dst: int, payload: Buffer, flags: int = 0) -> int:
        if type(payload) is not bytes or len(payload) > self.mtu:
            payload = self._checked(payload)
        if not self.ready:
            return self._not_ready()
        addr = self._next_tx_addr()
        if addr < 0:
            return -1
        n = len(payload)
        post_len = self.buffer_size if self._tx_post_whole else HDR_SIZE + n
        try:
            kick = self._tx.add_message(
                addr, post_len, self._pool_mem, addr - self._pool_da, src, dst, flags, payload
            )
        except BaseException:
            # Nothing was posted (add_message checks everything first): the buffer becomes
            # the next fresh one (entries before _tx_fresh are never read again).
            self._tx_fresh -= 1
            self._tx_addrs[self._tx_fresh] = addr
            raise
        if kick:
            self._kick(TX_VQ)
        self.tx_messages += 1
        self.tx_bytes += n
        return n

    # -- zero-copy send (rpmsg_get_tx_payload_buffer, rpmsg_send_nocopy) ----------------------
    def borrow_tx(self) -> Lease | None:
        """Lend a free tx buffer's payload area (``mtu`` bytes, after the header slot), or
        None if none is free. Like :meth:`try_send`: a never-used buffer first."""
        if not self.ready:
            self._not_ready()
            return None
        addr = self._next_tx_addr()
        if addr < 0:
            return None
        off = addr - self._pool_da
        lease = Lease(
            "tx",
            self._pool_mem,
            off + HDR_SIZE,
            self.mtu,
            readonly=False,
            give_back=partial(self._unborrow, addr),
            token=addr,
        )
        self.loans.lend(lease)
        return lease

    def _unborrow(self, addr: int) -> None:
        """A borrowed buffer comes back unsent: the next fresh one (entries before _tx_fresh
        are never read again)."""
        self._tx_fresh -= 1
        self._tx_addrs[self._tx_fresh] = addr

    def send_borrowed(self, lease: Lease, src: int, dst: int, n: int, flags: int = 0) -> None:
        """Send the first ``n`` bytes of a borrowed buffer whose views are released: the header
        in place, then the post (Linux virtio_rpmsg_bus posts ``HDR + n`` bytes)."""
        addr = lease.token
        RPMSG_HDR.pack_into(self._pool_mem, addr - self._pool_da, src, dst, 0, n, flags)
        self._tx.post(
            addr, self.buffer_size if self._tx_post_whole else HDR_SIZE + n, writable=False
        )
        if self._tx.kick_needed():
            self._kick(TX_VQ)
        self.tx_messages += 1
        self.tx_bytes += n

    def _reclaim_after(self, exc: RemoteProtocolError) -> tuple[int, int, int] | None:
        """A tx buffer to reuse after the remote corrupted vq 1's used ring, as
        ``get_used()`` gives it, or None."""
        while True:
            self._ring_error(exc)
            if not exc.consumed:
                return None
            if exc.head is not None:
                addr, length = self._tx.buffer_of(exc.head)
                return exc.head, addr, length
            try:
                return self._tx.get_used()
            except RemoteProtocolError as again:
                exc = again

    def _tx_notifications(self, enabled: bool) -> None:
        self._tx.set_interrupts(enabled)
