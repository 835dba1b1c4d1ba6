"""tshark decodes the captures aioamp writes, with the shipped Lua dissector, and every field
matches what was sent: addresses, lengths, name-service messages, payloads byte for byte.

Skipped (with the reason) where tshark is missing; CI sets AIOAMP_REQUIRE_TSHARK=1 and
installs it, so there they run or fail (tests/e2e/tshark_tool.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rpmsg import Direction, MemoryCapture, NsFlags, TapRecord, capturing
from rpmsg.capture import PSEUDO_HDR, PcapngCapture
from rpmsg.capture.pcapng import enhanced_packet, interface_description, section_header
from rpmsg.tap import LinkInfo, LinkTap
from rpmsg.wire import RPMSG_HDR, pack_ns

from .tshark_tool import Tshark, find_tshark

FIELDS = [
    "frame.interface_id",
    "frame.time_epoch",
    "rpmsg.capture.direction",
    "rpmsg.capture.role",
    "rpmsg.capture.bus_id",
    "rpmsg.capture.synthetic",
    "rpmsg.src",
    "rpmsg.dst",
    "rpmsg.len",
    "rpmsg.payload",
    "rpmsg.ns.name",
    "rpmsg.ns.addr",
    "rpmsg.ns.flags",
    "rpmsg.service",
]
DEMO = ["demo", "--count", "3", "--quiet"]
KERNEL_LINK = LinkInfo("rpmsg_ctrl0", "host", "/dev/rpmsg_ctrl0", "kernel")


@pytest.fixture(scope="module")
def tshark(tmp_path_factory: pytest.TempPathFactory) -> Tshark:
    where = tmp_path_factory.mktemp("tshark")
    probe = where / "probe.pcapng"
    with PcapngCapture(probe) as cap:
        LinkTap(KERNEL_LINK, [cap.open_link(KERNEL_LINK)]).sent(1024, 1025, b"probe")
    return find_tshark(where / "plugins", probe)


def expected(rec: TapRecord, links: list[LinkInfo], service: str = "") -> dict[str, str]:
    """What tshark must print for ``rec``."""
    bus = links.index(rec.link)
    ns = rec.ns
    return {
        "frame.interface_id": str(bus),
        "frame.time_epoch": f"{rec.timestamp_ns // 10**9}.{rec.timestamp_ns % 10**9:09d}",
        "rpmsg.capture.direction": str(int(rec.direction)),
        "rpmsg.capture.role": {"host": "0", "remote": "1"}[rec.link.role],
        "rpmsg.capture.bus_id": str(bus),
        "rpmsg.capture.synthetic": "1" if rec.synthetic else "0",
        "rpmsg.src": str(rec.src),
        "rpmsg.dst": str(rec.dst),
        "rpmsg.len": str(rec.length),
        "rpmsg.payload": rec.payload.hex(),
        "rpmsg.ns.name": ns.name if ns else "",
        "rpmsg.ns.addr": str(ns.addr) if ns else "",
        "rpmsg.ns.flags": str(ns.flags) if ns else "",
        "rpmsg.service": service,
    }


async def test_tshark_decodes_a_loopback_exchange_field_for_field(
    tshark: Tshark,
    tmp_path: Path,
    bus_pair: Callable[..., Any],
    wait_until: Callable[..., Awaitable[None]],
) -> None:
    path = tmp_path / "loop.pcapng"
    mem = MemoryCapture()
    payloads = [b"", bytes(range(256)), b"\xff" * 496, b"hello\x00world"]
    with PcapngCapture(path) as cap, capturing(mem):
        async with bus_pair(capture=cap) as (host, remote, _h, _r):
            service = await remote.create_service("echo")
            control = await host.create_service("ctl")
            channel = await host.wait_for_service("echo", timeout=5)
            for payload in payloads:
                await channel.send(payload)
                msg = await service.recv(timeout=5)
                await service.send_offchannel(0x1234, msg.src, msg.payload[::-1])
                await channel.recv(timeout=5)
            await service.send_to(5000, b"to nobody")
            await control.aclose()
            await service.aclose()
            await wait_until(lambda: not host.channels and not remote.channels)  # both DESTROYs
    assert cap.statistics().records == len(mem.records) == 2 * (4 + 2 * len(payloads) + 1)
    rows = tshark.fields(path, FIELDS)
    assert len(rows) == len(mem.records)
    for row, rec, name in zip(rows, mem.records, services(mem), strict=True):
        assert row == expected(rec, mem.links, name), rec
        assert bytes.fromhex(row["rpmsg.payload"]) == rec.payload  # byte for byte
    assert {r["rpmsg.ns.name"] for r in rows} == {"", "echo", "ctl"}
    assert {r["rpmsg.service"] for r in rows} >= {"echo", "ctl"}
    assert tshark.fields(path, FIELDS, "-2") == rows  # a second pass (as the GUI) agrees


def services(mem: MemoryCapture) -> list[str]:
    """The service each record belongs to, by docs/capture.md's rule: the one announced at
    the message's address on the capturing bus's side, else at the peer's address by the
    peer, as the announcements seen so far on that bus say."""
    tables: dict[tuple[int, Direction], dict[int, str]] = {}
    out = []
    for rec in mem.records:
        bus = mem.links.index(rec.link)
        ns = rec.ns
        if ns is not None:
            table = tables.setdefault((bus, rec.direction), {})
            if ns.flags == NsFlags.CREATE:
                table[ns.addr] = ns.name
            else:
                table.pop(ns.addr, None)
        mine, peer = (rec.src, rec.dst) if rec.direction is Direction.TX else (rec.dst, rec.src)
        out.append(
            tables.get((bus, Direction.TX), {}).get(mine)
            or tables.get((bus, Direction.RX), {}).get(peer)
            or ""
        )
    return out


def test_a_kernel_bus_name_service_event_shows_as_a_synthetic_announcement(
    tshark: Tshark, tmp_path: Path
) -> None:
    """A kernel bus never sees NS messages (the kernel consumes them): it reports the events
    it learns of, recorded as the message they imply and marked synthetic; the dissector
    learns the service name from them all the same."""
    path = tmp_path / "kernel.pcapng"
    with PcapngCapture(path) as cap:
        tap = LinkTap(KERNEL_LINK, [cap.open_link(KERNEL_LINK)])
        tap.ns(Direction.RX, "rpmsg-tty", 1030, NsFlags.CREATE)
        tap.sent(1024, 1030, b"ls\n")
        tap.received((1030, 1024, 0, b"bin etc\n"))
        tap.ns(Direction.RX, "rpmsg-tty", 1030, NsFlags.DESTROY)
    rows = tshark.fields(
        path,
        [
            *("rpmsg.capture.synthetic", "rpmsg.ns.name", "rpmsg.ns.flags", "rpmsg.service"),
            *("rpmsg.payload", "frame.interface_description"),
        ],
    )
    described = "rpmsg host end over /dev/rpmsg_ctrl0 (kernel bus 'rpmsg_ctrl0')"
    assert [tuple(r.values())[:5] for r in rows] == [
        ("1", "rpmsg-tty", "0", "rpmsg-tty", pack_ns("rpmsg-tty", 1030, NsFlags.CREATE).hex()),
        ("0", "", "", "rpmsg-tty", b"ls\n".hex()),
        ("0", "", "", "rpmsg-tty", b"bin etc\n".hex()),
        ("1", "rpmsg-tty", "1", "", pack_ns("rpmsg-tty", 1030, NsFlags.DESTROY).hex()),
    ]
    assert {r["frame.interface_description"] for r in rows} == {described}


def test_another_user_link_type_needs_the_dissector_preference(
    tshark: Tshark, tmp_path: Path
) -> None:
    path = tmp_path / "user3.pcapng"
    with PcapngCapture(path, linktype=150) as cap:
        LinkTap(KERNEL_LINK, [cap.open_link(KERNEL_LINK)]).sent(1024, 1025, b"user3")
    assert tshark.fields(path, ["rpmsg.payload"]) == [{"rpmsg.payload": ""}]  # USER0 only
    rows = tshark.fields(path, ["rpmsg.payload"], "-o", "rpmsg.linktype:150")
    assert rows == [{"rpmsg.payload": b"user3".hex()}]


def test_malformed_packets_are_flagged_not_a_lua_error(tshark: Tshark, tmp_path: Path) -> None:
    def pseudo(version: int = 1) -> bytes:
        return PSEUDO_HDR.pack(version, 0, 0, 0, 0)

    packets = [
        b"\x01\x00\x00",  # shorter than the pseudo-header
        pseudo() + bytes(10),  # shorter than the rpmsg header
        pseudo(2) + b"abc",  # a pseudo-header version we do not know
        pseudo() + RPMSG_HDR.pack(1024, 1025, 0, 100, 0) + b"abc",  # len 100, 3 bytes here
        pseudo() + RPMSG_HDR.pack(1024, 53, 0, 39, 0) + bytes(39),  # NS message of 39 bytes
    ]
    path = tmp_path / "bad.pcapng"
    path.write_bytes(
        section_header()
        + interface_description(147, name="bad")
        + b"".join(enhanced_packet(0, i, data) for i, data in enumerate(packets))
    )
    rows = tshark.fields(path, ["_ws.expert.message", "_ws.col.Info"])
    assert [r["_ws.expert.message"] for r in rows] == [
        "Packet shorter than the headers",
        "Packet shorter than the headers",
        "Unknown pseudo-header version",
        "Header length 100, payload captured 3 bytes",
        "A name-service message is 40 bytes, not 39",
    ]
    assert not any("Lua" in r["_ws.col.Info"] for r in rows)


def test_aioamp_capture_of_the_demo_decodes_in_tshark(tshark: Tshark, tmp_path: Path) -> None:
    """The acceptance path: ``aioamp capture -o t.pcapng -- demo``, then tshark."""
    path = tmp_path / "t.pcapng"
    out = subprocess.run(
        [sys.executable, "-m", "aioamp", "capture", "-o", str(path), "--", *DEMO],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "aioamp capture: 8 messages of 1 bus written to" in out.stderr
    rows = tshark.fields(
        path,
        [
            *("frame.interface_name", "rpmsg.capture.direction", "rpmsg.ns.name"),
            *("rpmsg.ns.flags", "rpmsg.payload", "rpmsg.service"),
        ],
    )
    name = "rpmsg-client-sample"
    hello = b"hello world!".hex()
    create = pack_ns(name, 1024, NsFlags.CREATE).hex()
    destroy = pack_ns(name, 1024, NsFlags.DESTROY).hex()
    assert [tuple(r.values()) for r in rows] == [
        ("sim0-vdev0", "1", name, "0", create, name),
        *[("sim0-vdev0", d, "", "", hello, name) for _ in range(3) for d in ("0", "1")],
        ("sim0-vdev0", "1", name, "1", destroy, ""),
    ]


def test_captures_merged_by_mergecap_keep_each_bus_s_service_names(
    tshark: Tshark, tmp_path: Path
) -> None:
    """Both ends of a link captured by two processes, merged: each file numbers its buses from
    0, so the dissector keys what it learns by interface, which mergecap keeps apart."""
    mergecap = shutil.which("mergecap")
    assert mergecap is not None  # installed with tshark (wireshark-common)
    parts = []
    for first, name in enumerate(["left", "right"]):
        part = tmp_path / f"{name}.pcapng"
        link = LinkInfo(name, "host", f"shm://{name}")
        with PcapngCapture(part) as cap:
            sink = cap.open_link(link)
            # Same addresses, different services; in time: left NS, right NS, left data, ...
            ns = pack_ns(name, 1030, NsFlags.CREATE)
            sink(TapRecord(link, 1 + first, Direction.RX, 1030, 53, 0, ns))
            sink(TapRecord(link, 3 + first, Direction.RX, 1030, 1024, 0, name.encode()))
        parts.append(str(part))
    merged = tmp_path / "merged.pcapng"
    subprocess.run([mergecap, "-w", str(merged), *parts], check=True, timeout=60)
    rows = tshark.fields(merged, ["frame.interface_name", "rpmsg.capture.bus_id", "rpmsg.service"])
    by_bus = {(r["frame.interface_name"], r["rpmsg.service"]) for r in rows}
    assert {r["rpmsg.capture.bus_id"] for r in rows} == {"0"}
    assert by_bus == {("left", "left"), ("right", "right")}


def test_a_dissector_registered_for_a_service_gets_its_payloads(
    tshark: Tshark, tmp_path: Path
) -> None:
    """The extension point docs/capture.md shows: a protocol in the table rpmsg.service."""
    script = tmp_path / "my-proto.lua"
    script.write_text(
        'local p = Proto("myproto", "My protocol")\n'
        'local text = ProtoField.string("myproto.text", "Text")\n'
        "p.fields = { text }\n"
        "function p.dissector(tvb, pinfo, tree) tree:add(p, tvb()):add(text, tvb()) end\n"
        'function p.init() DissectorTable.get("rpmsg.service"):add("rpmsg-tty", p) end\n'
    )
    path = tmp_path / "tty.pcapng"
    with PcapngCapture(path) as cap:
        tap = LinkTap(KERNEL_LINK, [cap.open_link(KERNEL_LINK)])
        tap.ns(Direction.RX, "rpmsg-tty", 1030, NsFlags.CREATE)
        tap.sent(1024, 1030, b"ls")
        tap.sent(1024, 2000, b"elsewhere")
    rows = tshark.fields(path, ["myproto.text", "data.data"], "-X", f"lua_script:{script}")
    assert rows == [
        {"myproto.text": "", "data.data": ""},  # the announcement itself
        {"myproto.text": "ls", "data.data": ""},
        {"myproto.text": "", "data.data": b"elsewhere".hex()},
    ]
