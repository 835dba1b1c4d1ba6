"""rpmsg wire formats: the message header and the name-service message.

Theory of operation: every rpmsg message occupies one virtio buffer: a 16-byte header followed
by ``len`` payload bytes. Name-service announcements are ordinary messages sent to address 53.
Both layouts are precompiled ``struct.Struct`` objects used with ``pack_into``/``unpack_from``
directly on the shared buffers, so the hot path allocates nothing but the payload.

Layouts (little-endian; Linux include/linux/rpmsg/... and drivers/rpmsg/virtio_rpmsg_bus.c)::

    struct rpmsg_hdr    { __rpmsg32 src; __rpmsg32 dst; __rpmsg32 reserved;
                          __rpmsg16 len; __rpmsg16 flags; u8 data[]; }   /* 16 bytes */
    struct rpmsg_ns_msg { char name[RPMSG_NAME_SIZE=32]; __rpmsg32 addr;
                          __rpmsg32 flags; }                              /* 40 bytes */
"""

from __future__ import annotations

import enum
import struct

from transports.vdev import ENDIAN

#: struct rpmsg_hdr.
RPMSG_HDR = struct.Struct(ENDIAN + "IIIHH")
#: struct rpmsg_ns_msg.
RPMSG_NS_MSG = struct.Struct(ENDIAN + "32sII")

HDR_SIZE = RPMSG_HDR.size  # 16
NS_MSG_SIZE = RPMSG_NS_MSG.size  # 40
RPMSG_NAME_SIZE = 32
#: Default virtio buffer size (Linux RPMSG_BUF_SIZE, OpenAMP RPMSG_BUFFER_SIZE).
DEFAULT_BUFFER_SIZE = 512
#: Address of the name-service endpoint (RPMSG_NS_ADDR).
NS_ADDR = 53
#: RPMSG_ADDR_ANY: "pick one for me" / "no address".
ADDR_ANY = 0xFFFFFFFF
#: First dynamically allocated address (RPMSG_RESERVED_ADDRESSES).
RESERVED_ADDRESSES = 1024


class NsFlags(enum.IntEnum):
    """enum rpmsg_ns_flags."""

    CREATE = 0
    DESTROY = 1


def pack_header(
    buf: memoryview | bytearray, src: int, dst: int, length: int, flags: int = 0
) -> None:
    """Write a header at the start of ``buf``; ``reserved`` is always written as zero."""
    RPMSG_HDR.pack_into(buf, 0, src, dst, 0, length, flags)


def unpack_header(buf: memoryview | bytes) -> tuple[int, int, int, int]:
    """``(src, dst, len, flags)`` of the header at the start of ``buf``.

    ``reserved`` is ignored: OpenAMP uses it as private scratch space.
    """
    src, dst, _reserved, length, flags = RPMSG_HDR.unpack_from(buf, 0)
    return src, dst, length, flags


def encode_name(name: str) -> bytes:
    """The NUL-padded 32-byte name field; the name must leave room for a NUL."""
    raw = name.encode("ascii")
    if not raw or len(raw) >= RPMSG_NAME_SIZE or b"\0" in raw:
        raise ValueError(f"service name {name!r} must be 1..31 ASCII characters without NUL")
    return raw


def pack_ns(name: str, addr: int, flags: NsFlags) -> bytes:
    """A 40-byte name-service message; the name is zero-padded (struct does it)."""
    return RPMSG_NS_MSG.pack(encode_name(name), addr, int(flags))


def unpack_ns(payload: bytes | memoryview) -> tuple[str, int, int] | None:
    """``(name, addr, flags)`` of a name-service message, or None if it is malformed.

    Following Linux, a message whose length is not exactly 40 is ignored, and the name is
    compared only up to its first NUL (real peers leave garbage after it). A name that is
    not ASCII or is empty is malformed.
    """
    if len(payload) != NS_MSG_SIZE:
        return None
    raw, addr, flags = RPMSG_NS_MSG.unpack_from(payload, 0)
    raw = raw.split(b"\0", 1)[0]
    if not raw:
        return None
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return name, addr, flags
