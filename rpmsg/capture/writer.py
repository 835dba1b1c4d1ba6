"""A capture into a pcapng file that Wireshark reads: one interface per bus. Shell.

Theory of operation: :class:`PcapngCapture` is a :class:`~rpmsg.tap.Capture`. Each bus that
records into it gets an interface (an IDB with a user link type, LINKTYPE_USER0 by default,
named after the bus, described by its role and transport); each message becomes an enhanced
packet block on that interface, its time the record's, its epb_flags the direction, its data::

    struct aioamp_rpmsg_pseudo_hdr {    /* 8 bytes, little-endian; ours, version 1 */
        u8  version;                    /* 1 */
        u8  direction;                  /* 0: sent by the capturing bus, 1: received by it */
        u8  role;                       /* the capturing bus's: 0 host, 1 remote, 255 other */
        u8  flags;                      /* bit 0 SYNTHETIC: rebuilt by the bus (a kernel bus's
                                           name-service event), not seen on its wire */
        u32 bus_id;                     /* the interface's index in this file */
    };
    struct rpmsg_hdr {                  /* 16 bytes, little-endian: the wire header (Linux */
        u32 src; u32 dst;               /* drivers/rpmsg/virtio_rpmsg_bus.c, OpenAMP), */
        u32 reserved;                   /* rebuilt from the message's fields: reserved 0 */
        u16 len; u16 flags;             /* (Linux ignores it; OpenAMP uses it as scratch) */
    };
    u8 payload[len];                    /* as on the wire */

The shipped Wireshark dissector (``aioamp capture --install-dissector``) decodes exactly this.
Records are written as they come, under a lock (buses may run in several threads); the file is
flushed on :meth:`PcapngCapture.close`. Nothing is lost silently: records that arrive after
:meth:`close` or after a write failed are counted in :meth:`PcapngCapture.statistics`.
"""

from __future__ import annotations

import os
import struct
import threading
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import BinaryIO, Self

import attrs

from ..tap import Direction, LinkInfo, RecordSink, TapRecord
from .pcapng import (
    LINKTYPE_USER0,
    LINKTYPE_USER15,
    PacketDirection,
    enhanced_packet,
    interface_description,
    section_header,
)

#: struct aioamp_rpmsg_pseudo_hdr (module docstring).
PSEUDO_HDR = struct.Struct("<BBBBI")
#: PSEUDO_HDR then RPMSG_HDR, packed in one call: what precedes the payload.
_HEADERS = struct.Struct("<BBBB I IIIHH")
PSEUDO_VERSION = 1
PSEUDO_SYNTHETIC = 0x01
ROLE_CODES = {"host": 0, "remote": 1}
ROLE_OTHER = 255
#: The epb_flags direction of each tap direction.
_EPB_DIRECTION = {Direction.TX: PacketDirection.OUTBOUND, Direction.RX: PacketDirection.INBOUND}


def _application() -> str:
    try:
        return f"aioamp {version('aioamp')}"
    except PackageNotFoundError:
        return "aioamp"


def encode_record(bus_id: int, role: int, record: TapRecord) -> bytes:
    """The packet data of ``record`` (``role``: its code): pseudo-header, rpmsg header,
    payload."""
    payload = record.payload
    head = _HEADERS.pack(
        PSEUDO_VERSION,
        record.direction,
        role,
        PSEUDO_SYNTHETIC if record.synthetic else 0,
        bus_id,
        record.src,
        record.dst,
        0,  # reserved
        len(payload),
        record.flags,
    )
    return head + payload


@attrs.frozen
class CaptureStatistics:
    """What a capture file received and wrote."""

    links: int
    records: int  # written
    bytes: int  # written to the file, blocks included
    dropped: int  # not written: they came after close() or after a write failed
    error: str | None  # the write failure, if one happened


class PcapngCapture:
    """Record buses into a pcapng file.

    Args:
        file: a path (created or truncated; closed by :meth:`close`) or a binary file open
            for writing (flushed, not closed, by :meth:`close`).
        linktype: the interfaces' link type, LINKTYPE_USER0 (147) to LINKTYPE_USER15 (162);
            the dissector's "link type" preference must name the same one.

    Raises:
        ValueError: ``linktype`` is not a user link type (nothing is created).
        OSError: the file cannot be created or written.

    ``with PcapngCapture("t.pcapng") as cap: async with RpmsgBus(t, capture=cap) ...``
    """

    def __init__(
        self, file: str | os.PathLike[str] | BinaryIO, *, linktype: int = LINKTYPE_USER0
    ) -> None:
        if type(linktype) is not int or not LINKTYPE_USER0 <= linktype <= LINKTYPE_USER15:
            raise ValueError(
                f"linktype must be a user link type, {LINKTYPE_USER0} (USER0) to "
                f"{LINKTYPE_USER15} (USER15), not {linktype!r}"
            )
        self.linktype = linktype
        self._lock = threading.Lock()
        self._links: list[LinkInfo] = []
        self._records = self._bytes = self._dropped = 0
        self._error: str | None = None
        self._closed = False
        if isinstance(file, str | os.PathLike):
            self._file: BinaryIO = open(file, "wb")  # noqa: SIM115 (closed by close())
            self._owned = True
        else:
            self._file, self._owned = file, False
        shb = section_header(application=_application(), os=_os_name())
        try:
            self._file.write(shb)
        except BaseException:
            if self._owned:
                self._file.close()
            raise
        self._bytes = len(shb)

    @property
    def closed(self) -> bool:
        return self._closed

    def open_link(self, link: LinkInfo) -> RecordSink:
        """A new interface for ``link``'s bus; its records go to the returned sink."""
        with self._lock:
            bus_id = len(self._links)
            self._links.append(link)
            self._write(
                interface_description(self.linktype, name=link.bus, description=link.describe())
            )
        return partial(self._record, bus_id, ROLE_CODES.get(link.role, ROLE_OTHER))

    def _record(self, bus_id: int, role: int, record: TapRecord) -> None:
        block = enhanced_packet(
            bus_id,
            record.timestamp_ns,
            encode_record(bus_id, role, record),
            direction=_EPB_DIRECTION[record.direction],
        )
        with self._lock:
            if self._write(block):
                self._records += 1
            else:
                self._dropped += 1

    def _write(self, data: bytes) -> bool:
        """Write a whole block (under the lock); False: the capture closed or failed."""
        if self._closed or self._error is not None:
            return False
        try:
            self._file.write(data)
        except (OSError, ValueError) as exc:  # ValueError: the caller closed its file
            self._error = f"writing the capture failed: {exc}"
            return False
        self._bytes += len(data)
        return True

    def statistics(self) -> CaptureStatistics:
        with self._lock:
            return CaptureStatistics(
                len(self._links), self._records, self._bytes, self._dropped, self._error
            )

    def close(self) -> None:
        """Flush, and close the file if this capture opened it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._file.flush()
            except (OSError, ValueError) as exc:
                if self._error is None:
                    self._error = f"writing the capture failed: {exc}"
            finally:
                if self._owned:
                    self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _os_name() -> str:
    uname = os.uname()
    return f"{uname.sysname} {uname.release}"
