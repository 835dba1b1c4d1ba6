"""rpmsg vdevs of a remote processor: the host-side transport over the processor's memory.

Theory of operation: for each VDEV entry the loader allocates the vrings (where the table left
their ``da`` as ANY) and an rpmsg buffer pool, assigns notify ids and writes both back into the
loaded table. :class:`RprocVdevTransport` then presents the processor's memory, the live vdev
entry and the pool as a :class:`~transports.base.Transport`: a kick goes out through the
platform with the vring's notify id, and the platform's ``vq_interrupt(notifyid)`` rings the
doorbell the bus waits on. The bus on top is the same code as over loopback or shm.

:class:`VdevBuses` is a processor's set of those buses: started after each (re)start, closed
or failed when the core stops or crashes, with the rpmsg drivers registered on the processor
bound to every new bus, and a "changed" signal for waiters that span (re)boots.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import attrs

from rpmsg.channel import Channel, Probe, Remove
from rpmsg.errors import BusClosedError
from rpmsg.vring_bus import RpmsgBus
from transports._tasks import first_of
from transports.base import DoorbellTransport
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vdev import VdevView

if TYPE_CHECKING:
    from .loader import LoadedImage


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


@attrs.define(eq=False)
class _RegisteredDriver:
    names: frozenset[str]
    probe: Probe
    remove: Remove | None


class VdevBuses:
    """The rpmsg buses (host role) of one processor's vdevs, and the drivers bound to them.

    Args:
        name: the processor's name (the buses are ``{name}-vdev{index}``).
        kick: the platform's ``kick(notifyid)``.
        send_timeout: the buses' default send deadline.
    """

    def __init__(self, name: str, kick: Callable[[int], None], send_timeout: float | None):
        self.name = name
        self.send_timeout = send_timeout
        self._kick = kick
        self._transports: list[RprocVdevTransport] = []
        self._buses: list[RpmsgBus] = []
        self._by_notifyid: dict[int, RprocVdevTransport] = {}
        self._drivers: list[_RegisteredDriver] = []
        self._changed: anyio.Event | None = None
        self.vq_interrupts = self.unknown_interrupts = 0

    @property
    def buses(self) -> list[RpmsgBus]:
        return list(self._buses)

    async def start(self, loaded: LoadedImage, task_group: anyio.abc.TaskGroup) -> None:
        """One bus per vdev of ``loaded``, running in ``task_group``, with every driver."""
        for vdev in loaded.vdevs:
            assert vdev.view is not None
            transport = RprocVdevTransport(
                memory=loaded.memory,
                vdev=vdev.view,
                pool=vdev.pool,
                notifyids=vdev.notifyids,
                kick=self._kick,
                name=f"{self.name}-vdev{vdev.index}",
            )
            bus = RpmsgBus(transport, send_timeout=self.send_timeout, name=transport.name)
            self._transports.append(transport)
            for nid in vdev.notifyids:
                self._by_notifyid[nid] = transport
            await bus.start(task_group)
            self._buses.append(bus)
            for drv in self._drivers:
                bus.register_driver(drv.names, drv.probe, remove=drv.remove)
        self.notify_changed()

    async def close(self) -> None:
        """Close every bus (their endpoints' iterations end) and transport."""
        buses, self._buses = self._buses, []
        transports, self._transports = self._transports, []
        self._by_notifyid.clear()
        for bus in buses:
            await bus.aclose()
        for transport in transports:
            await transport.aclose()
        for bus in buses:
            with anyio.move_on_after(5):
                await bus.wait_closed()
        if buses:
            self.notify_changed()

    def fail(self, cause: BaseException) -> None:
        """Every pending and later operation on the buses raises BusClosedError from ``cause``."""
        for bus in self._buses:
            bus.fail(cause)
        self.notify_changed()

    def reset_peer(self) -> None:
        for bus in self._buses:
            bus.reset_peer()

    def interrupt(self, notifyid: int) -> None:
        """The remote kicked vring ``notifyid``; counted as unknown when no bus owns it."""
        transport = self._by_notifyid.get(notifyid)
        if transport is None:
            self.unknown_interrupts += 1
            return
        self.vq_interrupts += 1
        transport.interrupt()

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, remove: Remove | None
    ) -> None:
        """Bind a driver on every bus, now and on each bus started later."""
        ids = frozenset([names] if isinstance(names, str) else names)
        self._drivers.append(_RegisteredDriver(ids, probe, remove))
        for bus in self._buses:
            bus.register_driver(ids, probe, remove=remove)

    async def wait_for_service(self, name: str, check: Callable[[], None]) -> Channel:
        """The channel announced under ``name`` on any bus, waiting across (re)starts of the
        buses; ``check`` raises, before each look, once waiting makes no more sense."""
        while True:
            check()
            channel = self.find_channel(name)
            if channel is not None:
                return channel
            await self.wait_changed_or_announced(name)

    def find_channel(self, name: str) -> Channel | None:
        for bus in self._buses:
            channel = bus.find_channel(name)
            if channel is not None:
                return channel
        return None

    def notify_changed(self) -> None:
        """Wake :meth:`wait_changed_or_announced` (buses started or closed, the processor's
        state moved)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _changed_event(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    async def wait_changed_or_announced(self, service: str) -> None:
        """Return on the next change, or when a bus announces ``service``. The change event
        is taken before anything runs, so a change right after the caller looked is not lost."""
        changed = self._changed_event()

        async def announced(bus: RpmsgBus) -> None:
            with contextlib.suppress(BusClosedError):  # the bus went away: that is a change
                await bus.wait_for_service(service)

        waits = [lambda bus=bus: announced(bus) for bus in self._buses]
        await first_of(changed.wait, *waits)
