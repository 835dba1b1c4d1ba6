"""The real Linux kernel as the rpmsg host of an aioamp remote: User-Mode Linux drives aioamp's
``vhost-user:`` backend through its ``virtio_uml`` and ``virtio_rpmsg_bus``.

Each test listens on a fresh socket, boots a fresh kernel against it (platforms.uml) and runs
an aioamp remote bus on the backend. Marked ``kernel``: skipped, saying how to build the kernel
(``make kernel``), when build/uml/linux is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from platforms.uml import UmlKernel, wait_for_log_command
from rpmsg import Endpoint, RpmsgBus
from transports.backends.vhost_user.server import VhostUserBackend, listen_vhost_user

from .kernel_support import BOOT_DEADLINE, echo, kernel_remote, sample_then

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("vring_impl")]

SAMPLE = "rpmsg-client-sample"
#: The sample's device: channel rpmsg-client-sample, its endpoint 1024 ("-1": no source).
SAMPLE_DEV = r"rpmsg_client_sample virtio0\.rpmsg-client-sample\.-1\.1024: "


def check_sample_console(lines: tuple[str, ...] | list[str]) -> None:
    """The kernel created the channel aioamp announced, the sample probed it and exchanged
    its 100 messages with aioamp's echo, in order."""
    console = "\n".join(lines)
    assert "virtio_rpmsg_bus virtio0: rpmsg host is online" in console
    assert f"virtio_rpmsg_bus virtio0: creating channel {SAMPLE} addr 0x400" in console
    assert re.search(SAMPLE_DEV + r"new channel: 0x400 -> 0x400!", console)
    incoming = [int(m.group(1)) for m in re.finditer(SAMPLE_DEV + r"incoming msg (\d+)", console)]
    assert incoming == list(range(1, 101))
    assert re.search(SAMPLE_DEV + r"goodbye!", console)


async def test_the_kernels_client_sample_talks_to_an_aioamp_remote(
    kernel: Path, tmp_path: Path
) -> None:
    """aioamp announces rpmsg-client-sample; the kernel creates the channel, the sample module
    probes it and exchanges its 100 messages with aioamp's echo, then the kernel halts."""
    guest = sample_then(wait_for_log_command("goodbye!"), kernel)
    async with kernel_remote(kernel, tmp_path, guest) as (backend, uml, bus):
        ep = await bus.create_service(SAMPLE)
        echoed = await echo(ep)
        stats = bus.statistics()
        run = await uml.wait()
    run.check()
    check_sample_console(run.lines)
    # aioamp: 100 messages in, 100 echoes + the announcement out, nothing dropped.
    assert echoed == 100
    assert (stats.rx_messages, stats.tx_messages) == (100, 101)
    assert sum(stats.drops.values()) == 0
    # The kernel halted in order: it disabled its vrings before hanging up.
    assert backend.closed and backend.peer_closed
    assert backend.close_reason.endswith("the frontend disconnected")
    handshake = backend.statistics().requests
    assert handshake["SET_BACKEND_REQ_FD"] == 1 and handshake["SET_MEM_TABLE"] == 1
    assert handshake["SET_VRING_ENABLE"] == 4  # enable both at probe, disable both at halt


@pytest.mark.parametrize("end", ["halt", "kill"])
async def test_the_kernel_going_away_mid_traffic_ends_the_bus(
    kernel: Path, tmp_path: Path, end: str
) -> None:
    """aioamp answers 10 of the sample's messages and holds the 11th: the kernel goes away
    (halts, or is killed) with a message unanswered. The bus ends, saying the frontend
    disconnected; nothing hangs. A halt is orderly (peer_closed), a kill is not."""
    wait = wait_for_log_command("incoming msg 10 ") if end == "halt" else "sleep 30"
    async with kernel_remote(kernel, tmp_path, sample_then(wait, kernel)) as (backend, uml, bus):
        ep = await bus.create_service(SAMPLE)
        async with anyio.create_task_group() as tg:
            if end == "kill":

                async def kill_at_the_11th() -> None:
                    while ep.rx_messages < 11:
                        await anyio.sleep(0.01)
                    uml.kill()

                tg.start_soon(kill_at_the_11th)
            echoed = await echo(ep, hold_after=10)
        stats = bus.statistics()
        await uml.wait_for_line(SAMPLE_DEV + "incoming msg 10 ", timeout=5)
    assert isinstance(backend, VhostUserBackend)
    assert echoed == 10 and stats.rx_messages == 11 and stats.tx_messages == 11
    assert backend.close_reason.endswith("the frontend disconnected")
    assert bus.closed
    assert backend.peer_closed == (end == "halt")


async def test_with_reconnect_a_second_kernel_boots_against_the_same_remote(
    kernel: Path, tmp_path: Path
) -> None:
    """With ``reconnect`` the backend outlives a kernel: when the first halts, the remote bus
    sees a virtio reset, not a closed link; a second kernel boots against the same socket, is
    announced aioamp's service again and runs its client sample through as the first did."""
    sock = tmp_path / "rpmsg.sock"
    guest = sample_then(wait_for_log_command("goodbye!"), kernel)
    backend = listen_vhost_user(sock, reconnect=True)
    runs = []
    echoed: list[int] = []
    with anyio.fail_after(2 * BOOT_DEADLINE + 10):
        async with backend, anyio.create_task_group() as tg:
            bus = RpmsgBus(backend, name="remote", ready_timeout=30)
            for boot in range(2):
                async with UmlKernel(
                    guest, kernel=kernel, devices=[sock], timeout=BOOT_DEADLINE
                ) as uml:
                    if boot == 0:
                        await bus.start(tg)  # up at the first kernel's DRIVER_OK
                        ep = await bus.create_service(SAMPLE)

                        async def serve(ep: Endpoint) -> None:
                            echoed.append(await echo(ep))

                        tg.start_soon(serve, ep)
                    runs.append(await uml.wait())
                assert not bus.closed and not backend.closed  # waiting for the next kernel
            stats = bus.statistics()
            await bus.aclose()
    for run in runs:
        run.check()
        check_sample_console(run.lines)
    assert echoed == [200]
    assert (stats.rx_messages, stats.tx_messages) == (200, 202)  # announced to each kernel
    assert sum(stats.drops.values()) == 0
    served = backend.statistics()
    assert (served.frontends, served.turned_away, served.protocol_errors) == (2, 0, 0)
