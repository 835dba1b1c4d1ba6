"""The Bus API over an rpmsg core: endpoints, services, channels and drivers. Shell.

Theory of operation: :class:`CoreBus` turns the public calls into calls of its
:class:`~rpmsg.core.RpmsgCore` and performs the events the core returns, in order: it closes
the endpoints the core unbound, wakes ``wait_for_service``, runs driver probes as tasks and
remove hooks (counting their failures). It knows nothing of rings or transports: a bus built on
it (the vring bus, :class:`~rpmsg.vring_bus.RpmsgBus`) supplies the link: an
:class:`~rpmsg.protocol.EndpointPort` to send through, the task group probes run in, whether
the name service was negotiated, and what an unbound endpoint means for its receive passes.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Iterable

import anyio
import anyio.abc

from .channel import Channel, Driver, Probe, Remove
from .core import (
    Binding,
    ChannelAdded,
    Closed,
    Dropped,
    Event,
    Notice,
    ProbeDriver,
    RemoveHook,
    RpmsgCore,
)
from .endpoint import Endpoint
from .errors import (
    BusClosedError,
    ForeignEndpointError,
    InvalidServiceNameError,
    RpmsgError,
    RpmsgTimeoutError,
)
from .message import DEFAULT, EndpointOptions, Message, Overflow, RxCallback, check_timeout
from .protocol import EndpointPort
from .stats import BusStatistics
from .tap import Capture, LinkInfo, LinkTap, open_tap
from .wire import ADDR_ANY, NS_ADDR, encode_name
from .zc_endpoint import endpoint_class

log = logging.getLogger("aioamp.rpmsg")

#: Linux virtio_rpmsg_bus: a sender waits at most 15 s for a free tx buffer.
DEFAULT_SEND_TIMEOUT = 15.0


class CoreBus(abc.ABC):
    """The endpoint, service, channel and driver half of a bus (see module docstring)."""

    name: str
    _port: EndpointPort
    #: The task group driver probes run in, while the bus runs.
    _tasks: anyio.abc.TaskGroup | None = None
    #: Where the link's messages are recorded (:mod:`rpmsg.tap`); None: nowhere.
    tap: LinkTap | None = None

    def __init__(self, name: str, send_timeout: float | None = DEFAULT_SEND_TIMEOUT) -> None:
        self.name = name
        self.send_timeout = send_timeout
        self.core = RpmsgCore(self._make_endpoint)
        self._service_event: anyio.Event | None = None
        self._driver_errors = 0
        #: Set once the latest probe began: the next one starts after it (see _run_probe).
        self._last_probe: anyio.Event | None = None

    @property
    def send_timeout(self) -> float | None:
        """Default deadline of a send waiting for a buffer (None: none); checked when set."""
        return self._send_timeout

    @send_timeout.setter
    def send_timeout(self, value: float | None) -> None:
        self._send_timeout = check_timeout(value, "send_timeout")

    def _open_tap(
        self, capture: Capture | None, *, role: str, transport: str, backend: str
    ) -> None:
        """Set :attr:`tap` (a backend calls this while it is made, then reports every message
        it sends and receives to the tap: :mod:`rpmsg.tap`)."""
        self.tap = open_tap(LinkInfo(self.name, role, transport, backend), capture)

    @property
    def _capture_errors(self) -> int:
        return 0 if self.tap is None else self.tap.errors

    def _make_endpoint(self, binding: Binding, options: EndpointOptions) -> Endpoint:
        return endpoint_class(options)(self, self._port, binding, options)

    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...

    @abc.abstractmethod
    def statistics(self) -> BusStatistics: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    @property
    @abc.abstractmethod
    def mtu(self) -> int:
        """Largest payload one message can carry, in bytes."""

    @property
    @abc.abstractmethod
    def _ns_enabled(self) -> bool:
        """Whether the peer and we negotiated the name service."""

    @abc.abstractmethod
    def _endpoint_gone(self, ep: Endpoint) -> None:
        """The core unbound ``ep`` (it is closed): what that means for the link."""

    def _check_open(self) -> None:
        self._port.check_sendable(None)  # the bus's closed error, if it closed

    def _bind_ns(self) -> None:
        """Bind the name-service endpoint (address 53), once the name service is negotiated."""
        if self.core.endpoint(NS_ADDR) is None:
            self.core.bind(EndpointOptions(addr=NS_ADDR, name="rpmsg-ns", callback=self._on_ns))

    def _wake_service_waiters(self) -> None:
        if self._service_event is not None:
            self._service_event.set()
            self._service_event = None

    # -- endpoints and services ----------------------------------------------------------------
    def create_endpoint(
        self,
        addr: int = ADDR_ANY,
        *,
        dst: int = ADDR_ANY,
        name: str | None = None,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
        zero_copy: bool = False,
    ) -> Endpoint:
        """Bind a local endpoint (the arguments: :class:`~rpmsg.message.EndpointOptions`).
        Reserved addresses (< 1024) are bound only when asked for explicitly; every argument
        is checked before anything is bound."""
        self._check_open()
        options = EndpointOptions(
            addr=addr,
            dst=dst,
            name=name,
            callback=callback,
            maxsize=maxsize,
            overflow=overflow,
            zero_copy=zero_copy,
        )
        return self.core.bind(options)

    async def create_service(
        self,
        name: str,
        addr: int = ADDR_ANY,
        *,
        callback: RxCallback | None = None,
        maxsize: int = 256,
        overflow: Overflow = Overflow.BLOCK,
        zero_copy: bool = False,
    ) -> Endpoint:
        """Create an endpoint and announce it to the peer (NS CREATE) under ``name``.

        Without the NS feature negotiated the endpoint is created but not announced.
        """
        encode_name(name)  # a service has a name
        options = EndpointOptions(
            addr=addr,
            name=name,
            callback=callback,
            maxsize=maxsize,
            overflow=overflow,
            zero_copy=zero_copy,
        )
        self._check_open()
        ep, events = self.core.create_service(options)
        self._perform(events)
        try:
            await self.announce(ep)
        except BaseException:
            self._unbind(ep)
            raise
        return ep

    async def announce(self, ep: Endpoint, name: str | None = None) -> None:
        """Send NS CREATE for ``ep`` (under ``name`` or its own name).

        Raises:
            ForeignEndpointError: ``ep`` belongs to another bus.
            EndpointClosedError: ``ep`` was closed (its address may be someone else's now).
            InvalidServiceNameError: no name, or one the name field cannot carry.
        """
        self._check_own(ep)
        name = name if name is not None else ep.name
        if name is None:
            raise InvalidServiceNameError("announce needs a service name")
        encode_name(name)
        self._port.check_sendable(ep)
        msg = self.core.announce(ep, name)
        if self._ns_enabled:
            await self._port.send(None, ep.addr, NS_ADDR, msg, DEFAULT)
            self._perform(self.core.announced(ep))

    def _check_own(self, ep: Endpoint) -> None:
        if ep.bus is not self:
            raise ForeignEndpointError(f"{ep!r} belongs to bus {ep.bus.name!r}, not {self.name!r}")

    async def destroy_endpoint(self, ep: Endpoint) -> None:
        """Unbind ``ep``; if it was announced, send NS DESTROY first (best effort). Destroying
        a closed endpoint does nothing.

        Raises:
            ForeignEndpointError: ``ep`` belongs to another bus (nothing changes).
        """
        self._check_own(ep)
        msg = None if self.closed else self.core.withdraw(ep)
        if msg is not None:
            try:
                await self._port.send(None, ep.addr, NS_ADDR, msg, DEFAULT)
            except RpmsgError as exc:
                log.warning(
                    "%s: NS DESTROY for %r not sent: %s",
                    *(self.name, ep.name, exc),
                    extra={"bus": self.name, "service": ep.name, "endpoint": ep.addr},
                )
        self._unbind(ep)

    def _unbind(self, ep: Endpoint) -> None:
        if self.core.unbind(ep):
            self._perform([Closed(ep)])
        else:
            ep._close(None)  # not bound (any more): nothing else is its

    def endpoint(self, addr: int) -> Endpoint | None:
        return self.core.endpoint(addr)

    def _on_ns(self, _ep: Endpoint, msg: Message) -> None:
        self._perform(self.core.receive_ns(msg.payload))

    def _perform(self, events: Iterable[Event]) -> None:
        """Do what the core asked for, in order."""
        for event in events:
            match event:
                case Closed(sink):
                    sink._close(None)
                    self._endpoint_gone(sink)
                case ChannelAdded(channel):
                    log.info(
                        "%s: %r: local %d -> remote %d",
                        *(self.name, channel.name, channel.src, channel.dst),
                        extra={
                            "bus": self.name,
                            "service": channel.name,
                            "src": channel.src,
                            "dst": channel.dst,
                        },
                    )
                    self._wake_service_waiters()
                case ProbeDriver(driver, channel):
                    assert self._tasks is not None
                    began, self._last_probe = self._last_probe, anyio.Event()
                    self._tasks.start_soon(
                        self._run_probe,
                        *(driver, channel, began, self._last_probe),
                        name=f"probe-{channel.name}",
                    )
                case RemoveHook(driver, channel):
                    try:
                        assert driver.remove is not None
                        driver.remove(channel)
                    except Exception:
                        self._driver_errors += 1
                        log.exception(
                            "%s: remove hook of %r raised",
                            *(self.name, channel.name),
                            extra={"bus": self.name, "service": channel.name},
                        )
                case Dropped(reason, detail):
                    log.warning(
                        "%s: %s dropped (%s)",
                        *(self.name, detail, reason),
                        extra={"bus": self.name, "reason": reason},
                    )
                case Notice(text):
                    log.info("%s: %s", self.name, text, extra={"bus": self.name})

    async def _run_probe(
        self, driver: Driver, channel: Channel, after: anyio.Event | None, begin: anyio.Event
    ) -> None:
        """Probes begin in the order of their channels, as Linux probes them: trio starts
        the tasks of one batch in random order, so each waits until the previous one began."""
        if after is not None and not after.is_set():
            await after.wait()
        begin.set()
        try:
            await driver.probe(channel)
        except BusClosedError:
            pass
        except Exception:
            if channel.removed:
                return  # the service went away under the driver: expected
            self._driver_errors += 1
            log.exception(
                "%s: driver for %r failed",
                *(self.name, channel.name),
                extra={"bus": self.name, "service": channel.name},
            )

    # -- drivers and channels -------------------------------------------------------------------
    def register_driver(
        self, names: str | Iterable[str], probe: Probe, *, remove: Remove | None = None
    ) -> Driver:
        """Probe ``probe(channel)`` for every channel announced under one of ``names``,
        including announcements that arrived before this call."""
        self._check_open()
        driver, events = self.core.register_driver(names, probe, remove)
        self._perform(events)
        return driver

    def unregister_driver(self, driver: Driver) -> None:
        """Stop binding ``driver``; its channels stay, its remove hook runs for each."""
        for hook in self.core.unregister_driver(driver):
            assert driver.remove is not None
            driver.remove(hook.channel)

    @property
    def channels(self) -> list[Channel]:
        return self.core.channels

    def find_channel(self, name: str) -> Channel | None:
        return self.core.find_channel(name)

    async def wait_for_service(self, name: str, timeout: float | None = None) -> Channel:
        """The channel announced under ``name``, waiting up to ``timeout`` s for it."""
        encode_name(name)  # a name no announcement can carry would be waited for in vain
        timeout = check_timeout(timeout)
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                self._check_open()
                channel = self.core.find_channel(name)
                if channel is not None:
                    return channel
                if self._service_event is None:
                    self._service_event = anyio.Event()
                await self._service_event.wait()
        raise RpmsgTimeoutError(f"{self.name}: service {name!r} not announced in {timeout} s")
