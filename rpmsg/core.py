"""The rpmsg core: endpoint table, addresses, name service, channels, drivers. Pure.

Theory of operation (h11-style): the core holds rpmsg's protocol state and does nothing but
update it. The shell around it feeds it API calls and received name-service messages and
performs what it returns; it never waits, sends, logs or runs user code itself.

* **Endpoints.** Each bound address has a :class:`Binding` (its address, default destination,
  service name and whether it was announced: state the endpoint reads, the core writes) and a
  *sink*, the object the shell made for it (the :class:`~rpmsg.endpoint.Endpoint`), which the
  core stores and hands back but does not use, except to ask whether it ever carried a
  message. :meth:`RpmsgCore.route` is the receive hot path: the sink of a destination, or None
  after counting ``unknown_dst`` (no event object per data message).
* **Name service** (address 53). :meth:`~RpmsgCore.receive_ns` takes a received NS message;
  :meth:`~RpmsgCore.announce`, :meth:`~RpmsgCore.withdraw` and
  :meth:`~RpmsgCore.reannouncements` give the NS messages to send. A peer's CREATE makes a
  :class:`~rpmsg.channel.Channel` with an endpoint of its own, or (OpenAMP binding) binds our
  own announced endpoint of that name; a local service announced under the name of an unused
  peer channel adopts it (both sides then use the addresses the other one knows).
* **Drivers** registered by service name are probed on each matching channel, also when the
  announcement came first.
* **Events** (:data:`Event`): :class:`Closed` (the core unbound an endpoint: close it, in
  order), :class:`ChannelAdded`, :class:`ProbeDriver`, :class:`RemoveHook`, :class:`Dropped`
  (already counted in :attr:`RpmsgCore.drops`) and :class:`Notice` (worth a log line).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from .addresses import AddressAllocator
from .channel import Channel, Driver, Probe, Remove, new_driver
from .message import EndpointOptions
from .wire import ADDR_ANY, NsFlags, pack_ns, unpack_ns

if TYPE_CHECKING:
    from .endpoint import Endpoint


@attrs.define(eq=False)
class Binding:
    """One bound address's rpmsg state: the core writes it, its endpoint reads it."""

    addr: int
    dst: int = ADDR_ANY
    name: str | None = None
    announced: bool = False


@attrs.frozen
class Closed:
    """The core unbound ``sink`` (its channel went away, it was adopted, the device reset):
    close it in an orderly way."""

    sink: Endpoint


@attrs.frozen
class ChannelAdded:
    """A service is available: a new channel, or our own endpoint bound to the peer's."""

    channel: Channel


@attrs.frozen
class ProbeDriver:
    """Run ``driver.probe(channel)``."""

    driver: Driver
    channel: Channel


@attrs.frozen
class RemoveHook:
    """Call ``driver.remove(channel)``: the channel left the driver."""

    driver: Driver
    channel: Channel


@attrs.frozen
class Dropped:
    """A name-service message was dropped (counted under ``reason``)."""

    reason: str
    detail: str


@attrs.frozen
class Notice:
    """Something worth a log line that changed nothing (a duplicate announcement...)."""

    text: str


Event = Closed | ChannelAdded | ProbeDriver | RemoveHook | Dropped | Notice
#: Makes the sink (the endpoint) of a new binding, with the settings it was bound with.
MakeSink = Callable[[Binding, EndpointOptions], "Endpoint"]


class RpmsgCore:
    """rpmsg's protocol state for one bus; ``make_sink`` creates each bound endpoint."""

    def __init__(self, make_sink: MakeSink) -> None:
        self._make_sink = make_sink
        self._addrs = AddressAllocator()
        self._bindings: dict[int, Binding] = {}
        self._sinks: dict[int, Endpoint] = {}
        self._channels: dict[tuple[str, int], Channel] = {}
        self._drivers: list[Driver] = []
        #: Drops by reason (see :data:`~rpmsg.stats.DROP_REASONS`).
        self.drops: Counter[str] = Counter()

    # -- endpoints ----------------------------------------------------------------------------
    def bind(self, options: EndpointOptions) -> Endpoint:
        """Bind ``options.addr`` (ANY: the lowest free dynamic one) and make its endpoint.

        Raises:
            AddressInUseError: the address is bound; InvalidAddressError: none is left.
        """
        addr = self._addrs.allocate(options.addr)
        binding = Binding(addr, options.dst, options.name)
        try:
            sink = self._make_sink(binding, options)
        except BaseException:
            self._addrs.release(addr)
            raise
        self._bindings[addr] = binding
        self._sinks[addr] = sink
        return sink

    def route(self, dst: int) -> Endpoint | None:
        """The endpoint a message to ``dst`` goes to, or None (counted ``unknown_dst``)."""
        sink = self._sinks.get(dst)
        if sink is None:
            self.drops["unknown_dst"] += 1
        return sink

    def endpoint(self, addr: int) -> Endpoint | None:
        return self._sinks.get(addr)

    def bound(self, sink: Endpoint) -> bool:
        return self._sinks.get(sink.addr) is sink

    def unbind(self, sink: Endpoint) -> bool:
        """Unbind ``sink``; False (nothing changes) when it is not bound (any more)."""
        if not self.bound(sink):
            return False
        del self._sinks[sink.addr]
        del self._bindings[sink.addr]
        self._addrs.release(sink.addr)
        return True

    @property
    def endpoints(self) -> int:
        return len(self._sinks)

    def count_drop(self, reason: str) -> None:
        self.drops[reason] += 1

    def close(self) -> list[Endpoint]:
        """Forget everything (the bus closed); returns the endpoints that were bound."""
        sinks = list(self._sinks.values())
        self._sinks.clear()
        self._bindings.clear()
        self._channels.clear()
        self._addrs = AddressAllocator()
        return sinks

    def _close(self, sink: Endpoint, events: list[Event]) -> None:
        if self.unbind(sink):
            events.append(Closed(sink))
        # else: already unbound, hence already closed by whoever unbound it

    # -- announcing our services --------------------------------------------------------------
    def create_service(self, options: EndpointOptions) -> tuple[Endpoint, list[Event]]:
        """Bind a service's endpoint (``options.name`` set; announce it next). When the peer
        announced that name first and nobody used its channel, the new endpoint takes over the
        channel and its local address (both OpenAMP demo endpoints are 0x400)."""
        assert options.name is not None
        events: list[Event] = []
        adopted = self._adoptable(options.name) if options.addr == ADDR_ANY else None
        if adopted is not None:
            old = adopted.endpoint
            self._close(old, events)
            options = attrs.evolve(options, addr=old.addr, dst=adopted.dst)
        sink = self.bind(options)
        if adopted is not None:
            self._channels[(adopted.name, adopted.dst)] = Channel(
                name=adopted.name, dst=adopted.dst, endpoint=sink
            )
        return sink, events

    def announce(self, sink: Endpoint, name: str) -> bytes:
        """Name ``sink``'s service (checked); returns the NS CREATE to send for it."""
        msg = pack_ns(name, sink.addr, NsFlags.CREATE)
        self._bindings[sink.addr].name = name
        return msg

    def announced(self, sink: Endpoint) -> list[Event]:
        """The CREATE went out: ``sink`` is announced, and adopts an unused channel of its
        name if there is one."""
        binding = self._bindings.get(sink.addr)
        if binding is None or not self.bound(sink):
            return []
        binding.announced = True
        channel = self._adoptable(binding.name or "")
        if channel is None or binding.dst != ADDR_ANY or channel.endpoint is sink:
            return []
        binding.dst = channel.dst
        self._channels[(channel.name, channel.dst)] = Channel(
            name=channel.name, dst=channel.dst, endpoint=sink
        )
        events: list[Event] = []
        self._close(channel.endpoint, events)
        return events

    def withdraw(self, sink: Endpoint) -> bytes | None:
        """``sink`` is being destroyed: the NS DESTROY to send if it was announced."""
        binding = self._bindings.get(sink.addr)
        if binding is None or not binding.announced or not binding.name:
            return None
        binding.announced = False
        return pack_ns(binding.name, binding.addr, NsFlags.DESTROY)

    def reannouncements(self) -> list[tuple[int, bytes]]:
        """``(src, NS CREATE)`` for every announced endpoint: a new host after a device reset
        knows none of our services."""
        return [
            (b.addr, pack_ns(b.name, b.addr, NsFlags.CREATE))
            for b in self._bindings.values()
            if b.announced and b.name
        ]

    def _adoptable(self, name: str) -> Channel | None:
        """A channel the peer announced under ``name`` that no driver took and whose endpoint
        was never used: a local service of the same name may bind to it (OpenAMP)."""
        for channel in self._channels.values():
            binding = self._bindings.get(channel.endpoint.addr)
            if (
                channel.name == name
                and channel.driver is None
                and binding is not None
                and self.bound(channel.endpoint)
                and not binding.announced
                and not channel.endpoint.used
            ):
                return channel
        return None

    # -- the peer's name service --------------------------------------------------------------
    def receive_ns(self, payload: bytes) -> list[Event]:
        """A message received at the name-service address (53)."""
        parsed = unpack_ns(payload)
        if parsed is None:
            return self._drop("bad_ns", f"malformed name-service message ({len(payload)} bytes)")
        name, addr, flags = parsed
        if addr == ADDR_ANY:
            return self._drop("bad_ns", f"name-service message for {name!r} at ADDR_ANY")
        if flags == NsFlags.CREATE:
            return self._add_channel(name, addr)
        if flags == NsFlags.DESTROY:
            return self._remove_channel(name, addr)
        return self._drop("bad_ns", f"name-service message for {name!r} with flags {flags}")

    def _drop(self, reason: str, detail: str) -> list[Event]:
        self.drops[reason] += 1
        return [Dropped(reason, detail)]

    def _add_channel(self, name: str, dst: int) -> list[Event]:
        if (name, dst) in self._channels:
            return [Notice(f"duplicate announcement of {name!r} at {dst} ignored")]
        own = self._unbound_named(name)
        if own is not None:
            # OpenAMP binding: both sides announce the same name; the peer's announcement
            # gives our own named endpoint its destination. No driver is probed: the endpoint
            # already has its user, whose iteration ends when the peer withdraws.
            own.dst = dst
            channel = Channel(name=name, dst=dst, endpoint=self._sinks[own.addr])
            self._channels[(name, dst)] = channel
            return [ChannelAdded(channel)]
        sink = self.bind(EndpointOptions(dst=dst))
        # The peer's name, as received: up to 32 characters (no NUL), one more than a name we
        # may announce, so it is not an option that is checked.
        self._bindings[sink.addr].name = name
        channel = Channel(name=name, dst=dst, endpoint=sink)
        self._channels[(name, dst)] = channel
        events: list[Event] = [ChannelAdded(channel)]
        for driver in self._drivers:
            if driver.matches(name):
                events.append(self._attach(driver, channel))
                break
        return events

    def _unbound_named(self, name: str) -> Binding | None:
        for binding in self._bindings.values():
            if binding.name == name and binding.announced and binding.dst == ADDR_ANY:
                return binding
        return None

    def _remove_channel(self, name: str, dst: int) -> list[Event]:
        channel = self._channels.pop((name, dst), None)
        if channel is None:
            return [Notice(f"DESTROY of unknown channel {name!r} at {dst}")]
        events: list[Event] = [Notice(f"channel {name!r} at {dst} removed")]
        driver = channel.driver
        if driver is not None:
            driver.channels.remove(channel)
            if driver.remove is not None:
                events.append(RemoveHook(driver, channel))
        self._close(channel.endpoint, events)
        return events

    def reset(self) -> list[Event]:
        """The device was reset (remote role: the host withdrew DRIVER_OK): the peer's
        channels are gone. Our own announced endpoints stay (unbound from the old peer) and
        are announced again to the next host."""
        events: list[Event] = []
        for key, channel in list(self._channels.items()):
            del self._channels[key]
            binding = self._bindings.get(channel.endpoint.addr)
            if binding is not None and binding.announced and self.bound(channel.endpoint):
                binding.dst = ADDR_ANY
            else:
                self._close(channel.endpoint, events)
        return events

    # -- channels and drivers -----------------------------------------------------------------
    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def find_channel(self, name: str) -> Channel | None:
        for channel in self._channels.values():
            if channel.name == name:
                return channel
        return None

    def _attach(self, driver: Driver, channel: Channel) -> ProbeDriver:
        channel.driver = driver
        driver.channels.append(channel)
        return ProbeDriver(driver, channel)

    def register_driver(
        self, names: str | Iterable[str], probe: Probe, remove: Remove | None = None
    ) -> tuple[Driver, list[Event]]:
        """A driver for the services ``names``, probed on every matching channel, those
        announced already included.

        Raises:
            ArgumentTypeError: ``names`` is neither a name nor an iterable of names.
            InvalidServiceNameError: a name no announcement can carry.
            DriverError: no name, or a name another driver has.
        """
        driver = new_driver(names, probe, remove, self._drivers)
        self._drivers.append(driver)
        events: list[Event] = [
            self._attach(driver, channel)
            for channel in list(self._channels.values())
            if channel.driver is None and driver.matches(channel.name)
        ]
        return driver, events

    def unregister_driver(self, driver: Driver) -> list[RemoveHook]:
        """Stop binding ``driver``; its channels stay, each gets its remove hook."""
        if driver in self._drivers:
            self._drivers.remove(driver)
        hooks = []
        for channel in driver.channels:
            channel.driver = None
            if driver.remove is not None:
                hooks.append(RemoveHook(driver, channel))
        driver.channels.clear()
        return hooks
