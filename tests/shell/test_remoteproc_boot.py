"""Booting simulated processors end to end: live resource table, refcounts, owners,
dependencies, rpmsg drivers, trace buffers, service discovery and attach/detach."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from conftest import WaitUntil, boot_watching, echo_round_trip, labels

from platforms.sim import Faults, SimPlatform
from platforms.sim.images import RSC_TABLE_DA, build_sample_image, sample_resource_entries
from remoteproc.errors import ProcessorNotFoundError, RemoteprocError, StateError
from remoteproc.firmware import load_firmware
from remoteproc.manager import RemoteprocManager
from remoteproc.rproc import FirmwareSource, RemoteProc
from remoteproc.rsc_table import FW_RSC_ADDR_ANY, RSC_NOTIFY_ID_ANY, Vdev, parse_resource_table
from rpmsg.channel import Channel
from rpmsg.errors import RpmsgTimeoutError
from transports.virtio.constants import VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_ID_RPMSG
from transports.virtio.vdev import VringInfo

from .conftest import counting_client

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

DDR = 0x8000_0000
DDR_SIZE = 8 << 20
ECHO = build_sample_image("rpmsg-echo")
CLIENT = build_sample_image("rpmsg-client-sample")


# -- the live resource table -------------------------------------------------------------------


async def test_boot_writes_back_the_live_resource_table() -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT)
        assert rp.state_name == "offline"
        [t] = await boot_watching(rp, 1)
        assert (t.old.label, t.new.label, t.cause) == ("offline", "running", "boot")
        assert rp.state_name == "running"
        assert (rp.power, sim.starts) == (1, 1)

        loaded = rp.loaded
        assert loaded is not None and loaded.table_view is not None
        table = parse_resource_table(loaded.table_view)
        text, data = table.carveouts
        # Carveouts: da as linked, pa written back by the host, first fit in the DDR window.
        assert (text.name, text.da, text.pa, text.len) == ("text", 0x0, DDR, 0x10000)
        assert (data.name, data.da, data.pa, data.len) == ("data", 0x20000, DDR + 0x10000, 0x10000)
        for c in (text, data):
            assert c.pa >= DDR and c.pa + c.len <= DDR + DDR_SIZE
        (vdev,) = table.vdevs
        rings = vdev.vrings
        assert [r.notifyid for r in rings] == [0, 1]
        assert all(r.da != FW_RSC_ADDR_ANY for r in rings)
        # Vrings go after the carveouts, page aligned, identity mapped (da == pa).
        assert [(r.da, r.pa) for r in rings] == [(DDR + 0x20000,) * 2, (DDR + 0x23000,) * 2]
        assert vdev.notifyid == RSC_NOTIFY_ID_ANY
        assert vdev.status & VIRTIO_CONFIG_S_DRIVER_OK
        assert vdev.status == 0x07  # ACKNOWLEDGE | DRIVER | DRIVER_OK
        assert vdev.gfeatures == 1  # VIRTIO_RPMSG_F_NS
        assert table.traces[0].da == 0x20000

        # The core reads the same table at its linked address through its own memory map.
        fw_view = sim.firmware_view().view(RSC_TABLE_DA, loaded.table_view.nbytes)
        assert bytes(fw_view) == bytes(loaded.table_view)
        assert parse_resource_table(fw_view) == table
        # And the pristine table in the image still says "host assigns".
        assert loaded.image is not None and loaded.image.resource_table is not None
        pristine = parse_resource_table(loaded.image.resource_table.data)
        assert pristine.vdevs[0].vrings[0].da == FW_RSC_ADDR_ANY
        assert pristine.carveouts[0].pa == FW_RSC_ADDR_ANY
        await rp.shutdown()
        assert rp.loaded is None
        assert sim.physical.in_use == 0
        assert sim.iommu == {}


# -- power refcount ----------------------------------------------------------------------------


async def test_power_refcount() -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        await rp.boot()
        await rp.boot()
        assert (rp.state_name, rp.power, sim.starts) == ("running", 2, 1)
        await rp.shutdown()
        assert (rp.state_name, rp.power, sim.stops) == ("running", 1, 0)
        await echo_round_trip(rp, b"still up")
        await rp.shutdown()
        assert (rp.state_name, rp.power, sim.stops) == ("offline", 0, 1)
        assert sim.physical.in_use == 0
        with pytest.raises(StateError, match=r"cannot shutdown while offline .*power 0"):
            await rp.shutdown()
        assert sim.stops == 1

        async with rp.powered() as same:
            assert same is rp
            assert (rp.state_name, rp.power, sim.starts) == ("running", 1, 2)
        assert (rp.state_name, rp.power, sim.stops) == ("offline", 0, 2)
        # powered() shuts down even when the body raises.
        with pytest.raises(KeyError):
            async with rp.powered():
                raise KeyError("body failed")
        assert (rp.state_name, sim.starts, sim.stops) == ("offline", 3, 3)
        assert [(t.new.label, t.cause) for t in rp.history] == [
            ("running", "boot"),
            ("offline", "shutdown"),
        ] * 3


async def test_concurrent_boots_and_shutdowns() -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(rp.boot)
        assert (rp.state_name, rp.power, sim.starts) == ("running", 10, 1)
        await echo_round_trip(rp, b"ten users")
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(rp.shutdown)
        assert (rp.state_name, rp.power, sim.starts, sim.stops) == ("offline", 0, 1, 1)
        assert sim.physical.in_use == 0
        assert len(rp.history) == 2


# -- owner refcount and removal ----------------------------------------------------------------


async def test_owner_refcount_and_remove_waits_for_last_owner() -> None:
    sim = SimPlatform("ipu")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        assert "ipu" in mgr
        held = mgr.get("ipu")
        assert held is rp
        assert rp.owners == 1
        async with mgr.handle("ipu") as again:
            assert again is rp
            assert rp.owners == 2
            await again.boot()
        assert rp.owners == 1
        assert rp.state_name == "running"

        done = anyio.Event()

        async def remove() -> None:
            await mgr.remove("ipu")
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(remove)
            await anyio.sleep(0.1)
            assert not done.is_set()  # an owner still holds it
            assert rp.state_name == "running"
            with pytest.raises(StateError, match="being deleted"):
                mgr.get("ipu")
            with pytest.raises(StateError, match="being deleted"):
                await rp.boot()
            held.put()
            with anyio.fail_after(5):
                await done.wait()
        assert rp.state_name == "deleted"
        assert (sim.starts, sim.stops) == (1, 1)  # the powered core was torn down
        assert sim.physical.in_use == 0
        assert [t.cause for t in rp.history][-2:] == ["shutdown on delete", "delete"]
        assert "ipu" not in mgr
        with pytest.raises(StateError, match="it was deleted"):
            rp.get()
        with pytest.raises(
            ProcessorNotFoundError, match=r"no processor 'ipu' \(registered: none\)"
        ):
            mgr.get("ipu")


async def test_unknown_processor_and_duplicate_names() -> None:
    async with RemoteprocManager() as mgr:
        mgr.add(SimPlatform("dsp"), firmware=ECHO)
        with pytest.raises(ProcessorNotFoundError, match=r"no processor 'gpu' \(registered: dsp\)"):
            mgr["gpu"]
        with pytest.raises(LookupError):
            mgr.get("gpu")
        with pytest.raises(ProcessorNotFoundError):
            await mgr.remove("gpu")
        with pytest.raises(LookupError):
            async with mgr.handle("gpu"):
                pass
        with pytest.raises(RemoteprocError, match="'dsp' is already registered"):
            mgr.add(SimPlatform("dsp"))
        with pytest.raises(StateError, match="it has no owners"):
            mgr["dsp"].put()


async def test_remove_without_owners_is_immediate() -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("dsp"), firmware=ECHO)
        with anyio.fail_after(2):
            await mgr.remove("dsp")
        assert rp.state_name == "deleted"
        assert labels(rp.history) == [("offline", "deleted")]


# -- dependencies --------------------------------------------------------------------------------


class RecordingSim(SimPlatform):
    """Records platform starts and stops of a group of processors in one shared list."""

    def __init__(self, name: str, record: list[str]) -> None:
        super().__init__(name)
        self.record = record

    async def start(self, entry: int) -> None:
        await super().start(entry)
        self.record.append(f"start {self.name}")

    async def stop(self) -> None:
        self.record.append(f"stop {self.name}")
        await super().stop()


def _chain(mgr: RemoteprocManager, events: list[str]) -> tuple[RemoteProc, ...]:
    a = mgr.add(RecordingSim("a", events), firmware=ECHO)
    b = mgr.add(RecordingSim("b", events), firmware=ECHO, depends_on=[a])
    c = mgr.add(RecordingSim("c", events), firmware=ECHO, depends_on=["b"])
    return a, b, c


async def test_dependencies_boot_first_and_stop_last() -> None:
    events: list[str] = []
    async with RemoteprocManager() as mgr:
        a, b, c = _chain(mgr, events)
        await c.boot()
        assert events == ["start a", "start b", "start c"]
        assert [p.power for p in (a, b, c)] == [1, 1, 1]
        assert all(p.state_name == "running" for p in (a, b, c))
        events.clear()
        await c.shutdown()
        assert events == ["stop c", "stop b", "stop a"]
        assert all(p.state_name == "offline" for p in (a, b, c))
        assert all(p.platform.physical.in_use == 0 for p in (a, b, c))

        events.clear()
        await a.boot()
        await c.boot()
        assert events == ["start a", "start b", "start c"]
        assert [p.power for p in (a, b, c)] == [2, 1, 1]
        events.clear()
        await c.shutdown()
        assert events == ["stop c", "stop b"]
        assert (a.state_name, a.power) == ("running", 1)
        await a.shutdown()
        assert events == ["stop c", "stop b", "stop a"]
        with pytest.raises(RemoteprocError, match="'a' is a dependency of 'b'"):
            await mgr.remove("a")


async def test_crash_of_a_dependency_recovers_the_group(wait_until: WaitUntil) -> None:
    events: list[str] = []
    async with RemoteprocManager() as mgr:
        a, b, c = _chain(mgr, events)
        await c.boot()
        await echo_round_trip(c, b"before")
        old = await c.wait_for_service("rpmsg-echo", timeout=5)
        events.clear()
        assert isinstance(a.platform, RecordingSim)
        a.platform.crash_now()
        await wait_until(
            lambda: (
                all(p.statistics().lifecycle.recoveries == 1 for p in (a, b, c))
                and all(p.state_name == "running" for p in (a, b, c))
            )
        )
        # Dependents go down first, the crashed core comes back first.
        assert events == ["stop c", "stop b", "stop a", "start a", "start b", "start c"]
        assert [p.power for p in (a, b, c)] == [1, 1, 1]
        assert [(t.new.label, t.cause) for t in list(c.history)[-2:]] == [
            ("crashed", "crash: dependency a crashed: watchdog: injected"),
            ("running", "recovery"),
        ]
        assert old.removed
        await echo_round_trip(c, b"after recovery")
        await c.shutdown()
        assert all(p.state_name == "offline" for p in (a, b, c))


async def test_a_diamond_goes_down_and_comes_back_in_the_plans_order(wait_until: WaitUntil) -> None:
    """The manager runs remoteproc.crash_plan's plan: d (on b and c, both on a) is locked and
    stopped first, a is recovered first and d last; the unpowered e stays out of it."""
    events: list[str] = []
    async with RemoteprocManager() as mgr:
        a = mgr.add(RecordingSim("a", events), firmware=ECHO)
        b = mgr.add(RecordingSim("b", events), firmware=ECHO, depends_on=[a])
        c = mgr.add(RecordingSim("c", events), firmware=ECHO, depends_on=[a])
        d = mgr.add(RecordingSim("d", events), firmware=ECHO, depends_on=[b, c])
        e = mgr.add(RecordingSim("e", events), firmware=ECHO, depends_on=[a])
        await d.boot()
        events.clear()
        assert isinstance(a.platform, RecordingSim)
        a.platform.crash_now()
        await wait_until(
            lambda: all(p.statistics().lifecycle.recoveries == 1 for p in (a, b, c, d))
        )
        down, up = ["stop d", "stop b", "stop c", "stop a"], ["start a", "start c", "start b"]
        assert events == [*down, *up, "start d"]
        assert (e.state_name, e.statistics().lifecycle.crashes) == ("offline", 0)
        await echo_round_trip(d, b"after recovery")
        await d.shutdown()


# -- rpmsg drivers -------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before-boot", "after-boot"])
async def test_client_sample_driver_registered_before_or_after_boot(when: str) -> None:
    results: list[int] = []
    done = anyio.Event()
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("sim0"), firmware=CLIENT)
        probe = counting_client(results, done)
        if when == "before-boot":
            rp.register_driver("rpmsg-client-sample", probe)
        await rp.boot()
        if when == "after-boot":
            channel = await rp.wait_for_service("rpmsg-client-sample", timeout=5)
            assert channel.driver is None
            rp.register_driver(["rpmsg-client-sample"], probe)
        with anyio.fail_after(10):
            await done.wait()
        assert results == [100]
        assert "rpmsg-client-sample: echoed 100 messages, withdrawing" in rp.trace(0)
        bus = rp.buses[0]
        stats = bus.statistics()
        assert (stats.tx_messages, stats.rx_messages - stats.tx_messages) == (100, 2)  # + NS
        assert bus.channels == []  # the service withdrew itself
        await rp.shutdown()


# -- trace buffer and service discovery ------------------------------------------------------------


async def test_trace_buffer(wait_until: WaitUntil) -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("sim0"), firmware=ECHO)
        with pytest.raises(LookupError, match=r"no trace buffer 0 \(0 mapped\)"):
            rp.trace(0)
        await rp.boot()
        await rp.wait_for_service("rpmsg-echo", timeout=5)
        assert "announced" in rp.trace(0)
        assert (
            rp.trace(0) == "vdev0: DRIVER_OK, rpmsg up (mtu 496)\nrpmsg-echo: announced at 0x400\n"
        )
        with pytest.raises(LookupError, match=r"no trace buffer 5 \(1 mapped\)"):
            rp.trace(5)
        with pytest.raises(LookupError):
            rp.trace(-1)

        lines: list[str] = []
        ended = anyio.Event()

        async def follow() -> None:
            async for line in rp.follow_trace(0, interval=0.01):
                lines.append(line)
            ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await wait_until(lambda: len(lines) == 2)
            assert lines == [
                "vdev0: DRIVER_OK, rpmsg up (mtu 496)",
                "rpmsg-echo: announced at 0x400",
            ]
            await rp.shutdown()  # the trace buffer goes away: the iteration ends
            with anyio.fail_after(2):
                await ended.wait()
        assert len(lines) == 2


async def test_wait_for_service_across_boot() -> None:
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("sim0"), firmware=ECHO)
        found: list[Channel] = []

        async def waiter() -> None:
            found.append(await rp.wait_for_service("rpmsg-echo", timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)  # the waiter is waiting on an offline processor
            await rp.boot()
        (channel,) = found
        assert channel.name == "rpmsg-echo"
        assert channel.dst == 0x400
        assert rp.buses[0].find_channel("rpmsg-echo") is channel
        await rp.shutdown()


async def test_wait_for_service_times_out_when_never_announced() -> None:
    async with RemoteprocManager() as mgr:
        sim = SimPlatform("sim0", faults=Faults(never_announce=True))
        rp = mgr.add(sim, firmware=ECHO)
        await rp.boot()
        before = anyio.current_time()
        with pytest.raises(
            RpmsgTimeoutError, match=r"service 'rpmsg-echo' not announced in 0\.3 s"
        ):
            await rp.wait_for_service("rpmsg-echo", timeout=0.3)
        assert anyio.current_time() - before >= 0.25  # not early (a busy machine is only later)
        assert "created, not announced (fault)" in rp.trace(0)
        with pytest.raises(TimeoutError):  # also a builtin TimeoutError
            await rp.wait_for_service("other", timeout=0.05)
        await rp.shutdown()


# -- attach / detach ---------------------------------------------------------------------------


class RunningSim(SimPlatform):
    """A core that runs without the host having started it (booted by someone else): it
    reports itself running and exposes its live table at the address the image linked."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.attaches = self.detaches = 0
        self.hide_table = False

    def is_running(self) -> bool:
        return self.running

    def loaded_table(self) -> tuple[int, memoryview] | None:
        ctx = self.context
        if ctx is None or ctx.table_da is None or self.hide_table:
            return None
        return ctx.table_da, ctx.memory.view(ctx.table_da, ctx.table_size)

    async def attach(self) -> None:
        self.attaches += 1

    async def detach(self) -> None:
        self.detaches += 1


async def test_attach_and_detach_a_running_core() -> None:
    sim = RunningSim("m4")
    marker_da = 0x3000  # in the text carveout, above the loaded segment
    async with RemoteprocManager() as first:
        rp1 = first.add(sim, firmware=ECHO)
        assert rp1.state_name == "offline"
        await rp1.boot()
        await echo_round_trip(rp1, b"first host")
        assert rp1.loaded is not None and rp1.loaded.table_view is not None
        pas = [(c.da, c.pa) for c in parse_resource_table(rp1.loaded.table_view).carveouts]
        await rp1.detach()
        assert (rp1.state_name, rp1.power) == ("detached", 0)
        assert sim.running and (sim.starts, sim.stops, sim.detaches) == (1, 0, 1)
        assert sim.physical.in_use == 0  # the host let go of the memory...
        ctx = sim.context
        assert ctx is not None
        ctx.memory.view(marker_da, 4)[:] = b"LIVE"  # ...the core still uses it

        # A fresh manager finds the core running: detached until it attaches.
        async with RemoteprocManager() as second:
            rp2 = second.add(sim)  # no firmware needed to attach
            assert rp2.state_name == "detached"
            with pytest.raises(StateError, match="not booted"):
                await rp2.shutdown()
            await rp2.attach()
            assert (rp2.state_name, rp2.power, sim.attaches) == ("attached", 1, 1)
            assert sim.starts == 1  # nothing loaded, nothing started
            loaded = rp2.loaded
            assert loaded is not None and loaded.image is None
            assert loaded.table_view is not None
            assert bytes(loaded.memory.view(marker_da, 4)) == b"LIVE"  # adopted, not zeroed
            table = parse_resource_table(loaded.table_view)
            assert [(c.da, c.pa) for c in table.carveouts] == pas
            assert [r.notifyid for r in table.vdevs[0].vrings] == [0, 1]
            assert sim.physical.in_use > 0
            with pytest.raises(StateError, match="only a detached processor can be attached"):
                await rp2.attach()

            await rp2.detach()
            assert (rp2.state_name, rp2.power) == ("detached", 0)
            assert sim.running and (sim.stops, sim.detaches) == (0, 2)
            assert sim.physical.in_use == 0

            # boot() on a detached core attaches (as Linux does)...
            await rp2.boot()
            assert (rp2.state_name, sim.starts, sim.attaches) == ("attached", 1, 2)
            # ...and the last shutdown of an attached core stops it.
            await rp2.shutdown()
            assert (rp2.state_name, sim.stops, sim.running) == ("offline", 1, False)
            assert sim.physical.in_use == 0
            assert [(t.old.label, t.new.label, t.cause) for t in rp2.history] == [
                ("detached", "attached", "attach"),
                ("attached", "detached", "detach"),
                ("detached", "attached", "attach"),
                ("attached", "offline", "shutdown"),
            ]


async def test_attach_fails_cleanly_without_a_live_table() -> None:
    sim = RunningSim("m4")
    async with RemoteprocManager() as first:
        rp1 = first.add(sim, firmware=ECHO)
        await rp1.boot()
        await rp1.detach()
        sim.hide_table = True
        async with RemoteprocManager() as second:
            rp2 = second.add(sim)
            with pytest.raises(RemoteprocError, match="does not know the running table"):
                await rp2.attach()
            assert (rp2.state_name, rp2.power) == ("detached", 0)
            assert sim.physical.in_use == 0
            assert rp2.statistics().lifecycle.boot_failures == 1
        await sim.stop()


# -- more boot paths ---------------------------------------------------------------------------


async def test_firmware_sources(tmp_path: Path) -> None:
    """bytes, a path, a callable and a parsed image all boot the same firmware."""
    path = tmp_path / "echo.elf"
    path.write_bytes(ECHO)
    calls: list[int] = []

    def produce() -> bytes:
        calls.append(1)
        return ECHO

    sources: list[FirmwareSource] = [ECHO, path, str(path), produce, load_firmware(ECHO)]
    async with RemoteprocManager() as mgr:
        for i, source in enumerate(sources):
            sim = SimPlatform(f"src{i}")
            rp = mgr.add(sim, firmware=source)
            await rp.boot()
            await echo_round_trip(rp, b"source %d" % i)
            assert rp.loaded is not None and rp.loaded.image is not None
            assert rp.loaded.image.program == "rpmsg-echo"
            await rp.shutdown()
            assert sim.physical.in_use == 0
        assert calls == [1]


async def test_two_rpmsg_vdevs_and_an_ignored_virtio_device() -> None:
    ring = VringInfo(da=FW_RSC_ADDR_ANY, align=0x1000, num=64, notifyid=RSC_NOTIFY_ID_ANY)
    entries = [
        *sample_resource_entries(),
        Vdev(id=VIRTIO_ID_RPMSG, notifyid=RSC_NOTIFY_ID_ANY, dfeatures=1, vrings=(ring, ring)),
        Vdev(id=3, notifyid=RSC_NOTIFY_ID_ANY, dfeatures=0, vrings=(ring, ring)),  # console
    ]
    sim = SimPlatform("multi")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("rpmsg-echo", entries=entries))
        await rp.boot()
        assert len(rp.buses) == 2
        assert rp.loaded is not None and rp.loaded.table_view is not None
        assert [v.notifyids for v in rp.loaded.vdevs] == [(0, 1), (2, 3)]
        _, second, console = parse_resource_table(rp.loaded.table_view).vdevs
        assert [r.notifyid for r in second.vrings] == [2, 3]
        assert (second.status, second.gfeatures) == (0x07, 1)
        # The non-rpmsg device is left alone: no rings, no ids, no status.
        assert [r.da for r in console.vrings] == [FW_RSC_ADDR_ANY] * 2
        assert [r.notifyid for r in console.vrings] == [RSC_NOTIFY_ID_ANY] * 2
        assert console.status == 0
        await echo_round_trip(rp, b"on vdev 0")  # the sim program serves vdev 0 only
        await rp.shutdown()
        assert sim.physical.in_use == 0


async def test_cancelled_boot_leaves_nothing_behind() -> None:
    class SlowStart(SimPlatform):
        async def start(self, entry: int) -> None:
            await super().start(entry)
            await anyio.sleep(10)

    sim = SlowStart("slow")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        with anyio.move_on_after(0.1) as scope:
            await rp.boot()
        assert scope.cancelled_caught
        assert (rp.state_name, rp.power) == ("offline", 0)
        assert (sim.starts, sim.stops, sim.running) == (1, 1, False)
        assert sim.physical.in_use == 0
        assert sim.iommu == {}
        assert rp.statistics().lifecycle.boot_failures == 1


async def test_leaving_the_manager_shuts_everything_down(wait_until: WaitUntil) -> None:
    events: list[str] = []
    async with RemoteprocManager() as mgr:
        a, b, c = _chain(mgr, events)
        lone = mgr.add(SimPlatform("lone"), firmware=ECHO, recovery=False)
        await c.boot()
        await c.boot()
        await lone.boot()
        assert isinstance(lone.platform, SimPlatform)
        lone.platform.crash_now()
        await wait_until(lambda: lone.state_name == "crashed")
        events.clear()
    assert events == ["stop c", "stop b", "stop a"]
    for p in (a, b, c, lone):
        assert (p.state_name, p.power) == ("offline", 0)
        assert p.platform.physical.in_use == 0
