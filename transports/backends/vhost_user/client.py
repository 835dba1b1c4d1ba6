"""aioamp as the vhost-user frontend: the virtio driver (the rpmsg host) of a backend's device.

Theory of operation: :func:`connect_vhost_user` does what Linux's ``virtio_uml`` does when it
probes a device: it connects to the backend's socket, negotiates (SET_OWNER, GET_FEATURES, the
protocol features, SET_FEATURES), creates the shared memory as a memfd laid out by a
:class:`~transports.virtio.layout.SharedLayout` (the two vrings and the buffer pool) and sends
it as a one-region memory table, then sets up each vring (size, base 0, addresses, a call and
a kick eventfd) and enables it. The region ends where the pool ends, without the layout's
padding: a backend that knows no pool and derives its buffer window from the first receive
buffer to the end of the region (aioamp's does, see rpmsg.rings.remote) gets exactly the pool.
Every request after REPLY_ACK is negotiated waits for its ack, so a backend that refuses
anything fails the open with its reason.

The rpmsg host bus then runs over the memfd like over any shared memory: its vdev entry is a
private copy (a backend never sees or writes it; vhost-user has no status byte), its kicks are
writes to the kick eventfds, and the backend's calls wake it. The memory table describes the
region at guest address :data:`GUEST_BASE` and at a user address :data:`USER_BASE` of its own
(any frontend's private address space): different on purpose, so that a backend that mixes up
the two translations fails against aioamp too, not only against a VM.

Closing disables both vrings first (what Linux does at halt), so the backend can tell an
orderly end from a crash. A backend that hangs up closes the transport.
"""

from __future__ import annotations

import array
import contextlib
import mmap
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import attrs

from ...errors import TransportError
from ...unix_server import connect
from ...virtio.layout import SharedLayout
from ...virtio.memory import DeviceMemory, Region
from ...virtio.vdev import build_single_vdev_table, single_vdev_view
from .backend import DEVICE_FEATURES, DEVICE_TYPE_FEATURES, NUM_VRINGS
from .link import VhostUserTransport, close_fds, drain_fd, log, release_mappings, signal_fd
from .protocol import (
    F_PROTOCOL_FEATURES,
    HEADER,
    PROTOCOL_F_REPLY_ACK,
    U64,
    Code,
    MemoryRegion,
    MemTable,
    Request,
    SetU64,
    Simple,
    VringAddr,
    VringFd,
    VringState,
    check_reply,
    encode_request,
)

#: Guest address of the shared memory (what descriptors and the vdev's vring da carry).
GUEST_BASE = 0x1000_0000
#: The frontend's "user address" of the same memory (what SET_VRING_ADDR carries).
USER_BASE = 0x7F00_0000_0000


class VhostUserFrontend(VhostUserTransport):
    """The frontend (role ``host``) of one backend. Create with :func:`connect_vhost_user`."""

    def __init__(
        self,
        path: Path,
        sock: socket.socket,
        layout: SharedLayout,
        mapping: mmap.mmap,
        kick_fds: list[int],
        call_fds: list[int],
        dfeatures: int,
    ) -> None:
        mem = memoryview(mapping)
        memory = DeviceMemory([Region(layout.base_da, mem[: layout.used_size], "vhost-user")])
        table = bytearray(build_single_vdev_table(layout.vrings(), dfeatures=dfeatures))
        pool = Region(
            layout.base_da + layout.pool_offset,
            mem[layout.pool_offset : layout.pool_offset + layout.pool_size],
            "vhost-user-pool",
        )
        super().__init__(
            role="host",
            memory=memory,
            vdev=single_vdev_view(memoryview(table)),
            pool=pool,
            name=f"vhost-user:{path}",
        )
        self.layout = layout
        self.buffer_size = layout.buffer_size
        self._sock = sock
        self._mappings = [mapping]
        self._kick_fds = kick_fds
        self._call_fds = call_fds
        for fd in (*call_fds, sock.fileno()):
            self._watch(fd)

    def kick(self, vq: int) -> None:
        self._check_open()
        self.stats.kicks_sent += 1
        signal_fd(self._kick_fds[vq])

    def _poll(self) -> int:
        if self._closed:
            return -1
        count = 0
        for fd, _events in self._epoll.poll(0):
            if fd in self._call_fds:
                drain_fd(fd)
                count += 1
                continue
            try:
                data = self._sock.recv(HEADER.size)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._fail(f"{self.name}: the backend connection failed: {exc}")
                return -1
            if not data:
                self._fail(f"{self.name}: the backend disconnected")
            else:
                self._fail(f"{self.name}: the backend sent an unexpected message {data.hex()}")
            return -1
        return count

    def _goodbye(self) -> None:
        for index in range(NUM_VRINGS):  # as Linux at halt: an orderly end, not a crash
            data, _fds = encode_request(VringState(Code.SET_VRING_ENABLE, index, 0))
            with contextlib.suppress(OSError):
                self._sock.send(data)

    def _release(self) -> None:
        self._sock.close()
        close_fds(self._kick_fds + self._call_fds)
        release_mappings(self.memory, self._mappings)


@attrs.define
class _Handshake:
    """The frontend's side of the setup requests, each with its deadline."""

    sock: socket.socket
    deadline: float
    where: str
    reply_ack: bool = False

    async def send(self, request: Request) -> None:
        if self.reply_ack:
            request = attrs.evolve(request, need_reply=True)
        data, fds = encode_request(request)
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        sent = 0
        while sent < len(data):
            try:
                sent += self.sock.sendmsg([data[sent:]], ancillary if sent == 0 else [])
            except BlockingIOError:
                await self._wait(anyio.wait_writable)
            except OSError as exc:
                raise TransportError(f"{self.where}: {request.code.name} not sent: {exc}") from None
        if request.need_reply:
            status = await self.reply_u64(request.code)
            if status:
                raise TransportError(
                    f"{self.where}: the backend refused {request.code.name} (status {status})"
                )

    async def reply_u64(self, code: Code) -> int:
        header = await self._read(HEADER.size)
        check_reply(code, header, U64.size)
        value: int = U64.unpack(await self._read(U64.size))[0]
        return value

    async def ask(self, code: Code) -> int:
        await self.send(Simple(code))
        return await self.reply_u64(code)

    async def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except BlockingIOError:
                await self._wait(anyio.wait_readable)
                continue
            except OSError as exc:
                raise TransportError(f"{self.where}: connection failed: {exc}") from None
            if not chunk:
                raise TransportError(f"{self.where}: the backend closed the connection")
            buf += chunk
        return buf

    async def _wait(self, waiter: Callable[[socket.socket], Awaitable[None]]) -> None:
        remaining = self.deadline - time.monotonic()
        with anyio.move_on_after(max(0.0, remaining)):
            await waiter(self.sock)
            return
        raise TransportError(f"{self.where}: the backend did not answer in time")


def _memfd(size: int) -> tuple[int, mmap.mmap]:
    """A memfd of ``size`` bytes and its mapping (the caller closes the fd once sent)."""
    fd = os.memfd_create("aioamp-vhost-user", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


def _eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


async def connect_vhost_user(
    path: str | os.PathLike[str],
    *,
    layout: SharedLayout | None = None,
    timeout: float = 10.0,
) -> VhostUserFrontend:
    """Connect to the vhost-user backend listening on ``path`` and set its device up.

    Args:
        path: the backend's unix socket.
        layout: vring size and alignment, buffer size and count (its ``base_da`` is replaced
            by :data:`GUEST_BASE`).
        timeout: how long to retry connecting, and then to wait for the setup's replies.

    Raises:
        TransportError: no backend, or one that refused or did not answer the setup.
        VhostUserProtocolError: the backend's replies break the protocol.
    """
    layout = attrs.evolve(layout or SharedLayout(), base_da=GUEST_BASE)
    sock_path = Path(path)
    where = f"vhost-user:{sock_path}"
    sock = await connect(sock_path, timeout)
    hs = _Handshake(sock, time.monotonic() + timeout, where)
    kick_fds: list[int] = []
    call_fds: list[int] = []
    mapping: mmap.mmap | None = None
    try:
        await hs.send(Simple(Code.SET_OWNER))
        offered = await hs.ask(Code.GET_FEATURES)
        accepted = offered & DEVICE_FEATURES
        if offered & (1 << F_PROTOCOL_FEATURES):
            protocol = await hs.ask(Code.GET_PROTOCOL_FEATURES) & (1 << PROTOCOL_F_REPLY_ACK)
            await hs.send(SetU64(Code.SET_PROTOCOL_FEATURES, protocol))
            hs.reply_ack = bool(protocol)  # from the next request on
        await hs.send(SetU64(Code.SET_FEATURES, accepted))
        memfd, mapping = _memfd(layout.total_size)
        try:
            region = MemoryRegion(GUEST_BASE, layout.used_size, USER_BASE, 0, memfd)
            await hs.send(MemTable((region,)))
        finally:
            os.close(memfd)  # the mapping stays
        vring = layout.vring_layout
        for index in range(NUM_VRINGS):
            desc = USER_BASE + layout.vring_offsets[index]
            await hs.send(VringState(Code.SET_VRING_NUM, index, layout.num))
            await hs.send(VringState(Code.SET_VRING_BASE, index, 0))
            addr = VringAddr(index, 0, desc, desc + vring.used, desc + vring.avail, 0)
            await hs.send(addr)
            call_fds.append(_eventfd())
            await hs.send(VringFd(Code.SET_VRING_CALL, index, call_fds[-1]))
            kick_fds.append(_eventfd())
            await hs.send(VringFd(Code.SET_VRING_KICK, index, kick_fds[-1]))
            if accepted & (1 << F_PROTOCOL_FEATURES):
                await hs.send(VringState(Code.SET_VRING_ENABLE, index, 1))
    except BaseException:
        sock.close()
        close_fds(kick_fds + call_fds)
        if mapping is not None:
            mapping.close()
        raise
    log.info("%s: frontend set up (features %#x)", where, accepted)
    return VhostUserFrontend(
        sock_path, sock, layout, mapping, kick_fds, call_fds, offered & DEVICE_TYPE_FEATURES
    )
