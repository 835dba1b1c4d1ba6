"""OMAP4 mailbox: the register model (every behaviour the TRM describes) and the driver on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from conftest import within_loop_turns

from platforms.pandaboard.hw import Mailbox, MailboxConfig, MailboxError, OmapMessage, UioDevice
from platforms.pandaboard.model import FakeUio, MailboxModel, ModelBus, ModelError

pytestmark = pytest.mark.trio  # also run under trio (tests/conftest.py)

CFG = MailboxConfig()
HOST, IPU = 0, 2


def test_message_values_match_omap_remoteproc_h() -> None:
    assert OmapMessage.READY == 0xFFFFFF00
    assert OmapMessage.CRASH == 0xFFFFFF02
    assert OmapMessage.ECHO_REQUEST == 0xFFFFFF03
    assert OmapMessage.ECHO_REPLY == 0xFFFFFF04
    assert OmapMessage.SUSPEND_CANCEL == 0xFFFFFF13


def test_fifo_depth_status_and_pop_order() -> None:
    m = MailboxModel(CFG)
    assert m.read32(CFG.fifostatus(0)) == 0 and m.read32(CFG.msgstatus(0)) == 0
    for v in range(1, 5):
        m.write32(CFG.message(0), v)
        assert m.read32(CFG.msgstatus(0)) == v
    assert m.read32(CFG.fifostatus(0)) & CFG.fifostatus_full
    m.write32(CFG.message(0), 99)  # full: lost
    assert m.overflows == 1 and m.read32(CFG.msgstatus(0)) == 4
    assert [m.read32(CFG.message(0)) for _ in range(4)] == [1, 2, 3, 4]
    assert m.read32(CFG.fifostatus(0)) == 0 and m.read32(CFG.msgstatus(0)) == 0
    assert m.read32(CFG.message(0)) == 0 and m.underflows == 1
    assert m.read32(CFG.msgstatus(1)) == 0  # fifos are independent


def test_newmsg_latched_write_one_to_clear_and_level() -> None:
    m = MailboxModel(CFG)
    new0 = CFG.newmsg_bit(0)
    m.write32(CFG.message(0), 7)
    assert m.read32(CFG.irqstatus_raw(HOST)) & new0
    assert m.read32(CFG.irqstatus_raw(IPU)) & new0  # every user sees the raw event
    m.write32(CFG.irqstatus_clr(HOST), new0)
    assert m.read32(CFG.irqstatus_raw(HOST)) & new0  # still not empty: re-asserted
    m.read32(CFG.message(0))
    m.write32(CFG.message(0), 8)
    m.read32(CFG.message(0))  # empty again, but the event stays latched
    assert m.read32(CFG.irqstatus_raw(HOST)) & new0
    m.write32(CFG.irqstatus_clr(HOST), new0)
    assert not m.read32(CFG.irqstatus_raw(HOST)) & new0
    assert m.read32(CFG.irqstatus_raw(IPU)) & new0  # per user


def test_notfull_bit_and_enable_set_clear_and_masked_status() -> None:
    m = MailboxModel(CFG)
    nf = CFG.notfull_bit(1)
    assert nf == 1 << 3 and CFG.newmsg_bit(1) == 1 << 2
    for v in range(4):
        m.write32(CFG.message(1), v)
    assert not m.read32(CFG.irqstatus_raw(HOST)) & nf
    assert m.read32(CFG.irqstatus_clr(HOST)) == 0  # nothing enabled
    m.write32(CFG.irqenable_set(HOST), nf)
    assert m.read32(CFG.irqenable_set(HOST)) == nf == m.read32(CFG.irqenable_clr(HOST))
    m.read32(CFG.message(1))
    assert m.read32(CFG.irqstatus_clr(HOST)) == nf
    m.write32(CFG.irqenable_clr(HOST), nf)
    assert m.read32(CFG.irqenable_set(HOST)) == 0 and m.read32(CFG.irqstatus_clr(HOST)) == 0


def test_interrupt_line_per_user() -> None:
    m = MailboxModel(CFG)
    levels: dict[int, list[bool]] = {HOST: [], IPU: []}
    m.listen(HOST, levels[HOST].append)
    m.listen(IPU, levels[IPU].append)
    m.write32(CFG.irqenable_set(HOST), CFG.newmsg_bit(1))
    m.write32(CFG.message(1), 5)
    assert m.lines == [True, False, False]
    m.read32(CFG.message(1))
    m.write32(CFG.irqstatus_clr(HOST), CFG.newmsg_bit(1))
    assert levels == {HOST: [False, True, False], IPU: [False]}


def test_softreset_and_revision_and_bad_offsets() -> None:
    m = MailboxModel(CFG)
    m.write32(CFG.message(2), 1)
    m.write32(CFG.irqenable_set(HOST), 0xFFFF)
    m.write32(CFG.sysconfig, CFG.sysconfig_softreset)
    assert m.read32(CFG.sysconfig) & CFG.sysconfig_softreset == 0  # self-clearing
    assert m.read32(CFG.msgstatus(2)) == 0 and m.read32(CFG.irqenable_set(HOST)) == 0
    assert m.read32(CFG.revision) != 0
    with pytest.raises(ModelError):
        m.read32(0x1F0)
    with pytest.raises(ModelError):
        m.read32(CFG.message(8))


def test_register_windows_refuse_slices(tmp_path: object) -> None:
    bus = ModelBus(0x1000_0000, 0x1000)
    try:
        bus.add_device(CFG.base, CFG.window, MailboxModel(CFG), "mailbox")
        regs = bus.map(CFG.base, CFG.window)
        with pytest.raises(ModelError):
            regs.read(CFG.message(0), 4)  # a slice could pop two messages
        with pytest.raises(ModelError):
            regs.read32(0x41)
        regs.write32(CFG.message(0), 3)
        assert bus.writes == [(CFG.base + CFG.message(0), 3)]
    finally:
        bus.close()


# -- the driver against the model ---------------------------------------------------------------


@asynccontextmanager
async def driver() -> AsyncIterator[tuple[Mailbox, MailboxModel, FakeUio]]:
    model = MailboxModel(CFG)
    bus = ModelBus(0x1000_0000, 0x1000)
    bus.add_device(CFG.base, CFG.window, model, "mailbox")
    uio = FakeUio("mailbox")
    model.listen(CFG.user, uio.set_line)
    mbox = Mailbox(bus.map(CFG.base, CFG.window), UioDevice("/dev/uio0", opener=uio.opener), CFG)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(uio.serve)
            tg.start_soon(mbox.serve)
            await anyio.sleep(0.01)
            yield mbox, model, uio
            tg.cancel_scope.cancel()
    finally:
        mbox.uio.close()
        uio.close()
        bus.close()


async def test_receive_drains_acknowledges_and_unmasks() -> None:
    got: list[int] = []
    async with driver() as (mbox, model, uio):
        mbox.subscribe(1, got.append)
        for v in (1, 2, 3):
            model.post(1, v)
        with anyio.fail_after(2):
            while len(got) < 3:
                await anyio.sleep(0.005)
        await anyio.sleep(0.02)
        assert got == [1, 2, 3]
        assert model.read32(CFG.msgstatus(1)) == 0
        assert not model.status(CFG.user) and not model.lines[CFG.user]
        assert uio.enabled  # unmasked again
        model.post(1, 4)
        with anyio.fail_after(2):
            while len(got) < 4:
                await anyio.sleep(0.005)
        assert mbox.statistics().received == 4


async def test_full_fifo_waits_without_spinning_and_notfull_wakes() -> None:
    async with driver() as (mbox, model, _uio):
        for v in range(4):
            assert mbox.try_send(0, v)
        assert not mbox.try_send(0, 99)
        done = anyio.Event()

        async def sender() -> None:
            await mbox.send(0, 4)
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            # The sender, waiting for room, enables NOTFULL.
            await within_loop_turns(lambda: bool(model.enabled[CFG.user] & CFG.notfull_bit(0)))
            reads = len(model.reads)
            await anyio.sleep(0.2)  # a poller (by timer or by yielding) reads FIFOSTATUS here
            assert model.reads[reads:] == []  # blocked on NOTFULL, not polling
            assert not done.is_set()
            assert model.read32(CFG.message(0)) == 0  # the remote pops one
            with anyio.fail_after(2):
                await done.wait()
        assert [model.read32(CFG.message(0)) for _ in range(4)] == [1, 2, 3, 4]
        assert not model.enabled[CFG.user] & CFG.notfull_bit(0)  # disabled again
        assert mbox.statistics().send_waits == 1


async def test_missed_interrupt_count_jump_is_counted_and_drained() -> None:
    got: list[int] = []
    async with driver() as (mbox, model, uio):
        mbox.subscribe(1, got.append)
        model.post(1, 9)  # the first read only sets the baseline count
        with anyio.fail_after(2):
            while len(got) < 1:
                await anyio.sleep(0.005)
        uio.skip(3)
        model.post(1, 10)
        model.post(1, 11)
        with anyio.fail_after(2):
            while len(got) < 3:
                await anyio.sleep(0.005)
        assert got == [9, 10, 11]
        assert mbox.statistics().missed_interrupts == 3
        assert mbox.uio.count == uio.count


async def test_unclaimed_and_flush() -> None:
    async with driver() as (mbox, model, _uio):
        model.post(5, 1)
        model.post(5, 2)
        assert mbox.flush(5) == [1, 2]
        assert mbox.statistics().flushed == 2
        with pytest.raises(MailboxError):
            mbox.subscribe(8, print)
