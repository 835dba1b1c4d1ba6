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
from typing import TYPE_CHECKING

from transports.virtio.constants import ENDIAN

from .errors import ArgumentTypeError, InvalidPayloadError, InvalidServiceNameError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

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


def as_payload(data: Buffer) -> bytes | memoryview:
    """The raw bytes a payload puts on the wire: ``bytes`` as they are, any other C-contiguous
    buffer (bytearray, memoryview of any format or shape, array.array, a NumPy array) as a flat
    unsigned-byte view of its memory, so that ``len()`` is its size in bytes and a slice
    assignment copies it unchanged.

    Raises:
        InvalidPayloadError: ``data`` is not a buffer, or is not C-contiguous.
    """
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise InvalidPayloadError(
            "a payload must be a bytes-like object (bytes, bytearray, memoryview, array.array, "
            f"...), not {type(data).__name__}"
        ) from None
    if not view.c_contiguous and view.nbytes:  # no bytes: contiguous, as C sees it
        raise InvalidPayloadError(
            "the payload is not C-contiguous (a strided view or a Fortran-ordered array): "
            "its bytes are not one run of memory; send a contiguous copy, e.g. bytes(view)"
        )
    if view.format == "B" and view.ndim == 1:
        return view
    # cast() refuses a shape with a zero in it: such a view has no bytes at all.
    return view.cast("B") if view.nbytes else b""


def as_batch(payloads: Iterable[Buffer]) -> list[bytes | memoryview]:
    """Every payload of a batch (``send_many``) as :func:`as_payload` gives it, all checked
    before any is sent.

    Raises:
        InvalidPayloadError: one payload instead of an iterable of them, not an iterable, or
            an item that is not a C-contiguous buffer.
    """
    if isinstance(payloads, bytes | bytearray | memoryview | str):
        raise InvalidPayloadError("a batch is an iterable of payloads, not one payload")
    try:
        items = iter(payloads)
    except TypeError:
        raise InvalidPayloadError(
            f"a batch must be an iterable of payloads, not {type(payloads).__name__}"
        ) from None
    return [as_payload(p) for p in items]


#: What a service name may be: the rule behind every InvalidServiceNameError.
NAME_RULE = (
    f"1 to {RPMSG_NAME_SIZE - 1} ASCII characters without NUL (struct rpmsg_ns_msg's "
    f"name[{RPMSG_NAME_SIZE}] is NUL-terminated)"
)


def encode_name(name: str) -> bytes:
    """The name field's bytes (``pack`` NUL-pads them); the name must leave room for a NUL.

    Raises:
        ArgumentTypeError: ``name`` is not a str.
        InvalidServiceNameError: ``name`` breaks :data:`NAME_RULE`.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"a service name is a str, not {type(name).__name__}")
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    if not raw or len(raw) >= RPMSG_NAME_SIZE or b"\0" in raw:
        raise InvalidServiceNameError(f"service name {name!r}: a name is {NAME_RULE}")
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
