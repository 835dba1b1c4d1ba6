"""rpmsg across a detach / attach handover: the core keeps running and keeps its services.

The detaching host virtio-resets the device (status 0) without unmapping the core's memory;
the remote drops its rings and channels and waits for DRIVER_OK; the attaching host brings the
rings up again and the remote re-announces its services, so they work with the new host."""

from __future__ import annotations

import anyio
import pytest
from conftest import echo_round_trip

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.manager import RemoteprocManager
from remoteproc.rsc_table import parse_resource_table, vdev_entry_view_offset
from rpmsg import NoBufferError, RpmsgBus, RpmsgTimeoutError
from transports import loopback_pair
from transports.virtio.constants import VIRTIO_CONFIG_S_DRIVER_OK
from transports.virtio.vdev import VdevView

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

ECHO = build_sample_image("rpmsg-echo")


def _core_status(sim: SimPlatform) -> int:
    """The vdev status byte as the running core sees it in its own memory."""
    ctx = sim.context
    assert ctx is not None and ctx.table_da is not None
    live = ctx.memory.view(ctx.table_da, ctx.table_size)
    vdev = parse_resource_table(live).vdevs[0]
    return VdevView(live[vdev_entry_view_offset(vdev) :]).status


async def test_services_survive_detach_and_attach() -> None:
    sim = SimPlatform("m4")
    async with RemoteprocManager() as first:
        rp1 = first.add(sim, firmware=ECHO)
        await rp1.boot()
        await echo_round_trip(rp1, b"first host")
        iommu_before = dict(sim.iommu)
        await rp1.detach()
        assert sim.running and sim.stops == 0
        assert sim.iommu == iommu_before  # the core's memory stays mapped
        assert not _core_status(sim) & VIRTIO_CONFIG_S_DRIVER_OK  # told: the host went away

        async with RemoteprocManager() as second:
            rp2 = second.add(sim)
            assert rp2.state_name == "detached"
            await rp2.attach()
            assert rp2.state_name == "attached" and sim.starts == 1  # nothing restarted
            # The remote re-announced its service to the new host, and it echoes.
            for i in range(50):
                await echo_round_trip(rp2, b"second host %d" % i)
            assert rp2.buses[0].statistics().drops["ring_error"] == 0
            # Once more, then shut the core down for real.
            await rp2.detach()
            await rp2.attach()
            await echo_round_trip(rp2, b"third time")
            await rp2.shutdown()
            assert (rp2.state_name, sim.running, sim.stops) == ("offline", False, 1)
            assert sim.physical.in_use == 0 and sim.iommu == {}


async def test_a_remote_sender_waits_through_a_reset_then_completes(wait_until) -> None:
    """While no host drives the device a remote's sends wait for buffers (try_send says so,
    send honours its deadline) instead of failing; a new host's bring-up releases them, and
    the remote's service is announced to that host."""
    host_end, remote_end = loopback_pair()
    async with anyio.create_task_group() as tg:
        first = RpmsgBus(host_end, name="host-1")
        await first.start(tg)  # a bus started in a task group may be closed from any task
        async with RpmsgBus(remote_end, name="remote", ready_timeout=5) as remote:
            service = await remote.create_service("svc")
            channel = await first.wait_for_service("svc", timeout=5)
            await service.send_to(channel.src, b"hello host 1")
            assert (await channel.recv(timeout=5)).payload == b"hello host 1"

            first.reset_peer()
            await first.aclose()
            await first.wait_closed()
            await wait_until(lambda: remote.rings.resets == 1)  # the remote sees status 0
            assert not remote.rings.ready
            assert remote.channels == []  # the old host's channels are gone
            with pytest.raises(NoBufferError):
                service.try_send_to(channel.src, b"nobody home")
            with pytest.raises(RpmsgTimeoutError):
                await service.send_to(channel.src, b"nobody home", timeout=0.05)

            async with RpmsgBus(host_end, name="host-2") as second:
                received: list[bytes] = []

                async def late_sender() -> None:
                    ep = second.create_endpoint(0x500)
                    await service.send_to(0x500, b"hello host 2")  # waits for the bring-up
                    received.append((await ep.recv(timeout=5)).payload)

                with anyio.fail_after(5):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(late_sender)
                        again = await second.wait_for_service("svc", timeout=5)
                assert received == [b"hello host 2"]
                assert again.dst == service.addr  # re-announced under the same address
