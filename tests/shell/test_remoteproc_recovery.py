"""Recovery as callers see it: wait_for_service across a recovery, the recovery policy's
limit and backoff on a real (simulated) crash loop, and the log it leaves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from conftest import WaitUntil

from platforms.sim import Faults, FirmwareContext, SimPlatform, register_program
from platforms.sim.images import build_sample_image
from remoteproc.errors import CrashedError, CrashReport
from remoteproc.manager import RemoteprocManager
from remoteproc.platform import CrashKind
from remoteproc.recovery import RecoveryPolicy
from remoteproc.rproc import RemoteProc
from rpmsg.errors import BusClosedError, RpmsgTimeoutError
from rpmsg.samples import MESSAGE, SERVICE_NAME

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

CLIENT = build_sample_image("rpmsg-client-sample")
CRASH_LOOP = Faults(crash_on_start=True, one_shot=False)  # every start crashes
#: Fast enough for tests; the limit and the growth are what they check.
QUICK = RecoveryPolicy(max_consecutive=3, backoff_initial=0.01, backoff_factor=2.0)
#: From the second crash on, an hour's wait: a test sees the processor mid-backoff.
PATIENT = RecoveryPolicy(max_consecutive=None, backoff_initial=3600.0, backoff_max=3600.0)


@asynccontextmanager
async def _crash_loop(
    recovery: bool | RecoveryPolicy,
) -> AsyncIterator[tuple[RemoteProc, SimPlatform]]:
    """A booted processor whose every start crashes, in a manager left on exit."""
    sim = SimPlatform("p", faults=CRASH_LOOP)
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT, recovery=recovery)
        await rp.boot()
        yield rp, sim


@pytest.mark.parametrize("process", [False, True], ids=["in-process", "process"])
async def test_wait_for_service_waits_across_the_recovery_of_a_crash_at_start(
    process: bool,
) -> None:
    """Issue 10 item 2: this raised ExceptionGroup[BusClosedError] in 16 of 16 tries."""
    sim = SimPlatform("p", process=process, faults=Faults(crash_on_start=True))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT)
        await rp.boot()
        channel = await rp.wait_for_service(SERVICE_NAME, timeout=20)
        stats = rp.statistics().lifecycle
        assert (stats.crashes, stats.recoveries, rp.state_name) == (1, 1, "running")
        assert channel in rp.buses[0].channels  # the recovered core's channel
        await channel.send(MESSAGE)
        assert (await channel.recv(timeout=10)).payload == MESSAGE
        await rp.shutdown()


async def test_wait_for_service_raises_crashed_error_when_recovery_is_off() -> None:
    sim = SimPlatform("p", faults=Faults(crash_on_start=True))
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=CLIENT, recovery=False)
        await rp.boot()
        with pytest.raises(CrashedError, match="not recovering: recovery is disabled") as info:
            await rp.wait_for_service(SERVICE_NAME, timeout=20)
        report = info.value.__cause__
        assert isinstance(report, CrashReport)
        assert (report.processor, report.kind) == ("p", CrashKind.WATCHDOG)
        assert report.detail == "injected crash on start"
        # Asked again once crashed: at once, the same way.
        with pytest.raises(CrashedError) as again:
            await rp.wait_for_service(SERVICE_NAME)
        assert isinstance(again.value.__cause__, CrashReport)
        await rp.shutdown()


async def test_a_crash_loop_gives_up_at_the_limit_and_stays_crashed() -> None:
    async with _crash_loop(QUICK) as (rp, sim):
        with pytest.raises(CrashedError, match=r"gave up after 3 consecutive") as info:
            await rp.wait_for_service(SERVICE_NAME, timeout=30)
        assert isinstance(info.value.__cause__, CrashReport)
        stats = rp.statistics().lifecycle
        assert (stats.crashes, stats.recoveries, stats.recovery_give_ups) == (4, 3, 1)
        assert (rp.state_name, rp.power, sim.starts) == ("crashed", 1, 4)
        assert rp.last_crash == "watchdog: injected crash on start"
        # Nothing restarts it by itself; users of its buses get the same clear error.
        await anyio.sleep(0.05)
        assert (sim.starts, rp.state_name) == (4, "crashed")
        (bus,) = rp.buses
        with pytest.raises(BusClosedError) as closed:
            await bus.create_endpoint().send_to(0x400, b"anyone?")
        assert isinstance(closed.value.__cause__, CrashedError)
        assert isinstance(closed.value.__cause__.__cause__, CrashReport)
        with pytest.raises(CrashedError, match="gave up"):
            await rp.boot()
        # A manual recover() is a new streak: the loop runs again, and stops again.
        sim.faults = Faults(crash_on_start=True)  # one more crash, then a clean start
        await rp.recover()
        channel = await rp.wait_for_service(SERVICE_NAME, timeout=20)
        await channel.send(MESSAGE)
        assert (await channel.recv(timeout=10)).payload == MESSAGE
        await rp.shutdown()
        assert (rp.state_name, sim.physical.in_use) == ("offline", 0)


async def test_recoveries_of_a_crash_at_start_firmware_are_bounded_by_default() -> None:
    """Issue 10 item 3: 5,000-10,000 recoveries in 2 s before. The default policy recovers at
    most 5 times in a row, however fast the machine."""
    async with _crash_loop(True) as (rp, sim):
        await anyio.sleep(0.3)
        limit = RecoveryPolicy().max_consecutive
        assert limit is not None and rp.statistics().lifecycle.recoveries <= limit
        await rp.shutdown()  # also during a backoff: it does not wait for it
        assert (rp.state_name, sim.physical.in_use) == ("offline", 0)


def _most_recoveries_within(policy: RecoveryPolicy, seconds: float) -> int:
    """The most recoveries one streak can reach in ``seconds``: the backoffs alone add up."""
    waited, count = 0.0, 0
    while (delay := policy.delay(count + 1)) is not None and waited + delay <= seconds:
        waited += delay
        count += 1
    return count


async def test_the_backoff_spaces_recoveries_over_a_period() -> None:
    """Without a limit, a backoff of 20 ms doubling to 80 ms allows a handful of recoveries in
    0.3 s (the 7th waits 0 + 20 + 40 + 80 * 4 ms = 0.38 s), however fast the machine. The
    bound is computed for the time that really passed (a loaded machine may oversleep)."""
    policy = RecoveryPolicy(
        max_consecutive=None, backoff_initial=0.02, backoff_factor=2.0, backoff_max=0.08
    )
    assert _most_recoveries_within(policy, 0.35) == 6
    async with RemoteprocManager() as mgr:
        rp = mgr.add(SimPlatform("p", faults=CRASH_LOOP), firmware=CLIENT, recovery=policy)
        started = anyio.current_time()
        await rp.boot()
        await anyio.sleep(0.3)
        recoveries = rp.statistics().lifecycle.recoveries
        assert 1 <= recoveries <= _most_recoveries_within(policy, anyio.current_time() - started)
        await rp.shutdown()


async def test_wait_for_service_times_out_plainly_during_a_long_backoff(
    wait_until: WaitUntil,
) -> None:
    async with _crash_loop(PATIENT) as (rp, sim):
        await wait_until(lambda: rp.statistics().lifecycle.crashes == 2)  # now in the 1 h backoff
        with pytest.raises(RpmsgTimeoutError, match=r"not announced in 0\.2 s"):
            await rp.wait_for_service(SERVICE_NAME, timeout=0.2)
        assert rp.state_name == "crashed"
        # The last shutdown abandons the backoff instead of waiting an hour for it.
        with anyio.fail_after(30):
            await rp.shutdown()
        stats = rp.statistics().lifecycle
        assert (rp.state_name, stats.recoveries, stats.recovery_failures) == ("offline", 1, 1)
        assert "came during the backoff" in (stats.last_failure or "")
        assert sim.physical.in_use == 0


async def test_leaving_the_manager_abandons_a_backoff(wait_until: WaitUntil) -> None:
    with anyio.fail_after(30):
        async with _crash_loop(PATIENT) as (rp, sim):
            await rp.boot()  # two power references: closing drops both
            await wait_until(lambda: rp.statistics().lifecycle.crashes == 2)
    assert (rp.state_name, rp.power, sim.physical.in_use) == ("offline", 0, 0)
    # Given way to the close, not cancelled by the 30 s guard (the close itself is shielded).
    assert "came during the backoff" in (rp.statistics().lifecycle.last_failure or "")


async def test_a_shutdown_that_is_not_the_last_leaves_the_backoff_alone(
    wait_until: WaitUntil,
) -> None:
    policy = RecoveryPolicy(max_consecutive=None, backoff_initial=0.2, backoff_max=0.2)
    async with _crash_loop(policy) as (rp, _sim):
        await rp.boot()
        await wait_until(lambda: rp.statistics().lifecycle.crashes == 2)
        await rp.shutdown()  # waits for the recovery, which goes on
        stats = rp.statistics().lifecycle
        assert (stats.recoveries >= 2, stats.recovery_failures, rp.power) == (True, 0, 1)
        await rp.shutdown()


# -- the log ----------------------------------------------------------------------------------


def _problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_each_crash_is_one_log_line_with_its_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with _crash_loop(QUICK) as (rp, _sim):
        with pytest.raises(CrashedError):
            await rp.wait_for_service(SERVICE_NAME, timeout=30)
        await rp.shutdown()
    crash_lines = [r for r in _problems(caplog) if r.name == "aioamp.remoteproc"]
    assert [r.getMessage() for r in crash_lines] == [
        "p: crashed: watchdog: injected crash on start; recovering",
        "p: crashed (crash 2 in a row): watchdog: injected crash on start; recovering in 0.01 s",
        "p: crashed (crash 3 in a row): watchdog: injected crash on start; recovering in 0.02 s",
        "p: crashed (crash 4 in a row): watchdog: injected crash on start; not recovering: "
        "gave up after 3 consecutive recoveries (RecoveryPolicy.max_consecutive=3)",
    ]
    assert [r.levelname for r in crash_lines] == ["WARNING"] * 3 + ["ERROR"]
    # No traceback anywhere, and nothing else warns: the failed bus says so at INFO only (its
    # users get BusClosedError; the crash line above is the one report).
    assert not [r for r in caplog.records if r.exc_info]
    assert not [r for r in _problems(caplog) if r.name != "aioamp.remoteproc"]
    closed = [r for r in caplog.records if "bus closed" in r.getMessage()]
    assert [(r.name, r.levelname) for r in closed] == [("aioamp.rpmsg", "INFO")]


@pytest.mark.usefixtures("isolated_registry")
async def test_a_raising_program_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    async def buggy(ctx: FirmwareContext) -> None:
        raise ZeroDivisionError("division by zero in the firmware")

    register_program("test-buggy", buggy)
    sim = SimPlatform("p")
    async with RemoteprocManager() as mgr:
        rp = mgr.add(sim, firmware=build_sample_image("test-buggy"), recovery=QUICK)
        await rp.boot()
        with pytest.raises(CrashedError, match="ZeroDivisionError"):
            await rp.wait_for_service(SERVICE_NAME, timeout=30)
        await rp.shutdown()
    tracebacks = [r for r in _problems(caplog) if r.exc_info]
    assert [(r.name, r.getMessage()) for r in tracebacks] == [
        ("aioamp.platform.sim", "p: firmware program raised")
    ]
    assert sum(r.name == "aioamp.remoteproc" for r in _problems(caplog)) == 4  # one line per crash


@pytest.mark.parametrize("how", ["dependent-shutdown", "manager-exit"])
async def test_a_dependency_in_backoff_does_not_hold_its_group_up(
    how: str, wait_until: WaitUntil
) -> None:
    """The crash handler of ``dep`` holds its dependent's lock through the backoff too: the
    dependent's last shutdown, or leaving the manager, cuts that backoff short."""
    echo = build_sample_image("rpmsg-echo")
    with anyio.fail_after(30):  # the backoff is an hour
        async with RemoteprocManager() as mgr:
            dep = mgr.add(SimPlatform("dep", faults=CRASH_LOOP), firmware=CLIENT, recovery=PATIENT)
            top = mgr.add(SimPlatform("top"), firmware=echo, depends_on=[dep])
            await top.boot()
            await wait_until(lambda: dep.statistics().lifecycle.crashes == 2)  # in the backoff
            if how == "dependent-shutdown":
                await top.shutdown()
                assert (top.state_name, dep.state_name) == ("offline", "offline")
    for proc in (dep, top):
        assert (proc.state_name, proc.platform.physical.in_use) == ("offline", 0)
    assert "came during the backoff" in (dep.statistics().lifecycle.last_failure or "")
