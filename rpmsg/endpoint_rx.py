"""An endpoint's per-message state and receive side: :class:`EndpointCore`, the base class of
:class:`~rpmsg.endpoint.Endpoint` (whose module docstring gives the theory of operation).

Split out so that mypyc compiles it (transports/_compiled.py) while ``Endpoint`` stays
interpreted: a compiled class keeps its attributes in a C struct (what the receive passes and
the send port read and count, once per message), but a compiled method checks its arguments'
annotated types itself and would raise a bare TypeError where the endpoint's public methods
raise the library's typed errors (AddressTypeError, ArgumentTypeError...). So the methods here
take only values the library made or checked; the public ones live in ``Endpoint``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypy_extensions import mypyc_attr

from transports.doorbell import Wakeup

from .errors import EndpointClosedError
from .message import EndpointOptions, Message, Overflow

if TYPE_CHECKING:
    from .core import Binding
    from .protocol import EndpointPort
    from .rings import RawMessage


@mypyc_attr(allow_interpreted_subclasses=True)
class EndpointCore:
    """What every message touches: the queue, the waker, the counters, the closed state."""

    def __init__(self, port: EndpointPort, binding: Binding, options: EndpointOptions) -> None:
        self._port = port
        self._binding = binding
        self.addr: int = binding.addr
        # The same address as a Python object: compiled code keeps an int attribute unboxed,
        # and boxing it anew per Message would keep a fresh int alive in every message the
        # user holds (addresses >= 1024 are not cached small ints).
        self._addr_obj: Any = binding.addr
        self.callback: Callable[[Any, Message], None] | None = options.callback
        self.maxsize: int = options.maxsize
        self.overflow: Overflow = options.overflow
        #: Whether the endpoint was closed (destroyed, its channel removed, its bus closed).
        self.closed = False
        self._queue: deque[Message] = deque()
        self._waker = Wakeup()
        self._closed: BaseException | None = None
        self._stalled = False
        self._orderly = True
        self.rx_messages = self.rx_bytes = 0
        self.tx_messages = self.tx_bytes = 0
        self.queue_drops = self.queue_stalls = self.callback_errors = self.send_waits = 0

    # -- the bus side (any backend) -----------------------------------------------------------
    def _deliver(self, msg: RawMessage) -> bool:
        """Queue or hand over a received message; False: full under BLOCK, retry later."""
        src, _dst, flags, payload = msg
        # Leased views go only to holding endpoints (zc_endpoint.py), which override this.
        assert isinstance(payload, bytes)
        # Reuse the endpoint's own int objects where the values match: the Message then keeps
        # no per-message ints alive (addresses >= 1024 are not Python's cached small ints).
        binding: Any = self._binding  # through Any: its dst read as the object, not unboxed
        peer: Any = binding.dst
        if src != peer:
            peer = src
        addr: Any = self._addr_obj
        callback = self.callback
        if callback is not None:
            self.rx_messages += 1
            self.rx_bytes += len(payload)
            try:
                callback(self, Message(peer, addr, payload, flags))
            except Exception:
                self.callback_errors += 1
                self._port.callback_failed(self)  # type: ignore[arg-type]  # an Endpoint
            return True
        queue = self._queue
        if len(queue) >= self.maxsize:
            if self.overflow is Overflow.BLOCK:
                if not self._stalled:
                    self._stalled = True
                    self.queue_stalls += 1
                return False
            self.queue_drops += 1
            self._port.count_drop("queue_full")
            if self.overflow is Overflow.DROP_NEWEST:
                return True
            queue.popleft()
        self.rx_messages += 1
        self.rx_bytes += len(payload)
        queue.append(Message(peer, addr, payload, flags))
        self._waker.wake()
        return True

    def _close(self, reason: BaseException | None) -> None:
        """Mark closed; waiters wake. ``reason`` None means an orderly end (iteration stops)."""
        if self._closed is None:
            self._closed = (
                reason
                if reason is not None
                else EndpointClosedError(f"endpoint {self.addr} closed")
            )
            self._orderly = reason is None
            self.closed = True
        self._waker.wake()

    def _closed_error(self) -> EndpointClosedError:
        exc = self._closed
        if isinstance(exc, EndpointClosedError):
            return exc
        err = EndpointClosedError(f"endpoint {self.addr} closed: {exc}")
        err.__cause__ = exc
        return err

    # -- receive --------------------------------------------------------------------------------
    def _pop(self) -> Message:
        """The oldest queued message; room now exists, so a stalled bus drains again."""
        msg = self._queue.popleft()
        if self._stalled:
            self._stalled = False
            self._port.resume()
        return msg

    async def __anext__(self) -> Message:
        """Messages until the endpoint closes: an orderly close (destroy, channel removed)
        ends the iteration; a failure (bus closed, peer died, crash) raises. (``async for``
        over an Endpoint; compiled here: one interpreted coroutine less per message.)"""
        if not self._queue:
            try:
                await self._wait_queued()  # not through recv(): one coroutine level less
            except EndpointClosedError:
                if self._orderly:
                    raise StopAsyncIteration from None
                raise
        return self._pop()

    async def _wait_queued(self) -> None:
        queue = self._queue
        waker = self._waker
        port = self._port
        while not queue:
            if self._closed is not None:
                raise self._closed_error()
            # A notification arriving while we sleep wakes us directly; we then run the
            # bus's receive pass ourselves (see Doorbell.park). A busy-polling bus may run
            # the pass while we park: what it delivered (a message, or a close: an NS DESTROY)
            # is then seen without a sleep; nothing would wake one.
            port.park(waker)
            # self.closed, not self._closed: mypy still takes _closed for None here (checked
            # above; narrowing survives the call), and mypyc would compile that belief in.
            if queue or self.closed:
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
