"""rpmsg vdevs of a remote processor: the host-side transport over the processor's memory.

Theory of operation: for each VDEV entry the loader allocates the vrings (where the table left
their ``da`` as ANY) and an rpmsg buffer pool, assigns notify ids and writes both back into the
loaded table. :class:`RprocVdevTransport` then presents the processor's memory, the live vdev
entry and the pool as a :class:`~transports.base.Transport`: a kick goes out through the
platform with the vring's notify id, and the platform's ``vq_interrupt(notifyid)`` rings the
doorbell the bus waits on. The bus on top is the same code as over loopback or shm.
"""

from __future__ import annotations

from collections.abc import Callable

from transports.base import DoorbellTransport
from transports.memory import DeviceMemory, Region
from transports.vdev import VdevView


class RprocVdevTransport(DoorbellTransport):
    """Host end of one vdev of a remote processor."""

    def __init__(
        self,
        *,
        memory: DeviceMemory,
        vdev: VdevView,
        pool: Region,
        notifyids: tuple[int, ...],
        kick: Callable[[int], None],
        name: str,
    ) -> None:
        super().__init__(role="host", memory=memory, vdev=vdev, pool=pool)
        self.notifyids = notifyids
        self.name = name
        self._platform_kick = kick

    def kick(self, vq: int) -> None:
        self._check_open()
        self.stats.kicks_sent += 1
        self._platform_kick(self.notifyids[vq])

    def interrupt(self) -> None:
        """The remote kicked one of our vrings (called from ``vq_interrupt``)."""
        self.notify()

    async def aclose(self) -> None:
        self._close_inbox(f"{self.name}: vdev torn down")
