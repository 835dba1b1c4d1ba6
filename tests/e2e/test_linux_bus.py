"""aioamp's ``linux:`` bus against the real Linux 6.12 kernel: the project's Python runs in a
User-Mode Linux guest (through hostfs) and uses the kernel's rpmsg char devices; the kernel's
remote is an aioamp bus in this process, on a vhost-user backend.

Each test boots a fresh kernel running one scenario of tests/e2e/guest_linux_bus.py and checks
both sides: what the guest printed and what the remote saw. Marked ``kernel``: skipped, saying
how to build the kernel, when build/uml/linux is missing.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import anyio
import pytest

from .linux_guest import GUEST, guest_argv, guest_lines, guest_with_remote, serve_until_halt

pytestmark = pytest.mark.kernel


async def test_echo_at_every_size_and_oversize_payloads(kernel: Path, tmp_path: Path) -> None:
    """Sizes 1..496 through a channel the guest bound with driver_override; 497 refused by
    the bus, 497 and 1024 by the kernel itself (EMSGSIZE) when the bus is told a larger MTU;
    flow control answered (GET) and degraded (SET: virtio_rpmsg_bus has none)."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("echo-sizes")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "aioamp-echo")
    run.check()
    lines = guest_lines(run)
    assert "sizes 1..496 echoed" in lines
    assert "497 refused: payload of 497 bytes exceeds the MTU of 496" in lines
    for n in (497, 1024):
        assert any(
            line.startswith(f"kernel refused {n}:") and "the kernel refused the payload" in line
            for line in lines
        ), lines
    assert "flow control: get False" in lines and "flow control: set False" in lines
    assert "stats tx 496 rx 496 drops 0" in lines
    assert [len(p) for p in served.payloads] == [*range(1, 497), len(b"still fine")]


async def test_the_zero_copy_api_copies_once_each_way(kernel: Path, tmp_path: Path) -> None:
    """Borrowed sends and held receives on the kernel bus (private buffers: zero_copy False)
    reach the remote and come back byte for byte."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("zero-copy")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "aioamp-echo")
    run.check()
    assert [len(p) for p in served.payloads] == list(range(1, 497))
    assert "zero-copy False: borrowed 496 held 496 out 0" in guest_lines(run)


async def test_ten_thousand_messages_in_order(kernel: Path, tmp_path: Path) -> None:
    async with guest_with_remote(kernel, tmp_path, guest_argv("in-order")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "aioamp-order")
    run.check()
    assert [struct.unpack_from("<I", p)[0] for p in served.payloads] == list(range(10_000))
    assert any(line.startswith("10000 in order") for line in guest_lines(run))


async def test_batches_through_the_kernel(kernel: Path, tmp_path: Path) -> None:
    async with guest_with_remote(kernel, tmp_path, guest_argv("batches")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "aioamp-batch")
    run.check()
    n = len(served.payloads)
    assert n >= 100
    assert [struct.unpack_from("<I", p)[0] for p in served.payloads] == list(range(n))
    assert any(line.startswith(f"batches: {n} echoed in order") for line in guest_lines(run))


async def test_wait_for_service_wakes_on_the_uevent(kernel: Path, tmp_path: Path) -> None:
    """The remote announces the service a second after the guest started waiting; the guest
    looked at sysfs a handful of times (once per uevent), not in a polling loop."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("late-service")) as (uml, bus):
        await uml.wait_for_line("guest: waiting for aioamp-late", timeout=60)
        await anyio.sleep(1)
        run, served = await serve_until_halt(uml, bus, "aioamp-late")
    run.check()
    got = re.search(r"got aioamp-late after (\d+) rescans", "\n".join(guest_lines(run)))
    assert got is not None, guest_lines(run)
    # The announcement makes three rpmsg uevents (device add, its char device's add, bind).
    assert 1 <= int(got.group(1)) <= 6
    assert served.payloads == [b"late hello"]


async def test_create_service_is_announced_to_the_remote(kernel: Path, tmp_path: Path) -> None:
    """The guest's service reaches the remote as a channel at the address the guest reports;
    the remote writes to it; withdrawing it (RELEASE_DEV) sends the remote an NS DESTROY."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("create-service")) as (uml, bus):
        channel = await bus.wait_for_service("guest-svc", timeout=60)
        line = await uml.wait_for_line(r"guest: service guest-svc at (0x[0-9a-f]+)", timeout=30)
        assert channel.dst == int(line.group(1), 16)
        await channel.send(b"hello guest")
        with anyio.fail_after(30):
            async for _ in channel:  # ends at the NS DESTROY
                pass
        assert channel.removed and bus.find_channel("guest-svc") is None
        await bus.create_service("aioamp-done")
        run = await uml.wait()
    run.check()
    lines = guest_lines(run)
    assert lines[1:] == ["service received hello guest", "service withdrawn"]


async def test_a_channel_the_remote_destroys_ends_the_iteration(
    kernel: Path, tmp_path: Path
) -> None:
    async with guest_with_remote(kernel, tmp_path, guest_argv("remote-destroys")) as (uml, bus):
        ep = await bus.create_service("aioamp-gone")
        msg = await ep.recv(timeout=60)
        assert msg.payload == b"ready"
        await ep.send_to(msg.src, b"one")
        assert (await ep.recv(timeout=30)).payload == b"got one"
        await ep.aclose()  # NS DESTROY: the kernel removes the channel
        run = await uml.wait()
    run.check()
    lines = guest_lines(run)
    assert "iteration ended after [b'one']; removed True" in lines
    assert "send after removal: EndpointClosedError" in lines
    assert "done" in lines


async def test_drivers_are_probed_and_removed(kernel: Path, tmp_path: Path) -> None:
    async with guest_with_remote(kernel, tmp_path, guest_argv("drivers")) as (uml, bus):
        await uml.wait_for_line("guest: driver a registered", timeout=60)
        services = {
            name: await bus.create_service(name) for name in ("aioamp-drv-a", "aioamp-drv-b")
        }
        for name, ep in services.items():
            msg = await ep.recv(timeout=30)
            assert msg.payload == b"hello " + name.encode()
            await ep.send_to(msg.src, b"ack")
        for name in services:
            await uml.wait_for_line(f"guest: {name} got ack", timeout=30)
        await services["aioamp-drv-a"].aclose()  # NS DESTROY
        run = await uml.wait()
    run.check()
    lines = guest_lines(run)
    assert {"probed aioamp-drv-a", "probed aioamp-drv-b", "aioamp-drv-b got ack"} <= set(lines)
    assert "aioamp-drv-a iteration ended" in lines
    assert "removed ['aioamp-drv-a']; channels ['aioamp-drv-b']" in lines


async def test_the_tty_path(kernel: Path, tmp_path: Path) -> None:
    """rpmsg_tty's /dev/ttyRPMSG0 as a raw byte stream: the remote echoes the bytes."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("tty")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "rpmsg-tty")
    run.check()
    lines = guest_lines(run)
    assert "tty /dev/ttyRPMSG0" in lines
    total = len(b"line one\nline\rtwo\x03\x04") + 1024
    assert f"tty echoed {total} bytes unchanged" in lines
    assert sum(len(p) for p in served.payloads) == total
    assert max(len(p) for p in served.payloads) <= 496


async def test_a_missing_permission_names_the_file_and_the_udev_rule(
    kernel: Path, tmp_path: Path
) -> None:
    """Without the permission on /dev/rpmsg_ctrl0 (root without CAP_DAC_OVERRIDE on a mode
    000 node stands in for a user outside the group) the error says how to grant it."""
    command = (
        "chmod 000 /dev/rpmsg_ctrl0 && setpriv --bounding-set=-all --inh-caps=-all "
        f"{sys.executable} {GUEST} permission"
    )
    async with guest_with_remote(kernel, tmp_path, command) as (uml, _bus):
        run = await uml.wait()
    run.check()
    (line,) = [line for line in guest_lines(run) if line.startswith("permission:")]
    assert "RpmsgPermissionError" in line and "/dev/rpmsg_ctrl0" in line
    assert 'SUBSYSTEM=="rpmsg", KERNEL=="rpmsg*", GROUP="rpmsg", MODE="0660"' in line


async def test_a_capture_sees_the_kernel_bus_each_way(kernel: Path, tmp_path: Path) -> None:
    """The tap on a kernel bus: the announcement the kernel consumed recorded as a synthetic
    NS CREATE from the remote's address, then each write (TX) and read (RX) with the
    endpoint's and the channel's addresses, in order, at their byte sizes."""
    async with guest_with_remote(kernel, tmp_path, guest_argv("capture")) as (uml, bus):
        run, served = await serve_until_halt(uml, bus, "aioamp-cap")
    run.check()
    lines = guest_lines(run)
    assert "capture errors 0" in lines and "links ['kernel']" in lines, lines
    addrs = next(line for line in lines if line.startswith("channel local"))
    local, remote = addrs.split()[2], addrs.split()[4]
    records = [line.removeprefix("record ") for line in lines if line.startswith("record ")]
    assert records[0] == f"RX {remote}->0x35 ns aioamp-cap {remote} 0 synthetic True"
    expected = []
    for n in (1, 16, 496):
        expected.append(f"TX {local}->{remote} len {n} synthetic False")
        expected.append(f"RX {remote}->{local} len {n} synthetic False")
    assert records[1:] == expected
    assert [len(p) for p in served.payloads] == [1, 16, 496]
