"""The Linux kernel's rpmsg bus, through its char devices: the :class:`~rpmsg.protocol.Bus` API
where the kernel is the host and runs the rings.

Theory of operation: a :class:`LinuxRpmsgBus` is one virtio rpmsg device of the kernel (one
remote processor's vdev), reached through its control device ``/dev/rpmsg_ctrlN``. Every
endpoint is a char device of its own (:mod:`.port`), read by a task of the bus:

* ``create_endpoint`` is RPMSG_CREATE_EPT_IOCTL: an endpoint device below the control device.
  Its address is the one asked for; without one the kernel picks it and does not tell user
  space (``ep.addr`` is then ADDR_ANY).
* ``create_service`` is RPMSG_CREATE_DEV_IOCTL with an explicit source address (the kernel
  announces only those) and binds the new device to ``rpmsg_chrdev``: the kernel sends the NS
  CREATE at that probe and the NS DESTROY when the endpoint is destroyed (RELEASE_DEV). The
  address is the lowest free one from 1024 that sysfs shows as unused; if the kernel holds it
  anyway (an endpoint created with ADDR_ANY), the probe fails and the next one is tried.
* Channels (the remote's announcements) are the bus's devices in sysfs. ``wait_for_service``
  and registered drivers open them: bound to ``rpmsg_chrdev`` first if needed (rpmsg-raw binds
  by itself; other names need ``driver_override``), then their ``/dev/rpmsgN``. Sysfs is read
  again on each rpmsg uevent (:mod:`.uevent`), never in a polling loop. A channel the remote
  destroys ends its endpoint's iteration (the kernel's EPIPE, or the uevent, first).

What the kernel refuses (:class:`~rpmsg.errors.UnsupportedOperationError`): sending from
another source address, sending to any destination but the endpoint's own, a service's
endpoint sending at all (it has none). Received messages carry no source address: ``msg.src``
is the endpoint's destination. See docs/linux.md.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

import anyio
import anyio.abc

from rpmsg.core import Binding
from rpmsg.endpoint import Endpoint
from rpmsg.errors import (
    AddressInUseError,
    BusClosedError,
    EndpointClosedError,
    ForeignEndpointError,
    RpmsgError,
)
from rpmsg.message import EndpointOptions, Overflow, RxCallback, check_timeout
from rpmsg.stats import BusStatistics
from rpmsg.tap import Capture, LinkInfo, open_tap
from rpmsg.wire import ADDR_ANY, DEFAULT_BUFFER_SIZE, HDR_SIZE, encode_name
from rpmsg.zc_endpoint import endpoint_class
from transports._tasks import raise_one

from .bus_channels import ChannelsMixin
from .bus_state import BusCounters
from .channels import ChannelTable
from .chardev import CharDev
from .files import HostFiles, KernelFiles
from .kernel_calls import KernelCalls, Kind, Opened
from .port import KernelPort, closed_error
from .rpmsg_sysfs import RpmsgSysfs, ctrl_of_remoteproc, list_ctrl_devices
from .uevent import UeventMonitor, under
from .uevent_source import UeventSource

log = logging.getLogger("aioamp.platform.linux")

#: virtio_rpmsg_bus.c: 512-byte buffers (MAX_RPMSG_BUF_SIZE) less the 16-byte header. The
#: kernel does not tell user space its buffer size; the ``mtu`` argument overrides this.
DEFAULT_MTU = DEFAULT_BUFFER_SIZE - HDR_SIZE


class LinuxRpmsgBus(ChannelsMixin, anyio.AsyncContextManagerMixin):
    """One of the kernel's rpmsg buses (``async with LinuxRpmsgBus() as bus``).

    Args:
        ctrl: its control device (``/dev/rpmsg_ctrl1`` or ``rpmsg_ctrl1``); default: the one
            ``rproc`` names, else the lowest numbered.
        rproc: take the control device below this remote processor (its ``name`` in
            /sys/class/remoteproc, or ``remoteprocN``): a name stable across boots.
        files: where the kernel's files are (default: this host's).
        mtu: the largest payload; the kernel does not report it (virtio: 496).
        send_timeout: default deadline of a send waiting for a tx buffer (None: none).
        ready_timeout: how long to wait for the control device to appear (None: not at all).
        uevents: which uevents to follow (see :mod:`.uevent`).
        bind: whether channels may be bound to ``rpmsg_chrdev`` (writes ``driver_override``).
        name: a label for logs.
        capture: record every message each endpoint writes and reads, and each channel
            that appears or goes, there (:mod:`rpmsg.tap`), as well as in the process-wide
            captures.
    """

    role = "host"

    def __init__(
        self,
        ctrl: str | None = None,
        *,
        rproc: str | None = None,
        files: KernelFiles | None = None,
        mtu: int = DEFAULT_MTU,
        send_timeout: float | None = 15.0,
        ready_timeout: float | None = None,
        uevents: UeventSource = "auto",
        bind: bool = True,
        name: str = "linux",
        capture: Capture | None = None,
    ) -> None:
        if isinstance(mtu, bool) or not isinstance(mtu, int) or mtu < 1:
            raise ValueError(f"mtu must be a positive int, not {mtu!r}")
        self.name = name
        self.files: KernelFiles = files if files is not None else HostFiles()
        self._ctrl_arg = None if ctrl is None else os.path.basename(ctrl)
        self._rproc = rproc
        self._ready_timeout = check_timeout(ready_timeout, "ready_timeout")
        self._uevents: UeventSource = uevents
        self._bind = bind
        self.counters = BusCounters(mtu=mtu, send_timeout=check_timeout(send_timeout))
        where = ctrl or (f"remoteproc {rproc}" if rproc else "first rpmsg_ctrl")
        self.counters.tap = open_tap(LinkInfo(name, "host", f"linux:{where}", "kernel"), capture)
        self.table = ChannelTable()
        self._open: dict[Endpoint, tuple[Kind, KernelPort, str | None]] = {}
        self._changed = anyio.Event()
        self._tasks: anyio.abc.TaskGroup | None = None
        self._calls: KernelCalls | None = None
        self._monitor: UeventMonitor | None = None
        self.sysfs: RpmsgSysfs | None = None
        #: Whether the bus closed because the kernel removed its rpmsg device: the remote
        #: processor stopped, crashed or its link went (the kernel does not say which).
        self.device_removed = False

    def __repr__(self) -> str:
        ctrl = self.sysfs.ctrl if self.sysfs is not None else self._ctrl_arg
        return f"<LinuxRpmsgBus {self.name!r} {ctrl}{' closed' if self.closed else ''}>"

    # -- lifetime -----------------------------------------------------------------------------
    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        """The bus's tasks run in a task group of their own, in a child task: closing the bus
        (or its failing) cancels them, never the body; the body's exception comes out alone,
        never in an ExceptionGroup."""
        self._monitor = UeventMonitor.open(self.files, self._uevents)
        body: BaseException | None = None
        try:
            ctrl = await self._find_ctrl()
            self.sysfs = RpmsgSysfs(self.files, ctrl)
            try:
                ctrl_dev = CharDev.open(f"/dev/{ctrl}", self.files.host_path(f"/dev/{ctrl}"))
            except EndpointClosedError as exc:  # no node: no devtmpfs, or udev has not run
                raise BusClosedError(f"{self.name}: {ctrl} is in sysfs, but {exc}") from None
            self._calls = KernelCalls(self.sysfs, ctrl_dev)
            async with anyio.create_task_group() as tg:
                await tg.start(self._run, name=f"{self.name}-bus")
                try:
                    self._rescan()
                    yield self
                except BaseException as exc:
                    body = exc
                    raise
                finally:
                    await self.aclose()
        except BaseExceptionGroup as group:
            raise_one(group, keep=body)
        finally:
            self._monitor.close()
            if self._calls is not None:
                self._calls.ctrl.close()

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                tasks.start_soon(self._watch, name=f"{self.name}-uevents")
                task_status.started()
                await anyio.sleep_forever()  # until aclose() or fail() cancels the group
        finally:
            self._tasks = None

    async def _find_ctrl(self) -> str:
        """The control device, waiting up to ``ready_timeout`` for it to appear (the remote
        processor may still be starting)."""
        assert self._monitor is not None
        wait = math.inf if self._ready_timeout is None else self._ready_timeout
        with anyio.move_on_after(wait):
            while True:
                found = self._ctrl_candidates()
                if found:
                    return found[0]
                if self._ready_timeout is None:
                    break
                await self._monitor.receive()
        what = self._ctrl_arg or (f"remoteproc {self._rproc!r}" if self._rproc else "any")
        raise BusClosedError(
            f"{self.name}: no rpmsg control device ({what}) in /sys/class/rpmsg"
            + ("" if self._ready_timeout is None else f" within {self._ready_timeout} s")
            + ": is the remote processor running, and CONFIG_RPMSG_CTRL enabled?"
        )

    def _ctrl_candidates(self) -> list[str]:
        ctrls = (
            ctrl_of_remoteproc(self.files, self._rproc)
            if self._rproc is not None
            else list_ctrl_devices(self.files)
        )
        if self._ctrl_arg is not None:
            ctrls = [c for c in ctrls if c == self._ctrl_arg]
        return ctrls

    @property
    def closed(self) -> bool:
        return self.counters.closed is not None

    async def aclose(self) -> None:
        """Close every endpoint (iterations end; our services are withdrawn) and stop."""
        if self.counters.closed is None:
            self._close_all(closed_error(self.name), None)

    def fail(self, cause: BaseException) -> None:
        """Close the bus because of ``cause``: pending and later calls raise
        :class:`BusClosedError` from it."""
        if self.counters.closed is None:
            log.warning("%s: bus closed: %s", self.name, cause)
            err = closed_error(self.name, cause)
            self._close_all(err, err)

    def _close_all(self, closed: BusClosedError, reason: BaseException | None) -> None:
        self.counters.closed = closed
        for ep in list(self._open):
            self._release(ep, reason)
        self._changed.set()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    def _check_open(self) -> None:
        if self.counters.closed is not None:
            raise self.counters.closed
        if self._calls is None or self._tasks is None:
            raise RpmsgError(f"{self.name}: the bus is not running (use `async with`)")

    @property
    def _kernel(self) -> KernelCalls:
        self._check_open()
        assert self._calls is not None
        return self._calls

    # -- uevents ------------------------------------------------------------------------------
    async def _watch(self) -> None:
        try:
            await self._follow_uevents()
        except anyio.ClosedResourceError:
            pass
        except Exception as exc:  # a bug must close the bus, not leave it deaf
            log.exception("%s: following uevents failed", self.name)
            self.fail(exc)

    async def _follow_uevents(self) -> None:
        assert self._monitor is not None and self.sysfs is not None
        sysfs = self.sysfs
        while True:
            event = await self._monitor.receive()
            self.counters.uevents = self._monitor.received
            if event is None:
                self.counters.uevents_lost += 1
            elif event.subsystem != "rpmsg" or not under(event.devpath, sysfs.virtio_path):
                continue
            if event is not None and event.action == "remove" and event.name == sysfs.ctrl:
                self.device_removed = True
                self.fail(BusClosedError(f"{sysfs.ctrl} was removed (the remote processor went)"))
                return
            self._rescan()

    # -- endpoints ----------------------------------------------------------------------------
    def _adopt(
        self, opened: Opened, kind: Kind, options: EndpointOptions, device: str | None
    ) -> Endpoint:
        """An Endpoint over the opened char device; its reader starts now."""
        assert self._tasks is not None
        port = KernelPort(opened.dev, opened.dst, self.counters)
        binding = Binding(opened.addr, opened.dst, options.name, kind == "service")
        ep = endpoint_class(options)(self, port, binding, options)
        self._open[ep] = (kind, port, device)
        self._tasks.start_soon(self._read, ep, port, name=f"{self.name}-{opened.dev.path}")
        return ep

    async def _read(self, ep: Endpoint, port: KernelPort) -> None:
        """An endpoint's reader; when it ends, the endpoint is gone (its channel removed, the
        device destroyed) or closed: a channel leaves the table at once."""
        try:
            await port.read_into(ep)
        except Exception as exc:  # a bug must end this endpoint, not the bus unseen
            log.exception("%s: reading %s failed", self.name, port.dev.path)
            ep._close(exc)
        if ep in self._open:
            self._endpoint_gone(ep)

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
        """An endpoint device of the control device (RPMSG_CREATE_EPT_IOCTL): local address
        ``addr`` (ADDR_ANY: the kernel's choice, unknown here), sending to ``dst`` only.
        ``zero_copy``: the API of :mod:`rpmsg.zero_copy`, one copy each way here."""
        options = EndpointOptions(
            addr=addr,
            dst=dst,
            name=name,
            callback=callback,
            maxsize=maxsize,
            overflow=overflow,
            zero_copy=zero_copy,
        )
        opened = self._kernel.create_endpoint(options.name or "aioamp", options.addr, options.dst)
        return self._adopt(opened, "endpoint", options, None)

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
        """A local service the kernel announces to the remote (RPMSG_CREATE_DEV_IOCTL, bound
        to rpmsg_chrdev). Its endpoint receives; it cannot send (the kernel gives it no
        destination): answer through the remote's channel."""
        encode_name(name)
        options = EndpointOptions(
            addr=addr,
            name=name,
            callback=callback,
            maxsize=maxsize,
            overflow=overflow,
            zero_copy=zero_copy,
        )
        kernel = self._kernel
        assert self.sysfs is not None
        mine = {ep.addr for ep in self._open}
        tries = [options.addr] if options.addr != ADDR_ANY else self.sysfs.free_addresses(mine)
        for src in tries:
            opened = kernel.create_service(name, src, last_try=src == tries[-1])
            if opened is not None:
                return self._adopt(opened, "service", options, opened.device)
        raise AddressInUseError(f"{self.name}: no free address for service {name!r}")

    async def destroy_endpoint(self, ep: Endpoint) -> None:
        """Destroy ``ep``: an endpoint device is destroyed, a service withdrawn (the kernel
        sends NS DESTROY), a channel's device closed (the channel stays, for a later
        ``wait_for_service``). Destroying a closed endpoint does nothing."""
        if ep.bus is not self:
            raise ForeignEndpointError(f"{ep!r} belongs to bus {ep.bus.name!r}, not {self.name!r}")
        entry = self._open.get(ep)
        if entry is not None and entry[0] == "channel":
            for channel in list(self.table.channels.values()):
                if channel.endpoint is ep:
                    self.table.dismiss(channel)
        self._release(ep, None)

    def _release(self, ep: Endpoint, reason: BaseException | None) -> None:
        entry = self._open.pop(ep, None)
        ep._close(reason)
        if entry is None:
            return
        kind, port, device = entry
        if self._calls is not None:
            self._calls.release(kind, port.dev, ep.addr, ep.name, device)
        port.dev.close()

    # -- flow control and statistics ----------------------------------------------------------
    def _port(self, ep: Endpoint) -> KernelPort:
        entry = self._open.get(ep)
        if entry is None:
            raise ForeignEndpointError(f"{ep!r} is not an open endpoint of {self.name!r}")
        return entry[1]

    def outgoing_flow_control(self, ep: Endpoint) -> bool | None:
        """Whether the remote asked ``ep``'s peer to pause (RPMSG_GET_OUTGOING_FLOWCONTROL);
        None where the kernel has no flow control."""
        return self._kernel.get_flow_control(self._port(ep).dev)

    def set_incoming_flow_control(self, ep: Endpoint, paused: bool) -> bool:
        """Ask the remote to pause (or resume) sending to ``ep``
        (RPMSG_SET_INCOMING_FLOWCONTROL); False where the kernel or its rpmsg backend
        (virtio_rpmsg_bus) cannot."""
        return self._kernel.set_flow_control(self._port(ep).dev, paused)

    @property
    def mtu(self) -> int:
        return self.counters.mtu

    @property
    def send_timeout(self) -> float | None:
        return self.counters.send_timeout

    def statistics(self) -> BusStatistics:
        return self.counters.snapshot(self.role, len(self._open), len(self.table.channels))
