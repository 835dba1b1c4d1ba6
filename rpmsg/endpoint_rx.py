"""An endpoint's receive side, per message: delivery into its queue or callback, the take,
and the wait for the next one (the theory of operation is :mod:`rpmsg.endpoint`'s).

Functions of the endpoint rather than its methods so that mypyc compiles them
(transports/_compiled.py) while :class:`~rpmsg.endpoint.Endpoint` stays interpreted: a
compiled method would check its arguments' annotated types itself and raise a bare TypeError
where the endpoint's public methods raise the library's typed errors. The receive passes call
:func:`deliver` directly, and ``recv`` :func:`wait_queued` and :func:`pop`: no interpreted
frame per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .message import Message, Overflow

if TYPE_CHECKING:
    from .endpoint import Endpoint

#: A received message as the rings hand it over: ``(src, dst, flags, payload)``.
RawMessage = tuple[int, int, int, bytes]


def deliver(ep: Endpoint, msg: RawMessage) -> bool:
    """Queue or hand over a received message; False: full under BLOCK, retry later."""
    src, _dst, flags, payload = msg
    # Reuse the endpoint's own int objects where the values match: the Message then keeps
    # no per-message ints alive (addresses >= 1024 are not Python's cached small ints).
    peer = ep._binding.dst
    callback = ep.callback
    if callback is not None:
        ep.rx_messages += 1
        ep.rx_bytes += len(payload)
        try:
            callback(ep, Message(peer if src == peer else src, ep.addr, payload, flags))
        except Exception:
            ep.callback_errors += 1
            ep._port.callback_failed(ep)
        return True
    queue = ep._queue
    if len(queue) >= ep.maxsize:
        if ep.overflow is Overflow.BLOCK:
            if not ep._stalled:
                ep._stalled = True
                ep.queue_stalls += 1
            return False
        ep.queue_drops += 1
        ep._port.count_drop("queue_full")
        if ep.overflow is Overflow.DROP_NEWEST:
            return True
        queue.popleft()
    ep.rx_messages += 1
    ep.rx_bytes += len(payload)
    queue.append(Message(peer if src == peer else src, ep.addr, payload, flags))
    ep._waker.wake()
    return True


def pop(ep: Endpoint) -> Message:
    """The oldest queued message; room now exists, so a stalled bus drains again."""
    msg = ep._queue.popleft()
    if ep._stalled:
        ep._stalled = False
        ep._port.resume()
    return msg


async def wait_queued(ep: Endpoint) -> None:
    """Until a message is queued; raises the endpoint's closed error once it closed."""
    queue = ep._queue
    waker = ep._waker
    port = ep._port
    while not queue:
        if ep._closed is not None:
            raise ep._closed_error()
        # A notification arriving while we sleep wakes us directly; we then run the bus's
        # receive pass ourselves (see Doorbell.park). A busy-polling bus may run the pass
        # while we park: what it delivered (a message, or a close: an NS DESTROY) is then
        # seen without a sleep; nothing would wake one.
        port.park(waker)
        if queue or ep._closed is not None:
            port.unpark(waker, run=True)
            continue
        future = waker.arm()
        try:
            if future is None:
                await waker.sleep()
            else:
                await future  # directly: each coroutine level costs on every wake-up
        except BaseException:
            waker.disarm()
            port.unpark(waker, run=False)
            raise
        waker.disarm()
        port.unpark(waker, run=True)
