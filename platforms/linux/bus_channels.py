"""The channel half of the Linux bus: the remote's channels, drivers, ``wait_for_service``
and the rpmsg-tty ttys. Shell.

Theory of operation: the bus rescans sysfs on each rpmsg uevent of its virtio device
(:meth:`ChannelsMixin._rescan`); the :class:`~.channels.ChannelTable` says which channels went
(their endpoints close in order, their drivers' remove hooks run) and which a registered driver
wants (opened, then probed in a task). ``wait_for_service`` and ``open_tty`` look at sysfs,
then sleep until the next rescan: no polling.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio
import anyio.abc

from rpmsg.channel import Channel, Driver, Probe, Remove
from rpmsg.endpoint import Endpoint
from rpmsg.errors import BusClosedError, RpmsgError, RpmsgTimeoutError
from rpmsg.message import EndpointOptions, check_timeout
from rpmsg.tap import Direction
from rpmsg.wire import NsFlags, encode_name

from .bus_state import BusCounters
from .channels import ChannelTable
from .files import KernelFiles
from .kernel_calls import KernelCalls, Kind, Opened
from .rpmsg_sysfs import RpmsgSysfs
from .sysfs_text import RpmsgDevice
from .tty import RpmsgTty

log = logging.getLogger("aioamp.platform.linux")
T = TypeVar("T")


class ChannelsMixin(abc.ABC):
    """Channels and drivers of :class:`~.bus.LinuxRpmsgBus` (which supplies the rest)."""

    name: str
    files: KernelFiles
    sysfs: RpmsgSysfs | None
    counters: BusCounters
    table: ChannelTable
    _bind: bool
    _changed: anyio.Event
    _tasks: anyio.abc.TaskGroup | None

    @property
    @abc.abstractmethod
    def _kernel(self) -> KernelCalls: ...

    @abc.abstractmethod
    def _check_open(self) -> None: ...

    @abc.abstractmethod
    def _adopt(
        self, opened: Opened, kind: Kind, options: EndpointOptions, device: str | None
    ) -> Endpoint: ...

    @abc.abstractmethod
    def _release(self, ep: Endpoint, reason: BaseException | None) -> None: ...

    def _rescan(self) -> None:
        """Look at sysfs again: channels that went, channels a driver wants."""
        assert self.sysfs is not None
        self.counters.rescans += 1
        changes = self.table.changes(self.sysfs.devices())
        tap = self.counters.tap
        if tap is not None:  # the remote's announcements, which the kernel consumed
            for info in changes.appeared:
                tap.ns(Direction.RX, info.name, info.dst, NsFlags.CREATE)
            for info in changes.went:
                tap.ns(Direction.RX, info.name, info.dst, NsFlags.DESTROY)
        for channel in changes.removed:
            self._channel_gone(channel)
        for info, driver in changes.to_open:
            try:
                channel = self._open_channel(info, driver)
            except RpmsgError as exc:
                self.counters.driver_errors += 1
                log.error("%s: cannot open channel %s for its driver: %s", self.name, info, exc)
                continue
            self._probe(driver, channel)
        self._changed.set()
        self._changed = anyio.Event()

    def _endpoint_gone(self, ep: Endpoint) -> None:
        """``ep``'s reader ended (the kernel said EPIPE): a channel leaves the table now, not
        at the uevent, and is not reopened for a driver while its device lingers."""
        for channel in list(self.table.channels.values()):
            if channel.endpoint is ep:
                self.table.dismiss(channel)
                self._channel_gone(channel)
                break
        else:
            self._release(ep, None)
        self._changed.set()
        self._changed = anyio.Event()

    def _channel_gone(self, channel: Channel) -> None:
        log.info("%s: channel %r at %#x removed", self.name, channel.name, channel.dst)
        if channel.driver is not None and channel.driver.remove is not None:
            self._run_remove(channel.driver.remove, channel)
        self._release(channel.endpoint, None)

    def _run_remove(self, remove: Remove, channel: Channel) -> None:
        try:
            remove(channel)
        except Exception:
            self.counters.driver_errors += 1
            log.exception("%s: remove hook of %r raised", self.name, channel.name)

    # -- channels -----------------------------------------------------------------------------
    def _open_channel(self, info: RpmsgDevice, driver: Driver | None) -> Channel:
        opened = self._kernel.open_channel(info, bind=self._bind)
        ep = self._adopt(opened, "channel", EndpointOptions(), info.device)
        ep._binding.name = info.name
        channel = Channel(name=info.name, dst=info.dst, endpoint=ep, driver=driver)
        self.table.add(info.device, channel)
        log.info("%s: %r: local %#x -> remote %#x", self.name, info.name, ep.addr, info.dst)
        return channel

    def _probe(self, driver: Driver, channel: Channel) -> None:
        assert self._tasks is not None
        self._tasks.start_soon(self._run_probe, driver, channel, name=f"probe-{channel.name}")

    async def _run_probe(self, driver: Driver, channel: Channel) -> None:
        try:
            await driver.probe(channel)
        except BusClosedError:
            pass
        except Exception:
            if not channel.removed:
                self.counters.driver_errors += 1
                log.exception("%s: driver for %r failed", self.name, channel.name)

    @property
    def channels(self) -> list[Channel]:
        return list(self.table.channels.values())

    def find_channel(self, name: str) -> Channel | None:
        return self.table.find(name)

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The remote's channel ``name``, opened; waits up to ``timeout`` s for the remote to
        announce it (on uevents, not by polling)."""

        def found(sysfs: RpmsgSysfs) -> Channel | None:
            channel = self.table.find(name)
            if channel is not None:
                return channel
            for info in sysfs.channels(name):
                if info.device not in self.table.channels:
                    return self._open_channel(info, self.table.driver_for(name))
            return None

        return await self._wait(name, timeout, found, "not announced")

    async def _wait(
        self, name: str, timeout: float | None, found: Callable[[RpmsgSysfs], T | None], what: str
    ) -> T:
        """``found(sysfs)`` once it is not None: tried now and after each rescan."""
        encode_name(name)
        timeout = check_timeout(timeout)
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                self._check_open()
                assert self.sysfs is not None
                result = found(self.sysfs)
                if result is not None:
                    return result
                await self._changed.wait()
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} {what} in {timeout} s")

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> Driver:
        """Probe ``probe(channel)`` on every channel of one of ``names``, present or future."""
        self._check_open()
        driver, taken = self.table.register(names, probe, remove)
        for channel in taken:
            self._probe(driver, channel)
        self._rescan()
        return driver

    def unregister_driver(self, driver: Driver) -> None:
        for channel in self.table.unregister(driver):
            if driver.remove is not None:
                self._run_remove(driver.remove, channel)

    async def open_tty(self, name: str = "rpmsg-tty", timeout: float | None = None) -> RpmsgTty:
        """The tty (:mod:`.tty`, raw mode) the kernel's rpmsg_tty made for the remote's
        channel ``name``, waiting up to ``timeout`` s for it."""

        def found(sysfs: RpmsgSysfs) -> RpmsgTty | None:
            for info in sysfs.channels(name):
                node = sysfs.tty_of(info)
                if node is not None:
                    return RpmsgTty.open(node, self.files.host_path(node))
            return None

        return await self._wait(name, timeout, found, "has no tty")
