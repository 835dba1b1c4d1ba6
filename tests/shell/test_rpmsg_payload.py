"""Payloads through the public endpoint API: any C-contiguous buffer is sent as its raw bytes
and sized in bytes (never ``len()``); anything else is refused with a typed error and changes
nothing. Every test runs on both vring implementations (``vring_impl``) and in both
directions.

The oracle is spelled out here, independent of the library: a payload is accepted when
``memoryview(data)`` works and is C-contiguous (or empty), and its bytes fit the MTU; the
receiver then gets exactly ``memoryview(data).tobytes()``.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import pytest
from conftest import BusPair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpmsg import (
    Endpoint,
    InvalidPayloadError,
    PayloadTooLargeError,
    RpmsgBus,
)
from rpmsg.rings import HostRings, RemoteRings
from transports import LoopbackTransport, SharedLayout

pytestmark = [pytest.mark.trio, pytest.mark.usefixtures("vring_impl")]

SMALL = SharedLayout(num=8)
MTU = 496
DIRECTIONS = pytest.mark.parametrize("sender_role", ["host", "remote"])
CAST_FORMATS = "bBhHiIlLqQfd?cP"  # memoryview.cast's native single-character formats


def expected(data: Any) -> bytes | type[Exception]:
    """What the receiver must get for ``data``, or the error its send must raise."""
    try:
        view = memoryview(data)
    except TypeError:
        return InvalidPayloadError
    if view.nbytes and not view.c_contiguous:
        return InvalidPayloadError
    raw = view.tobytes()
    return PayloadTooLargeError if len(raw) > MTU else raw


# The six send forms, each as (endpoint, its peer's address, data) -> awaitable or None.
SendForm = Callable[[Endpoint, int, Any], Any]
SEND_FORMS: dict[str, SendForm] = {
    "send": lambda ep, dst, data: ep.send(data, timeout=5),
    "send_to": lambda ep, dst, data: ep.send_to(dst, data, timeout=5),
    "send_offchannel": lambda ep, dst, data: ep.send_offchannel(ep.addr, dst, data, timeout=5),
    "try_send": lambda ep, dst, data: ep.try_send(data),
    "try_send_to": lambda ep, dst, data: ep.try_send_to(dst, data),
    "try_send_offchannel": lambda ep, dst, data: ep.try_send_offchannel(ep.addr, dst, data),
}


async def send(form: str, ep: Endpoint, dst: int, data: Any) -> None:
    result = SEND_FORMS[form](ep, dst, data)
    if result is not None:
        await result


def state(tx_bus: RpmsgBus, rx_bus: RpmsgBus, tx: Endpoint, rx: Endpoint) -> tuple[Any, ...]:
    """Everything a refused send must leave alone: both buses' and endpoints' counters, the
    whole shared memory (rings, buffers), and the sender's claim on its tx buffers."""
    transport = tx_bus.transport
    assert isinstance(transport, LoopbackTransport)
    rings = tx_bus.rings
    if isinstance(rings, HostRings):
        ring: tuple[int, ...] = (rings._tx_fresh, rings._tx.num_free)
    else:
        assert isinstance(rings, RemoteRings)
        ring = (rings._tx.num_taken,)
    return (
        tx_bus.statistics(),
        rx_bus.statistics(),
        tx.statistics(),
        rx.statistics(),
        bytes(transport.link.buffer),
        ring,
    )


PairFactory = Callable[..., AbstractAsyncContextManager[BusPair]]


async def check_sends(
    bus_pair: PairFactory, sender_role: str, items: list[tuple[str, Any]]
) -> None:
    """Send each ``(form, data)``; accepted ones must arrive byte for byte and be counted in
    bytes, refused ones must raise the oracle's error and change nothing."""
    async with bus_pair(SMALL) as (host, remote, _ht, _rt):
        tx_bus, rx_bus = (host, remote) if sender_role == "host" else (remote, host)
        rx = rx_bus.create_endpoint()
        tx = tx_bus.create_endpoint(dst=rx.addr)
        for form, data in items:
            want = expected(data)
            before = state(tx_bus, rx_bus, tx, rx)
            if isinstance(want, bytes):
                await send(form, tx, rx.addr, data)
                msg = await rx.recv(timeout=5)
                assert (msg.src, msg.payload) == (tx.addr, want), (form, data)
                after = state(tx_bus, rx_bus, tx, rx)
                n = len(want)
                assert after[0].tx_bytes - before[0].tx_bytes == n
                assert after[1].rx_bytes - before[1].rx_bytes == n
                assert after[2].tx_bytes - before[2].tx_bytes == n
                assert after[3].rx_bytes - before[3].rx_bytes == n
            else:
                with pytest.raises(want):
                    await send(form, tx, rx.addr, data)
                assert state(tx_bus, rx_bus, tx, rx) == before, (form, data)
        assert set(tx_bus.statistics().drops.values()) == {0}
        assert set(rx_bus.statistics().drops.values()) == {0}


# -- regressions ---------------------------------------------------------------------------------


@DIRECTIONS
async def test_a_multibyte_array_over_the_mtu_is_refused_and_consumes_nothing(
    bus_pair: PairFactory, sender_role: str
) -> None:
    """Regression: array("d") of 496 items (3968 bytes) passed the MTU check (len() 496). With
    the C rings the host then wrote 3968 bytes over the next tx buffers (the remote dropped
    them as bad_length) and the remote used up every host rx buffer (short_buffer) and could
    never send again; the pure rings refused it with a bare ValueError."""
    await check_sends(
        bus_pair,
        sender_role,
        [
            ("send", array.array("d", [1.0]) * 496),
            ("send", memoryview(bytes(range(40))).cast("i")),  # was dropped as bad_length
            ("send", array.array("d", range(62))),  # exactly the MTU in bytes
            ("try_send", array.array("d", range(63))),
            ("send", b"after"),
        ],
    )


@DIRECTIONS
async def test_buffers_of_any_format_and_shape_arrive_byte_for_byte(
    bus_pair: PairFactory, sender_role: str
) -> None:
    grid = memoryview(bytes(range(240))).cast("I", (3, 4, 5))
    await check_sends(
        bus_pair,
        sender_role,
        [
            (form, data)
            for form in SEND_FORMS
            for data in (
                b"bytes",
                bytearray(b"bytearray"),
                array.array("H", [1, 2, 0xFFFF]),
                memoryview(b"\x01\x02\x03\x04" * 3).cast("f"),
                grid,
                memoryview(b""),
                memoryview(bytes(8))[::2],  # strided: refused
                "text",
                7,
                [1, 2],
                None,
            )
        ],
    )


@DIRECTIONS
async def test_numpy_arrays_are_sent_as_their_raw_bytes(
    bus_pair: PairFactory, sender_role: str
) -> None:
    np = pytest.importorskip("numpy")
    matrix = np.arange(24, dtype="<f8").reshape(4, 6)
    await check_sends(
        bus_pair,
        sender_role,
        [
            ("send", matrix),
            ("send", np.arange(5, dtype=">i4")),
            ("send", np.zeros(3, dtype=[("a", "<u2"), ("b", "f4")])),
            ("send", np.zeros((0, 4))),
            ("send", matrix[:, ::2]),  # strided: refused
            ("send", np.asfortranarray(matrix)),  # contiguous, but not in C order: refused
            ("send", np.zeros(63, dtype="f8")),  # 504 bytes
        ],
    )


# -- the property --------------------------------------------------------------------------------

sizes = st.one_of(st.integers(MTU - 8, MTU + 8), st.integers(0, 40))


def _sized(kind: str, fmt: str, nbytes: int, seed: int) -> Any:
    size = (array.array(fmt) if kind == "array" else memoryview(b"").cast(fmt)).itemsize
    items = nbytes // size
    data = bytes((seed + i) % 256 for i in range(items * size))
    if kind == "array":
        return array.array(fmt, data)
    if kind == "3d" and items % 4 == 0 and items:
        return memoryview(data).cast(fmt, (2, 2, items // 4))
    if kind == "strided":
        return memoryview(bytes(2 * len(data))).cast(fmt)[::2]
    if kind == "reversed":
        return memoryview(data).cast(fmt)[::-1]
    return memoryview(data).cast(fmt)


buffers = st.one_of(
    st.builds(_sized, st.just("array"), st.sampled_from(array.typecodes), sizes, st.integers()),
    st.builds(
        _sized,
        st.sampled_from(["cast", "3d", "strided", "reversed"]),
        st.sampled_from(CAST_FORMATS),
        sizes,
        st.integers(),
    ),
    st.builds(bytes, sizes.map(bytes)),
    st.builds(bytearray, sizes.map(bytes)),
    st.builds(lambda b: memoryview(b)[::2], sizes.map(bytes)),
)
non_buffers = st.sampled_from(["text", "", 0, 496, [1, 2, 3], None, 1.5, {"a": 1}])
payload_items = st.tuples(
    st.sampled_from(sorted(SEND_FORMS)), st.one_of(buffers, buffers, buffers, non_buffers)
)


@DIRECTIONS
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.lists(payload_items, min_size=1, max_size=12))
def test_every_accepted_payload_arrives_byte_for_byte_and_every_refused_one_changes_nothing(
    bus_pair: PairFactory, sender_role: str, items: list[tuple[str, Any]]
) -> None:
    anyio.run(check_sends, bus_pair, sender_role, items)
