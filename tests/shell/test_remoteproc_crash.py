"""Crashes and hangs of a simulated core: automatic and manual recovery, errors seen by senders."""

from __future__ import annotations

import anyio
import pytest
from conftest import WaitUntil, echo_round_trip, labels

from platforms.sim import Faults, SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.errors import CrashedError, StateError
from remoteproc.lifecycle import Transition
from remoteproc.manager import RemoteprocManager
from remoteproc.platform import CrashKind
from rpmsg.channel import Channel
from rpmsg.errors import BusClosedError, RpmsgTimeoutError
from rpmsg.samples import MESSAGE

from .conftest import counting_client

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

ECHO = build_sample_image("rpmsg-echo")
CLIENT = build_sample_image("rpmsg-client-sample")


async def test_crash_during_client_sample_is_recovered() -> None:
    sim = SimPlatform("sim0", faults=Faults(crash_after_messages=30))
    runs: list[int] = []
    done = anyio.Event()
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT)
        rp.register_driver("rpmsg-client-sample", counting_client(runs, done))
        seen: list[Transition] = []
        async with rp.transitions() as stream:
            await rp.boot()
            in_use = sim.physical.in_use
            with anyio.fail_after(10):
                await done.wait()
                while len(seen) < 3:
                    seen.append(await anext(stream))
        # The first run saw 29 echoes: the core died handling message 30. The driver was
        # probed again on the recovered core's new channel and completed.
        assert runs == [29, 100]
        assert labels(seen) == [
            ("offline", "running"),
            ("running", "crashed"),
            ("crashed", "running"),
        ]
        assert [t.cause for t in seen] == [
            "boot",
            "crash: fatal error: injected after 30 messages",
            "recovery",
        ]
        stats = rp.statistics()
        assert (stats.lifecycle.crashes, stats.lifecycle.recoveries) == (1, 1)
        assert (stats.crash_reports, stats.lifecycle.power) == (1, 1)
        assert (sim.starts, sim.stops) == (2, 1)
        assert sim.physical.in_use == in_use  # recovery reuses the memory it had
        assert sim.faults == Faults()  # one-shot faults are consumed
        # The trace buffer was cleared on reload: it holds the new run's log only.
        assert "fatal error" not in rp.trace(0)
        assert "echoed 100 messages" in rp.trace(0)
        await rp.shutdown()
        assert sim.physical.in_use == 0


async def test_hang_makes_sends_time_out() -> None:
    sim = SimPlatform("sim0", faults=Faults(hang_after_messages=5))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO, send_timeout=0.5)
        await rp.boot()
        channel = await rp.wait_for_service("rpmsg-echo", timeout=5)
        for i in range(4):
            await channel.send(b"ping %d" % i)
            assert (await channel.recv(timeout=2)).payload == b"ping %d" % i
        await channel.send(b"the last one")  # the core hangs handling it
        with pytest.raises(RpmsgTimeoutError):
            await channel.recv(timeout=0.2)
        assert "hanging after 5 messages (injected)" in rp.trace(0)
        # The hung core stops freeing buffers: once they are all in flight a send waits
        # for send_timeout, then fails.
        sent = 0
        with anyio.fail_after(20):
            with pytest.raises(RpmsgTimeoutError, match=r"no tx buffer freed within 0\.5 s"):
                while sent < 5000:
                    await channel.send(b"x")
                    sent += 1
        assert 0 < sent < 5000
        stats = rp.buses[0].statistics()
        assert stats.send_timeouts == 1
        assert rp.state_name == "running"  # a hang is not a crash (no watchdog in the sim)
        await rp.shutdown()
        assert rp.state_name == "offline"
        assert sim.physical.in_use == 0


async def test_crash_without_recovery(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0", faults=Faults(crash_after_messages=30))
    held: list[Channel] = []
    probe_errors: list[BaseException] = []
    replies: list[int] = []

    async def probe(channel: Channel) -> None:
        held.append(channel)
        n = 0
        try:
            await channel.send(MESSAGE)
            async for _msg in channel:
                n += 1
                await channel.send(MESSAGE)
        except BaseException as exc:
            probe_errors.append(exc)
            raise
        finally:
            replies.append(n)

    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT, recovery=False)
        rp.register_driver("rpmsg-client-sample", probe)
        await rp.boot()
        await wait_until(lambda: rp.state_name == "crashed")
        await wait_until(lambda: bool(replies))
        assert replies == [29]
        assert rp.last_crash == "fatal error: injected after 30 messages"
        assert labels(rp.history) == [("offline", "running"), ("running", "crashed")]
        # The driver's iteration ended with the bus error...
        (err,) = probe_errors
        assert isinstance(err, BusClosedError)
        assert isinstance(err.__cause__, CrashedError)
        # ...and a sender still holding the channel's endpoint gets the same clear error.
        (channel,) = held
        with pytest.raises(BusClosedError) as info:
            await channel.endpoint.send(b"anyone there?")
        assert isinstance(info.value.__cause__, CrashedError)
        assert "sim0 crashed: fatal error: injected after 30 messages" in str(info.value.__cause__)
        assert isinstance(info.value, ConnectionError)
        with pytest.raises(BusClosedError):
            await channel.send(b"again")

        # Nothing restarts it: boot() refuses, the power reference stays.
        with pytest.raises(CrashedError, match="crashed and is not recovering"):
            await rp.boot()
        assert (rp.state_name, rp.power, sim.starts) == ("crashed", 1, 1)
        stats = rp.statistics().lifecycle
        assert (stats.crashes, stats.recoveries) == (1, 0)
        assert sim.physical.in_use > 0  # a crashed core keeps its memory (for a dump)

        await rp.shutdown()
        assert (rp.state_name, rp.power) == ("offline", 0)
        assert sim.stops == 1
        assert sim.physical.in_use == 0
        assert sim.iommu == {}
        assert rp.buses == []


async def test_manual_recover(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO, recovery=False)
        with pytest.raises(StateError, match="only a crashed processor can be recovered"):
            await rp.recover()
        await rp.boot()
        await echo_round_trip(rp, b"before")
        old = await rp.wait_for_service("rpmsg-echo", timeout=5)
        sim.crash_now(CrashKind.WATCHDOG, "watchdog bark")
        await wait_until(lambda: rp.state_name == "crashed")
        assert rp.last_crash == "watchdog: watchdog bark"
        with pytest.raises(BusClosedError):
            await old.send(b"lost")
        with pytest.raises(StateError, match="only a running or attached processor"):
            await rp.detach()

        await rp.recover()
        assert rp.state_name == "running"
        assert rp.statistics().lifecycle.recoveries == 1
        assert (sim.starts, sim.stops) == (2, 1)
        await echo_round_trip(rp, b"after manual recovery")
        assert [(t.new.label, t.cause) for t in rp.history] == [
            ("running", "boot"),
            ("crashed", "crash: watchdog: watchdog bark"),
            ("running", "recovery"),
        ]
        # Recovery stays disabled: the next crash stops there again.
        sim.crash_now()
        await wait_until(lambda: rp.state_name == "crashed")
        rp.recovery = True
        await rp.recover()
        await echo_round_trip(rp, b"twice")
        await rp.shutdown()
        assert sim.physical.in_use == 0


async def test_recovery_can_be_enabled_at_run_time(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO, recovery=False)
        assert rp.recovery is False
        await rp.boot()
        rp.recovery = True
        sim.crash_now()
        await wait_until(lambda: rp.statistics().lifecycle.recoveries == 1)
        assert rp.state_name == "running"
        await echo_round_trip(rp, b"auto")
        await rp.shutdown()


async def test_crash_on_start_is_recovered(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0", faults=Faults(crash_on_start=True))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        await rp.boot()
        await wait_until(lambda: rp.statistics().lifecycle.recoveries == 1)
        assert rp.state_name == "running"
        assert rp.last_crash == "watchdog: injected crash on start"
        assert (sim.starts, sim.stops) == (2, 1)
        await echo_round_trip(rp, b"second start")
        await rp.shutdown()
        assert sim.physical.in_use == 0


async def test_crash_on_start_without_recovery(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0", faults=Faults(crash_on_start=True))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO, recovery=False)
        await rp.boot()  # the start itself succeeded; the core dies right after
        await wait_until(lambda: rp.state_name == "crashed")
        assert rp.last_crash == "watchdog: injected crash on start"
        with pytest.raises(CrashedError):
            await rp.boot()
        await rp.shutdown()
        assert rp.state_name == "offline"
        assert sim.physical.in_use == 0
        # A fresh boot runs clean: the one-shot fault was consumed.
        await rp.boot()
        await echo_round_trip(rp, b"clean boot")
        assert rp.statistics().lifecycle.crashes == 1
        await rp.shutdown()


async def test_persistent_crash_on_start_keeps_failing_without_recovery_loop(
    wait_until: WaitUntil,
) -> None:
    """Faults that are not one-shot fire on every start; with recovery off the core stays
    crashed and the crash is counted once per start."""
    sim = SimPlatform("sim0", faults=Faults(crash_on_start=True, one_shot=False))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO, recovery=False)
        await rp.boot()
        await wait_until(lambda: rp.state_name == "crashed")
        await rp.recover()
        await wait_until(lambda: rp.statistics().lifecycle.crashes == 2)
        assert rp.state_name == "crashed"
        assert sim.starts == 2
        await rp.shutdown()
        assert sim.physical.in_use == 0


async def test_crash_report_while_offline_is_spurious(wait_until: WaitUntil) -> None:
    sim = SimPlatform("sim0")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=ECHO)
        sim.crash_now()
        await wait_until(lambda: rp.statistics().lifecycle.spurious_crashes == 1)
        assert rp.state_name == "offline"
        assert rp.statistics().lifecycle.crashes == 0
        assert list(rp.history) == []
