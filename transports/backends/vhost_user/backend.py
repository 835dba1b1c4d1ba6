"""The vhost-user backend as a state machine: the virtio device side of one session. Pure.

Theory of operation: the frontend (Linux's ``virtio_uml``, QEMU, aioamp's own frontend) sets the
device up with requests: features, a memory table, then per vring its size, base, addresses,
eventfds and "enable". :class:`BackendCore` takes each typed request
(:mod:`.protocol`) and returns what the shell must do (:data:`Action`): send a reply, map a
memory table, install an eventfd, keep the backend-request socket, tell the bus the status
changed. It refuses anything outside the spec or outside what aioamp's rings can drive with a
:class:`~.protocol.VhostUserProtocolError` that says why; the shell then closes the connection.

vhost-user has no resource table and no status byte, but the rpmsg bus negotiates through a
``fw_rsc_vdev`` (:class:`~transports.virtio.vdev.VdevView`). So the core keeps a private one:
``dfeatures`` what the device offers, ``gfeatures`` what SET_FEATURES accepted, each vring's
``da`` (guest address), ``align`` and ``num`` from SET_VRING_ADDR and SET_VRING_NUM, and the
status byte, which it sets to DRIVER_OK when both vrings are enabled and the frontend first
kicks vq 0 (Linux kicks it right after ``virtio_device_ready()``: its rx buffers are posted by
then), and clears when a vring is disabled or stopped, at RESET_OWNER and at disconnect. A bus
in the remote role treats the cleared status as a virtio reset of its host.

Ring addresses arrive as three separate *user* addresses (the frontend's address space); the
buffers in the descriptors are *guest* addresses. Both are translated through the memory table.
aioamp's rings assume the legacy contiguous layout (avail right after the descriptors, used at
the next ``align`` boundary), which is what Linux's ``vring_create_virtqueue`` allocates: any
other placement is refused, naming the three addresses.
"""

from __future__ import annotations

import struct
from collections import Counter

import attrs

from ...virtio.constants import (
    ENDIAN,
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FEATURES_OK,
    VIRTIO_F_VERSION_1,
    VIRTIO_RPMSG_F_NS,
)
from ...virtio.memory import DeviceMemory
from ...virtio.vdev import VdevView, VringInfo, build_single_vdev_table, single_vdev_view
from ...virtio.vring import MAX_VRING_NUM, VringLayout
from .protocol import (
    F_PROTOCOL_FEATURES,
    PROTOCOL_F_BACKEND_REQ,
    PROTOCOL_F_REPLY_ACK,
    BackendReqFd,
    Code,
    MemoryRegion,
    MemTable,
    Request,
    SetU64,
    Simple,
    VhostUserProtocolError,
    VringAddr,
    VringFd,
    VringState,
    reply_state,
    reply_u64,
)
from .table import MemoryTable, place_vring

#: What the rpmsg device offers: name service, protocol features, virtio 1.x.
DEVICE_FEATURES = (1 << VIRTIO_RPMSG_F_NS) | (1 << F_PROTOCOL_FEATURES) | (1 << VIRTIO_F_VERSION_1)
#: Protocol features offered. Linux's virtio_uml needs BACKEND_REQ: without it, it never
#: allocates the IRQ its vrings share and the probe fails with -EBUSY.
PROTOCOL_FEATURES = (1 << PROTOCOL_F_REPLY_ACK) | (1 << PROTOCOL_F_BACKEND_REQ)
#: virtio's device-type feature bits (0-23): the ones the vdev entry's u32 fields carry.
DEVICE_TYPE_FEATURES = (1 << 24) - 1
NUM_VRINGS = 2
#: Status the synthesized vdev shows while the frontend drives the rings.
RUNNING_STATUS = (
    VIRTIO_CONFIG_S_ACKNOWLEDGE
    | VIRTIO_CONFIG_S_DRIVER
    | VIRTIO_CONFIG_S_FEATURES_OK
    | VIRTIO_CONFIG_S_DRIVER_OK
)
_U16 = struct.Struct(ENDIAN + "H")


# -- what the shell does ---------------------------------------------------------------------------
@attrs.frozen
class Reply:
    """Send these bytes to the frontend."""

    data: bytes


@attrs.frozen
class MapMemory:
    """Replace the mapped memory with these regions (the shell maps each from its fd, at its
    mmap offset, then closes the fd). No regions: unmap everything."""

    regions: tuple[MemoryRegion, ...]


@attrs.frozen
class InstallFd:
    """Use ``fd`` as vring ``index``'s kick, call or err eventfd, closing the one it replaces
    (None: no fd any more)."""

    code: Code
    index: int
    fd: int | None


@attrs.frozen
class KeepBackendReqFd:
    """Keep this socket for backend-initiated requests (closing an earlier one)."""

    fd: int | None


@attrs.frozen
class StatusChanged:
    """The vdev status changed: the bus must look (DRIVER_OK raised or withdrawn)."""

    driver_ok: bool


Action = Reply | MapMemory | InstallFd | KeepBackendReqFd | StatusChanged


def request_fds(request: Request) -> list[int]:
    """The file descriptors a request carries (the shell closes them if it is refused)."""
    if isinstance(request, MemTable):
        return [r.fd for r in request.regions]
    if isinstance(request, VringFd | BackendReqFd) and request.fd is not None:
        return [request.fd]
    return []


@attrs.define
class _Vring:
    num: int = 0
    addr: VringAddr | None = None  # as received, checked against num
    da: int | None = None  # guest address of the descriptor table
    align: int = 0
    enabled: bool = False


class BackendCore:
    """One vhost-user backend session (the connection's state), driving a private vdev entry.

    Args:
        memory: the shell's device memory (by guest address), which the shell fills on
            :class:`MapMemory`; read here only to answer GET_VRING_BASE.
        features: the device features offered (GET_FEATURES).
        protocol_features: the protocol features offered (GET_PROTOCOL_FEATURES).
    """

    def __init__(
        self,
        memory: DeviceMemory,
        *,
        features: int = DEVICE_FEATURES,
        protocol_features: int = PROTOCOL_FEATURES,
    ) -> None:
        self.memory = memory
        self.features = features
        self.protocol_features = protocol_features
        self.vdev_table = bytearray(
            build_single_vdev_table(
                [VringInfo(da=0, align=4096, num=256, notifyid=i) for i in range(NUM_VRINGS)],
                dfeatures=features & DEVICE_TYPE_FEATURES,
            )
        )
        self.vdev: VdevView = single_vdev_view(memoryview(self.vdev_table))
        #: Requests handled, by name (statistics).
        self.requests: Counter[str] = Counter()
        self._reset_session()

    def _reset_session(self) -> None:
        self.owner = False
        self.acked_features = 0
        self.acked_protocol_features = 0
        self.vrings = [_Vring() for _ in range(NUM_VRINGS)]
        self.memory_table = MemoryTable()
        self._rx_kicked = False
        self.vdev.gfeatures = 0
        self.vdev.status = 0

    @property
    def driver_ok(self) -> bool:
        return bool(self.vdev.status & VIRTIO_CONFIG_S_DRIVER_OK)

    @property
    def set_up(self) -> bool:
        """Whether the frontend has set the device up: both vrings enabled."""
        return all(v.enabled for v in self.vrings)

    @property
    def rings_enabled(self) -> bool:
        """Whether any vring is enabled (a disconnect now means the frontend vanished)."""
        return any(v.enabled for v in self.vrings)

    # -- events -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> list[Action]:
        """The actions for one request, its reply among them.

        Raises:
            VhostUserProtocolError: the request is refused (its fds are in the error).
        """
        try:
            actions = self._dispatch(request)
        except VhostUserProtocolError as exc:
            raise VhostUserProtocolError(str(exc), fds=request_fds(request)) from None
        self.requests[request.code.name] += 1
        if request.need_reply and not any(isinstance(a, Reply) for a in actions):
            actions.append(Reply(reply_u64(request.code, 0)))  # REPLY_ACK: success
        return actions

    def kicked(self, index: int) -> list[Action]:
        """The frontend kicked vring ``index`` (its kick eventfd became readable)."""
        if index == 0:
            self._rx_kicked = True
        return self._update_status()

    def disconnected(self) -> list[Action]:
        """The frontend hung up: forget the session (the next frontend starts afresh)."""
        was_ok = self.driver_ok
        self._reset_session()
        return [StatusChanged(False)] if was_ok else []

    # -- requests ---------------------------------------------------------------------------------
    def _dispatch(self, r: Request) -> list[Action]:
        if isinstance(r, Simple):
            return self._simple(r.code)
        if isinstance(r, SetU64):
            return self._set_u64(r)
        if isinstance(r, VringState):
            return self._vring_state(r)
        if isinstance(r, VringAddr):
            vring = self._vring(r.index, r.code, configuring=True)
            self._place(r, vring.num)
            return []
        if isinstance(r, VringFd):
            return self._vring_fd(r)
        if isinstance(r, MemTable):
            return self._mem_table(r)
        if not self.acked_protocol_features & (1 << PROTOCOL_F_BACKEND_REQ):
            raise VhostUserProtocolError(
                "SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature negotiated"
            )
        return [KeepBackendReqFd(r.fd)]

    def _simple(self, code: Code) -> list[Action]:
        if code is Code.GET_FEATURES:
            return [Reply(reply_u64(code, self.features))]
        if code is Code.GET_PROTOCOL_FEATURES:
            return [Reply(reply_u64(code, self.protocol_features))]
        if code is Code.SET_OWNER:
            self.owner = True
            return []
        # RESET_OWNER: the session starts over on this connection.
        actions = self.disconnected()
        actions.append(MapMemory(()))
        for index in range(NUM_VRINGS):
            for fd_code in (Code.SET_VRING_KICK, Code.SET_VRING_CALL, Code.SET_VRING_ERR):
                actions.append(InstallFd(fd_code, index, None))
        actions.append(KeepBackendReqFd(None))
        return actions

    def _set_u64(self, r: SetU64) -> list[Action]:
        if r.code is Code.SET_FEATURES:
            offered, what = self.features, "features"
        else:
            offered, what = self.protocol_features, "protocol features"
            if not self.features & (1 << F_PROTOCOL_FEATURES):
                raise VhostUserProtocolError("SET_PROTOCOL_FEATURES: protocol features not offered")
        if r.value & ~offered:
            raise VhostUserProtocolError(
                f"{r.code.name}: {r.value:#x} has {what} {r.value & ~offered:#x} never offered "
                f"(offered {offered:#x})"
            )
        if r.code is Code.SET_FEATURES:
            self.acked_features = r.value
            self.vdev.gfeatures = r.value & DEVICE_TYPE_FEATURES
        else:
            self.acked_protocol_features = r.value
        return []

    def _vring(self, index: int, code: Code, *, configuring: bool = False) -> _Vring:
        if not 0 <= index < NUM_VRINGS:
            raise VhostUserProtocolError(f"{code.name}: vring {index} does not exist (rpmsg has 2)")
        vring = self.vrings[index]
        if configuring and vring.enabled:
            raise VhostUserProtocolError(
                f"{code.name}: vring {index} is enabled (disable it first)"
            )
        return vring

    def _vring_state(self, r: VringState) -> list[Action]:
        code = r.code
        configuring = code in (Code.SET_VRING_NUM, Code.SET_VRING_BASE)
        vring = self._vring(r.index, code, configuring=configuring)
        if code is Code.SET_VRING_NUM:
            if r.num == 0 or r.num & (r.num - 1) or r.num > MAX_VRING_NUM:
                raise VhostUserProtocolError(
                    f"SET_VRING_NUM: vring {r.index} size {r.num} is not a power of two "
                    f"<= {MAX_VRING_NUM}"
                )
            vring.num = r.num
            if vring.addr is not None:
                self._place(vring.addr, r.num)  # the layout depends on num
            return []
        if code is Code.SET_VRING_BASE:
            if r.num != 0:
                raise VhostUserProtocolError(
                    f"SET_VRING_BASE: vring {r.index} base {r.num}: aioamp's rings start at 0"
                )
            return []
        if code is Code.GET_VRING_BASE:  # stops the ring; replies where it stopped
            vring.enabled = False
            self._rx_kicked = False  # a new start needs a new kick
            actions = self._update_status()
            actions.append(Reply(reply_state(code, r.index, self._used_index(vring))))
            return actions
        if r.num not in (0, 1):
            raise VhostUserProtocolError(f"SET_VRING_ENABLE: vring {r.index} value {r.num}")
        vring.enabled = bool(r.num)
        if not vring.enabled:
            self._rx_kicked = False  # a new start needs a new kick
        return self._update_status()

    def _used_index(self, vring: _Vring) -> int:
        """The ring's used.idx: the next entry the device will process (as it gives back every
        buffer it takes before it waits again)."""
        if vring.da is None:
            return 0
        off = VringLayout(vring.num, vring.align).used + 2
        region = self.memory.find(vring.da + off, 2)
        if region is None:
            return 0
        start = vring.da + off - region.da
        index: int = _U16.unpack_from(region.mem, start)[0]
        return index

    def _vring_fd(self, r: VringFd) -> list[Action]:
        vring = self._vring(r.index, r.code)
        if r.fd is None and r.code is not Code.SET_VRING_ERR:
            raise VhostUserProtocolError(
                f"{r.code.name}: vring {r.index} without a file descriptor (polling and in-band "
                "notifications are not supported)"
            )
        actions: list[Action] = [InstallFd(r.code, r.index, r.fd)]
        if r.code is Code.SET_VRING_KICK and not self.acked_features & (1 << F_PROTOCOL_FEATURES):
            # The spec: without protocol features a vring starts enabled, once it has a kick fd.
            vring.enabled = True
            actions += self._update_status()
        return actions

    def _mem_table(self, r: MemTable) -> list[Action]:
        if self.rings_enabled:
            raise VhostUserProtocolError("SET_MEM_TABLE while a vring is enabled")
        self.memory_table = MemoryTable.check(r.regions)
        for vring in self.vrings:  # translated through the old table: set them again
            vring.addr, vring.da = None, None
        return [MapMemory(r.regions)]

    def _place(self, r: VringAddr, num: int) -> None:
        vring = self.vrings[r.index]
        place = place_vring(self.memory_table, r, num)
        vring.addr, vring.da, vring.align = r, place.da, place.align
        self.vdev.set_vring(
            r.index, VringInfo(da=place.da, align=place.align, num=num, notifyid=r.index)
        )

    # -- the status byte --------------------------------------------------------------------------
    def _running(self) -> bool:
        return self._rx_kicked and all(v.enabled and v.da is not None for v in self.vrings)

    def _update_status(self) -> list[Action]:
        running = self._running()
        if running == self.driver_ok:
            return []
        self.vdev.status = RUNNING_STATUS if running else 0
        return [StatusChanged(running)]
