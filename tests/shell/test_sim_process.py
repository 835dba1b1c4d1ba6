"""The simulated core in its own OS process: boot, traffic, kill -9 -> crash -> recovery."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from platforms.sim import SimPlatform
from platforms.sim.images import build_sample_image
from remoteproc.lifecycle import State
from remoteproc.manager import RemoteprocManager
from rpmsg import Channel
from rpmsg.samples import MESSAGE, SERVICE_NAME

pytestmark = [
    pytest.mark.trio,
    pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs POSIX shm"),
]


def _shm_entries() -> set[str]:
    """This test process's entries in /dev/shm (the sim names them ``aioamp-sim-PID-N``):
    other test runs on the machine create and remove their own meanwhile."""
    return {e for e in os.listdir("/dev/shm") if e.startswith(f"aioamp-sim-{os.getpid()}-")}


async def test_separate_process_runs_the_sample_and_leaves_nothing() -> None:
    before = _shm_entries()
    async with RemoteprocManager() as mgr:
        plat = SimPlatform("p0", process=True, args={"count": "50"})
        rproc = mgr.add(plat, firmware=build_sample_image())
        replies: list[bytes] = []

        async def probe(channel: Channel) -> None:
            await channel.send(MESSAGE)
            async for msg in channel:
                replies.append(msg.payload)
                if len(replies) < 50:
                    await channel.send(MESSAGE)

        rproc.register_driver(SERVICE_NAME, probe)
        await rproc.boot()
        core_pid = plat.pid
        assert core_pid is not None and core_pid != os.getpid()
        with anyio.fail_after(20):
            while len(replies) < 50 or rproc.buses[0].channels:
                await anyio.sleep(0.01)
        assert replies == [MESSAGE] * 50
        assert "echoed 50 messages" in rproc.trace(0)
        await rproc.shutdown()
        assert plat.pid is None and plat.physical.in_use == 0
        with pytest.raises(ProcessLookupError):
            os.kill(core_pid, 0)  # reaped
    assert _shm_entries() <= before


async def test_kill_9_of_the_core_process_is_a_crash_and_recovers() -> None:
    async with RemoteprocManager() as mgr:
        plat = SimPlatform("p1", process=True, args={"count": "400"})
        rproc = mgr.add(plat, firmware=build_sample_image())
        runs: list[int] = []
        progress = [0]
        done = anyio.Event()

        async def probe(channel: Channel) -> None:
            n = 0
            await channel.send(MESSAGE)
            async for _msg in channel:
                n += 1
                progress[0] = n
                if n < 400:
                    await channel.send(MESSAGE)
            runs.append(n)
            if n == 400:
                done.set()

        rproc.register_driver(SERVICE_NAME, probe)
        await rproc.boot()
        first_pid = plat.pid
        assert first_pid is not None
        with anyio.fail_after(20):
            while progress[0] < 100:
                await anyio.sleep(0.001)
        os.kill(first_pid, signal.SIGKILL)
        with anyio.fail_after(20):
            await done.wait()
        assert runs[0] < 400 and runs[-1] == 400
        stats = rproc.statistics().lifecycle
        assert (stats.crashes, stats.recoveries) == (1, 1)
        causes = [(t.old, t.new) for t in rproc.history]
        assert causes == [
            (State.OFFLINE, State.RUNNING),
            (State.RUNNING, State.CRASHED),
            (State.CRASHED, State.RUNNING),
        ]
        assert "died" in (rproc.last_crash or "") and str(first_pid) in (rproc.last_crash or "")
        assert plat.pid not in (None, first_pid)
        await rproc.shutdown()
        assert plat.physical.in_use == 0


@pytest.mark.parametrize("mode", [[], ["--in-process"], ["--loopback"]])
def test_aioamp_demo_exits_0(mode: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aioamp", "demo", "--quiet", *mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "100/100 echoes, payloads ok" in result.stdout
    if not mode:
        assert "its own process (pid" in result.stdout
        assert "sim0: running -> offline (shutdown)" in result.stdout
        assert "echoed 100 messages, withdrawing" in result.stdout


async def _crash_with_a_logged_traceback(name: str) -> int:
    """Boot rpmsg-echo with a count it cannot parse: the core process logs the exception
    (``platforms.sim``, ERROR, with a traceback) and crashes. Returns the core's pid."""
    async with RemoteprocManager() as mgr:
        plat = SimPlatform(name, process=True, args={"count": "not-a-number"})
        rproc = mgr.add(plat, firmware=build_sample_image("rpmsg-echo"), recovery=False)
        await rproc.boot()
        pid = plat.pid
        assert pid is not None and pid != os.getpid()
        with anyio.fail_after(20):
            while rproc.state is not State.CRASHED:
                await anyio.sleep(0.01)
        await rproc.shutdown()
    return pid


async def test_core_process_logs_go_through_the_parents_logging(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The child's log record reaches this process's handlers (caplog), with its level, its
    logger's name, its traceback, its extra fields and the child's pid, instead of the child's
    own stderr."""
    caplog.set_level(logging.WARNING)
    pid = await _crash_with_a_logged_traceback("plog")
    records = [r for r in caplog.records if r.getMessage() == "plog: firmware program raised"]
    assert len(records) == 1
    record = records[0]
    assert (record.name, record.levelno, record.process) == (
        "aioamp.platform.sim",
        logging.ERROR,
        pid,
    )
    assert record.exc_text is not None and "ValueError: invalid literal for int()" in (
        record.exc_text
    )
    assert record.processor == "plog"  # type: ignore[attr-defined]
    assert "ValueError" in record.reason  # type: ignore[attr-defined]
    assert "firmware program raised" not in capfd.readouterr().err


async def test_core_process_logs_obey_the_parents_levels(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """With ``platforms.sim`` set to CRITICAL here, the child's ERROR record is not emitted
    (neither through our handlers nor on the child's stderr)."""
    caplog.set_level(logging.WARNING)
    sim_log = logging.getLogger("aioamp.platform.sim")
    level = sim_log.level
    sim_log.setLevel(logging.CRITICAL)
    try:
        await _crash_with_a_logged_traceback("pquiet")
    finally:
        sim_log.setLevel(level)
    assert not [r for r in caplog.records if "firmware program raised" in r.getMessage()]
    # This process's own records still are: the crash, from the remoteproc logger.
    assert any(
        r.name.startswith("aioamp.remoteproc") and "pquiet" in r.getMessage()
        for r in caplog.records
    )
    assert "firmware program raised" not in capfd.readouterr().err


async def test_host_kicks_wait_while_the_core_process_does_not_read() -> None:
    """A core that is not scheduled (SIGSTOP) reads no kicks: once the doorbell socket is full
    the host's kicks wait in the doorbell, in order, instead of being dropped (a dropped kick
    for one vring behind a socket full of kicks for the other would never be delivered), and
    reach the core when it runs again."""
    async with RemoteprocManager() as mgr:
        plat = SimPlatform("pstop", process=True, args={"count": "2"})
        rproc = mgr.add(plat, firmware=build_sample_image())
        channels: list[Channel] = []

        async def probe(channel: Channel) -> None:
            channels.append(channel)

        rproc.register_driver(SERVICE_NAME, probe)
        await rproc.boot()
        with anyio.fail_after(20):
            while not channels:
                await anyio.sleep(0.01)
        pid = plat.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(2000):  # ~10 kB of frames: more than the socket holds
                plat.kick(0)
            assert plat.dropped_kicks == 0
        finally:
            os.kill(pid, signal.SIGCONT)
        channel = channels[0]
        with anyio.fail_after(20):
            for _ in range(2):
                await channel.send(MESSAGE)
                assert (await channel.recv()).payload == MESSAGE
        assert plat.dropped_kicks == 0
        await rproc.shutdown()
