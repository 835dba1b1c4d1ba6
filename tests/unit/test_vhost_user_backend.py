"""The vhost-user backend's state machine (BackendCore), without a loop or a socket: the
handshake Linux's virtio_uml does, the synthesized DRIVER_OK, and requests it must refuse.

File descriptors here are plain ints (the core never touches them, it only hands them on).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.backends.vhost_user.backend import (
    DEVICE_FEATURES,
    PROTOCOL_FEATURES,
    RUNNING_STATUS,
    BackendCore,
    InstallFd,
    KeepBackendReqFd,
    MapMemory,
    Reply,
    StatusChanged,
    request_fds,
)
from transports.backends.vhost_user.protocol import (
    HEADER,
    VRING_STATE,
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
    reply_u64,
)
from transports.backends.vhost_user.table import legacy_align
from transports.virtio.memory import DeviceMemory, Region
from transports.virtio.vring import VringLayout

# What Linux's virtio_uml sent in the run the issue describes (and this project's kernel tests
# see): one region, guest == user address, 256-entry rings aligned to 4096.
GUEST = 0x9453000
SIZE = 0xF8F9000
RING0 = 0x9A98000
RING1 = 0x9AAC000


def addr(index: int, desc: int, num: int = 256, align: int = 4096) -> VringAddr:
    layout = VringLayout(num, align)
    return VringAddr(index, 0, desc, desc + layout.used, desc + layout.avail, 2**64 - 1)


def linux_setup(core: BackendCore, *, enable: bool = True) -> list[object]:
    """The requests UML's virtio_uml sends, in its order (SET_OWNER ... SET_VRING_ENABLE)."""
    actions: list[object] = []
    for request in [
        Simple(Code.SET_OWNER),
        Simple(Code.GET_FEATURES),
        Simple(Code.GET_PROTOCOL_FEATURES),
        SetU64(Code.SET_PROTOCOL_FEATURES, PROTOCOL_FEATURES, need_reply=True),
        BackendReqFd(40, need_reply=True),
        SetU64(Code.SET_FEATURES, DEVICE_FEATURES, need_reply=True),
        MemTable((MemoryRegion(GUEST, SIZE, GUEST, GUEST, 41),), need_reply=True),
        VringFd(Code.SET_VRING_CALL, 0, 42, need_reply=True),
        VringState(Code.SET_VRING_NUM, 0, 256, need_reply=True),
        VringState(Code.SET_VRING_BASE, 0, 0, need_reply=True),
        addr(0, RING0),
        VringFd(Code.SET_VRING_CALL, 1, 43, need_reply=True),
        VringState(Code.SET_VRING_NUM, 1, 256, need_reply=True),
        VringState(Code.SET_VRING_BASE, 1, 0, need_reply=True),
        addr(1, RING1),
        VringFd(Code.SET_VRING_KICK, 0, 44, need_reply=True),
        *([VringState(Code.SET_VRING_ENABLE, 0, 1, need_reply=True)] if enable else []),
        VringFd(Code.SET_VRING_KICK, 1, 45, need_reply=True),
        *([VringState(Code.SET_VRING_ENABLE, 1, 1, need_reply=True)] if enable else []),
    ]:
        actions += core.handle(request)
    return actions


# -- the backend state machine --------------------------------------------------------------------
def test_linux_handshake_then_first_rx_kick_raises_driver_ok() -> None:
    core = BackendCore(DeviceMemory())
    actions = linux_setup(core)
    assert [a for a in actions if isinstance(a, Reply)][:2] == [
        Reply(reply_u64(Code.GET_FEATURES, 0x140000001)),
        Reply(reply_u64(Code.GET_PROTOCOL_FEATURES, 0x28)),
    ]
    assert KeepBackendReqFd(40) in actions
    assert MapMemory((MemoryRegion(GUEST, SIZE, GUEST, GUEST, 41),)) in actions
    assert InstallFd(Code.SET_VRING_KICK, 1, 45) in actions
    assert not any(isinstance(a, StatusChanged) for a in actions)
    vdev = core.vdev
    assert (vdev.dfeatures, vdev.gfeatures, vdev.status) == (1, 1, 0)
    assert vdev.vring(0).da == RING0 and vdev.vring(1).da == RING1
    assert (vdev.vring(0).num, vdev.vring(0).align) == (256, 4096)
    assert core.kicked(1) == []  # a tx kick does not start the device
    assert core.kicked(0) == [StatusChanged(True)]
    assert vdev.status == RUNNING_STATUS and core.kicked(0) == []


def test_a_kick_before_the_enables_is_remembered() -> None:
    # Without REPLY_ACK the kick eventfd may be read before the enables on the socket.
    core = BackendCore(DeviceMemory())
    linux_setup(core, enable=False)
    assert core.kicked(0) == []
    assert core.handle(VringState(Code.SET_VRING_ENABLE, 0, 1)) == []
    assert core.handle(VringState(Code.SET_VRING_ENABLE, 1, 1)) == [StatusChanged(True)]


def test_shutdown_disable_clears_driver_ok_and_a_restart_needs_a_new_kick() -> None:
    core = BackendCore(DeviceMemory())
    linux_setup(core)
    core.kicked(0)
    assert core.handle(VringState(Code.SET_VRING_ENABLE, 1, 0)) == [StatusChanged(False)]
    assert core.vdev.status == 0 and core.rings_enabled
    assert core.handle(VringState(Code.SET_VRING_ENABLE, 0, 0)) == []
    assert not core.rings_enabled
    core.handle(VringState(Code.SET_VRING_ENABLE, 0, 1))
    assert core.handle(VringState(Code.SET_VRING_ENABLE, 1, 1)) == []
    assert core.kicked(0) == [StatusChanged(True)]
    assert core.disconnected() == [StatusChanged(False)]
    assert (core.vdev.status, core.vdev.gfeatures, core.rings_enabled) == (0, 0, False)


def test_get_vring_base_stops_the_ring_and_reports_used_idx() -> None:
    memory = DeviceMemory([Region(GUEST, memoryview(bytearray(0x700000)), "ram")])
    core = BackendCore(memory)
    linux_setup(core)
    core.kicked(0)
    used_idx = RING0 + VringLayout(256, 4096).used + 2
    memory.view(used_idx, 2)[:] = (300).to_bytes(2, "little")
    actions = core.handle(VringState(Code.GET_VRING_BASE, 0, 0))
    assert actions == [
        StatusChanged(False),
        Reply(HEADER.pack(11, 5, 8) + VRING_STATE.pack(0, 300)),
    ]


def test_without_protocol_features_a_kick_fd_enables_its_ring() -> None:
    core = BackendCore(DeviceMemory())
    core.handle(SetU64(Code.SET_FEATURES, 1))
    core.handle(MemTable((MemoryRegion(GUEST, SIZE, GUEST, GUEST, 3),)))
    for index, ring in ((0, RING0), (1, RING1)):
        core.handle(VringState(Code.SET_VRING_NUM, index, 256))
        core.handle(addr(index, ring))
        core.handle(VringFd(Code.SET_VRING_KICK, index, 4 + index))
    assert core.rings_enabled and core.kicked(0) == [StatusChanged(True)]


def test_reset_owner_drops_the_session() -> None:
    core = BackendCore(DeviceMemory())
    linux_setup(core)
    core.kicked(0)
    actions = core.handle(Simple(Code.RESET_OWNER))
    assert actions[0] == StatusChanged(False) and MapMemory(()) in actions
    assert InstallFd(Code.SET_VRING_CALL, 1, None) in actions
    assert KeepBackendReqFd(None) in actions and core.vdev.status == 0


def test_need_reply_gets_an_ack_when_the_request_has_no_reply_of_its_own() -> None:
    core = BackendCore(DeviceMemory())
    assert core.handle(Simple(Code.SET_OWNER, need_reply=True)) == [
        Reply(reply_u64(Code.SET_OWNER, 0))
    ]
    # GET_FEATURES replies with its value, never with an extra ack.
    assert core.handle(Simple(Code.GET_FEATURES, need_reply=True)) == [
        Reply(reply_u64(Code.GET_FEATURES, DEVICE_FEATURES))
    ]


@pytest.mark.parametrize(
    ("kernel_layout", "align"),
    [
        ((RING0, RING0 + 0x1000, RING0 + 0x2000), 4096),  # what Linux sends
        ((0x1000, 0x2000, 0x2208), 4),  # the smallest alignment that gives the layout
        ((0x1000, 0x2000, 0x2210), 16),
        ((0x1000, 0x2000, 0x2204), None),  # inside the avail ring
        ((0x1000, 0x2000, 0x2218), None),  # past every alignment's boundary
        ((0x1000, 0x2002, 0x3000), None),  # avail not right after the descriptors
        ((0x1008, 0x2008, 0x3000), None),  # descriptors not 16-byte aligned
    ],
)
def test_legacy_align(kernel_layout: tuple[int, int, int], align: int | None) -> None:
    assert legacy_align(256, *kernel_layout) == align


def hostile_cases() -> list[tuple[list[Request], Request, str]]:
    table = MemTable((MemoryRegion(GUEST, SIZE, GUEST, GUEST, 3),))
    num = VringState(Code.SET_VRING_NUM, 0, 256)
    enabled = [table, num, addr(0, RING0), VringState(Code.SET_VRING_ENABLE, 0, 1)]
    split = VringAddr(0, 0, RING0, RING0 + 0x3000, RING0 + 0x1000, 0)
    return [
        ([], VringState(Code.SET_VRING_NUM, 2, 256), "vring 2 does not exist"),
        ([], VringState(Code.SET_VRING_NUM, 0, 100), "not a power of two"),
        ([], VringState(Code.SET_VRING_NUM, 0, 65536), "not a power of two <= 32768"),
        ([], VringState(Code.SET_VRING_BASE, 0, 7), "base 7"),
        ([], VringState(Code.SET_VRING_ENABLE, 0, 2), "value 2"),
        ([], SetU64(Code.SET_FEATURES, 1 << 40), "never offered"),
        ([], SetU64(Code.SET_PROTOCOL_FEATURES, 1 << 9), "never offered"),
        ([], BackendReqFd(3), "without the BACKEND_REQ"),
        ([], VringFd(Code.SET_VRING_KICK, 0, None), "polling"),
        ([], addr(0, RING0), "before SET_VRING_NUM"),
        ([num], addr(0, RING0), "before SET_MEM_TABLE"),
        ([table, num], split, f"desc {RING0:#x}, avail {RING0 + 0x1000:#x}, used 0x9a9b000"),
        ([table, num], addr(0, RING0 + 8), "not one legacy vring"),
        ([table, num], addr(0, GUEST + SIZE - 0x1000), "not inside one memory region"),
        ([table, num], addr(0, 0x10), "not inside one memory region"),
        ([table, num], VringAddr(0, 1, RING0, RING0 + 0x2000, RING0 + 0x1000, 0), "logging"),
        (enabled, table, "while a vring is enabled"),
        (enabled, VringState(Code.SET_VRING_NUM, 0, 128), "is enabled"),
        (enabled, addr(0, RING0), "is enabled"),
        ([], MemTable((MemoryRegion(GUEST, 0, GUEST, 0, 3),)), "region 0 is empty"),
        ([], MemTable((MemoryRegion(2**64 - 4096, 8192, 0, 0, 3),)), "guest address .* overflow"),
        ([], MemTable((MemoryRegion(0, 4096, 2**64 - 1, 0, 3),)), "user address .* overflow"),
        ([], MemTable((MemoryRegion(0, 4096, 0, 2**63 - 1, 3),)), "mmap offset .* overflow"),
        (
            [],
            MemTable((MemoryRegion(0, 8192, 0, 0, 3), MemoryRegion(4096, 8192, 1 << 20, 0, 4))),
            "regions 0 and 1 overlap in guest",
        ),
        (
            [],
            MemTable((MemoryRegion(0, 8192, 0, 0, 3), MemoryRegion(1 << 20, 8192, 4096, 0, 4))),
            "overlap in user",
        ),
        (
            [],
            MemTable((MemoryRegion(1 << 32, 1 << 20, 0, 0, 3),)),
            "",  # accepted: memory above 4 GiB is fine, only rings there are refused
        ),
    ]


@pytest.mark.parametrize(("before", "request_", "message"), hostile_cases())
def test_hostile_requests_are_refused_and_change_nothing(
    before: list[Request], request_: Request, message: str
) -> None:
    core = BackendCore(DeviceMemory())
    for earlier in before:
        core.handle(earlier)
    table_before = bytes(core.vdev_table)
    if not message:
        core.handle(request_)
        return
    with pytest.raises(VhostUserProtocolError, match=message) as caught:
        core.handle(request_)
    assert list(caught.value.fds) == request_fds(request_)
    assert bytes(core.vdev_table) == table_before


def test_a_ring_above_4_gib_is_refused() -> None:
    core = BackendCore(DeviceMemory())
    core.handle(MemTable((MemoryRegion(1 << 32, 1 << 20, 1 << 32, 0, 3),)))
    core.handle(VringState(Code.SET_VRING_NUM, 0, 256))
    with pytest.raises(VhostUserProtocolError, match="beyond 4 GiB"):
        core.handle(addr(0, 1 << 32))


def test_a_new_num_rechecks_the_ring_addresses() -> None:
    core = BackendCore(DeviceMemory())
    core.handle(MemTable((MemoryRegion(GUEST, SIZE, GUEST, GUEST, 3),)))
    core.handle(VringState(Code.SET_VRING_NUM, 0, 256))
    core.handle(addr(0, RING0))
    with pytest.raises(VhostUserProtocolError, match="not one legacy vring of 128"):
        core.handle(VringState(Code.SET_VRING_NUM, 0, 128))


_fd_requests = st.one_of(
    st.builds(Simple, st.sampled_from([Code.GET_FEATURES, Code.SET_OWNER, Code.RESET_OWNER])),
    st.builds(
        SetU64,
        st.sampled_from([Code.SET_FEATURES, Code.SET_PROTOCOL_FEATURES]),
        st.sampled_from([0, 1, DEVICE_FEATURES, PROTOCOL_FEATURES, 1 << 63]),
    ),
    st.builds(
        VringState,
        st.sampled_from(
            [Code.SET_VRING_NUM, Code.SET_VRING_BASE, Code.GET_VRING_BASE, Code.SET_VRING_ENABLE]
        ),
        st.integers(0, 2),
        st.sampled_from([0, 1, 2, 256, 1000]),
    ),
    st.builds(addr, st.integers(0, 2), st.sampled_from([RING0, RING1, GUEST, 0, 2**63])),
    st.builds(
        VringFd,
        st.sampled_from([Code.SET_VRING_KICK, Code.SET_VRING_CALL, Code.SET_VRING_ERR]),
        st.integers(0, 2),
        st.sampled_from([None, 5]),
    ),
    st.builds(
        lambda guest, size: MemTable((MemoryRegion(guest, size, guest, 0, 6),)),
        st.sampled_from([0, GUEST, 2**64 - 4096]),
        st.sampled_from([0, 4096, SIZE]),
    ),
    st.builds(BackendReqFd, st.just(7)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_fd_requests, st.integers(0, 1)), max_size=30))
def test_core_fuzz_status_only_with_valid_rings(steps: list[Request | int]) -> None:
    """Any sequence of requests and kicks: only VhostUserProtocolError, and DRIVER_OK only
    while both rings are enabled with addresses inside the memory table."""
    memory = DeviceMemory([Region(GUEST, memoryview(bytearray(0x700000)), "ram")])
    core = BackendCore(memory)
    for step in steps:
        try:
            if isinstance(step, int):
                core.kicked(step)
            else:
                core.handle(step)
        except VhostUserProtocolError:
            pass
        if core.driver_ok:
            for index in range(2):
                info = core.vdev.vring(index)
                size = VringLayout(info.num, info.align).size
                assert core.vrings[index].enabled
                assert (
                    core.memory_table.user_to_guest(info.da, size) is not None
                )  # guest == user here
