"""The virtio-rpmsg ring engine: buffers, rings and negotiation for one vdev, either role.

Theory of operation (drivers/rpmsg/virtio_rpmsg_bus.c; OpenAMP rpmsg_virtio.c):

* vq 0 carries remote -> host messages, vq 1 host -> remote. The host is the virtio *driver*
  and owns every buffer: a pool of ``min(512, 2 x num)`` buffers of ``buffer_size`` bytes; the
  first half is posted, writable, on vq 0 for the remote to fill; the second half is used for
  sending on vq 1, each buffer reclaimed from vq 1's used ring once the remote has read it.
* The remote is the virtio *device*: it sends by taking an empty host buffer from vq 0's avail
  ring and giving it back filled; it receives by taking a full buffer from vq 1 and giving it
  back empty.
* Negotiation lives in the vdev entry: the host writes ``gfeatures`` and the status bits
  ACKNOWLEDGE | DRIVER, posts its rx buffers, then sets DRIVER_OK. A remote touches the rings
  only once it sees the DRIVER_OK bit.

The engine never blocks and never raises for the peer's bad bytes: malformed ring entries and
headers are counted in :attr:`drops` (by reason) and their buffers are recycled. It calls
``kick(vq)`` when the peer asked to be notified. The async shell (:mod:`rpmsg.bus`) decides when
to drain and when to wait. Pure: no I/O, no event loop.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from transports.errors import MemoryAccessError, RemoteProtocolError
from transports.virtio.constants import (
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_ID_RPMSG,
    VIRTIO_RPMSG_F_NS,
)
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vdev import LINUX_QUIRKS, VdevView, VirtioQuirks
from transports.virtio.vring import VRING_DESC_F_WRITE, VringDevice, VringDriver, VringLayout

from .errors import PayloadTooLargeError, RpmsgError
from .wire import DEFAULT_BUFFER_SIZE, HDR_SIZE, RPMSG_HDR, as_payload

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

RX_VQ = 0  # remote -> host
TX_VQ = 1  # host -> remote

#: Features this implementation understands (offered by a remote, accepted by a host).
SUPPORTED_FEATURES = 1 << VIRTIO_RPMSG_F_NS

#: Why a message or ring entry was dropped; the keys of ``drops``.
DROP_REASONS = (
    "ring_error",  # the peer corrupted a ring (bad index, id, chain, address, used length)
    "short_buffer",  # a buffer too small to hold a header
    "bad_length",  # header len larger than the buffer / used length
    "unknown_dst",  # no endpoint at the destination address
    "queue_full",  # an endpoint's receive queue overflowed (policy drop)
    "bad_ns",  # a malformed name-service message
    "callback_error",  # an rx callback raised
)

KickFn = Callable[[int], None]
Message = tuple[int, int, int, bytes]
#: What the C rings' get_message/take_message return: a message, a drop code, or None.
FusedRx = Message | int | None
_FUSED_DROPS = ("", "short_buffer", "bad_length")
# put_message's results: no buffer, sent, sent and the peer wants a kick, buffer refused.
_PUT_NONE, _PUT_SENT, _PUT_KICK, _PUT_SKIPPED = -1, 0, 1, 2


def _write_message(
    mem: memoryview, off: int, src: int, dst: int, payload: bytes | memoryview, n: int, flags: int
) -> None:
    """Header and payload into the buffer at ``mem[off:]`` (already bounds-checked); the
    pure-ring path (the C rings' fused methods do this themselves)."""
    RPMSG_HDR.pack_into(mem, off, src, dst, 0, n, flags)
    off += HDR_SIZE
    mem[off : off + n] = payload


class _Skip(enum.Enum):
    """A ring entry that was consumed and dropped (counted); draining goes on."""

    SKIP = 0


_SKIP = _Skip.SKIP


class VdevSetupError(RpmsgError, ValueError):
    """The vdev entry cannot carry rpmsg (wrong device id, vring count, rings outside memory)."""


class RpmsgEngine:
    """Ring bookkeeping for one rpmsg vdev.

    Args:
        role: ``"host"`` (virtio driver) or ``"remote"`` (virtio device).
        memory: the shared memory, by device address.
        vdev: the live vdev entry.
        pool: host role (required): where the host carves its buffers. Remote role
            (optional): where every buffer the host posts must lie; it then replaces
            ``buffer_ok`` and lets the rings translate buffers by offset.
        buffer_ok: the remote's check for host-posted buffer addresses when there is no
            pool (default: anywhere in ``memory``).
        kick: called with a vq index when the peer must be notified.
        buffer_size: bytes per buffer (512 by default, as Linux and OpenAMP).
    """

    def __init__(
        self,
        role: str,
        memory: DeviceMemory,
        vdev: VdevView,
        *,
        kick: KickFn,
        pool: Region | None = None,
        buffer_ok: Callable[[int, int], bool] | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        quirks: VirtioQuirks = LINUX_QUIRKS,
    ) -> None:
        if buffer_size <= HDR_SIZE:
            raise ValueError(f"buffer_size {buffer_size} leaves no room for a payload")
        self.role = role
        self.memory = memory
        self.vdev = vdev
        self.pool = pool
        self.buffer_size = buffer_size
        self.quirks = quirks
        self.mtu = buffer_size - HDR_SIZE
        self._kick = kick
        if role == "remote" and pool is not None:
            self._buffer_ok: Callable[[int, int], bool] = pool.contains
        else:
            self._buffer_ok = buffer_ok or memory.contains
        self.drops: Counter[str] = Counter()
        self._cache_da = self._cache_end = 0
        self._cache_mem = memoryview(b"")
        self.last_ring_error: str | None = None
        self.ns_enabled = False
        self.ready = False
        self.resets = 0
        # host
        self._rx_drv: VringDriver | None = None
        self._tx_drv: VringDriver | None = None
        self._tx_addrs: list[int] = []
        self._tx_fresh = 0
        self._tx_count = 0
        # The host's buffers all lie in its own pool: hot paths translate by offset.
        self._pool_da = 0
        self._pool_mem = memoryview(b"")
        self._tx_whole = quirks.tx_len_whole_buffer
        # The C rings' one-call message operations (transports._vring_accel), when the rings
        # are the C classes and every buffer lies in the pool: header, payload and ring
        # update in one call instead of four (see _fused_rx() and the two send paths).
        self._add_message: Callable[..., bool] | None = None
        self._get_message: Callable[..., FusedRx] | None = None
        self._take_message: Callable[..., FusedRx] | None = None
        self._put_message: Callable[..., int] | None = None
        # remote
        self._rx_dev: VringDevice | None = None
        self._tx_dev: VringDevice | None = None
        self._rx_pending_give = False
        self._rx_reposted = False
        self._tx_waiters = 0
        self._hdr_scratch = bytearray(HDR_SIZE)
        # Set when the receive ring's index itself is corrupt: rx_pending() then reports
        # nothing pending until the next drain attempt (the next notification), so the
        # bus does not spin on an entry it can neither consume nor skip.
        self._rx_halted = False

    # -- device memory ----------------------------------------------------------------------
    def _locate(self, addr: int, length: int) -> tuple[memoryview, int]:
        """``(region memory, offset)`` of the device range ``[addr, addr + length)``.

        Buffers almost always lie in one region (the pool), so the last region found is
        tried first: no bisect and no intermediate memoryview per message. The range is
        bounds-checked exactly like :meth:`DeviceMemory.view` (raises MemoryAccessError).
        """
        start = self._cache_da
        if start <= addr and addr + length <= self._cache_end and length >= 0:
            return self._cache_mem, addr - start
        region = self.memory.find(addr, length)
        if region is None or length < 0:
            self.memory.view(addr, length)  # raises the precise MemoryAccessError
            raise AssertionError("unreachable")  # pragma: no cover
        self._cache_da, self._cache_end, self._cache_mem = region.da, region.end, region.mem
        return region.mem, addr - region.da

    # -- setup ------------------------------------------------------------------------------
    def _rings(self) -> tuple[tuple[memoryview, VringLayout], tuple[memoryview, VringLayout]]:
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

    def host_start(self) -> None:
        """Negotiate, post the rx buffers and set DRIVER_OK (the host's probe)."""
        if self.pool is None:
            raise VdevSetupError("the host role needs a buffer pool region")
        (rx_mem, rx_layout), (tx_mem, tx_layout) = self._rings()
        vdev = self.vdev
        quirks = self.quirks
        if not quirks.driver_ok_only:
            vdev.status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER
        vdev.gfeatures = vdev.dfeatures & SUPPORTED_FEATURES
        if quirks.kick_after_features:
            self._kick(RX_VQ)
        self.ns_enabled = vdev.has_feature(VIRTIO_RPMSG_F_NS)
        count = min(512, rx_layout.num + tx_layout.num, self.pool.size // self.buffer_size)
        count -= count % 2
        if count < 2:
            raise VdevSetupError(
                f"pool of {self.pool.size} bytes holds fewer than 2 buffers of {self.buffer_size}"
            )
        half = count // 2
        addrs = [self.pool.da + i * self.buffer_size for i in range(count)]
        self._rx_drv = VringDriver(rx_mem, rx_layout)
        self._tx_drv = VringDriver(tx_mem, tx_layout)
        for addr in addrs[: min(half, rx_layout.num)]:
            self._rx_drv.post(addr, self.buffer_size, writable=True)
        self._tx_addrs = addrs[half : half + min(half, tx_layout.num)]
        self._tx_fresh = 0
        self._tx_count = len(self._tx_addrs)
        self._pool_da, self._pool_mem = self.pool.da, self.pool.mem
        self._add_message = getattr(self._tx_drv, "add_message", None)
        self._get_message = getattr(self._rx_drv, "get_message", None)
        # Tx-complete interrupts only while a sender waits for a buffer (Linux does the same).
        self._tx_drv.set_interrupts(False)
        if quirks.driver_ok_only:
            vdev.status = VIRTIO_CONFIG_S_DRIVER_OK
        else:
            vdev.status = (
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK
            )
        self.ready = True
        self._kick(RX_VQ)

    def remote_driver_ok(self) -> bool:
        """Whether the host has set DRIVER_OK (and not NEEDS_RESET): the remote may start."""
        status = self.vdev.status
        return bool(status & VIRTIO_CONFIG_S_DRIVER_OK) and not (
            status & VIRTIO_CONFIG_S_NEEDS_RESET
        )

    def remote_start(self) -> None:
        """Attach the device halves once :meth:`remote_driver_ok` is true."""
        (rx_mem, rx_layout), (tx_mem, tx_layout) = self._rings()
        self.ns_enabled = self.vdev.has_feature(VIRTIO_RPMSG_F_NS)
        # vq 0: we take the host's empty buffers to send; vq 1: we take its messages.
        self._tx_dev = VringDevice(rx_mem, rx_layout, region_check=self._buffer_ok)
        self._rx_dev = VringDevice(tx_mem, tx_layout, region_check=self._buffer_ok)
        # Kicks for refilled rx buffers only while a sender waits for one (OpenAMP's default).
        self._tx_dev.set_notifications(False)
        if self.pool is not None:
            self._pool_da, self._pool_mem = self.pool.da, self.pool.mem
            self._take_message = getattr(self._rx_dev, "take_message", None)
            self._put_message = getattr(self._tx_dev, "put_message", None)
        self.ready = True

    def remote_reset(self) -> None:
        """The host reset the device (DRIVER_OK withdrawn, e.g. it detached): forget the
        rings; :meth:`remote_start` runs again once the host sets DRIVER_OK anew."""
        self._tx_dev = self._rx_dev = None
        self._take_message = self._put_message = None
        self._rx_pending_give = False
        self._rx_halted = False
        self.ready = False
        self.resets += 1

    def host_reset(self) -> None:
        """Virtio reset from the host side (status 0), as Linux does when the device goes
        away: a remote that keeps running stops using the rings until DRIVER_OK returns."""
        self.vdev.status = 0
        self._kick(RX_VQ)

    # -- receive ----------------------------------------------------------------------------
    def _ring_error(self, exc: RemoteProtocolError) -> None:
        self.drops["ring_error"] += 1
        self.last_ring_error = str(exc)

    def next_rx(self) -> Message | None:
        """The next received message ``(src, dst, flags, payload)``, or None if none is
        pending. Bad entries are counted and skipped; their buffers are recycled at once."""
        self._rx_halted = False
        while True:
            try:
                if self._rx_drv is not None:
                    msg = self._host_rx_one()
                elif self._rx_dev is not None:
                    msg = self._remote_rx_one()
                else:
                    return None
            except RemoteProtocolError as exc:
                self._ring_error(exc)
                if not exc.consumed:
                    # The ring index itself is not trusted: stop until the next kick.
                    self._rx_halted = True
                    return None
                self._recycle_bad(exc.head)
                continue
            if msg is not _SKIP:
                return msg

    def _recycle_bad(self, head: int | None) -> None:
        if head is None:
            return
        if self._rx_drv is not None:
            addr, length = self._rx_drv.buffer_of(head)
            self._rx_drv.post(addr, length, writable=True)
            self._rx_reposted = True
        elif self._rx_dev is not None:
            self._rx_dev.give(head, 0)
            self._rx_pending_give = True

    def _fused_rx(self, result: FusedRx) -> Message | _Skip | None:
        """A fused receive's result: the message, or a drop code (1 short, 2 bad length)."""
        if isinstance(result, int):
            self.drops[_FUSED_DROPS[result]] += 1
            return _SKIP
        return result

    def _host_rx_one(self) -> Message | _Skip | None:
        get_message = self._get_message
        if get_message is not None:
            result = get_message(self._pool_mem, self._pool_da, self.buffer_size)
            if result is None:
                return None
            self._rx_reposted = True
            return self._fused_rx(result)
        drv = self._rx_drv
        assert drv is not None
        used = drv.get_used()
        if used is None:
            return None
        _head, addr, used_len = used
        try:
            # Our own pool buffer (the address is the vring's shadow copy) and
            # used_len <= buffer_size (the vring refused larger claims): no lookup needed.
            return self._parse(self._pool_mem, addr - self._pool_da, used_len)
        finally:
            drv.post(addr, self.buffer_size, writable=True)
            self._rx_reposted = True

    def _remote_rx_one(self) -> Message | _Skip | None:
        take_message = self._take_message
        if take_message is not None:
            result = take_message(self._pool_mem, self._pool_da)
            if result is None:
                return None
            self._rx_pending_give = True
            return self._fused_rx(result)
        dev = self._rx_dev
        assert dev is not None
        taken = dev.take()
        if taken is None:
            return None
        head, addr, length, _flags = taken
        try:
            mem, off = self._locate(addr, length)  # take() checked the buffer's region
            return self._parse(mem, off, length)
        finally:
            dev.give(head, length)
            self._rx_pending_give = True

    def _parse(self, mem: memoryview, off: int, length: int) -> Message | _Skip:
        """The message in the ``length`` bytes at ``mem[off:]`` (already bounds-checked)."""
        if length < HDR_SIZE:
            self.drops["short_buffer"] += 1
            return _SKIP
        src, dst, _reserved, msg_len, flags = RPMSG_HDR.unpack_from(mem, off)
        if msg_len > length - HDR_SIZE:
            self.drops["bad_length"] += 1
            return _SKIP
        off += HDR_SIZE
        return src, dst, flags, bytes(mem[off : off + msg_len])

    def finish_rx(self) -> None:
        """After draining: notify the peer once about recycled buffers, if it wants that."""
        if self._rx_reposted:
            self._rx_reposted = False
            assert self._rx_drv is not None
            if self._rx_drv.kick_needed():
                self._kick(RX_VQ)
        if self._rx_pending_give:
            self._rx_pending_give = False
            assert self._rx_dev is not None
            if self._rx_dev.interrupt_needed():
                self._kick(TX_VQ)

    def rx_pending(self) -> bool:
        """Whether the receive ring has entries waiting (used to re-check after a wake-up)."""
        if self._rx_halted:
            return False
        if self._rx_drv is not None:
            return self._rx_drv.has_used()
        if self._rx_dev is not None:
            return self._rx_dev.has_avail()
        return False

    def set_rx_notifications(self, enabled: bool) -> None:
        """Suppress (or re-enable) the peer's notifications for our receive ring while we are
        busy draining it anyway."""
        if self._rx_drv is not None:
            self._rx_drv.set_interrupts(enabled)
        elif self._rx_dev is not None:
            self._rx_dev.set_notifications(enabled)

    # -- send -------------------------------------------------------------------------------
    def try_send(self, src: int, dst: int, payload: Buffer, flags: int = 0) -> bool:
        """Send one message if a tx buffer is free; False if none is.

        ``payload`` is any C-contiguous buffer; its raw bytes are sent and its size is its
        byte count, never ``len()`` (an ``array('d')`` of 62 items is 496 bytes). It is
        checked here, before a buffer is claimed, whoever the caller is: an argument the
        header or the ring refuses gives the claimed buffer back, so a refused send never
        consumes one.

        Raises:
            InvalidPayloadError: not a C-contiguous buffer.
            PayloadTooLargeError: more than ``mtu`` bytes.
        """
        if type(payload) is not bytes:
            payload = as_payload(payload)  # a flat byte view: len() is now its byte count
        n = len(payload)
        if n > self.mtu:
            raise PayloadTooLargeError(f"payload of {n} bytes exceeds the MTU of {self.mtu}")
        drv = self._tx_drv
        if drv is None:
            if self._tx_dev is not None:
                return self._remote_send(src, dst, payload, n, flags)
            if self.resets:
                return False  # reset by the host: senders wait (with their deadline) for it
            raise RpmsgError("the vdev is not ready (no DRIVER_OK yet)")
        # Host: a never-used buffer first, then one the remote has returned.
        fresh = self._tx_fresh
        if fresh < self._tx_count:
            addr = self._tx_addrs[fresh]
            self._tx_fresh = fresh + 1
        else:
            reclaimed = self._reclaim_tx()
            if reclaimed is None:
                return False
            addr = reclaimed
        mem = self._pool_mem
        off = addr - self._pool_da
        post_len = self.buffer_size if self._tx_whole else HDR_SIZE + n
        add_message = self._add_message
        try:
            if add_message is not None:
                kick = add_message(addr, post_len, mem, off, src, dst, flags, payload)
            else:
                _write_message(mem, off, src, dst, payload, n, flags)
                drv.post(addr, post_len, writable=False)
                kick = drv.kick_needed()
        except BaseException:
            self._unclaim_tx(addr)  # nothing was posted (add_message checks all first)
            raise
        if kick:
            self._kick(TX_VQ)
        return True

    def _unclaim_tx(self, addr: int) -> None:
        """Give back a tx buffer claimed by a send that then failed: it becomes the next fresh
        one (entries before ``_tx_fresh`` are never read again)."""
        self._tx_fresh -= 1
        self._tx_addrs[self._tx_fresh] = addr

    def _reclaim_tx(self) -> int | None:
        drv = self._tx_drv
        assert drv is not None
        while True:
            try:
                used = drv.get_used()
            except RemoteProtocolError as exc:
                self._ring_error(exc)
                if exc.consumed and exc.head is not None:
                    return drv.buffer_of(exc.head)[0]
                if exc.consumed:
                    continue
                return None
            return None if used is None else used[1]

    def _remote_send(
        self, src: int, dst: int, payload: bytes | memoryview, n: int, flags: int
    ) -> bool:
        dev = self._tx_dev
        assert dev is not None
        put_message = self._put_message
        if put_message is None:
            # The header's fields are checked before a buffer is taken (put_message checks
            # them itself): once taken, a buffer can only go back as a counted drop.
            RPMSG_HDR.pack_into(self._hdr_scratch, 0, src, dst, 0, n, flags)
        while True:
            try:
                if put_message is not None:
                    code = put_message(self._pool_mem, self._pool_da, src, dst, flags, payload)
                    if code == _PUT_SKIPPED:
                        self.drops["short_buffer"] += 1
                        continue
                    if code == _PUT_NONE:
                        return False
                    if code == _PUT_KICK:
                        self._kick(RX_VQ)
                    return True
                taken = dev.take()
            except RemoteProtocolError as exc:
                self._ring_error(exc)
                if not exc.consumed:
                    return False
                if exc.head is not None:
                    dev.give(exc.head, 0)
                continue
            if taken is None:
                return False
            head, addr, length, dflags = taken
            if length < HDR_SIZE + n or not dflags & VRING_DESC_F_WRITE:
                # Too small or read-only: hand it back empty; the host counts and reposts it.
                self.drops["short_buffer"] += 1
                dev.give(head, 0)
                continue
            mem, off = self._locate(addr, HDR_SIZE + n)
            _write_message(mem, off, src, dst, payload, n, flags)
            dev.give(head, HDR_SIZE + n)
            if dev.interrupt_needed():
                self._kick(RX_VQ)
            return True

    def tx_wait_begin(self) -> None:
        """A sender is about to wait for a buffer: ask the peer to notify us when one frees."""
        self._tx_waiters += 1
        if self._tx_waiters == 1:
            if self._tx_drv is not None:
                self._tx_drv.set_interrupts(True)
            elif self._tx_dev is not None:
                self._tx_dev.set_notifications(True)

    def tx_wait_end(self) -> None:
        self._tx_waiters -= 1
        if self._tx_waiters == 0:
            if self._tx_drv is not None:
                self._tx_drv.set_interrupts(False)
            elif self._tx_dev is not None:
                self._tx_dev.set_notifications(False)
