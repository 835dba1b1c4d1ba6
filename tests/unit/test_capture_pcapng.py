"""The pcapng writer (rpmsg.capture.pcapng, rpmsg.capture.writer), without a bus or a loop.

Every file is checked twice: block by block against the layout of the pcapng spec (lengths at
both ends, 4-byte alignment, options), and by dpkt's own block parsers, an independent reader.
The tshark tests (tests/e2e/test_capture_tshark.py) read the files a third way.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from dpkt import pcapng as dpkt_pcapng

from rpmsg.capture import PSEUDO_HDR, PcapngCapture
from rpmsg.capture.pcapng import (
    EPB_TYPE,
    IDB_TYPE,
    SHB_TYPE,
    PacketDirection,
    enhanced_packet,
    interface_description,
    options,
    section_header,
)
from rpmsg.capture.writer import encode_record
from rpmsg.tap import Direction, LinkInfo, LinkTap, MemoryCapture, TapRecord
from rpmsg.wire import NS_ADDR, RPMSG_HDR, NsFlags, pack_ns

LINK = LinkInfo("host", "host", "shm://demo")


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    """``(type, whole block)`` of each block, checking the framing the spec requires."""
    out = []
    offset = 0
    while offset < len(data):
        block_type, total = struct.unpack_from("<II", data, offset)
        assert total % 4 == 0 and total >= 12, f"block at {offset}: bad length {total}"
        (trailer,) = struct.unpack_from("<I", data, offset + total - 4)
        assert trailer == total, f"block at {offset}: trailing length {trailer} != {total}"
        out.append((block_type, data[offset : offset + total]))
        offset += total
    assert offset == len(data)
    return out


def option_map(raw: bytes) -> dict[int, bytes]:
    """The options in ``raw`` (closed by opt_endofopt), each value without its padding."""
    found: dict[int, bytes] = {}
    offset = 0
    while True:
        code, length = struct.unpack_from("<HH", raw, offset)
        if code == 0:
            assert length == 0 and offset + 4 == len(raw)
            return found
        found[code] = raw[offset + 4 : offset + 4 + length]
        offset += 4 + length + (-length % 4)


def record(direction: Direction, src: int, dst: int, payload: bytes, **kw: object) -> TapRecord:
    return TapRecord(LINK, 1_700_000_000_123_456_789, direction, src, dst, 0, payload, **kw)  # type: ignore[arg-type]


# -- blocks ------------------------------------------------------------------------------------
def test_the_section_header_is_little_endian_version_1_with_its_options() -> None:
    shb = section_header(application="aioamp test", os="Linux")
    [(kind, whole)] = blocks(shb)
    assert kind == SHB_TYPE
    magic, major, minor, length = struct.unpack_from("<IHHq", whole, 8)
    assert (magic, major, minor, length) == (0x1A2B3C4D, 1, 0, -1)
    assert option_map(whole[24:-4]) == {4: b"aioamp test", 3: b"Linux"}
    parsed = dpkt_pcapng.SectionHeaderBlockLE(shb)
    assert parsed.v_major == 1 and parsed.bom == 0x1A2B3C4D


@pytest.mark.parametrize("name", ["h", "host", "m3-vdev0", "a" * 37])
def test_an_interface_names_its_bus_and_stamps_in_nanoseconds(name: str) -> None:
    idb = interface_description(147, name=name, description="rpmsg host end over loop://x")
    [(kind, whole)] = blocks(idb)
    assert kind == IDB_TYPE
    assert struct.unpack_from("<HHI", whole, 8) == (147, 0, 0)  # snaplen 0: never cut
    assert option_map(whole[16:-4]) == {
        2: name.encode(),
        3: b"rpmsg host end over loop://x",
        9: bytes([9]),
    }
    parsed = dpkt_pcapng.InterfaceDescriptionBlockLE(idb)
    assert parsed.linktype == 147
    assert {o.code: o.data for o in parsed.opts if o.code}[2] == name.encode()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 24, 519, 520])
def test_a_packet_block_carries_the_data_padded_and_its_direction(size: int) -> None:
    data = bytes(range(256)) * 3
    data = data[:size]
    ts = 1_700_000_000_123_456_789
    epb = enhanced_packet(3, ts, data, direction=PacketDirection.OUTBOUND)
    [(kind, whole)] = blocks(epb)
    assert kind == EPB_TYPE
    iface, hi, lo, caplen, origlen = struct.unpack_from("<IIIII", whole, 8)
    assert (iface, (hi << 32) | lo, caplen, origlen) == (3, ts, size, size)
    assert whole[28 : 28 + size] == data
    padded = 28 + size + (-size % 4)
    assert whole[28 + size : padded] == bytes(-size % 4)
    assert option_map(whole[padded:-4]) == {2: struct.pack("<I", 2)}  # epb_flags: outbound
    parsed = dpkt_pcapng.EnhancedPacketBlockLE(epb)
    assert (parsed.iface_id, parsed.pkt_data, parsed.caplen) == (3, data, size)


def test_a_packet_of_unknown_direction_has_no_options() -> None:
    epb = enhanced_packet(0, 0, b"abc")
    assert len(epb) == 28 + 4 + 4
    assert dpkt_pcapng.EnhancedPacketBlockLE(epb).pkt_data == b"abc"


def test_no_options_is_no_bytes_and_values_are_padded() -> None:
    assert options([]) == b""
    assert options([(1, b"abcde")]) == struct.pack("<HH", 1, 5) + b"abcde\0\0\0" + bytes(4)


@pytest.mark.parametrize(
    ("linktype", "snaplen"), [(-1, 0), (0x10000, 0), (147, -1), (147, 1 << 32)]
)
def test_fields_that_do_not_fit_are_refused(linktype: int, snaplen: int) -> None:
    with pytest.raises(ValueError):
        interface_description(linktype, snaplen=snaplen)


# -- the rpmsg packet ---------------------------------------------------------------------------
def test_a_record_is_pseudo_header_then_the_wire_header_then_the_payload() -> None:
    data = encode_record(5, 1, record(Direction.RX, 1024, 1025, b"\x00\xffhi"))
    assert PSEUDO_HDR.size == 8
    assert PSEUDO_HDR.unpack_from(data) == (1, 1, 1, 0, 5)  # version, rx, remote, flags, bus
    assert RPMSG_HDR.unpack_from(data, 8) == (1024, 1025, 0, 4, 0)  # src dst reserved len flags
    assert data[24:] == b"\x00\xffhi"


def test_a_synthetic_record_and_an_unknown_role_are_marked() -> None:
    tap = LinkTap(LINK, [(records := MemoryCapture()).open_link(LINK)])
    tap.ns(Direction.RX, "rpmsg-tty", 1030, NsFlags.CREATE)
    [rec] = records.records
    assert rec.synthetic and (rec.src, rec.dst) == (1030, NS_ADDR)
    assert rec.payload == pack_ns("rpmsg-tty", 1030, NsFlags.CREATE)
    assert rec.ns is not None and (rec.ns.name, rec.ns.addr, rec.ns.flags) == ("rpmsg-tty", 1030, 0)
    data = encode_record(0, 255, rec)
    assert PSEUDO_HDR.unpack_from(data) == (1, 1, 255, 1, 0)


# -- the file -----------------------------------------------------------------------------------
def write_two_links(out: io.BytesIO | Path) -> PcapngCapture:
    cap = PcapngCapture(out, linktype=150)
    host = cap.open_link(LINK)
    remote = cap.open_link(LinkInfo("peer", "remote", "loop://x"))
    host(record(Direction.TX, 1024, 53, pack_ns("echo", 1024, NsFlags.CREATE)))
    remote(record(Direction.RX, 1024, 53, pack_ns("echo", 1024, NsFlags.CREATE)))
    host(record(Direction.RX, 1024, 1024, b""))
    return cap


def test_a_capture_file_has_one_interface_per_link_and_a_packet_per_record() -> None:
    out = io.BytesIO()
    cap = write_two_links(out)
    cap.close()
    assert not out.closed  # the caller's file: flushed, not closed
    kinds = [(kind, whole) for kind, whole in blocks(out.getvalue())]
    assert [k for k, _ in kinds] == [SHB_TYPE, IDB_TYPE, IDB_TYPE, EPB_TYPE, EPB_TYPE, EPB_TYPE]
    idbs = [dpkt_pcapng.InterfaceDescriptionBlockLE(w) for k, w in kinds if k == IDB_TYPE]
    assert [i.linktype for i in idbs] == [150, 150]
    descriptions = [{o.code: o.data for o in i.opts if o.code}[3] for i in idbs]
    assert descriptions == [
        b"rpmsg host end over shm://demo (vring bus 'host')",
        b"rpmsg remote end over loop://x (vring bus 'peer')",
    ]
    epbs = [dpkt_pcapng.EnhancedPacketBlockLE(w) for k, w in kinds if k == EPB_TYPE]
    assert [e.iface_id for e in epbs] == [0, 1, 0]
    assert [PSEUDO_HDR.unpack_from(e.pkt_data)[4] for e in epbs] == [0, 1, 0]  # bus id
    assert [len(e.pkt_data) for e in epbs] == [64, 64, 24]
    assert cap.statistics().records == 3 and cap.statistics().bytes == len(out.getvalue())


def test_dpkt_reads_the_file_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    with write_two_links(path):
        pass
    with path.open("rb") as f:
        packets = list(dpkt_pcapng.Reader(f))
    assert len(packets) == 3
    assert packets[0][0] == pytest.approx(1_700_000_000.123456789)  # if_tsresol 9 understood
    assert packets[2][1][24:] == b""


def test_records_after_close_are_counted_not_written() -> None:
    out = io.BytesIO()
    cap = PcapngCapture(out)
    sink = cap.open_link(LINK)
    cap.close()
    cap.close()  # idempotent
    size = len(out.getvalue())
    sink(record(Direction.TX, 1, 2, b"late"))
    assert len(out.getvalue()) == size
    stats = cap.statistics()
    assert (stats.records, stats.dropped, stats.error) == (0, 1, None)


def test_a_write_failure_is_kept_and_later_records_are_counted() -> None:
    class Full(io.BytesIO):
        fail = False

        def write(self, data: bytes) -> int:  # type: ignore[override]
            if self.fail:
                raise OSError(28, "No space left on device")
            return super().write(data)

    out = Full()
    cap = PcapngCapture(out)
    sink = cap.open_link(LINK)
    sink(record(Direction.TX, 1, 2, b"ok"))
    out.fail = True
    sink(record(Direction.TX, 1, 2, b"lost"))
    out.fail = False
    sink(record(Direction.TX, 1, 2, b"after"))  # never after a half-written block
    stats = cap.statistics()
    assert (stats.records, stats.dropped) == (1, 2)
    assert stats.error is not None and "No space left" in stats.error
    assert len(blocks(out.getvalue())) == 3  # SHB, IDB, one EPB: the file stays readable


@pytest.mark.parametrize("linktype", [146, 163, 1, True, "147"])
def test_a_link_type_other_than_user_is_refused_before_any_file(
    tmp_path: Path, linktype: object
) -> None:
    with pytest.raises(ValueError, match="user link type"):
        PcapngCapture(tmp_path / "t.pcapng", linktype=linktype)  # type: ignore[arg-type]
    assert not (tmp_path / "t.pcapng").exists()
