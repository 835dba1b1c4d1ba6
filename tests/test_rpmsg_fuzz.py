"""A remote that writes arbitrary bytes anywhere in the shared memory (rings, resource table,
buffers) never crashes the host bus: no exception escapes, nothing outside the shared region is
touched, every anomaly is counted, and a clean ring afterwards still carries messages."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpmsg import BusClosedError, RpmsgBus
from transports import SharedLayout, loopback_pair
from transports.loopback import LoopbackTransport

# Every test here runs with the pure vring classes and with the C accelerator's (conftest).
pytestmark = pytest.mark.usefixtures("vring_impl")

LAYOUT = SharedLayout(num=8, align=64)
SIZE = LAYOUT.total_size

scribble = st.lists(
    st.tuples(st.integers(0, SIZE - 1), st.binary(min_size=1, max_size=64)),
    min_size=1,
    max_size=40,
)


async def _run(writes: list[tuple[int, bytes]]) -> None:
    host_end, remote_end = loopback_pair(LAYOUT)
    assert isinstance(remote_end, LoopbackTransport)
    link = remote_end.link
    guard_before = bytes(link.buffer[SIZE:])  # the bytearray has no slack: stays empty
    async with RpmsgBus(host_end, name="host") as host:
        ep = host.create_endpoint(2000)
        for offset, data in writes:
            end = min(SIZE, offset + len(data))
            link.buffer[offset:end] = data[: end - offset]
            remote_end.kick(0)
            remote_end.kick(1)
            await anyio.sleep(0)  # let the host listener run on the corrupted state
        # Whatever happened, the host is alive: it can still be asked for its statistics,
        # and sending either works, waits for a buffer (timeout), or fails with a clear error.
        stats = host.statistics()
        assert sum(stats.drops.values()) >= 0
        try:
            with anyio.move_on_after(0.05):
                await ep.send_to(2001, b"still alive", timeout=0.02)
        except BusClosedError:
            pass
        except TimeoutError:
            pass
        except ValueError:
            pass  # e.g. the scribble broke the negotiated vdev (a clear RpmsgError/ValueError)
    assert bytes(link.buffer[SIZE:]) == guard_before
    assert len(link.buffer) == SIZE


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scribble)
def test_arbitrary_scribbles_never_crash_the_host(writes: list[tuple[int, bytes]]) -> None:
    anyio.run(_run, writes)


async def test_host_keeps_serving_after_ring_garbage_is_cleaned() -> None:
    """Corrupt the host's rx used ring, then restore a sane state: traffic flows again."""
    host_end, remote_end = loopback_pair(LAYOUT)
    assert isinstance(remote_end, LoopbackTransport)
    link = remote_end.link
    rx_used_idx = LAYOUT.vring_offsets[0] + LAYOUT.vring_layout.used + 2
    async with RpmsgBus(host_end, name="host") as host:
        saved = bytes(link.buffer[rx_used_idx : rx_used_idx + 2])
        link.buffer[rx_used_idx : rx_used_idx + 2] = b"\xff\x7f"  # index jump >> num
        remote_end.kick(0)
        await anyio.sleep(0.01)
        assert host.statistics().drops["ring_error"] >= 1
        link.buffer[rx_used_idx : rx_used_idx + 2] = saved
        async with RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote:
            service = await remote.create_service("svc")
            channel = await host.wait_for_service("svc", timeout=5)
            await channel.send(b"ping")
            msg = await service.recv(timeout=5)
            assert msg.payload == b"ping"
