"""Linux's rpmsg char devices against aioamp's services: a guest program (kernel_guest/) in a
fresh UML kernel reaches an aioamp remote through ``/dev/rpmsg_ctrl0``, ``/dev/rpmsgN`` and
``/dev/ttyRPMSGN``, exactly as an rpmsg_char application on a board reaches its remote
processor. Each test checks the guest's report and aioamp's counters. Marked ``kernel``
(skipped, saying how to build it, without build/uml/linux); each runs with both vring
implementations.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from rpmsg import Channel, Endpoint

from .kernel_support import echo, guest_program, kernel_remote

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("vring_impl")]

MTU = 496
COUNT = 10_000


async def test_an_rpmsg_ctrl_endpoint_echoes_every_size_then_10000_in_order(
    kernel: Path, tmp_path: Path
) -> None:
    """RPMSG_CREATE_EPT_IOCTL gives the guest an endpoint of its own to aioamp's echo service:
    every size 1..496 comes back byte for byte, then 10,000 messages (32 in flight) in order."""
    guest = guest_program("ctrl_echo.py", "aioamp-echo", COUNT, 32)
    async with kernel_remote(kernel, tmp_path, guest) as (_backend, uml, bus):
        ep = await bus.create_service("aioamp-echo")
        echoed = await echo(ep)
        stats = bus.statistics()
        run = await uml.wait()
    run.check()
    console = "\n".join(run.lines)
    assert re.search(
        r"guest: virtio0\.aioamp-echo\.-1\.1024: aioamp's aioamp-echo at 0x400", console
    )
    assert f"guest: every size 1..{MTU} echoed byte for byte" in console
    assert f"guest: {COUNT} messages echoed in order" in console
    assert echoed == MTU + COUNT
    assert (stats.rx_messages, stats.tx_messages) == (echoed, echoed + 1)  # + the announcement
    assert stats.rx_bytes == sum(range(1, MTU + 1)) + sum(4 + seq % 29 for seq in range(COUNT))
    assert sum(stats.drops.values()) == 0


def addressed(dst: int, size: int) -> bytes:
    """What kernel_guest/chrdev_raw.py sends on the channel to ``dst``."""
    return (f"{dst:#x};".encode() * size)[:size]


async def test_rpmsg_raw_channels_are_bound_to_rpmsg_chrdev(kernel: Path, tmp_path: Path) -> None:
    """Two ``rpmsg-raw`` services: the kernel binds each channel to rpmsg_chrdev; the guest
    finds each /dev/rpmsgN through sysfs and what it sends there reaches that service."""
    sizes = (16, MTU)
    guest = guest_program("chrdev_raw.py", 2, *sizes)
    async with kernel_remote(kernel, tmp_path, guest) as (_backend, uml, bus):
        eps = [await bus.create_service("rpmsg-raw") for _ in range(2)]
        received: dict[int, list[bytes]] = {ep.addr: [] for ep in eps}
        async with anyio.create_task_group() as tg:
            for ep in eps:
                tg.start_soon(lambda ep: echo(ep, record=received[ep.addr]), ep)
        run = await uml.wait()
    run.check()
    console = "\n".join(run.lines)
    for ep in eps:
        assert received[ep.addr] == [addressed(ep.addr, size) for size in sizes]
        assert re.search(
            rf"guest: rpmsg-raw {ep.addr:#x}: /dev/rpmsg\d+ \(driver rpmsg_chrdev\) echoed", console
        )


async def test_ttyrpmsg_carries_a_byte_stream_to_an_rpmsg_tty_service(
    kernel: Path, tmp_path: Path
) -> None:
    """``rpmsg-tty``: the kernel's rpmsg_tty driver makes /dev/ttyRPMSG0; 3,000 bytes written
    in raw mode reach aioamp as messages of at most the MTU and come back as the same stream."""
    size = 3000
    async with kernel_remote(kernel, tmp_path, guest_program("tty_echo.py", size)) as (
        _backend,
        uml,
        bus,
    ):
        ep = await bus.create_service("rpmsg-tty")
        record: list[bytes] = []
        await echo(ep, record=record)
        run = await uml.wait()
    run.check()
    assert "guest: /dev/ttyRPMSG0: 3000 bytes echoed through rpmsg-tty" in run.lines
    stream = b"".join(record)
    assert stream == (bytes(range(256)) * 12)[:size]
    assert len(record) >= -(-size // MTU) and all(0 < len(p) <= MTU for p in record)


async def test_a_channel_the_kernel_announces_probes_an_aioamp_driver(
    kernel: Path, tmp_path: Path
) -> None:
    """RPMSG_CREATE_DEV_IOCTL in the guest: the kernel announces ``rpmsg-raw`` at 0x500;
    aioamp's remote creates the channel and probes the driver registered for that name, which
    sends three messages the guest reads from the channel's /dev/rpmsgN. The guest's
    RPMSG_RELEASE_DEV_IOCTL withdraws the channel (NS DESTROY): the driver's loop ends and its
    remove hook runs, before the guest's next message arrives."""
    src = 0x500
    guest = guest_program("create_dev.py", "rpmsg-raw", hex(src), 3, "aioamp-sync")
    probed: list[tuple[str, int]] = []
    removed: list[int] = []

    async def probe(channel: Channel) -> None:
        probed.append((channel.name, channel.dst))
        for i in range(3):
            await channel.send(f"aioamp {i} to {channel.dst:#x}".encode())
        async for _ in channel:  # until the kernel withdraws the channel
            pass

    async def sync(ep: Endpoint) -> None:
        msg = await ep.recv()
        await ep.send_to(msg.src, f"channels {len(bus.channels)}, removed {removed}".encode())

    async with kernel_remote(kernel, tmp_path, guest) as (_backend, uml, bus):
        bus.register_driver("rpmsg-raw", probe, remove=lambda channel: removed.append(channel.dst))
        await sync(await bus.create_service("aioamp-sync"))
        run = await uml.wait()
    run.check()
    assert probed == [("rpmsg-raw", src)]
    guest_lines = [line for line in run.lines if line.startswith("guest: ")]
    assert guest_lines[1:] == [
        *(f"guest: read aioamp {i} to {src:#x}" for i in range(3)),
        f"guest: released virtio0.rpmsg-raw.{src}.-1",
        f"guest: aioamp says channels 0, removed [{src}]",
    ]
    assert re.fullmatch(
        r"guest: created virtio0\.rpmsg-raw\.1280\.-1: /dev/rpmsg\d+", guest_lines[0]
    )
