"""Typed interface of the C accelerator: the same as PyVringDriver / PyVringDevice, whose
per-message methods (add_message, get_message, take_message, put_message) are the reference of
the C ones below."""

from typing_extensions import Buffer

from .virtio.vring import RegionCheck, VringLayout

class VringDriver:
    def __init__(
        self,
        mem: memoryview,
        layout: VringLayout,
        *,
        reset: bool = True,
        start_index: int = 0,
    ) -> None: ...
    @property
    def layout(self) -> VringLayout: ...
    @property
    def num(self) -> int: ...
    @property
    def num_free(self) -> int: ...
    @property
    def num_in_flight(self) -> int: ...
    def post(self, addr: int, length: int, *, writable: bool) -> int: ...
    def has_used(self) -> bool: ...
    def get_used(self) -> tuple[int, int, int] | None: ...
    def buffer_of(self, head: int) -> tuple[int, int]: ...
    def kick_needed(self) -> bool: ...
    def set_interrupts(self, enabled: bool) -> None: ...
    # -- Per-message rpmsg methods --------------------------------------------------------------
    # A deliberate exception to the layering: these know the 16-byte rpmsg header (struct rpmsg_hdr,
    # "<IIIHH": src, dst, reserved, len, flags; rpmsg/wire.py) so that the rpmsg rings
    # (rpmsg/rings/) do one call per message per side. The pure classes' methods are their reference
    # (transports/virtio/messages.py; the differential tests in tests/unit/test_vring_accel.py hold
    # them equal). mem is the buffer pool, its byte i at device address base_da + i. A payload is
    # any C-contiguous buffer of any format and shape: its raw bytes are sent and its size is its
    # byte count (the buffer's own, never len()); a strided one is a BufferError. Every argument is
    # checked before anything changes: ints as struct's "<Q" (addr, base_da) / "<I" (post_len,
    # repost_len, src, dst) / "<H" (flags) formats (struct.error); a payload over 0xFFFF bytes, or a
    # message not fitting mem at off or (add_message) not fitting post_len, is a ValueError.
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
        """Write header (src, dst, 0, n, flags) and the payload's n bytes at ``mem[off:]``,
        then ``post(addr, post_len, writable=False)``; returns ``kick_needed()``. ValueError
        when ``16 + n > post_len``: a message never spills past the buffer it is posted as.

        Raises RingFullError (before anything is written) when every descriptor is in flight.
        """
    def get_message(
        self, mem: memoryview | bytearray, base_da: int, repost_len: int
    ) -> tuple[int, int, int, bytes] | int | None:
        """``get_used()`` (None, or its RemoteProtocolError, nothing reposted), then the
        message in the buffer: ``(src, dst, flags, payload)``, 1 (used length < 16) or 2
        (header len > used length - 16); the buffer is then reposted exactly as
        ``post(addr, repost_len, writable=True)``.

        Raises ValueError when the buffer is not inside ``mem`` (a caller bug): the
        descriptor is then free again (get_used's state change stands) and NOT reposted.
        """

class VringDevice:
    def __init__(
        self,
        mem: memoryview,
        layout: VringLayout,
        *,
        region_check: RegionCheck = ...,
        start_index: int = 0,
    ) -> None: ...
    @property
    def layout(self) -> VringLayout: ...
    @property
    def num(self) -> int: ...
    @property
    def num_taken(self) -> int: ...
    def has_avail(self) -> bool: ...
    def take(self) -> tuple[int, int, int, int] | None: ...
    def take_chain(self) -> tuple[int, list[tuple[int, int, int]]] | None: ...
    def give(self, head: int, length: int) -> None: ...
    def interrupt_needed(self) -> bool: ...
    def set_notifications(self, enabled: bool) -> None: ...
    # -- Per-message rpmsg methods: see VringDriver's. Buffers are checked
    # against the pool (base_da <= addr and addr + len <= base_da + len(mem)) instead of
    # calling region_check; otherwise take()'s behaviour, errors and state changes exactly.
    def take_message(
        self, mem: memoryview | bytearray, base_da: int
    ) -> tuple[int, int, int, bytes] | int | None:
        """``take()``, then the message in the buffer: ``(src, dst, flags, payload)``, 1
        (buffer < 16 bytes) or 2 (header len > buffer length - 16); the buffer is given back
        with its length. None when the ring is empty."""
    def put_message(
        self,
        mem: memoryview | bytearray,
        base_da: int,
        src: int,
        dst: int,
        flags: int,
        payload: Buffer,
    ) -> int:
        """``take()`` a buffer and write the message into it: -1 when the ring is empty; 2
        when the buffer is shorter than 16 + n (n: the payload's size in bytes) or read-only
        (given back with length 0: count a drop and call again); else given back with 16 + n
        and 1 if ``interrupt_needed()``, 0 if not. RemoteProtocolError as from ``take()``."""
