"""The socket doorbell shared by shm://, openamp: and sim's process mode, on real socketpairs:
bytes in order across reads and a full socket, EOF with and without a goodbye, coalescing
kicks, bounded frames, handler mode and task mode, closing while someone waits."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import anyio
import pytest
from conftest import in_trio_run, loop_turns

import transports.socket_doorbell
from transports import TransportClosedError
from transports.socket_doorbell import SocketDoorbell

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

BOTH_LOOPS = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])
KICK = b"\x01"


@pytest.fixture
def pair() -> Iterator[tuple[SocketDoorbell, SocketDoorbell]]:
    """Two doorbells on a fresh socketpair (``a`` and ``b``), closed after the test."""
    a, b = socket.socketpair()
    bells = SocketDoorbell(a, where="a"), SocketDoorbell(b, where="b")
    yield bells
    for bell in bells:
        bell.close()


@pytest.fixture(params=["handler", "task"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``handler``: asyncio's add_reader/add_writer; ``task``: what runs on other anyio
    backends (wait_readable, a flusher task), forced here by hiding the asyncio loop."""
    if request.param == "handler" and in_trio_run(request.config):
        pytest.skip("handler mode is asyncio's; the trio run tests the task mode")
    if request.param == "task":
        monkeypatch.setattr(transports.socket_doorbell, "_running_asyncio_loop", lambda: None)
    return str(request.param)


async def _collect(bell: SocketDoorbell, out: bytearray, reads: list[int]) -> None:
    def on_bytes(count: int) -> None:
        reads.append(count)
        out.extend(bell.buffer[:count])

    await bell.run(on_bytes)


@BOTH_LOOPS
async def test_frames_split_across_reads_and_a_full_socket_arrive_whole_in_order(
    mode: str,
) -> None:
    a_sock, b_sock = socket.socketpair()
    a = SocketDoorbell(a_sock, where="a", buffer_size=64, pending_limit=1 << 22)
    b = SocketDoorbell(b_sock, where="b", buffer_size=64)
    # Larger than the socket's buffer: the rest of a frame waits, and the frames after it too.
    frames = [bytes([i]) * size for i, size in enumerate([5, 600_000, 7, 70_000, 1])]
    expected = b"".join(frames)
    for frame in frames:
        assert a.send(frame)
    assert a.statistics().pending > 0
    got, reads = bytearray(), list[int]()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, a, bytearray(), [])  # task mode: a's flusher runs here
            tg.start_soon(_collect, b, got, reads)
            while len(got) < len(expected):
                await anyio.sleep(0.001)
            a.close()
    assert bytes(got) == expected
    assert max(reads) <= 64 and len(reads) > len(frames)
    stats = a.statistics()
    assert (stats.dropped, stats.pending, stats.unsent) == (0, 0, 0)
    assert b.close_reason == "b: the peer closed the connection (process gone?)"


async def test_eof_after_a_goodbye_is_orderly(pair: tuple[SocketDoorbell, SocketDoorbell]) -> None:
    a, b = pair
    assert a.send(b"bye")
    a.close()
    with anyio.fail_after(5):
        count = await b.receive()
        assert bytes(b.buffer[:count]) == b"bye"
        b.peer_said_goodbye()  # what the user's parser does when it sees its goodbye
        with pytest.raises(TransportClosedError, match=r"^b: the peer closed the link$"):
            await b.receive()
    assert b.closed and b.peer_closed


async def test_eof_without_a_goodbye_and_a_reset_are_a_vanished_peer(
    pair: tuple[SocketDoorbell, SocketDoorbell],
) -> None:
    a, b = pair
    a.close()
    with anyio.fail_after(5), pytest.raises(TransportClosedError, match=r"\(process gone\?\)"):
        await b.receive()
    assert not b.peer_closed
    c_sock, d_sock = socket.socketpair()
    c, d = SocketDoorbell(c_sock, where="c"), SocketDoorbell(d_sock, where="d")
    assert d.send(b"never read")
    c.close()  # with unread bytes: the peer sees a reset
    assert d.read() == -1 and d.closed and not d.peer_closed
    assert d.close_reason.startswith("d: peer connection lost:")
    with pytest.raises(TransportClosedError):
        await d.receive()


@pytest.mark.asyncio_only  # asyncio's add_writer flushes without run(); trio needs run()
async def test_a_full_socket_coalesces_kicks_and_bounds_frames(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a_sock, b_sock = socket.socketpair()
    a = SocketDoorbell(a_sock, where="a", pending_limit=1000)
    b = SocketDoorbell(b_sock, where="b", buffer_size=1 << 16)
    assert not a.unread()
    sent = 0
    while a.statistics().coalesced == 0:
        assert a.kick(KICK)
        sent += 1
    assert a.unread() and sent > 10
    sent -= 1  # the last one coalesced
    assert a.send(b"x" * 600)  # waits in the pending buffer
    assert not a.send(b"y" * 600)  # over pending_limit: dropped, counted
    got = bytearray()
    while count := b.read():  # the socket has room again, the loop has not flushed yet
        got += b.buffer[:count]
    assert a.kick(KICK)  # coalesced: never sent ahead of (or between) the waiting bytes
    assert a.statistics() == transports.socket_doorbell.SocketDoorbellStats(
        coalesced=2, dropped=1, pending=600, unsent=0
    )
    with anyio.fail_after(10), caplog.at_level(logging.WARNING, "aioamp.transport"):
        while len(got) < sent + 600:
            await anyio.sleep(0)  # the loop's writer flushes a's pending bytes
            count = b.read()
            got += b.buffer[: max(count, 0)]
    assert bytes(got) == KICK * sent + b"x" * 600
    assert not a.unread() and a.statistics().pending == 0
    assert "a: 1 frames dropped: the peer did not read" in caplog.messages
    a.close()
    b.close()


@BOTH_LOOPS
@pytest.mark.asyncio_only  # handler mode is asyncio's add_reader
async def test_handler_mode_gets_counts_then_one_close(
    pair: tuple[SocketDoorbell, SocketDoorbell],
) -> None:
    a, b = pair
    calls: list[tuple[bytes, str | None]] = []

    def handler(count: int, closed: str | None) -> None:
        calls.append((bytes(b.buffer[:count]), closed))

    assert b.set_handler(handler)
    a.kick(KICK)
    a.kick(KICK)
    with anyio.fail_after(5):
        while not calls:
            await anyio.sleep(0.001)
        a.close()
        while len(calls) < 2:
            await anyio.sleep(0.001)
    await loop_turns(3)
    assert calls == [(KICK * 2, None), (b"", "b: the peer closed the connection (process gone?)")]
    assert not b.set_handler(handler)  # the link has ended: wait with receive()


async def test_no_handler_mode_without_asyncio(mode: str, pair: tuple[SocketDoorbell, ...]) -> None:
    assert pair[0].set_handler(lambda count, closed: None) == (mode == "handler")
    assert pair[0].set_handler(None)


async def test_close_while_waiting_wakes_receive_and_run(mode: str) -> None:
    bells = [SocketDoorbell(s, where=f"s{i}") for i, s in enumerate(socket.socketpair())]
    bells += [SocketDoorbell(s, where=f"r{i}") for i, s in enumerate(socket.socketpair())]
    failed: list[str] = []
    ran: list[int] = []

    async def receive() -> None:
        with pytest.raises(TransportClosedError) as info:
            await bells[0].receive()
        failed.append(str(info.value))

    async def run() -> None:
        await bells[2].run(ran.append)
        ran.append(-1)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            tg.start_soon(run)
            await anyio.sleep(0.05)
            bells[0].close("s0: closed here")
            bells[2].close()
    assert failed == ["s0: closed here"] and ran == [-1]
    assert bells[2].close_reason == "r0: closed"
    for bell in bells:
        bell.close()


async def test_a_failed_send_keeps_what_the_peer_said_before_leaving(
    mode: str, pair: tuple[SocketDoorbell, SocketDoorbell]
) -> None:
    """sim's core writes its crash report and exits: the host's next kick finds EPIPE, and
    the report must still be read, up to the EOF."""
    a, b = pair
    assert a.send(b"crash report")
    a.close()
    assert not b.send(b"kick frame") and not b.kick(KICK)
    assert b.send_error is not None and b.send_error.startswith("b: peer unreachable:")
    assert not b.closed and b.statistics().dropped == 1
    got = bytearray()
    with anyio.fail_after(5):
        await _collect(b, got, [])
    assert bytes(got) == b"crash report" and b.closed


async def test_an_exception_from_on_bytes_ends_the_run(
    mode: str, pair: tuple[SocketDoorbell, SocketDoorbell]
) -> None:
    a, b = pair

    def on_bytes(count: int) -> None:
        raise ValueError(f"bad bytes: {count}")

    a.kick(KICK)
    with anyio.fail_after(5), pytest.raises(ValueError, match="bad bytes: 1"):
        await b.run(on_bytes)
    assert b.set_handler(None)


def test_drain_sends_what_waits_when_no_loop_runs() -> None:
    a_sock, b_sock = socket.socketpair()
    a = SocketDoorbell(a_sock, where="a")
    frame = bytes(range(256)) * 2000  # more than the socket holds
    assert a.send(frame) and a.statistics().pending > 0
    got = bytearray()

    def read_all() -> None:
        with b_sock:
            b_sock.setblocking(True)
            while chunk := b_sock.recv(1 << 16):
                got.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    a.drain(timeout=10)
    a.close()
    reader.join(10)
    assert bytes(got) == frame and a.statistics().unsent == 0


def test_drain_gives_up_after_its_timeout_and_counts_what_was_not_sent() -> None:
    a_sock, b_sock = socket.socketpair()
    a = SocketDoorbell(a_sock, where="a")
    assert a.send(bytes(1 << 20))
    pending = a.statistics().pending
    a.drain(timeout=0.05)  # nobody reads
    assert a.send_error is not None and a.statistics().unsent > 0
    assert a.statistics().unsent <= pending
    a.close()
    b_sock.close()


@pytest.mark.asyncio_only  # measures handler mode too
async def test_no_allocation_per_notification(pair: tuple[SocketDoorbell, SocketDoorbell]) -> None:
    """Reads land in the preallocated buffer: a thousand notifications, through read() and
    through the handler, leave no memory behind and never hold a receive buffer (a
    ``recv(4096)`` per notification peaks at 4 KiB)."""
    a, b = pair
    buffer = b.buffer

    def handler(count: int, closed: str | None) -> None:
        pass

    assert b.set_handler(handler)
    for _ in range(3):  # warm up (method caches)
        a.kick(KICK)
        b._on_readable()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for _ in itertools.repeat(None, 1000):
            a.kick(KICK)
            b._on_readable()
            a.kick(KICK)
            b.read()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert b.buffer is buffer
    assert current - before < 512 and peak - before < 1024, (current - before, peak - before)
