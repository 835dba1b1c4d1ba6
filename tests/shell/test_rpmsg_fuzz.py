"""A hostile remote against a host bus, driven by hypothesis.

Two properties:

* Arbitrary bytes written anywhere in the shared memory (rings, resource table, buffers) never
  crash the host: no exception escapes, nothing outside the shared region is touched, every
  message the host parsed was delivered or counted as ``unknown_dst``, nothing is counted
  without a cause (untouched used rings: no drops, no messages), and the host stays alive: a
  send afterwards succeeds at once and is published correctly on its tx ring.
* Random sequences of valid messages and the known corruptions of the conformance suite's
  hostile remote (tests/conformance/test_hostile_remote.py, by its raw peer) move exactly the
  drop counter each corruption belongs to, and every valid message arrives, in order: every
  anomaly is counted, and only anomalies are.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable

import anyio
import pytest
from conformance import support
from conformance.rawpeer import PEER_ADDR, RawRemote
from conformance.test_hostile_remote import HOST_CASES
from conftest import NO_DROPS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpmsg import RpmsgBus
from transports import SharedLayout, loopback_pair
from transports.backends.loopback import LoopbackTransport

# Every test here runs with the pure vring classes and with the C accelerator's (conftest).
pytestmark = [pytest.mark.trio, pytest.mark.usefixtures("vring_impl")]

LAYOUT = SharedLayout(num=8, align=64)
SIZE = LAYOUT.total_size
RING = LAYOUT.vring_layout
#: The device-written parts of the two rings (used flags, idx, ring, avail_event): the only
#: shared bytes the host reads besides the rx buffers those used entries point to.
USED_AREAS = [(off + RING.used, off + RING.size) for off in LAYOUT.vring_offsets]
U16 = struct.Struct("<H")
DESC = struct.Struct("<QIHH")  # struct vring_desc { le64 addr; le32 len; le16 flags; le16 next; }
HDR = struct.Struct("<IIIHH")  # struct rpmsg_hdr { src; dst; reserved; len; flags; }
LOCAL, PEER = 2000, 2001

offsets = st.one_of(
    st.integers(0, SIZE - 1),
    *(st.integers(start - 8, end) for start, end in USED_AREAS),  # the rings, more often
)
RX_USED = LAYOUT.vring_offsets[0] + RING.used
#: Plausible rx used entries (a small index step, ids and lengths near the real ones), so the
#: host also parses messages from whatever the buffers hold.
plausible = st.one_of(
    st.tuples(st.just(RX_USED + 2), st.integers(1, 9).map(U16.pack)),
    st.tuples(
        st.integers(0, LAYOUT.num - 1).map(lambda k: RX_USED + 4 + 8 * k),
        st.tuples(st.integers(0, 9), st.integers(0, 600)).map(lambda e: struct.pack("<II", *e)),
    ),
)
scribble = st.lists(
    st.one_of(st.tuples(offsets, st.binary(min_size=1, max_size=64)), plausible),
    min_size=1,
    max_size=40,
)


def _touches_used_rings(writes: list[tuple[int, bytes]]) -> bool:
    return any(o < end and start < o + len(d) for o, d in writes for start, end in USED_AREAS)


def _published(mem: bytearray) -> tuple[int, int, int, bytes]:
    """The last message the host posted on its tx ring (vq 1), read as the remote would:
    avail.idx, avail.ring, the descriptor, the rpmsg header. Returns (src, dst, flags, data)."""
    ring = LAYOUT.vring_offsets[1]
    idx = U16.unpack_from(mem, ring + RING.avail + 2)[0]
    head = U16.unpack_from(mem, ring + RING.avail_ring + 2 * ((idx - 1) % LAYOUT.num))[0]
    addr, length, _flags, _next = DESC.unpack_from(mem, ring + RING.desc + DESC.size * head)
    src, dst, _reserved, n, flags = HDR.unpack_from(mem, addr - LAYOUT.base_da)
    assert HDR.size + n <= length
    start = addr - LAYOUT.base_da + HDR.size
    return src, dst, flags, bytes(mem[start : start + n])


async def _scribble(writes: list[tuple[int, bytes]]) -> None:
    host_end, remote_end = loopback_pair(LAYOUT)
    assert isinstance(remote_end, LoopbackTransport)
    link = remote_end.link
    guard_before = bytes(link.buffer[SIZE:])  # the bytearray has no slack: stays empty
    async with RpmsgBus(host_end, name="host") as host:
        ep = host.create_endpoint(LOCAL, maxsize=100_000)  # never full: nothing blocks
        for offset, data in writes:
            end = min(SIZE, offset + len(data))
            link.buffer[offset:end] = data[: end - offset]
            remote_end.kick(0)
            remote_end.kick(1)
            await anyio.sleep(0)  # let the host run on the corrupted state
        stats = host.statistics()
        assert not host.closed
        # Every message the host parsed went to an endpoint or was counted.
        ns = host.endpoint(53).statistics().rx_messages  # the name service (negotiated)
        assert stats.rx_messages == ep.statistics().rx_messages + ns + stats.drops["unknown_dst"]
        if not _touches_used_rings(writes):  # no used entry: nothing to count
            assert (stats.drops, stats.rx_messages) == (NO_DROPS, 0)
        # Alive: 8 never-used tx buffers remain whatever the peer wrote, so this sends at once
        # (a bus closed by a receive-path bug would raise here), laid out for the remote.
        ep.try_send_to(PEER, b"still alive")
        assert _published(link.buffer) == (LOCAL, PEER, 0, b"still alive")
        assert host.statistics().tx_messages == 1
    assert bytes(link.buffer[SIZE:]) == guard_before
    assert len(link.buffer) == SIZE


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scribble)
def test_arbitrary_scribbles_never_crash_the_host(writes: list[tuple[int, bytes]]) -> None:
    anyio.run(_scribble, writes)


# -- known corruptions in random order: exact counters ----------------------------------------
Corruption = tuple[str, Callable[..., None], str, int]
VALID = "valid"
events = st.lists(st.one_of(st.just(VALID), st.sampled_from(HOST_CASES)), min_size=1, max_size=12)


async def _inject(sequence: list[str | Corruption]) -> None:
    host_t, remote_t = loopback_pair(support.LAYOUT)
    async with RpmsgBus(host_t, name="host") as host:
        raw = RawRemote(remote_t)
        ep = host.create_endpoint()
        drops: Counter[str] = Counter()
        rx = 0
        for i, event in enumerate(sequence):
            if event == VALID:
                raw.send(ep.addr, b"valid %d" % i)
                rx += 1
            else:
                _name, corrupt, reason, rx_with_next_valid = event
                corrupt(raw)
                drops[reason] += 1
                rx += rx_with_next_valid - 1  # NS cases are parsed, then dropped as bad_ns
            raw.kick()
            raw.send(ep.addr, b"sentinel %d" % i)  # after the event, in ring order
            raw.kick()
            if event == VALID:
                assert (await ep.recv(timeout=2)).payload == b"valid %d" % i
            assert (await ep.recv(timeout=2)).payload == b"sentinel %d" % i
            rx += 1
            stats = host.statistics()
            assert (stats.drops, stats.rx_messages) == ({**NO_DROPS, **drops}, rx), event
        assert ep.try_recv() is None
        assert not host.closed and host.statistics().channels == 0
        await ep.send_to(PEER_ADDR, b"reply", timeout=1)  # the tx path is healthy too


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_every_injected_anomaly_moves_its_counter(sequence: list[str | Corruption]) -> None:
    anyio.run(_inject, sequence)


async def test_host_keeps_serving_after_ring_garbage_is_cleaned(wait_until) -> None:
    """Corrupt the host's rx used ring, then restore a sane state: traffic flows again."""
    host_end, remote_end = loopback_pair(LAYOUT)
    assert isinstance(remote_end, LoopbackTransport)
    link = remote_end.link
    rx_used_idx = LAYOUT.vring_offsets[0] + LAYOUT.vring_layout.used + 2
    async with RpmsgBus(host_end, name="host") as host:
        saved = bytes(link.buffer[rx_used_idx : rx_used_idx + 2])
        link.buffer[rx_used_idx : rx_used_idx + 2] = b"\xff\x7f"  # index jump >> num
        remote_end.kick(0)
        await wait_until(lambda: host.statistics().drops["ring_error"] == 1)
        link.buffer[rx_used_idx : rx_used_idx + 2] = saved
        async with RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote:
            service = await remote.create_service("svc")
            channel = await host.wait_for_service("svc", timeout=5)
            await channel.send(b"ping")
            msg = await service.recv(timeout=5)
            assert msg.payload == b"ping"
