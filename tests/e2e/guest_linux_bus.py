"""Runs inside the UML guest (the project's own Python, through hostfs): aioamp's ``linux:`` bus
against the guest kernel's rpmsg char devices, whose remote is an aioamp vhost-user bus on the
host (tests/e2e/test_linux_bus.py). One scenario per run: ``python guest_linux_bus.py NAME``.

Each scenario prints ``guest: ...`` lines the host test reads, and exits non-zero (with a
traceback) when a check fails.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Awaitable, Callable

import anyio

from platforms.linux import LinuxRpmsgBus
from rpmsg import Channel, EndpointClosedError, PayloadTooLargeError
from rpmsg.tap import MemoryCapture

SEQ = struct.Struct("<I")


def say(*parts: object) -> None:
    print("guest:", *parts, flush=True)


def pattern(n: int) -> bytes:
    return bytes((n + i) & 0xFF for i in range(n))


async def echo_sizes() -> None:
    """Every size 1..496 round trip through a channel the remote announced under a name that
    needs driver_override; 497 refused before the write; flow control degrades."""
    async with LinuxRpmsgBus() as bus:
        channel = await bus.wait_for_service("aioamp-echo", timeout=20)
        say(f"channel {channel.name} local {channel.src:#x} remote {channel.dst:#x}")
        for n in range(1, 497):
            await channel.send(pattern(n))
            msg = await channel.recv(timeout=10)
            assert msg.payload == pattern(n), f"size {n}: {msg.payload!r}"
            assert msg.src == channel.dst and msg.dst == channel.src
        say("sizes 1..496 echoed")
        try:
            await channel.send(bytes(497))
        except PayloadTooLargeError as exc:
            say(f"497 refused: {exc}")
        say(f"flow control: get {bus.outgoing_flow_control(channel.endpoint)}")
        say(f"flow control: set {bus.set_incoming_flow_control(channel.endpoint, True)}")
        stats = bus.statistics()
        drops = sum(stats.drops.values())
        say(f"stats tx {stats.tx_messages} rx {stats.rx_messages} drops {drops}")
    # The kernel's own limit: a bus told of a larger MTU gets EMSGSIZE from the kernel.
    async with LinuxRpmsgBus(mtu=1024) as bus:
        channel = await bus.wait_for_service("aioamp-echo", timeout=20)
        for n in (497, 1024):
            try:
                await channel.send(bytes(n))
            except PayloadTooLargeError as exc:
                say(f"kernel refused {n}: {exc}")
        await channel.send(b"still fine")
        assert (await channel.recv(timeout=10)).payload == b"still fine"
        say("done")


async def zero_copy() -> None:
    """The zero-copy API on the kernel bus (one copy each way there): sizes 1..496 sent from
    borrowed buffers, echoes received as held messages, through a ctrl endpoint."""
    async with LinuxRpmsgBus() as bus:
        channel = await bus.wait_for_service("aioamp-echo", timeout=20)
        ep = bus.create_endpoint(dst=channel.dst, zero_copy=True)
        for n in range(1, 497):
            with await ep.borrow_tx(timeout=10) as buf:
                assert buf.data.nbytes == 496
                buf.data[:n] = pattern(n)
                buf.send(n)
            with await ep.recv(timeout=10) as msg:
                assert msg.payload == pattern(n), f"size {n}: {bytes(msg.payload)!r}"
        stats = bus.statistics()
        say(
            f"zero-copy {stats.zero_copy}: borrowed {stats.borrowed_total} held "
            f"{ep.statistics().held_total} out {stats.borrowed + ep.statistics().held}"
        )


async def in_order() -> None:
    """10,000 numbered messages each way, sent as fast as the tx buffers allow."""
    count = 10_000
    async with LinuxRpmsgBus() as bus:
        channel = await bus.wait_for_service("aioamp-order", timeout=20)

        async def sender() -> None:
            for seq in range(count):
                await channel.send(SEQ.pack(seq) + bytes(12))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            for expected in range(count):
                msg = await channel.recv(timeout=30)
                (seq,) = SEQ.unpack_from(msg.payload)
                assert seq == expected, f"echo {seq} arrived when {expected} was due"
        stats = bus.statistics()
        say(f"{count} in order; send waits {stats.send_waits}; queue drops {stats.drops}")


async def batches() -> None:
    """send_many (each wait for a buffer in turn) and try_send_many through the kernel, one
    write per message; recv_batch takes the echoes as they come, in order."""
    async with LinuxRpmsgBus() as bus:
        channel = await bus.wait_for_service("aioamp-batch", timeout=20)
        ep = channel.endpoint
        await ep.send_many([SEQ.pack(seq) for seq in range(100)], timeout=30)
        sent = ep.try_send_many([SEQ.pack(seq) for seq in range(100, 110)])
        got: list[int] = []
        while len(got) < 100 + sent:
            got += [SEQ.unpack_from(m.payload)[0] for m in await ep.recv_batch(64, timeout=30)]
        assert got == list(range(100 + sent)), got
        say(f"batches: {100 + sent} echoed in order, try_send_many sent {sent}")


async def late_service() -> None:
    """wait_for_service for a service the remote announces later: woken by the uevent."""
    async with LinuxRpmsgBus() as bus:
        say("waiting for aioamp-late")
        before = bus.counters.rescans
        channel = await bus.wait_for_service("aioamp-late", timeout=20)
        rescans = bus.counters.rescans - before
        say(f"got {channel.name} after {rescans} rescans, {bus.counters.uevents} uevents")
        await channel.send(b"late hello")
        assert (await channel.recv(timeout=10)).payload == b"late hello"
        say("done")


async def create_service() -> None:
    """A local service the kernel announces; the remote writes to it, then it is withdrawn."""
    async with LinuxRpmsgBus() as bus:
        service = await bus.create_service("guest-svc")
        say(f"service {service.name} at {service.addr:#x}")
        msg = await service.recv(timeout=20)
        say(f"service received {msg.payload.decode()}")
        await service.aclose()  # RPMSG_RELEASE_DEV_IOCTL: the kernel sends NS DESTROY
        say("service withdrawn")
        # The remote announces this once it saw the DESTROY: halting earlier could hang up
        # the link before the remote read it.
        await bus.wait_for_service("aioamp-done", timeout=30)


async def remote_destroys() -> None:
    """The remote destroys its channel: the endpoint's iteration ends, sends fail."""
    async with LinuxRpmsgBus() as bus:
        channel = await bus.wait_for_service("aioamp-gone", timeout=20)
        await channel.send(b"ready")
        received = []
        async for msg in channel:
            received.append(msg.payload)
            await channel.send(b"got " + msg.payload)
        say(f"iteration ended after {received}; removed {channel.removed}")
        try:
            await channel.send(b"too late")
        except EndpointClosedError as exc:
            say(f"send after removal: {type(exc).__name__}")
        assert bus.find_channel("aioamp-gone") is None and bus.channels == []
        say("done")


async def tty() -> None:
    """/dev/ttyRPMSG0 as a byte stream in raw mode: bytes a cooked tty would translate
    (newlines, carriage returns, ^C, ^D) come back unchanged, and none is echoed."""
    data = b"line one\nline\rtwo\x03\x04" + bytes(range(256)) * 4
    async with LinuxRpmsgBus() as bus:
        stream = await bus.open_tty(timeout=20)
        say(f"tty {stream.path}")
        async with stream:
            await stream.send(data)
            got = b""
            with anyio.fail_after(20):
                while len(got) < len(data):
                    got += await stream.receive()
            assert got == data, (len(got), got[:40])
        say(f"tty echoed {len(got)} bytes unchanged")


async def drivers() -> None:
    """Drivers probed on channels announced after they registered, and before; the remote
    destroying a channel ends its driver's iteration and runs its remove hook."""
    ended = anyio.Event()
    removed: list[str] = []

    async def probe(channel: Channel) -> None:
        say(f"probed {channel.name}")
        await channel.send(b"hello " + channel.name.encode())
        async for msg in channel:
            say(f"{channel.name} got {msg.payload.decode()}")
        say(f"{channel.name} iteration ended")
        ended.set()

    async with LinuxRpmsgBus() as bus:
        bus.register_driver("aioamp-drv-a", probe, remove=lambda ch: removed.append(ch.name))
        say("driver a registered")
        await bus.wait_for_service("aioamp-drv-b", timeout=20)  # open, with no driver yet
        bus.register_driver("aioamp-drv-b", probe)
        with anyio.fail_after(20):
            await ended.wait()
        say(f"removed {removed}; channels {sorted(c.name for c in bus.channels)}")


async def capture() -> None:
    """A capture on the kernel bus: the channel's appearance (synthetic NS), each write and
    each read, with the addresses the kernel used."""
    records = MemoryCapture()
    async with LinuxRpmsgBus(capture=records) as bus:
        channel = await bus.wait_for_service("aioamp-cap", timeout=20)
        for n in (1, 16, 496):
            await channel.send(pattern(n))
            assert (await channel.recv(timeout=10)).payload == pattern(n)
        say(f"channel local {channel.src:#x} remote {channel.dst:#x}")
        say(f"capture errors {bus.statistics().capture_errors}")
    say(f"links {[link.backend for link in records.links]}")
    for r in records.records:
        ns = r.ns
        what = f"ns {ns.name} {ns.addr:#x} {ns.flags}" if ns is not None else f"len {r.length}"
        say(f"record {r.direction.name} {r.src:#x}->{r.dst:#x} {what} synthetic {r.synthetic}")


async def permission() -> None:
    """Run as nobody: opening the control device fails with the file and the udev rule."""
    try:
        async with LinuxRpmsgBus():
            pass
    except PermissionError as exc:
        say(f"permission: {type(exc).__name__}: {exc}")


SCENARIOS: dict[str, Callable[[], Awaitable[None]]] = {
    "echo-sizes": echo_sizes,
    "zero-copy": zero_copy,
    "in-order": in_order,
    "batches": batches,
    "late-service": late_service,
    "create-service": create_service,
    "remote-destroys": remote_destroys,
    "tty": tty,
    "drivers": drivers,
    "permission": permission,
    "capture": capture,
}


if __name__ == "__main__":
    anyio.run(SCENARIOS[sys.argv[1]])
