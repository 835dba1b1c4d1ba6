"""``aioamp echo`` and ``aioamp ping``: rpmsg over any transport URL, e.g. between two
processes (``shm://NAME``), with OpenAMP's Linux demo apps (``openamp:``) or a Linux kernel
(``vhost-user:PATH``), or over a bus URL: the Linux kernel's own rpmsg bus (``linux:``, where
the kernel is the host and aioamp one of its users).

On a bus whose messages carry no source address (``linux:``: the kernel hides it), echo
answers through the peer's channel of the same service name, and ends when the peer destroys
it. ping sends and receives through the channel of its service in every case (on the vring
bus that is its own announced endpoint, bound to the peer's)."""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc

from platforms.linux.url import linux_config
from rpmsg import (
    ADDR_ANY,
    HDR_SIZE,
    Bus,
    BusClosedError,
    Channel,
    Endpoint,
    EndpointClosedError,
    Message,
    RpmsgBus,
    RpmsgError,
    open_bus,
)
from rpmsg.open import is_bus_scheme
from rpmsg.wire import DEFAULT_BUFFER_SIZE
from transports import TransportError, open_transport
from transports.base import Role
from transports.registry import check_transport_url, transport_config

from .exits import PeerGoneError, UsageError
from .loop import run
from .options import integer, seconds, transport_url
from .output import progress, say, status

DEFAULT_SERVICE = "rpmsg-openamp-demo-channel"
_SEQ = struct.Struct("<I")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--transport",
        required=True,
        metavar="URL",
        type=bus_or_transport_url,
        help="e.g. shm://demo, openamp:, vhost-user:/tmp/rpmsg.sock, linux: (the kernel's "
        "rpmsg bus; linux:/dev/rpmsg_ctrl1 for another); unknown or invalid URL options are "
        "refused",
    )
    p.add_argument(
        "--role",
        required=True,
        choices=["host", "remote"],
        help="this end's virtio role: the host owns the vrings' buffers, the remote answers; "
        "the peer takes the other",
    )
    p.add_argument("--service", default=DEFAULT_SERVICE, help="service (endpoint) name")
    p.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        help="seconds to wait for the peer (then exit status 3), and for each echo",
    )


def add_ipc_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "echo",
        help="announce a service and echo every message to its sender",
        description="Announce --service on --transport and send every message back to its "
        "sender. Exit status 0 when the session ends in order: --count messages echoed, the "
        "peer destroyed its endpoint or closed the link; 3 when the peer vanished (killed, "
        "crashed) or never came; 1 when the link failed otherwise.",
    )
    _common(p)
    p.add_argument(
        "--count",
        type=integer(0),
        default=0,
        help="exit after N messages (0: until the peer destroys its endpoint or closes the link)",
    )
    p.set_defaults(func=echo_main)
    p = sub.add_parser(
        "ping",
        help="send numbered messages to a service and check the echoes",
        description="Wait for --service on --transport, send --count numbered messages of each "
        "--size and check every echo byte for byte; print the round-trip times. A progress "
        "bar shows on a terminal. Exit status 0 when every echo matched, 1 when one did not, "
        "3 when the peer vanished or never came.",
    )
    _common(p)
    p.add_argument("--count", type=integer(1), default=100, help="messages per size")
    p.add_argument(
        "--size",
        type=integer(_SEQ.size),
        nargs="+",
        default=[16, 64, 496],
        help="payload sizes in bytes, each at most the MTU (the URL's buffer_size - 16)",
    )
    p.add_argument(
        "--flood",
        action="store_true",
        help="ring-full flood instead of round trips: send until no tx buffer is free, then "
        "wait for echoes, and report echoed msg/s (OpenAMP's flood test)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=ping_main)


def _where(url: str) -> str:
    """The URL, and the socket it meets its peer on when the scheme has one (a bus scheme's
    URL names its device itself)."""
    if is_bus_scheme(urlsplit(url).scheme):
        return url
    socket = getattr(transport_config(url), "socket", None)
    return f"{url} (socket {socket})" if socket else url


def bus_or_transport_url(text: str) -> str:
    """A transport URL (checked as :func:`~.options.transport_url` does) or a bus URL: the
    ``linux:`` ones are parsed, a third party's bus scheme is left to its factory."""
    scheme = urlsplit(text).scheme
    if scheme and is_bus_scheme(scheme):
        if scheme == "linux":
            try:
                linux_config(text)
            except TransportError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return transport_url(text)


class Session:
    """An open bus, and whether its peer closed the link in order (a transport's goodbye)."""

    def __init__(self, bus: Bus, peer_closed: Callable[[], bool]) -> None:
        self.bus = bus
        self.peer_closed = peer_closed


@asynccontextmanager
async def _open(url: str, role: Role, timeout: float) -> AsyncIterator[Session]:
    """A bus for ``url``: a bus scheme's (waiting up to ``timeout`` s for it to be ready), or
    the vring bus over the URL's transport (waiting at most ``timeout`` s for the peer: a
    socket server would otherwise wait forever), with the transport's buffer size."""
    status(f"waiting for a peer on {_where(url)}, up to {timeout:g} s ...")
    if is_bus_scheme(urlsplit(url).scheme):
        from platforms.linux.bus import LinuxRpmsgBus  # not loaded for transport URLs

        async with open_bus(url, role=role, name=f"aioamp-{role}", ready_timeout=timeout) as bus:
            # The kernel's bus ends when its device is removed: the remote side stopped (or
            # left) as a whole; it cannot tell an orderly stop from a crash.
            yield Session(bus, lambda: isinstance(bus, LinuxRpmsgBus) and bus.device_removed)
        return
    transport = None
    with anyio.move_on_after(timeout):
        transport = await open_transport(url, role=role)
    if transport is None:
        raise PeerGoneError(f"{url}: no peer within {timeout:g} s")
    buffer_size = getattr(transport, "buffer_size", DEFAULT_BUFFER_SIZE)
    async with transport:
        bus = RpmsgBus(transport, buffer_size=buffer_size, name=f"aioamp-{role}")
        bus.ready_timeout = timeout
        async with bus:
            yield Session(bus, lambda: transport.peer_closed)


def _check_role(url: str, role: str) -> None:
    if urlsplit(url).scheme == "linux" and role != "host":
        raise UsageError("linux: the kernel is always the rpmsg host: use --role host")


# -- echo ---------------------------------------------------------------------------------------
def echo_main(args: argparse.Namespace) -> int:
    _check_role(args.transport, args.role)
    echoed, peer_closed = run(
        _echo, args.transport, args.role, args.service, args.count, args.timeout
    )
    print(f"echoed {echoed} messages" + ("; the peer closed the link" if peer_closed else ""))
    return 0


async def _echo(url: str, role: Role, service: str, count: int, timeout: float) -> tuple[int, bool]:
    """Echo until ``count`` messages, the peer's NS DESTROY or its orderly close of the link
    (an end, not an error: ``(echoed, True)``); a peer that vanished raises."""
    async with _open(url, role, timeout) as session:
        bus = session.bus
        ep = await bus.create_service(service)
        say(f"{service}: endpoint 0x{ep.addr:x} announced, echoing")
        replies = _Replies(bus, ep, service, timeout)
        async with anyio.create_task_group() as tg:
            replies.ended = tg.cancel_scope.cancel
            try:
                async for msg in ep:
                    await replies.send(msg, tg)
                    if count and replies.echoed >= count:
                        break
            except EndpointClosedError:
                if not session.peer_closed():
                    raise
                tg.cancel_scope.cancel()
                return replies.echoed, True
            tg.cancel_scope.cancel()
        await ep.aclose()
    return replies.echoed, False


class _Replies:
    """Answers each message to its source; where the bus does not say the source (the
    kernel's), through the peer's channel of the service, whose removal ends the session."""

    def __init__(self, bus: Bus, ep: Endpoint, service: str, timeout: float) -> None:
        self.bus, self.ep, self.service, self.timeout = bus, ep, service, timeout
        self.channel: Channel | None = None
        self.echoed = 0
        self.ended: Callable[[], None] = lambda: None

    async def send(self, msg: Message, tg: anyio.abc.TaskGroup) -> None:
        if msg.src != ADDR_ANY:
            await self.ep.send_to(msg.src, msg.payload)
        else:
            if self.channel is None:
                self.channel = await self.bus.wait_for_service(self.service, self.timeout)
                tg.start_soon(self._until_removed, self.channel)
            try:
                await self.channel.send(msg.payload)
            except EndpointClosedError:
                if not self.channel.removed:
                    raise
                return
        self.echoed += 1

    async def _until_removed(self, channel: Channel) -> None:
        # Nothing is sent to it: it ends when the peer withdraws it, or with the bus (whose
        # end the echo loop reports).
        with contextlib.suppress(EndpointClosedError):
            async for _ in channel:
                pass
        self.ended()


# -- ping ---------------------------------------------------------------------------------------
def _payload(seq: int, size: int) -> bytes:
    """Sequence number, then a pattern that depends on both (catches shifted or stale bytes)."""
    body = bytes((seq + i) & 0xFF for i in range(size - _SEQ.size))
    return _SEQ.pack(seq) + body


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _check_sizes(url: str, sizes: Sequence[int]) -> None:
    """Refuse a size over the MTU the URL implies before connecting to anyone (a scheme of a
    third party has no known layout: the bus checks once it is up)."""
    scheme = urlsplit(url).scheme
    if scheme == "linux":
        mtu, why = linux_config(url).mtu, "the linux: URL's mtu (the kernel does not say)"
    elif is_bus_scheme(scheme):
        return
    else:
        layout = check_transport_url(url)
        if layout is None:
            return
        mtu = layout.buffer_size - HDR_SIZE
        why = f"buffer size {layout.buffer_size} less the {HDR_SIZE}-byte rpmsg header"
    for size in sizes:
        if size > mtu:
            raise UsageError(f"--size {size} exceeds the MTU of {mtu} ({why})")


def ping_main(args: argparse.Namespace) -> int:
    _check_role(args.transport, args.role)
    _check_sizes(args.transport, args.size)
    report = run(
        _ping,
        args.transport,
        args.role,
        args.service,
        args.count,
        args.size,
        args.timeout,
        args.flood,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["results"]:
            head = f"{r['size']:4d} B x {r['count']}: {r['matched']} matched, "
            if args.flood:
                print(f"{head}flood {r['msgs_per_s']:.0f} echoed msg/s")
                continue
            print(
                f"{head}round trip median {r['rtt_median_us']:.1f} us, p99 "
                f"{r['rtt_p99_us']:.1f} us, {r['msgs_per_s']:.0f} msg/s"
            )
        print("all echoes matched" if report["ok"] else "MISMATCHED ECHOES")
    return 0 if report["ok"] else 1


async def _ping(
    url: str,
    role: Role,
    service: str,
    count: int,
    sizes: list[int],
    timeout: float,
    flood: bool = False,
) -> dict[str, Any]:
    results = []
    async with _open(url, role, timeout) as session:
        bus = session.bus
        for size in sizes:
            # Before announcing anything: a refused size must not leave a half-run session.
            if size > bus.mtu:
                raise RpmsgError(f"--size {size} exceeds the MTU of {bus.mtu}")
        ep = await bus.create_service(service)
        if bus.find_channel(service) is None:
            status(f"waiting for the peer to announce {service!r}, up to {timeout:g} s ...")
        channel = await bus.wait_for_service(service, timeout=timeout)
        measure = _flood_size if flood else _ping_size
        for size in sizes:
            results.append(await measure(channel.endpoint, count, size, timeout))
        await ep.aclose()  # NS DESTROY: tells the echo side we are done
    ok = all(r["matched"] == r["count"] for r in results)
    return {"transport": url, "role": role, "service": service, "results": results, "ok": ok}


@contextmanager
def _peer_withdrawal(what: Callable[[], str]) -> Iterator[None]:
    """The peer's NS DESTROY mid-run is its going away (exit 3); the link going says how."""
    try:
        yield
    except EndpointClosedError as exc:
        if isinstance(exc, BusClosedError):
            raise
        raise PeerGoneError(f"the peer withdrew the service after {what()}") from exc


async def _ping_size(ep: Endpoint, count: int, size: int, timeout: float) -> dict[str, Any]:
    """``count`` round trips through ``ep`` (the service's channel: its peer is the echo)."""
    rtts: list[float] = []
    matched = done = 0
    with (
        progress(count, f"ping {size} B") as bar,
        _peer_withdrawal(lambda: f"{done} of {count} messages of {size} B"),
    ):
        start = time.perf_counter()
        for seq in range(count):
            payload = _payload(seq, size)
            t0 = time.perf_counter()
            await ep.send(payload)
            msg = await ep.recv(timeout)
            rtts.append(time.perf_counter() - t0)
            matched += msg.payload == payload
            done += 1
            bar.update()
        elapsed = time.perf_counter() - start
    rtts.sort()
    return {
        "size": size,
        "count": count,
        "matched": matched,
        "rtt_median_us": statistics.median(rtts) * 1e6,
        "rtt_p99_us": _percentile(rtts, 0.99) * 1e6,
        "msgs_per_s": count / elapsed if elapsed > 0 else 0.0,
    }


#: Messages handed to one try_send_many (a ring holds 256 by default: one batch fills it).
_FLOOD_BATCH = 512


async def _flood_size(ep: Endpoint, count: int, size: int, timeout: float) -> dict[str, Any]:
    """OpenAMP's flood through ``ep`` (the service's channel): send until no tx buffer is
    free (one kick per batch), then take the echoes that came back (checked in order), and
    again; echoed messages per second."""
    payloads = [_payload(seq, size) for seq in range(count)]  # outside the clock
    sent = received = matched = 0
    with (
        progress(count, f"flood {size} B") as bar,
        _peer_withdrawal(lambda: f"{received} of {count} echoes of {size} B"),
    ):
        start = time.perf_counter()
        while received < count:
            if sent < count:
                n = ep.try_send_many(payloads[sent : sent + _FLOOD_BATCH])
                if not n and sent == received:  # nothing in flight: wait for a buffer
                    await ep.send(payloads[sent], timeout=timeout)
                    n = 1
                sent += n
            for msg in await ep.recv_batch(sent - received, timeout):
                matched += msg.payload == payloads[received]
                received += 1
            bar.update(received - bar.n)
        elapsed = time.perf_counter() - start
    return {
        "size": size,
        "count": count,
        "matched": matched,
        "msgs_per_s": count / elapsed if elapsed > 0 else 0.0,
    }
