"""Traffic helpers the conformance tests share: buffer counts, payloads, a stalled receiver."""

from __future__ import annotations

from conftest import NO_DROPS as NO_DROPS
from conftest import ROLES as ROLES
from conftest import WaitUntil as WaitUntil
from conftest import other as other
from peers import payload

from rpmsg import Endpoint, Overflow, RpmsgBus
from transports import SharedLayout, Transport

#: What the tests ask for where a backend lets them choose: 8-entry rings, 4 buffers each way
#: (small, so that filling every buffer is cheap). ``openamp:`` ignores it.
LAYOUT = SharedLayout(num=8, buffer_count=8)
#: Generous deadlines: nothing here is timed, these only stop a hung test.
OPEN_TIMEOUT = 15.0
WAIT = 10.0
#: Bytes of one name-service message (struct rpmsg_ns_msg: char name[32]; le32 addr, flags).
NS_MSG_SIZE = 40


def capacity(transport: Transport, layout: SharedLayout = LAYOUT) -> int:
    """Messages one side can have in flight towards the other: the host carves
    ``min(512, 2 x num)`` buffers from its pool (drivers/rpmsg/virtio_rpmsg_bus.c), half for
    receiving and half for sending, at most ``num`` on one ring. The pool is the transport's
    where it knows it (the host's end always; loop, shm and openamp tell both ends), else the
    host's side of the link: the ``layout`` the test gave it (a vhost-user backend learns no
    pool; its frontend lays its memory out as its URL says)."""
    num = transport.vdev.vring(0).num
    pool_size = layout.pool_size if transport.pool is None else transport.pool.size
    count = min(512, 2 * num, pool_size // transport.buffer_size)
    return min(count // 2, num)


async def stall_receiver(
    sender: RpmsgBus, receiver: RpmsgBus, wait_until: WaitUntil
) -> tuple[Endpoint, Endpoint]:
    """A service ``sink`` on ``receiver`` with a 1-message queue (Overflow.BLOCK), made full
    by two messages: one queued, one held. The receiver then drains nothing more until the
    sink is read, so every buffer the sender fills next stays in flight. Returns the sink and
    the sender's endpoint bound to it (both messages were ``payload(0)``, ``payload(1)``)."""
    sink = await receiver.create_service("sink", maxsize=1, overflow=Overflow.BLOCK)
    ep = (await sender.wait_for_service("sink", timeout=WAIT)).endpoint
    for seq in range(2):
        await ep.send(payload(seq))
    await wait_until(lambda: sink.statistics().queue_stalls == 1, timeout=WAIT)
    return sink, ep
