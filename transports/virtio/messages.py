"""The per-message methods of the split vring's two halves: one rpmsg side's work per call.

Theory of operation: ``add_message`` / ``get_message`` (the driver: the rpmsg host sends and
receives) and ``take_message`` / ``put_message`` (the device: the rpmsg remote receives and
sends) each do the ring operation plus the 16-byte rpmsg header and the payload copy in one
call, so the rpmsg rings make one call per message per side. This is the one deliberate layering
exception of :mod:`transports.virtio` (nothing else here knows rpmsg):

    struct rpmsg_hdr { le32 src; le32 dst; le32 reserved; le16 len; le16 flags; u8 data[]; }

The mixins below are the reference implementation; :class:`~transports.virtio.vring.PyVringDriver`
and :class:`~transports.virtio.vring.PyVringDevice` inherit them, and the C twin
(``transports._vring_accel``) has the same methods, results, errors and state changes
(tests/unit/test_vring_accel.py compares them). ``mem`` is the buffer pool, its byte i at device
address ``base_da + i``. Every argument is checked before anything changes: ints as struct
converts them (struct.error), a payload or pool that is no C-contiguous buffer (TypeError,
BufferError), a payload over 0xFFFF bytes or a message that does not fit (ValueError). A
payload is its raw bytes, sized in bytes (never ``len()``). Pure: struct over memoryviews.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import RingFullError
from .constants import ENDIAN, VRING_DESC_F_WRITE

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

#: struct rpmsg_hdr (drivers/rpmsg/virtio_rpmsg_bus.c); rpmsg.wire.RPMSG_HDR is the rpmsg
#: package's own (the layering exception: see the module docstring).
_RPMSG_HDR = struct.Struct(ENDIAN + "IIIHH")
_HDR = _RPMSG_HDR.size
_U64 = struct.Struct(ENDIAN + "Q")
_U32 = struct.Struct(ENDIAN + "I")
#: get_message / take_message: the buffer cannot hold a header / its header claims more
#: payload than the buffer holds (the buffer is recycled all the same).
MSG_SHORT, MSG_BAD_LENGTH = 1, 2
#: put_message: no buffer available / sent / sent and the driver wants an interrupt / the
#: buffer was too short or read-only (given back empty: count a drop and call again).
PUT_NONE, PUT_SENT, PUT_KICK, PUT_REFUSED = -1, 0, 1, 2
RxResult = tuple[int, int, int, bytes] | int | None


def _u64(value: int) -> int:
    """``value`` as struct's ``"<Q"`` converts it: its errors, its messages."""
    if type(value) is int and 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        return value
    result: int = _U64.unpack(_U64.pack(value))[0]
    return result


def _u32(value: int) -> int:
    if type(value) is int and 0 <= value <= 0xFFFF_FFFF:
        return value
    result: int = _U32.unpack(_U32.pack(value))[0]
    return result


def _payload(payload: Buffer) -> bytes | memoryview:
    """A payload's raw bytes: any C-contiguous buffer, its size its byte count (never len())."""
    if type(payload) is bytes:
        raw: bytes | memoryview = payload
    else:
        try:
            view = memoryview(payload)
        except TypeError:
            kind = type(payload).__name__
            raise TypeError(f"a bytes-like object is required, not '{kind}'") from None
        if not view.nbytes:
            raw = b""  # contiguous, as C sees it, whatever its strides
        elif not view.c_contiguous:
            raise BufferError("payload is not C-contiguous: its bytes are not one run of memory")
        else:
            raw = view if view.format == "B" and view.ndim == 1 else view.cast("B")
    if len(raw) > 0xFFFF:  # the header's u16 len
        raise ValueError(
            f"payload of {len(raw)} bytes does not fit an rpmsg message (at most 65535 bytes)"
        )
    return raw


def _pool(mem: memoryview | bytearray, *, writable: bool) -> memoryview:
    """The buffer pool argument: one C-contiguous run of bytes (writable to send into)."""
    view = mem if type(mem) is memoryview else memoryview(mem)
    if writable and view.readonly:
        raise BufferError("the buffer pool is not writable")
    if not view.c_contiguous:
        raise BufferError("memory is not C-contiguous")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def parse_header(pool: memoryview, off: int, length: int) -> tuple[int, int, int, int] | int:
    """``(src, dst, n, flags)`` of the message in the ``length``-byte buffer at ``pool[off:]``
    (inside the pool), its payload the ``n`` bytes after the header; or MSG_SHORT /
    MSG_BAD_LENGTH. The per-message methods' check, and zero-copy's (rpmsg/rings/base.py)."""
    if length < _HDR:
        return MSG_SHORT
    src, dst, _reserved, n, flags = _RPMSG_HDR.unpack_from(pool, off)  # reserved: OpenAMP's
    if n > length - _HDR:
        return MSG_BAD_LENGTH
    return src, dst, n, flags


def _parse(pool: memoryview, off: int, length: int) -> RxResult:
    """The message in the ``length``-byte buffer at ``pool[off:]`` (inside the pool)."""
    header = parse_header(pool, off, length)
    if isinstance(header, int):
        return header
    src, dst, n, flags = header
    off += _HDR
    return src, dst, flags, bytes(pool[off : off + n])


def _in_pool(base: int, size: int) -> Callable[[int, int], bool]:
    """The region check of the per-message methods: inside ``[base, base + size)``."""
    end = base + size
    return lambda addr, length: base <= addr and addr + length <= end


class DriverMessages:
    """The driver half's per-message methods (a mixin of PyVringDriver)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what the mixin uses of the ring half it is mixed into
        num: int
        _free: list[int]

        def post(self, addr: int, length: int, *, writable: bool) -> int: ...
        def get_used(self) -> tuple[int, int, int] | None: ...
        def kick_needed(self) -> bool: ...

    def add_message(
        self,
        addr: int,
        post_len: int,
        mem: memoryview | bytearray,
        off: int,
        src: int,
        dst: int,
        flags: int,
        payload: Buffer,
    ) -> bool:
        """The host sends: header ``(src, dst, 0, n, flags)`` and the payload's n bytes at
        ``mem[off:]``, then ``post(addr, post_len, writable=False)``; returns
        :meth:`kick_needed`. A message longer than ``post_len`` is refused: it never spills
        past the buffer the device is told about.

        Raises:
            RingFullError: every descriptor is in flight (checked first).
        """
        if not self._free:
            raise RingFullError(f"all {self.num} descriptors are in flight")
        raw = _payload(payload)
        size = _HDR + len(raw)
        start = operator.index(off)
        pool = _pool(mem, writable=True)
        if start < 0 or start + size > len(pool):
            raise ValueError(
                f"message of {size} bytes at offset {off!r} does not fit the {len(pool)}-byte "
                "buffer pool"
            )
        header = _RPMSG_HDR.pack(src, dst, 0, len(raw), flags)
        _u64(addr)
        length = _u32(post_len)
        if size > length:
            raise ValueError(f"message of {size} bytes does not fit the posted length {length}")
        pool[start : start + _HDR] = header
        pool[start + _HDR : start + size] = raw  # after the header: raw may alias the pool
        self.post(addr, post_len, writable=False)
        return self.kick_needed()

    def get_message(self, mem: memoryview | bytearray, base_da: int, repost_len: int) -> RxResult:
        """The host receives: :meth:`get_used` (None, or its RemoteProtocolError, nothing
        reposted), then the message in the buffer, ``(src, dst, flags, payload)``,
        :data:`MSG_SHORT` or :data:`MSG_BAD_LENGTH`; the buffer is then reposted exactly as
        ``post(addr, repost_len, writable=True)``.

        Raises:
            ValueError: the buffer is not inside ``mem`` (a caller bug): the descriptor is
                free again (get_used's state change stands) and NOT reposted.
        """
        base = _u64(base_da)
        _u32(repost_len)
        pool = _pool(mem, writable=False)
        used = self.get_used()
        if used is None:
            return None
        _head, posted, used_len = used
        addr = operator.index(posted)  # posted as an __index__ object: its value
        need = max(used_len, _HDR)
        if addr < base or addr - base + need > len(pool):
            raise ValueError(
                f"used buffer [{addr:#x}, +{need:#x}) is outside the buffer pool "
                f"[{base:#x}, +{len(pool):#x})"
            )
        try:
            return _parse(pool, addr - base, used_len)
        finally:  # after the payload was copied
            self.post(posted, repost_len, writable=True)


class DeviceMessages:
    """The device half's per-message methods (a mixin of PyVringDevice). Buffers are checked
    against the pool (``base_da <= addr`` and ``addr + len <= base_da + len(mem)``) instead of
    calling ``region_check``; otherwise ``take()``'s behaviour, errors and state changes."""

    __slots__ = ()
    if TYPE_CHECKING:  # what the mixin uses of the ring half it is mixed into

        def _take(self, check: Callable[[int, int], bool]) -> tuple[int, int, int, int] | None: ...
        def give(self, head: int, length: int) -> None: ...
        def interrupt_needed(self) -> bool: ...

    def take_message(self, mem: memoryview | bytearray, base_da: int) -> RxResult:
        """The remote receives: :meth:`take`, then the message in the buffer, ``(src, dst,
        flags, payload)``, :data:`MSG_SHORT` or :data:`MSG_BAD_LENGTH`; the buffer is given
        back with its length. None when the ring is empty."""
        base = _u64(base_da)
        pool = _pool(mem, writable=False)
        taken = self._take(_in_pool(base, len(pool)))
        if taken is None:
            return None
        head, addr, length, _flags = taken
        try:
            return _parse(pool, addr - base, length)
        finally:  # after the payload was copied
            self.give(head, length)

    def put_message(
        self,
        mem: memoryview | bytearray,
        base_da: int,
        src: int,
        dst: int,
        flags: int,
        payload: Buffer,
    ) -> int:
        """The remote sends: :meth:`take` a buffer and write the message into it.

        Returns :data:`PUT_NONE` (the ring is empty), :data:`PUT_REFUSED` (the buffer is
        shorter than 16 + n or read-only: given back with length 0), else the buffer goes back
        with length 16 + n and the result is :data:`PUT_KICK` if :meth:`interrupt_needed`,
        :data:`PUT_SENT` if not. RemoteProtocolError as from take().
        """
        raw = _payload(payload)
        size = _HDR + len(raw)
        base = _u64(base_da)
        header = _RPMSG_HDR.pack(src, dst, 0, len(raw), flags)
        pool = _pool(mem, writable=True)
        taken = self._take(_in_pool(base, len(pool)))
        if taken is None:
            return PUT_NONE
        head, addr, length, desc_flags = taken
        if length < size or not desc_flags & VRING_DESC_F_WRITE:
            self.give(head, 0)
            return PUT_REFUSED
        start = addr - base
        pool[start : start + _HDR] = header
        pool[start + _HDR : start + size] = raw
        self.give(head, size)
        return PUT_KICK if self.interrupt_needed() else PUT_SENT
