"""``openamp:``: OpenAMP's Linux machine layout, byte for byte, in both roles.

The expected bytes are written out by hand from OpenAMP's platform_info.c / rsc_table.c (a
0x80000-byte object; resource table at 0; vrings of 256 at 0x4000 and 0x8000, aligned 0x1000;
rx buffers from 0x10000, tx buffers from 0x30000, 0x200 bytes each), never taken from
``transports.virtio.layout``: a wrong layout constant must fail here.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
from typing import Any

import anyio
import pytest
from conftest import NO_DROPS, WaitUntil
from peers import SHM_DIR, Link, openamp_url, payload

from rpmsg import RpmsgBus
from transports import open_transport
from transports.base import Role

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

SERVICE = "rpmsg-openamp-demo-channel"

SIZE = 0x80000
VRING0, VRING1 = 0x4000, 0x8000  # remote -> host (host rx), host -> remote (host tx)
NUM = 256
# Legacy vring of 256 entries aligned to 0x1000: 256 x 16-byte descriptors, then the avail
# ring (flags, idx, ring[256], used_event = 0x206 bytes), then the used ring at the next 0x1000.
AVAIL, USED = 0x1000, 0x2000
RX_POOL, TX_POOL, BUF = 0x10000, 0x30000, 0x200
DESC = struct.Struct("<QIHH")  # addr, len, flags, next
HDR = struct.Struct("<IIIHH")  # src, dst, reserved, len, flags
NS = struct.Struct("<32sII")  # name, addr, flags
WRITE = 2
NO_INTERRUPT = NO_NOTIFY = 1
EPT = 0x400
NS_ADDR = 53

#: The resource table, field by field, after the host's negotiation.
TABLE = (
    struct.pack("<IIII", 1, 1, 0, 0)  # ver 1, num 1, reserved 0, 0
    + struct.pack("<I", 0x14)  # offset[0]
    + struct.pack("<I", 3)  # fw_rsc_hdr.type = RSC_VDEV
    # id 7 (rpmsg), notifyid 0, dfeatures 1 (NS), gfeatures 1, config_len 0
    + struct.pack("<IIIII", 7, 0, 1, 1, 0)
    + bytes([0x04, 2, 0, 0])  # status DRIVER_OK only, num_of_vrings 2, reserved
    + struct.pack("<IIIII", 0x4000, 0x1000, 256, 1, 0)  # vring0: da, align, num, notifyid, pa
    + struct.pack("<IIIII", 0x8000, 0x1000, 256, 2, 0)  # vring1
)
assert len(TABLE) == 88


def ns_bytes(name: str, addr: int, flags: int = 0) -> bytes:
    return NS.pack(name.encode(), addr, flags)


def u16(data: bytes | mmap.mmap, off: int) -> int:
    return int(struct.unpack_from("<H", data, off)[0])


def message_at(data: bytes, addr: int) -> tuple[tuple[int, ...], bytes]:
    hdr = HDR.unpack_from(data, addr)
    return hdr, data[addr + HDR.size : addr + HDR.size + hdr[3]]


def check_object(data: bytes, sent: list[tuple[int, bytes]]) -> None:
    """The whole shared object of an idle session in which the host sent ``sent`` (dst,
    payload) and the remote sent back the same (its NS CREATE, then the echoes)."""
    n = len(sent)
    assert len(data) == SIZE
    assert data[: len(TABLE)] == TABLE
    assert data[len(TABLE) : VRING0] == bytes(VRING0 - len(TABLE))

    # vring0: the host's 256 rx buffers, each posted writable with its whole length.
    descs = [DESC.unpack_from(data, VRING0 + 16 * i) for i in range(NUM)]
    assert sorted(d[0] for d in descs) == [RX_POOL + i * BUF for i in range(NUM)]
    assert {d[1:] for d in descs} == {(BUF, WRITE, 0)}
    assert u16(data, VRING0 + AVAIL) == 0  # host: interrupt me when messages arrive
    assert u16(data, VRING0 + AVAIL + 2) == NUM + n  # each received buffer was reposted
    assert u16(data, VRING0 + USED) == NO_NOTIFY  # remote: no kicks for refilled buffers
    assert u16(data, VRING0 + USED + 2) == n
    for j, (dst, body) in enumerate(sent):
        head, used_len = struct.unpack_from("<II", data, VRING0 + USED + 4 + 8 * j)
        assert head < NUM
        hdr, got = message_at(data, descs[head][0])
        assert (hdr, got) == ((EPT, dst, 0, len(body), 0), body), f"remote message {j}"
        assert HDR.size + len(body) <= used_len <= BUF

    # vring1: the host's tx buffers, from 0x30000 upward, each carrying its whole length.
    assert u16(data, VRING1 + AVAIL) == NO_INTERRUPT  # host: no tx-complete interrupts
    assert u16(data, VRING1 + AVAIL + 2) == n
    assert u16(data, VRING1 + USED) == 0  # remote: kick me when messages arrive
    assert u16(data, VRING1 + USED + 2) == n  # the remote consumed them all
    for i, (dst, body) in enumerate(sent):
        head = u16(data, VRING1 + AVAIL + 4 + 2 * i)
        assert head < NUM
        assert DESC.unpack_from(data, VRING1 + 16 * head) == (TX_POOL + i * BUF, BUF, 0, 0)
        hdr, got = message_at(data, TX_POOL + i * BUF)
        assert (hdr, got) == ((EPT, dst, 0, len(body), 0), body), f"host message {i}"
        assert struct.unpack_from("<I", data, VRING1 + USED + 4 + 8 * i)[0] == head
    # Nothing beyond the buffers that were used.
    assert data[TX_POOL + n * BUF :] == bytes(SIZE - TX_POOL - n * BUF)


@pytest.mark.parametrize(
    ("local_role", "local_listens"),
    [("host", True), ("host", False), ("remote", True), ("remote", False)],
    ids=["host-server", "host-client", "remote-server", "remote-client"],
)
async def test_openamp_layout_byte_for_byte(
    link: Link, local_role: Role, local_listens: bool
) -> None:
    """This process plays ``local_role`` (socket server or client); a peers.py process plays
    the other role. The host sends an NS CREATE and k messages, the remote an NS CREATE and
    the k echoes; then, with the session up and idle, the object's bytes are checked."""
    name, sock = link.new()
    k = 5
    peer_role = "remote" if local_role == "host" else "host"
    if local_role == "host":
        peer = link.spawn(openamp_url(name, sock, listen=not local_listens), peer_role, "echo")
    else:
        peer = link.spawn(
            openamp_url(name, sock, listen=not local_listens),
            peer_role,
            "send",
            *("--count", str(k), "--window", "1", "--hold"),
        )
    t = await open_transport(openamp_url(name, sock, listen=local_listens), role=local_role)
    snapshot = b""
    async with t, RpmsgBus(t, ready_timeout=10, name=local_role) as bus:
        ep = await bus.create_service(SERVICE)
        channel = await bus.wait_for_service(SERVICE, timeout=10)
        assert (ep.addr, ep.dst, channel.dst, channel.endpoint) == (EPT, EPT, EPT, ep)
        assert bus.endpoint(EPT) is ep
        assert (await peer.event("ready"))["addr"] == EPT
        bound = await peer.event("bound")
        assert (bound["addr"], bound["dst"]) == (EPT, EPT)
        if local_role == "host":
            for seq in range(k):
                await ep.send(payload(seq))
                assert (await ep.recv(timeout=5)).payload == payload(seq)
            await anyio.sleep(0.1)
            snapshot = (SHM_DIR / name).read_bytes()
            stats = bus.statistics()
            await ep.aclose()  # NS DESTROY: the echo peer exits
        else:

            async def echo() -> None:
                async for msg in ep:
                    await ep.send_to(msg.src, msg.payload)

            with anyio.fail_after(15):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(echo)
                    done = await peer.event("done")
                    await anyio.sleep(0.1)
                    snapshot = (SHM_DIR / name).read_bytes()
                    stats = bus.statistics()
                    peer.release()  # the host peer destroys its endpoint: echo() ends
            assert done["stats"] == {"tx": k + 1, "rx": k + 1, "drops": NO_DROPS}
    assert await peer.wait() == 0
    assert stats.drops == NO_DROPS
    assert (stats.tx_messages, stats.rx_messages) == (k + 1, k + 1)
    sent = [(NS_ADDR, ns_bytes(SERVICE, EPT))] + [(EPT, payload(seq)) for seq in range(k)]
    check_object(snapshot, sent)


class HandMadeRemote:
    """A remote written by hand on raw bytes, behaving like OpenAMP's C code: it uses the
    rpmsg header's ``reserved`` field as scratch, leaves garbage after the NUL of NS names,
    returns rx buffers with the whole buffer length, and sets vring0 used.flags = NO_NOTIFY."""

    def __init__(self, mem: mmap.mmap, sock: socket.socket) -> None:
        self.mem = mem
        self.sock = sock
        self.taken0 = self.used0 = 0  # vring0: host buffers taken / given back filled
        self.taken1 = 0  # vring1: host messages taken (and given back)
        struct.pack_into("<H", mem, VRING0 + USED, NO_NOTIFY)

    def u16(self, off: int) -> int:
        return u16(self.mem, off)

    def kick(self) -> None:
        self.sock.send(b"\x01")

    def send(self, src: int, dst: int, data: bytes, *, reserved: int) -> None:
        assert self.u16(VRING0 + AVAIL + 2) != self.taken0 & 0xFFFF, "no rx buffer posted"
        head = self.u16(VRING0 + AVAIL + 4 + 2 * (self.taken0 % NUM))
        self.taken0 += 1
        addr, length, flags, _ = DESC.unpack_from(self.mem, VRING0 + 16 * head)
        assert (length, flags) == (BUF, WRITE)
        HDR.pack_into(self.mem, addr, src, dst, reserved, len(data), 0)
        self.mem[addr + HDR.size : addr + HDR.size + len(data)] = data
        struct.pack_into("<II", self.mem, VRING0 + USED + 4 + 8 * (self.used0 % NUM), head, BUF)
        self.used0 += 1
        struct.pack_into("<H", self.mem, VRING0 + USED + 2, self.used0 & 0xFFFF)
        if not self.u16(VRING0 + AVAIL) & NO_INTERRUPT:
            self.kick()

    def receive(self) -> list[tuple[tuple[int, ...], bytes]]:
        out = []
        while self.u16(VRING1 + AVAIL + 2) != self.taken1 & 0xFFFF:
            head = self.u16(VRING1 + AVAIL + 4 + 2 * (self.taken1 % NUM))
            addr, length, flags, _ = DESC.unpack_from(self.mem, VRING1 + 16 * head)
            assert (length, flags) == (BUF, 0)
            out.append(message_at(bytes(self.mem[addr : addr + BUF]), 0))
            struct.pack_into("<II", self.mem, VRING1 + USED + 4 + 8 * (self.taken1 % NUM), head, 0)
            self.taken1 += 1
            struct.pack_into("<H", self.mem, VRING1 + USED + 2, self.taken1 & 0xFFFF)
        if out and not self.u16(VRING1 + AVAIL) & NO_INTERRUPT:
            self.kick()
        return out


@pytest.mark.parametrize("peer_first", [False, True], ids=["host-announces-first", "peer-first"])
async def test_hand_made_peer_ns_garbage_and_reserved(
    link: Link, peer_first: bool, wait_until: WaitUntil
) -> None:
    """An NS CREATE whose name has garbage after its NUL, and headers whose ``reserved`` field
    is not zero: both accepted (name compared up to the NUL, ``reserved`` ignored); a message
    to an unknown address is dropped and counted."""
    name, sock = link.new()
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ends: dict[str, Any] = {}

    async def open_host() -> None:
        ends["host"] = await open_transport(openamp_url(name, sock, listen=True), role="host")

    async def connect_raw() -> None:
        while True:
            try:
                raw.connect(str(sock))
                return
            except (FileNotFoundError, ConnectionRefusedError):
                await anyio.sleep(0.01)

    try:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(open_host)
                tg.start_soon(connect_raw)
        fd = os.open(SHM_DIR / name, os.O_RDWR)
        mem = mmap.mmap(fd, SIZE)
        os.close(fd)
        async with ends["host"], RpmsgBus(ends["host"], name="host") as bus:
            assert mem[0x2C] == 0x04 and struct.unpack_from("<I", mem, 0x24)[0] == 1
            peer = HandMadeRemote(mem, raw)
            garbage_ns = NS.pack(SERVICE.encode() + b"\0\xde\xad\xbe\xef\xff", EPT, 0)
            assert garbage_ns[len(SERVICE) + 1 : len(SERVICE) + 6] == b"\xde\xad\xbe\xef\xff"
            if peer_first:
                peer.send(EPT, NS_ADDR, garbage_ns, reserved=0xDEADBEEF)
                await bus.wait_for_service(SERVICE, timeout=2)
                ep = await bus.create_service(SERVICE)
            else:
                ep = await bus.create_service(SERVICE)
                peer.send(EPT, NS_ADDR, garbage_ns, reserved=0xDEADBEEF)
                await bus.wait_for_service(SERVICE, timeout=2)
            channel = bus.find_channel(SERVICE)
            assert channel is not None and channel.endpoint is ep
            assert (ep.addr, ep.dst, channel.dst) == (EPT, EPT, EPT)
            # The host's announcement, exactly as a C remote reads it.
            assert peer.receive() == [((EPT, NS_ADDR, 0, 40, 0), ns_bytes(SERVICE, EPT))]

            peer.send(EPT, EPT, b"hello from C", reserved=0x12345678)
            msg = await ep.recv(timeout=2)
            assert (msg.src, msg.dst, msg.payload) == (EPT, EPT, b"hello from C")
            await ep.send(b"hello from aioamp")
            assert peer.receive() == [((EPT, EPT, 0, 17, 0), b"hello from aioamp")]

            peer.send(EPT, 0x999, b"nobody", reserved=1)
            await wait_until(lambda: bus.statistics().drops["unknown_dst"] == 1)
            assert bus.statistics().drops == {**NO_DROPS, "unknown_dst": 1}
            assert ep.try_recv() is None
        mem.close()
    finally:
        raw.close()
