"""The pure rpmsg core on its own: no event loop, no rings, no transport.

The core is fed API calls and name-service messages and returns events; its sinks are whatever
the shell registers. Here a sink is the smallest object the core asks anything of: its address
(read from its binding) and whether a message ever went through it.
"""

from __future__ import annotations

import attrs
import pytest

from rpmsg.channel import Channel, Driver
from rpmsg.core import (
    Binding,
    ChannelAdded,
    Closed,
    Dropped,
    Notice,
    ProbeDriver,
    RemoveHook,
    RpmsgCore,
)
from rpmsg.errors import (
    AddressInUseError,
    ArgumentTypeError,
    DriverError,
    InvalidServiceNameError,
)
from rpmsg.message import EndpointOptions
from rpmsg.wire import ADDR_ANY, NS_ADDR, NsFlags, pack_ns, unpack_ns


@attrs.define(eq=False)
class Sink:
    """What the shell would register (an Endpoint): the core reads ``addr`` and ``used``."""

    binding: Binding
    options: EndpointOptions
    used: bool = False

    @property
    def addr(self) -> int:
        return self.binding.addr


async def _probe(_channel: object) -> None:  # never run: the core only names it
    raise AssertionError


def _remove(_channel: object) -> None:
    raise AssertionError


def make_core() -> RpmsgCore:
    return RpmsgCore(Sink)  # type: ignore[arg-type]


def create(name: str, addr: int) -> bytes:
    return pack_ns(name, addr, NsFlags.CREATE)


def destroy(name: str, addr: int) -> bytes:
    return pack_ns(name, addr, NsFlags.DESTROY)


def driven_channel() -> tuple[RpmsgCore, Driver, Channel]:
    """A core whose driver of "svc" (with a remove hook) got the peer's channel at 0x400."""
    core = make_core()
    driver, _ = core.register_driver("svc", _probe, _remove)
    core.receive_ns(create("svc", 0x400))
    channel = core.find_channel("svc")
    assert channel is not None
    return core, driver, channel


def test_addresses_lowest_free_first_and_reserved_only_when_asked() -> None:
    core = make_core()
    a = core.bind(EndpointOptions())
    b = core.bind(EndpointOptions())
    ns = core.bind(EndpointOptions(addr=NS_ADDR))
    assert (a.addr, b.addr, ns.addr) == (1024, 1025, NS_ADDR)
    with pytest.raises(AddressInUseError):
        core.bind(EndpointOptions(addr=1024))
    assert core.unbind(a) and not core.unbind(a)  # a second unbind changes nothing
    assert core.bind(EndpointOptions()).addr == 1024
    assert core.endpoints == 3 and core.endpoint(NS_ADDR) is ns


def test_a_sink_that_fails_to_be_made_frees_its_address() -> None:
    def broken(binding: Binding, options: EndpointOptions) -> Sink:
        raise RuntimeError("no sink")

    core = RpmsgCore(broken)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        core.bind(EndpointOptions(addr=1024))
    assert core.endpoints == 0
    core._make_sink = Sink  # type: ignore[assignment]
    assert core.bind(EndpointOptions(addr=1024)).addr == 1024


def test_route_counts_unknown_destinations_and_returns_no_event() -> None:
    core = make_core()
    ep = core.bind(EndpointOptions())
    assert core.route(ep.addr) is ep
    assert core.route(4242) is None and core.route(4243) is None
    assert core.drops == {"unknown_dst": 2}


def test_a_peer_announcement_makes_a_channel_and_probes_the_matching_driver() -> None:
    core = make_core()
    driver, events = core.register_driver(["svc", "other"], _probe)
    assert events == []  # nothing announced yet
    events = core.receive_ns(create("svc", 0x400))
    channel = core.find_channel("svc")
    assert channel is not None and events == [ChannelAdded(channel), ProbeDriver(driver, channel)]
    assert (channel.name, channel.dst, channel.src) == ("svc", 0x400, 1024)
    assert channel.endpoint.binding.dst == 0x400  # type: ignore[attr-defined]
    assert channel.driver is driver and driver.channels == [channel]
    assert core.receive_ns(create("svc", 0x400)) == [
        Notice(f"duplicate announcement of 'svc' at {0x400} ignored")
    ]


def test_a_late_driver_binds_to_channels_announced_before_it() -> None:
    core = make_core()
    core.receive_ns(create("svc", 0x400))
    core.receive_ns(create("svc", 0x401))
    driver, events = core.register_driver("svc", _probe)
    assert [type(e) for e in events] == [ProbeDriver, ProbeDriver]
    assert [e.channel.dst for e in events if isinstance(e, ProbeDriver)] == [0x400, 0x401]
    assert [c.dst for c in driver.channels] == [0x400, 0x401]


def test_destroy_removes_the_channel_runs_the_remove_hook_and_closes_its_endpoint() -> None:
    core, driver, channel = driven_channel()
    events = core.receive_ns(destroy("svc", 0x400))
    assert events == [
        Notice(f"channel 'svc' at {0x400} removed"),
        RemoveHook(driver, channel),
        Closed(channel.endpoint),
    ]
    assert core.channels == [] and driver.channels == [] and core.endpoints == 0
    assert core.receive_ns(destroy("svc", 0x400)) == [
        Notice(f"DESTROY of unknown channel 'svc' at {0x400}")
    ]


@pytest.mark.parametrize(
    "payload",
    [b"", b"\0" * 39, create("svc", 0x400) + b"\0", create("svc", ADDR_ANY)],
    ids=["empty", "short", "long", "addr-any"],
)
def test_malformed_name_service_messages_are_counted_drops(payload: bytes) -> None:
    core = make_core()
    events = core.receive_ns(payload)
    assert len(events) == 1 and isinstance(events[0], Dropped)
    assert events[0].reason == "bad_ns" and core.drops == {"bad_ns": 1}
    assert core.channels == [] and core.endpoints == 0


def test_unknown_ns_flags_are_a_counted_drop() -> None:
    core = make_core()
    raw = bytearray(create("svc", 0x400))
    raw[36:40] = (7).to_bytes(4, "little")
    assert unpack_ns(bytes(raw)) == ("svc", 0x400, 7)
    assert [type(e) for e in core.receive_ns(bytes(raw))] == [Dropped]
    assert core.drops == {"bad_ns": 1}


def test_a_32_character_peer_name_is_kept_as_received() -> None:
    """Linux compares names over all 32 bytes: a peer may send one without a NUL. It names a
    channel, although no local service could announce it."""
    core = make_core()
    name = "n" * 32
    core.receive_ns(name.encode() + bytes(8))
    channel = core.find_channel(name)
    assert channel is not None and channel.endpoint.binding.name == name  # type: ignore[attr-defined]


def test_openamp_binding_our_announced_endpoint_gets_the_peers_address() -> None:
    """Both sides announce the same name: the peer's CREATE binds our own endpoint (no new
    endpoint, no driver probed)."""
    core = make_core()
    core.register_driver("svc", _probe)
    ours = core.bind(EndpointOptions(name="svc"))
    assert core.announce(ours, "svc") == create("svc", ours.addr)
    assert core.announced(ours) == []
    events = core.receive_ns(create("svc", 0x400))
    channel = core.find_channel("svc")
    assert channel is not None and events == [ChannelAdded(channel)]
    assert channel.endpoint is ours and ours.binding.dst == 0x400 and core.endpoints == 1


def test_a_service_adopts_an_unused_peer_channel_and_its_address() -> None:
    """The peer announced first; a local service of that name takes over the channel and the
    local address the peer already knows (OpenAMP's demos both use 0x400)."""
    core = make_core()
    core.receive_ns(create("svc", 0x400))
    old = core.find_channel("svc")
    assert old is not None
    service, events = core.create_service(EndpointOptions(name="svc"))
    assert events == [Closed(old.endpoint)]
    assert service.addr == old.src and service.binding.dst == 0x400  # type: ignore[attr-defined]
    channel = core.find_channel("svc")
    assert channel is not None and channel is not old and channel.endpoint is service


def test_announcing_adopts_an_unused_channel_of_the_same_name() -> None:
    core = make_core()
    core.receive_ns(create("svc", 0x400))
    old = core.find_channel("svc")
    assert old is not None
    ours = core.bind(EndpointOptions(addr=0x500))
    core.announce(ours, "svc")
    assert core.announced(ours) == [Closed(old.endpoint)]
    assert ours.binding.dst == 0x400 and ours.binding.announced
    channel = core.find_channel("svc")
    assert channel is not None and channel.endpoint is ours


@pytest.mark.parametrize("why", ["used", "driver", "explicit-addr"])
def test_a_channel_in_use_is_not_adopted(why: str) -> None:
    core = make_core()
    if why == "driver":
        core.register_driver("svc", _probe)
    core.receive_ns(create("svc", 0x400))
    old = core.find_channel("svc")
    assert old is not None
    if why == "used":
        old.endpoint.used = True  # type: ignore[misc]
    addr = 0x600 if why == "explicit-addr" else ADDR_ANY
    service, events = core.create_service(EndpointOptions(name="svc", addr=addr))
    assert events == [] and service.addr != old.src
    assert core.find_channel("svc") is old and core.bound(old.endpoint)


def test_withdraw_and_reannouncements() -> None:
    core = make_core()
    a = core.bind(EndpointOptions())
    b = core.bind(EndpointOptions())
    core.announce(a, "a")
    core.announced(a)
    core.announce(b, "b")  # never went out: not announced
    assert core.reannouncements() == [(a.addr, create("a", a.addr))]
    assert core.withdraw(b) is None
    assert core.withdraw(a) == destroy("a", a.addr)
    assert core.withdraw(a) is None and core.reannouncements() == []


def test_a_device_reset_drops_the_peers_channels_but_keeps_our_services() -> None:
    core = make_core()
    ours = core.bind(EndpointOptions(name="mine"))
    core.announce(ours, "mine")
    core.announced(ours)
    core.receive_ns(create("mine", 0x400))  # binds ours (OpenAMP)
    core.receive_ns(create("theirs", 0x401))
    theirs = core.find_channel("theirs")
    assert theirs is not None
    assert core.reset() == [Closed(theirs.endpoint)]
    assert core.channels == [] and core.bound(ours) and ours.binding.dst == ADDR_ANY
    assert core.reannouncements() == [(ours.addr, create("mine", ours.addr))]


def test_register_driver_checks_its_names() -> None:
    core = make_core()
    with pytest.raises(ArgumentTypeError):
        core.register_driver(b"svc", _probe)  # type: ignore[arg-type]
    with pytest.raises(DriverError):
        core.register_driver([], _probe)
    with pytest.raises(InvalidServiceNameError):
        core.register_driver(["ok", "x" * 32], _probe)
    core.register_driver(["a", "b"], _probe)
    with pytest.raises(DriverError, match=r"\['b'\]"):
        core.register_driver(["b", "c"], _probe)


def test_unregister_driver_hooks_each_channel_and_keeps_it() -> None:
    core, driver, channel = driven_channel()
    assert core.unregister_driver(driver) == [RemoveHook(driver, channel)]
    assert channel.driver is None and driver.channels == [] and core.channels == [channel]
    again, events = core.register_driver("svc", _probe)  # the name is free again
    assert events == [ProbeDriver(again, channel)]


def test_close_returns_every_endpoint_and_forgets_everything() -> None:
    core = make_core()
    a = core.bind(EndpointOptions())
    core.receive_ns(create("svc", 0x400))
    channel = core.find_channel("svc")
    assert channel is not None
    assert core.close() == [a, channel.endpoint]
    assert core.endpoints == 0 and core.channels == [] and core.route(a.addr) is None
    assert core.bind(EndpointOptions()).addr == 1024
