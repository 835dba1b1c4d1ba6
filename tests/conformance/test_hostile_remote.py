"""A host bus against a hostile remote (tests/conformance/rawpeer.py) on every backend: each
corruption of vq 0's used ring, of an rpmsg header or of a name-service message is counted
under its reason, the bus stays open, recycles every buffer it can identify, and still
receives a valid message and sends afterwards."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from rpmsg import NS_ADDR, NsFlags

from .links import TransportLink
from .rawpeer import PEER_ADDR, RawRemote, hostile_remote, ns_msg
from .support import NO_DROPS, WAIT, WaitUntil, capacity

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

Corrupt = Callable[[RawRemote], None]


def _send(payload: bytes, *, to_ns: bool = False, **kw: Callable[[RawRemote], int]) -> Corrupt:
    """Send ``payload`` to the host's endpoint 1024 (or its NS address), with header length
    and used length given as functions of the peer (of its buffer size)."""

    def corrupt(raw: RawRemote) -> None:
        lengths = {key: fn(raw) for key, fn in kw.items()}
        raw.send(NS_ADDR if to_ns else 1024, payload, **lengths)

    return corrupt


def _give(head: Callable[[RawRemote], int | None]) -> Corrupt:
    """Return descriptor ``head(raw)`` holding 16 bytes it never filled."""

    def corrupt(raw: RawRemote) -> None:
        h = head(raw)
        if h is None:
            pytest.skip("every descriptor id is posted on this layout")
        raw.give(h, 16)

    return corrupt


def buf(extra: int) -> Callable[[RawRemote], int]:
    return lambda raw: raw.buffer_size + extra


def const(value: int) -> Callable[[RawRemote], int]:
    return lambda raw: value


def _ns(name: bytes, addr: int, flags: int) -> Corrupt:
    return _send(ns_msg(name, addr, flags), to_ns=True)


NS_SVC = ns_msg(b"svc", PEER_ADDR, NsFlags.CREATE)
HOST_CASES: list[tuple[str, Corrupt, str, int]] = [
    # (id, corruption, drop reason, host rx_messages afterwards including the valid one)
    ("used-id-eq-num", _give(lambda raw: raw.ring.num), "ring_error", 1),
    ("used-id-huge", _give(lambda raw: 0xFFFFFFFF), "ring_error", 1),
    ("used-id-never-posted", _give(RawRemote.never_posted), "ring_error", 1),
    ("used-len-over-buffer", _send(b"x", used_len=buf(+1)), "ring_error", 1),
    ("used-len-huge", _send(b"x", used_len=const(0xFFFFFFFF)), "ring_error", 1),
    ("hdr-len-over-used-len", _send(b"abcd", hdr_len=const(5)), "bad_length", 1),
    ("hdr-len-over-buffer", _send(b"", hdr_len=buf(-15), used_len=buf(0)), "bad_length", 1),
    ("hdr-len-max", _send(b"", hdr_len=const(0xFFFF), used_len=buf(0)), "bad_length", 1),
    ("used-len-15", _send(b"", used_len=const(15)), "short_buffer", 1),
    ("used-len-0", _send(b"", used_len=const(0)), "short_buffer", 1),
    ("ns-len-39", _send(NS_SVC[:39], to_ns=True), "bad_ns", 2),
    ("ns-len-41", _send(NS_SVC + b"\0", to_ns=True), "bad_ns", 2),
    ("ns-empty-name", _ns(b"", PEER_ADDR, NsFlags.CREATE), "bad_ns", 2),
    ("ns-non-ascii", _ns(b"sv\xc3\xa9", PEER_ADDR, NsFlags.CREATE), "bad_ns", 2),
    ("ns-bad-flags", _ns(b"svc", PEER_ADDR, 2), "bad_ns", 2),
    ("ns-addr-any", _ns(b"svc", 0xFFFFFFFF, NsFlags.CREATE), "bad_ns", 2),
]


@pytest.mark.parametrize(
    ("corrupt", "reason", "rx_messages"),
    [pytest.param(*case[1:], id=case[0]) for case in HOST_CASES],
)
async def test_host_survives_a_hostile_remote(
    link: TransportLink, wait_until: WaitUntil, corrupt: Corrupt, reason: str, rx_messages: int
) -> None:
    async with hostile_remote(link) as (host, raw):
        ep = host.create_endpoint()
        assert ep.addr == 1024
        corrupt(raw)
        raw.kick()
        await wait_until(lambda: host.statistics().drops[reason] == 1, timeout=WAIT)

        raw.send(ep.addr, b"still serving")
        raw.kick()
        msg = await ep.recv(timeout=WAIT)
        assert (msg.src, msg.dst, msg.payload) == (PEER_ADDR, ep.addr, b"still serving")
        stats = host.statistics()
        assert stats.drops == {**NO_DROPS, reason: 1}
        assert stats.rx_messages == rx_messages
        assert (stats.last_ring_error is not None) == (reason == "ring_error")
        assert stats.channels == 0 and not host.closed
        # Every buffer the host could identify went back on the ring.
        assert raw.posted == capacity(host.transport)
        # ... and sending still works (the listener and the tx path are healthy).
        await ep.send_to(PEER_ADDR, b"reply", timeout=WAIT)


#: used.idx jumps by more than num entries (0xFFFF: one step backwards).
JUMPS = [
    pytest.param(lambda num: num + 1, id="num+1"),
    pytest.param(lambda num: 0x8000, id="0x8000"),
    pytest.param(lambda num: 0xFFFF, id="0xffff"),
]


@pytest.mark.parametrize("jump", JUMPS)
async def test_host_survives_a_used_index_jump(
    link: TransportLink, wait_until: WaitUntil, jump: Callable[[int], int]
) -> None:
    """Refused once (the index is not trusted, nothing consumed); then the peer comes back to
    its senses and a valid message arrives."""
    async with hostile_remote(link) as (host, raw):
        ep = host.create_endpoint()
        raw.ring.used_idx = raw.used + jump(raw.ring.num)
        raw.kick()
        await wait_until(lambda: host.statistics().drops["ring_error"] == 1, timeout=WAIT)
        await anyio.sleep(0.02)  # no spinning, no recount without a new notification
        assert host.statistics().drops == {**NO_DROPS, "ring_error": 1}

        raw.ring.used_idx = raw.used
        raw.send(ep.addr, b"still serving")
        raw.kick()
        assert (await ep.recv(timeout=WAIT)).payload == b"still serving"
        stats = host.statistics()
        assert (stats.drops, stats.rx_messages) == ({**NO_DROPS, "ring_error": 1}, 1)
        assert raw.posted == capacity(host.transport) and not host.closed
