"""The vhost-user wire protocol: message framing, typed requests, replies. Pure (sans-IO).

Theory of operation: vhost-user (QEMU, docs/interop/vhost-user.rst, "Vhost-user Protocol") is a
request/reply protocol on a unix stream socket between a *frontend* (the virtio driver's side:
QEMU, or User-Mode Linux's ``virtio_uml``) and a *backend* (the device). Every message is a
12-byte header (u32 request, u32 flags, u32 payload size) and its payload; file descriptors
(memory to map, eventfds) travel beside it as ``SCM_RIGHTS``. Everything here turns bytes and
received descriptors into typed :data:`Request` objects and back, and refuses what the spec
does not allow with :class:`VhostUserProtocolError`: the socket is untrusted, so every size,
count, flag and descriptor count is checked before anything is used. An error carries the
descriptors that came with the refused message, for the caller to close.

:class:`RequestReader` reassembles requests from a byte stream. The shell reads exactly
:meth:`RequestReader.wanted` bytes at a time, so the descriptors of one read belong to the
message those bytes belong to. Little-endian throughout (the spec: "in the host's endianness",
and every host aioamp supports is little-endian).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence

import attrs

from ...errors import TransportError
from ...virtio.constants import ENDIAN

#: vhost-user.rst "Header": u32 request, u32 flags, u32 size (struct vhost_user_header).
HEADER = struct.Struct(ENDIAN + "III")
#: vhost-user.rst "A single 64-bit integer" (VhostUserMsg.payload.u64).
U64 = struct.Struct(ENDIAN + "Q")
#: vhost-user.rst "A vring state description": u32 index, u32 num (struct vhost_vring_state).
VRING_STATE = struct.Struct(ENDIAN + "II")
#: vhost-user.rst "A vring address description": u32 index, u32 flags, u64 descriptor,
#: u64 used, u64 available, u64 log (struct vhost_vring_addr).
VRING_ADDR = struct.Struct(ENDIAN + "IIQQQQ")
#: vhost-user.rst "Memory regions description": u32 num regions, u32 padding (VhostUserMemory).
MEMORY = struct.Struct(ENDIAN + "II")
#: vhost-user.rst "Memory region description": u64 guest address, u64 size, u64 user address,
#: u64 mmap offset (VhostUserMemoryRegion).
MEMORY_REGION = struct.Struct(ENDIAN + "QQQQ")

#: Flags: bits 0-1 the version, bit 2 a reply, bit 3 "need reply" (REPLY_ACK).
VERSION = 0x1
VERSION_MASK = 0x3
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
#: The spec's VHOST_MEMORY_BASELINE_NREGIONS: at most 8 regions (and fds) per memory table.
MAX_REGIONS = 8
#: SET_VRING_KICK/CALL/ERR payload: bits 0-7 the vring index, bit 8 "no file descriptor".
VRING_INDEX_MASK = 0xFF
VRING_NOFD = 0x100

# Feature bits (vhost-user.rst "Feature bits", include/uapi/linux/virtio_config.h).
F_PROTOCOL_FEATURES = 30  # VHOST_USER_F_PROTOCOL_FEATURES
# Protocol features (vhost-user.rst "Protocol features").
PROTOCOL_F_REPLY_ACK = 3
PROTOCOL_F_BACKEND_REQ = 5  # formerly SLAVE_REQ


class Code(enum.IntEnum):
    """The front-end message types this implementation knows (vhost-user.rst)."""

    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    SET_VRING_ENABLE = 18
    SET_BACKEND_REQ_FD = 21  # formerly SET_SLAVE_REQ_FD


class VhostUserError(TransportError):
    """Root of the vhost-user transport's errors."""


class VhostUserProtocolError(VhostUserError, ValueError):
    """The peer sent something the protocol does not allow (its bad bytes, not our bug).

    Attributes:
        fds: the file descriptors that came with the refused message; the caller closes them.
    """

    def __init__(self, message: str, *, fds: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.fds = tuple(fds)


# -- typed requests -------------------------------------------------------------------------------
@attrs.frozen
class Simple:
    """A request without payload: GET_FEATURES, SET_OWNER, RESET_OWNER, GET_PROTOCOL_FEATURES."""

    code: Code
    need_reply: bool = False


@attrs.frozen
class SetU64:
    """SET_FEATURES or SET_PROTOCOL_FEATURES with its 64-bit value."""

    code: Code
    value: int
    need_reply: bool = False


@attrs.frozen
class VringState:
    """SET_VRING_NUM, SET_VRING_BASE, GET_VRING_BASE or SET_VRING_ENABLE: a vring and a number."""

    code: Code
    index: int
    num: int
    need_reply: bool = False


@attrs.frozen
class VringAddr:
    """SET_VRING_ADDR: the three ring addresses, in the frontend's user address space."""

    index: int
    flags: int
    desc: int
    used: int
    avail: int
    log: int
    need_reply: bool = False
    code: Code = Code.SET_VRING_ADDR


@attrs.frozen
class VringFd:
    """SET_VRING_KICK, SET_VRING_CALL or SET_VRING_ERR: a vring's eventfd (None: no fd)."""

    code: Code
    index: int
    fd: int | None
    need_reply: bool = False


@attrs.frozen
class MemoryRegion:
    """One region of a memory table and the fd to map it from."""

    guest_addr: int
    size: int
    user_addr: int
    mmap_offset: int
    fd: int


@attrs.frozen
class MemTable:
    """SET_MEM_TABLE."""

    regions: tuple[MemoryRegion, ...]
    need_reply: bool = False
    code: Code = Code.SET_MEM_TABLE


@attrs.frozen
class BackendReqFd:
    """SET_BACKEND_REQ_FD: the socket on which the backend may send its own requests."""

    fd: int
    need_reply: bool = False
    code: Code = Code.SET_BACKEND_REQ_FD


Request = Simple | SetU64 | VringState | VringAddr | VringFd | MemTable | BackendReqFd

_SIMPLE = (Code.GET_FEATURES, Code.SET_OWNER, Code.RESET_OWNER, Code.GET_PROTOCOL_FEATURES)
_U64_CODES = (Code.SET_FEATURES, Code.SET_PROTOCOL_FEATURES)
_STATE_CODES = (Code.SET_VRING_NUM, Code.SET_VRING_BASE, Code.GET_VRING_BASE, Code.SET_VRING_ENABLE)
_FD_CODES = (Code.SET_VRING_KICK, Code.SET_VRING_CALL, Code.SET_VRING_ERR)
#: Payload sizes each request may have: (smallest, largest).
_SIZES: dict[Code, tuple[int, int]] = {
    **dict.fromkeys(_SIMPLE, (0, 0)),
    **dict.fromkeys(_U64_CODES, (U64.size, U64.size)),
    **dict.fromkeys(_STATE_CODES, (VRING_STATE.size, VRING_STATE.size)),
    **dict.fromkeys(_FD_CODES, (U64.size, U64.size)),
    Code.SET_VRING_ADDR: (VRING_ADDR.size, VRING_ADDR.size),
    # QEMU sends exactly the regions it fills; UML's virtio_uml a fixed table of 2 slots.
    Code.SET_MEM_TABLE: (MEMORY.size + MEMORY_REGION.size, MEMORY.size + MAX_REGIONS * 32),
    Code.SET_BACKEND_REQ_FD: (0, 0),
}
#: The largest payload any accepted request has: nothing larger is ever buffered.
MAX_PAYLOAD = max(high for _low, high in _SIZES.values())


def _code(value: int, fds: Sequence[int]) -> Code:
    try:
        return Code(value)
    except ValueError:
        raise VhostUserProtocolError(f"unsupported request {value}", fds=fds) from None


def check_header(request: int, flags: int, size: int, fds: Sequence[int] = ()) -> Code:
    """Validate a request header before its payload is read; returns the request's code."""
    code = _code(request, fds)
    if flags & VERSION_MASK != VERSION:
        raise VhostUserProtocolError(
            f"{code.name}: protocol version {flags & VERSION_MASK}, expected {VERSION}", fds=fds
        )
    if flags & ~(VERSION_MASK | FLAG_NEED_REPLY):
        raise VhostUserProtocolError(
            f"{code.name}: flags {flags:#x} set reserved bits or the reply bit", fds=fds
        )
    low, high = _SIZES[code]
    if not low <= size <= high:
        expected = str(low) if low == high else f"{low}..{high}"
        raise VhostUserProtocolError(
            f"{code.name}: payload of {size} bytes, expected {expected}", fds=fds
        )
    return code


def _fd_count(code: Code, fds: Sequence[int], expected: int) -> None:
    if len(fds) != expected:
        raise VhostUserProtocolError(
            f"{code.name}: {len(fds)} file descriptors, expected {expected}", fds=fds
        )


def decode_request(
    request: int, flags: int, payload: bytes | memoryview, fds: Sequence[int]
) -> Request:
    """The typed request of one complete message (header already split off)."""
    code = check_header(request, flags, len(payload), fds)
    need = bool(flags & FLAG_NEED_REPLY)
    if code in _SIMPLE:
        _fd_count(code, fds, 0)
        return Simple(code, need)
    if code in _U64_CODES:
        _fd_count(code, fds, 0)
        return SetU64(code, U64.unpack_from(payload)[0], need)
    if code in _STATE_CODES:
        _fd_count(code, fds, 0)
        index, num = VRING_STATE.unpack_from(payload)
        return VringState(code, index, num, need)
    if code in _FD_CODES:
        (value,) = U64.unpack_from(payload)
        if value & ~(VRING_INDEX_MASK | VRING_NOFD):
            raise VhostUserProtocolError(f"{code.name}: reserved bits in {value:#x}", fds=fds)
        nofd = bool(value & VRING_NOFD)
        _fd_count(code, fds, 0 if nofd else 1)
        return VringFd(code, value & VRING_INDEX_MASK, None if nofd else fds[0], need)
    if code is Code.SET_VRING_ADDR:
        _fd_count(code, fds, 0)
        index, flags, desc, used, avail, log = VRING_ADDR.unpack_from(payload)
        return VringAddr(index, flags, desc, used, avail, log, need)
    if code is Code.SET_BACKEND_REQ_FD:
        _fd_count(code, fds, 1)
        return BackendReqFd(fds[0], need)
    return _decode_mem_table(payload, fds, need)


def _decode_mem_table(payload: bytes | memoryview, fds: Sequence[int], need: bool) -> MemTable:
    count, _padding = MEMORY.unpack_from(payload)
    if not 1 <= count <= MAX_REGIONS:
        raise VhostUserProtocolError(
            f"SET_MEM_TABLE: {count} regions, expected 1..{MAX_REGIONS}", fds=fds
        )
    if MEMORY.size + count * MEMORY_REGION.size > len(payload):
        raise VhostUserProtocolError(
            f"SET_MEM_TABLE: {count} regions do not fit its {len(payload)}-byte payload", fds=fds
        )
    _fd_count(Code.SET_MEM_TABLE, fds, count)
    regions = []
    for i in range(count):
        guest, size, user, offset = MEMORY_REGION.unpack_from(
            payload, MEMORY.size + i * MEMORY_REGION.size
        )
        regions.append(MemoryRegion(guest, size, user, offset, fds[i]))
    return MemTable(tuple(regions), need)


# -- replies (backend -> frontend) and requests (frontend -> backend) -----------------------------
def encode_reply(code: Code, payload: bytes) -> bytes:
    """A reply: the request's code, flags VERSION | REPLY (exactly: Linux checks that)."""
    return HEADER.pack(code, VERSION | FLAG_REPLY, len(payload)) + payload


def reply_u64(code: Code, value: int) -> bytes:
    return encode_reply(code, U64.pack(value))


def reply_state(code: Code, index: int, num: int) -> bytes:
    return encode_reply(code, VRING_STATE.pack(index, num))


def encode_request(request: Request) -> tuple[bytes, list[int]]:
    """The bytes and descriptors of ``request`` (the frontend's side; inverse of decoding)."""
    fds: list[int] = []
    if isinstance(request, Simple):
        payload = b""
    elif isinstance(request, SetU64):
        payload = U64.pack(request.value)
    elif isinstance(request, VringState):
        payload = VRING_STATE.pack(request.index, request.num)
    elif isinstance(request, VringAddr):
        r = request
        payload = VRING_ADDR.pack(r.index, r.flags, r.desc, r.used, r.avail, r.log)
    elif isinstance(request, VringFd):
        payload = U64.pack(request.index | (VRING_NOFD if request.fd is None else 0))
        fds = [] if request.fd is None else [request.fd]
    elif isinstance(request, MemTable):
        payload = MEMORY.pack(len(request.regions), 0) + b"".join(
            MEMORY_REGION.pack(r.guest_addr, r.size, r.user_addr, r.mmap_offset)
            for r in request.regions
        )
        fds = [r.fd for r in request.regions]
    else:
        payload = b""
        fds = [request.fd]
    flags = VERSION | (FLAG_NEED_REPLY if request.need_reply else 0)
    return HEADER.pack(request.code, flags, len(payload)) + payload, fds


def check_reply(code: Code, header: bytes | bytearray, expected_size: int) -> int:
    """Validate a reply header to ``code``; returns its payload size.

    Raises:
        VhostUserProtocolError: not a reply to ``code`` of ``expected_size`` bytes.
    """
    request, flags, size = HEADER.unpack(header)
    size = int(size)
    if request != code or flags != VERSION | FLAG_REPLY or size != expected_size:
        raise VhostUserProtocolError(
            f"reply to {code.name}: got request {request}, flags {flags:#x}, {size} bytes; "
            f"expected flags {VERSION | FLAG_REPLY:#x} and {expected_size} bytes"
        )
    return size
