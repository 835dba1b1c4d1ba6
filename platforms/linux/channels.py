"""The Linux bus's channels and drivers: which remote channels are open, which drivers want
which names, and what a change in sysfs means for them. Pure bookkeeping, no I/O.

Theory of operation: the bus rescans sysfs on every rpmsg uevent and hands this table the
devices it found (:meth:`ChannelTable.changes`); the table answers with what to do: channels
to open (a registered driver matches and it is not open yet) and channels that are gone
(close their endpoint in order, run the driver's remove hook). A channel the user closed
(destroyed its endpoint) is not reopened for a driver until its device goes away.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from rpmsg.channel import Channel, Driver, Probe, Remove, new_driver

from .sysfs_text import RpmsgDevice


@attrs.frozen
class Changes:
    """What a rescan asks for: devices to open for a driver, channels that went away; and
    what it saw: channel devices that appeared or went since the last scan (the name-service
    announcements the kernel consumed, which a capture records)."""

    to_open: tuple[tuple[RpmsgDevice, Driver], ...] = ()
    removed: tuple[Channel, ...] = ()
    appeared: tuple[RpmsgDevice, ...] = ()
    went: tuple[RpmsgDevice, ...] = ()


@attrs.define(eq=False)
class ChannelTable:
    """Open channels by device name, and the registered drivers."""

    channels: dict[str, Channel] = attrs.field(factory=dict)
    drivers: list[Driver] = attrs.field(factory=list)
    _dismissed: set[str] = attrs.field(factory=set)
    _seen: dict[str, RpmsgDevice] = attrs.field(factory=dict)

    def driver_for(self, name: str) -> Driver | None:
        for driver in self.drivers:
            if driver.matches(name):
                return driver
        return None

    def find(self, name: str) -> Channel | None:
        for channel in self.channels.values():
            if channel.name == name and not channel.removed:
                return channel
        return None

    def add(self, device: str, channel: Channel) -> None:
        self.channels[device] = channel
        if channel.driver is not None:
            channel.driver.channels.append(channel)

    def device_of(self, channel: Channel) -> str | None:
        for device, other in self.channels.items():
            if other is channel:
                return device
        return None

    def dismiss(self, channel: Channel) -> None:
        """The user destroyed ``channel``'s endpoint: forget it, do not reopen it."""
        device = self.device_of(channel)
        if device is not None:
            self._forget(device)
            self._dismissed.add(device)

    def _forget(self, device: str) -> Channel:
        channel = self.channels.pop(device)
        if channel.driver is not None and channel in channel.driver.channels:
            channel.driver.channels.remove(channel)
        return channel

    def changes(self, devices: Iterable[RpmsgDevice]) -> Changes:
        """Compare with a fresh scan of the bus's channel devices."""
        present = {d.device: d for d in devices if d.is_channel}
        appeared = tuple(d for dev, d in present.items() if dev not in self._seen)
        went = tuple(d for dev, d in self._seen.items() if dev not in present)
        self._seen = present
        self._dismissed &= present.keys()
        removed = tuple(self._forget(dev) for dev in list(self.channels) if dev not in present)
        to_open = []
        for device, info in present.items():
            if device in self.channels or device in self._dismissed:
                continue
            driver = self.driver_for(info.name)
            if driver is not None:
                to_open.append((info, driver))
        return Changes(tuple(to_open), removed, appeared, went)

    def register(
        self, names: str | Iterable[str], probe: Probe, remove: Remove | None
    ) -> tuple[Driver, list[Channel]]:
        """A new driver, and the open channels without a driver it now takes."""
        driver = new_driver(names, probe, remove, self.drivers)
        self.drivers.append(driver)
        taken = [c for c in self.channels.values() if c.driver is None and driver.matches(c.name)]
        for channel in taken:
            channel.driver = driver
            driver.channels.append(channel)
        return driver, taken

    def unregister(self, driver: Driver) -> list[Channel]:
        """Stop binding ``driver``; returns the channels whose remove hook must run."""
        if driver in self.drivers:
            self.drivers.remove(driver)
        channels = list(driver.channels)
        for channel in channels:
            channel.driver = None
        driver.channels.clear()
        return channels
