"""The endpoint that receives zero-copy: :class:`HeldMessage` s instead of copies.

Theory of operation: the ring dispatch must know when it takes a message whether to copy it,
so holding is decided per endpoint, at creation (``create_endpoint(..., zero_copy=True)``): the
endpoint tells its bus to hold what arrives at its address (``EndpointPort.set_holding``), and
receives each message's buffer as a :class:`~rpmsg.zero_copy.HeldMessage` (OpenAMP's
``rpmsg_hold_rx_buffer``). A buffer goes back to the peer when its message is released, so a
bus lets only ``max_held`` be held at once (half its receive buffers): beyond that a message
is copied (counted in ``statistics().hold_fallbacks``) and released the same way. Messages
still queued when the endpoint closes go back with it; an rx callback cannot be combined with
holding (it would have to decide the buffer's fate inside the receive pass).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, cast

from .endpoint import Endpoint
from .message import Overflow
from .zero_copy import HeldMessage

if TYPE_CHECKING:
    from .core import Binding
    from .message import EndpointOptions
    from .protocol import Bus, EndpointPort
    from .rings import RawMessage


class ZeroCopyEndpoint(Endpoint):
    """An :class:`~rpmsg.endpoint.Endpoint` whose messages are :class:`HeldMessage` s: release
    each (``with msg:`` or ``msg.release()``) when done with its payload."""

    def __init__(
        self, bus: Bus, port: EndpointPort, binding: Binding, options: EndpointOptions
    ) -> None:
        super().__init__(bus, port, binding, options)
        self._held: deque[HeldMessage] = cast("deque[HeldMessage]", self._queue)
        port.set_holding(self.addr, True)

    def _deliver(self, msg: RawMessage) -> bool:
        src, _dst, flags, payload = msg
        port = self._port
        queue = self._held
        if len(queue) >= self.maxsize:
            if self.overflow is Overflow.BLOCK:
                if not self._stalled:
                    self._stalled = True
                    self.queue_stalls += 1
                return False  # the ring's buffer stays held by the receive pass meanwhile
            self.queue_drops += 1
            port.count_drop("queue_full")
            if self.overflow is Overflow.DROP_NEWEST:
                port.give_back(port.loans.adopt(payload))
                return True
            queue.popleft()._end(strict=False)
        peer = self._binding.dst
        held = HeldMessage(
            self, port.loans.adopt(payload), peer if src == peer else src, self.addr, flags
        )
        self._lend(held)
        self.rx_messages += 1
        self.rx_bytes += held.nbytes
        queue.append(held)
        self._waker.wake()
        return True

    def _close(self, reason: BaseException | None) -> None:
        if not self.closed:
            self._port.set_holding(self.addr, False)
            queue = self._held
            while queue:  # never handed out: given back, not leaked
                queue.popleft()._end(strict=False)
        super()._close(reason)

    # The receive methods, typed for what this endpoint queues.
    async def recv(self, timeout: float | None = None) -> HeldMessage:  # type: ignore[override]
        """The next :class:`HeldMessage` (see :meth:`Endpoint.recv`)."""
        return cast(HeldMessage, await super().recv(timeout))

    async def recv_batch(  # type: ignore[override]
        self, limit: int, timeout: float | None = None
    ) -> list[HeldMessage]:
        return cast("list[HeldMessage]", await super().recv_batch(limit, timeout))

    def try_recv(self) -> HeldMessage | None:  # type: ignore[override]
        return cast("HeldMessage | None", super().try_recv())

    def __aiter__(self) -> ZeroCopyEndpoint:
        return self

    async def __anext__(self) -> HeldMessage:  # type: ignore[override]
        return cast(HeldMessage, await super().__anext__())


def endpoint_class(options: EndpointOptions) -> type[Endpoint]:
    """The class of the endpoint ``options`` make: zero-copy receive or not."""
    return ZeroCopyEndpoint if options.zero_copy else Endpoint
