"""``aioamp echo`` and ``aioamp ping``: rpmsg over any transport URL, e.g. between two
processes (``shm://NAME``), with OpenAMP's Linux demo apps (``openamp:``) or a Linux kernel
(``vhost-user:PATH``)."""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio

from rpmsg import HDR_SIZE, BusClosedError, Endpoint, EndpointClosedError, RpmsgBus, RpmsgError
from rpmsg.wire import DEFAULT_BUFFER_SIZE
from transports import Transport, open_transport
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
        type=transport_url,
        help="e.g. shm://demo, openamp:, vhost-user:/tmp/rpmsg.sock (unknown or invalid URL "
        "options are refused)",
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
    """The URL, and the socket it meets its peer on when the scheme has one."""
    socket = getattr(transport_config(url), "socket", None)
    return f"{url} (socket {socket})" if socket else url


async def _open(url: str, role: Role, timeout: float) -> tuple[Transport, RpmsgBus]:
    """The transport (waiting at most ``timeout`` s for the peer: a socket server would
    otherwise wait forever) and a bus using the transport's buffer size."""
    status(f"waiting for a peer on {_where(url)}, up to {timeout:g} s ...")
    with anyio.move_on_after(timeout):
        transport = await open_transport(url, role=role)
        buffer_size = getattr(transport, "buffer_size", DEFAULT_BUFFER_SIZE)
        bus = RpmsgBus(transport, buffer_size=buffer_size, name=f"aioamp-{role}")
        bus.ready_timeout = timeout
        return transport, bus
    raise PeerGoneError(f"{url}: no peer within {timeout:g} s")


# -- echo ---------------------------------------------------------------------------------------
def echo_main(args: argparse.Namespace) -> int:
    echoed, peer_closed = run(
        _echo, args.transport, args.role, args.service, args.count, args.timeout
    )
    print(f"echoed {echoed} messages" + ("; the peer closed the link" if peer_closed else ""))
    return 0


async def _echo(url: str, role: Role, service: str, count: int, timeout: float) -> tuple[int, bool]:
    """Echo until ``count`` messages, the peer's NS DESTROY or its orderly close of the link
    (an end, not an error: ``(echoed, True)``); a peer that vanished raises."""
    transport, bus = await _open(url, role, timeout)
    echoed = 0
    async with transport, bus:
        ep = await bus.create_service(service)
        say(f"{service}: endpoint 0x{ep.addr:x} announced, echoing")
        try:
            async for msg in ep:
                await ep.send_to(msg.src, msg.payload)
                echoed += 1
                if count and echoed >= count:
                    break
        except EndpointClosedError:
            if not transport.peer_closed:
                raise
            return echoed, True
        await ep.aclose()
    return echoed, False


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
    layout = check_transport_url(url)
    if layout is None:
        return
    mtu = layout.buffer_size - HDR_SIZE
    for size in sizes:
        if size > mtu:
            raise UsageError(
                f"--size {size} exceeds the MTU of {mtu} (buffer size {layout.buffer_size} "
                f"less the {HDR_SIZE}-byte rpmsg header)"
            )


def ping_main(args: argparse.Namespace) -> int:
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
    transport, bus = await _open(url, role, timeout)
    results = []
    async with transport, bus:
        for size in sizes:
            # Before announcing anything: a refused size must not leave a half-run session.
            if size > bus.mtu:
                raise RpmsgError(f"--size {size} exceeds the MTU of {bus.mtu}")
        ep = await bus.create_service(service)
        if bus.find_channel(service) is None:
            status(f"waiting for the peer to announce {service!r}, up to {timeout:g} s ...")
        channel = await bus.wait_for_service(service, timeout=timeout)
        dst = channel.dst
        measure = _flood_size if flood else _ping_size
        for size in sizes:
            results.append(await measure(ep, dst, count, size, timeout))
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


async def _ping_size(
    ep: Endpoint, dst: int, count: int, size: int, timeout: float
) -> dict[str, Any]:
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
            await ep.send_to(dst, payload)
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


async def _flood_size(
    ep: Endpoint, dst: int, count: int, size: int, timeout: float
) -> dict[str, Any]:
    """OpenAMP's flood: send until no tx buffer is free (one kick per batch), then take the
    echoes that came back (checked in order), and again; echoed messages per second."""
    payloads = [_payload(seq, size) for seq in range(count)]  # outside the clock
    sent = received = matched = 0
    with (
        progress(count, f"flood {size} B") as bar,
        _peer_withdrawal(lambda: f"{received} of {count} echoes of {size} B"),
    ):
        start = time.perf_counter()
        while received < count:
            if sent < count:
                n = ep.try_send_many(payloads[sent : sent + _FLOOD_BATCH], dst=dst)
                if not n and sent == received:  # nothing in flight: wait for a buffer
                    await ep.send_to(dst, payloads[sent], timeout=timeout)
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
