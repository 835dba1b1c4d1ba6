"""The vdev configuration as it lives in shared memory: a ``fw_rsc_vdev`` resource entry.

Theory of operation: Linux remoteproc and OpenAMP keep a virtio device's negotiation state
inside the firmware's resource table: device features (written by the remote), guest features
and the status byte (written by the host), and one ``fw_rsc_vdev_vring`` per virtqueue. Every
aioamp transport exposes that same structure, so the bus negotiates identically over loopback,
shared memory, remoteproc carveouts or a PandaBoard. :class:`VdevView` reads and writes the
fields in place (the peer sees each write at once); :func:`build_single_vdev_table` lays out the
minimal table of one VDEV entry that loopback and shm transports (and OpenAMP's Linux port) use.

Layouts (little-endian, include/linux/remoteproc.h)::

    struct resource_table { u32 ver; u32 num; u32 reserved[2]; u32 offset[num]; }
    struct fw_rsc_hdr     { u32 type; }
    struct fw_rsc_vdev    { u32 id; u32 notifyid; u32 dfeatures; u32 gfeatures;
                            u32 config_len; u8 status; u8 num_of_vrings; u8 reserved[2];
                            struct fw_rsc_vdev_vring vring[]; u8 config[config_len]; }
    struct fw_rsc_vdev_vring { u32 da; u32 align; u32 num; u32 notifyid; u32 pa; }
"""

from __future__ import annotations

import struct

import attrs

from ..errors import RemoteProtocolError
from .constants import ENDIAN, MAX_VRING_NUM, RSC_VDEV, VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F_NS

#: struct resource_table header without the offset array (include/linux/remoteproc.h).
RSC_TABLE_HDR = struct.Struct(ENDIAN + "IIII")
#: struct fw_rsc_hdr: the type word in front of every entry.
RSC_HDR = struct.Struct(ENDIAN + "I")
#: struct fw_rsc_vdev, without the leading type word and the trailing vrings/config.
FW_RSC_VDEV = struct.Struct(ENDIAN + "IIIIIBB2s")
#: struct fw_rsc_vdev_vring.
FW_RSC_VDEV_VRING = struct.Struct(ENDIAN + "IIIII")

# Field offsets inside fw_rsc_vdev (counted from the byte after the type word).
_OFF_ID = 0
_OFF_NOTIFYID = 4
_OFF_DFEATURES = 8
_OFF_GFEATURES = 12
_OFF_CONFIG_LEN = 16
_OFF_STATUS = 20
_OFF_NUM_VRINGS = 21
_U32 = struct.Struct(ENDIAN + "I")


@attrs.frozen
class VringInfo:
    """One ``fw_rsc_vdev_vring``: where a virtqueue lives and how it is notified."""

    da: int
    align: int
    num: int
    notifyid: int
    pa: int = 0


class VdevView:
    """Live view of a ``fw_rsc_vdev`` entry in shared memory.

    ``mem`` starts at the entry's ``id`` field (right after the ``fw_rsc_hdr`` type word) and
    must cover the vrings and the config space. The peer may rewrite any field at any time:
    every property re-reads memory, and :meth:`vring` validates what it returns.
    """

    __slots__ = ("_mem",)

    def __init__(self, mem: memoryview) -> None:
        if mem.nbytes < FW_RSC_VDEV.size:
            raise RemoteProtocolError(f"vdev entry truncated: {mem.nbytes} bytes")
        self._mem = mem

    # -- fields -------------------------------------------------------------------------------
    def _get(self, off: int) -> int:
        value: int = _U32.unpack_from(self._mem, off)[0]
        return value

    def _set(self, off: int, value: int) -> None:
        _U32.pack_into(self._mem, off, value)

    @property
    def id(self) -> int:
        return self._get(_OFF_ID)

    @property
    def notifyid(self) -> int:
        return self._get(_OFF_NOTIFYID)

    @notifyid.setter
    def notifyid(self, value: int) -> None:
        self._set(_OFF_NOTIFYID, value)

    @property
    def dfeatures(self) -> int:
        return self._get(_OFF_DFEATURES)

    @dfeatures.setter
    def dfeatures(self, value: int) -> None:
        self._set(_OFF_DFEATURES, value)

    @property
    def gfeatures(self) -> int:
        return self._get(_OFF_GFEATURES)

    @gfeatures.setter
    def gfeatures(self, value: int) -> None:
        self._set(_OFF_GFEATURES, value)

    @property
    def config_len(self) -> int:
        return self._get(_OFF_CONFIG_LEN)

    @property
    def status(self) -> int:
        return self._mem[_OFF_STATUS]

    @status.setter
    def status(self, value: int) -> None:
        self._mem[_OFF_STATUS] = value & 0xFF

    @property
    def num_of_vrings(self) -> int:
        return self._mem[_OFF_NUM_VRINGS]

    @property
    def nbytes(self) -> int:
        """Size of the entry (without the type word) including vrings and config space."""
        return FW_RSC_VDEV.size + FW_RSC_VDEV_VRING.size * self.num_of_vrings + self.config_len

    def _vring_off(self, index: int) -> int:
        if not 0 <= index < self.num_of_vrings:
            raise RemoteProtocolError(
                f"vdev has {self.num_of_vrings} vrings, vring {index} does not exist"
            )
        off = FW_RSC_VDEV.size + FW_RSC_VDEV_VRING.size * index
        if off + FW_RSC_VDEV_VRING.size > self._mem.nbytes:
            raise RemoteProtocolError(f"vring {index} runs past the end of the vdev entry")
        return off

    def vring(self, index: int) -> VringInfo:
        """The ``index``-th vring descriptor, validated (num and align powers of two)."""
        da, align, num, notifyid, pa = FW_RSC_VDEV_VRING.unpack_from(
            self._mem, self._vring_off(index)
        )
        if num == 0 or num & (num - 1) or num > MAX_VRING_NUM:
            raise RemoteProtocolError(
                f"vring {index}: num {num} is not a power of two <= {MAX_VRING_NUM}"
            )
        if align == 0 or align & (align - 1):
            raise RemoteProtocolError(f"vring {index}: align {align:#x} is not a power of two")
        return VringInfo(da=da, align=align, num=num, notifyid=notifyid, pa=pa)

    def set_vring(self, index: int, info: VringInfo) -> None:
        FW_RSC_VDEV_VRING.pack_into(
            self._mem, self._vring_off(index), info.da, info.align, info.num, info.notifyid, info.pa
        )

    def has_feature(self, bit: int) -> bool:
        """Whether ``bit`` was negotiated (offered by the device and accepted by the driver)."""
        return bool(self.dfeatures & self.gfeatures & (1 << bit))


def single_vdev_table_size(num_vrings: int = 2, config_len: int = 0) -> int:
    """Bytes taken by a resource table with exactly one VDEV entry."""
    return (
        RSC_TABLE_HDR.size
        + 4
        + RSC_HDR.size
        + FW_RSC_VDEV.size
        + FW_RSC_VDEV_VRING.size * num_vrings
        + config_len
    )


def build_single_vdev_table(
    vrings: list[VringInfo],
    *,
    dfeatures: int = 1 << VIRTIO_RPMSG_F_NS,
    notifyid: int = 0,
    device_id: int = VIRTIO_ID_RPMSG,
    config: bytes = b"",
) -> bytes:
    """The bytes of ``resource_table {ver 1, num 1, offset[0]}`` holding one ``fw_rsc_vdev``.

    This is the table OpenAMP's Linux machine port places at offset 0 of its shared memory.
    """
    offset0 = RSC_TABLE_HDR.size + 4
    out = bytearray(RSC_TABLE_HDR.pack(1, 1, 0, 0))
    out += _U32.pack(offset0)
    out += RSC_HDR.pack(RSC_VDEV)
    out += FW_RSC_VDEV.pack(device_id, notifyid, dfeatures, 0, len(config), 0, len(vrings), b"\0\0")
    for v in vrings:
        out += FW_RSC_VDEV_VRING.pack(v.da, v.align, v.num, v.notifyid, v.pa)
    out += config
    return bytes(out)


def single_vdev_view(table: memoryview) -> VdevView:
    """A :class:`VdevView` of the one VDEV entry of a table made by
    :func:`build_single_vdev_table` (validated: version, count, offset and type)."""
    if table.nbytes < RSC_TABLE_HDR.size + 4:
        raise RemoteProtocolError("resource table truncated")
    ver, num, _r0, _r1 = RSC_TABLE_HDR.unpack_from(table, 0)
    if ver != 1 or num < 1:
        raise RemoteProtocolError(f"resource table: version {ver}, {num} entries")
    (off,) = _U32.unpack_from(table, RSC_TABLE_HDR.size)
    if off < RSC_TABLE_HDR.size + 4 * num or off + RSC_HDR.size + FW_RSC_VDEV.size > table.nbytes:
        raise RemoteProtocolError(f"resource table: entry offset {off:#x} out of range")
    (rtype,) = RSC_HDR.unpack_from(table, off)
    if rtype != RSC_VDEV:
        raise RemoteProtocolError(f"resource table: entry 0 has type {rtype}, expected VDEV")
    return VdevView(table[off + RSC_HDR.size :])


@attrs.frozen
class VirtioQuirks:
    """Where a peer's virtio handshake differs from Linux's, and how to match it.

    Attributes:
        tx_len_whole_buffer: tx descriptors carry the whole buffer size, not the message size
            (OpenAMP); receivers always read the length from the rpmsg header.
        driver_ok_only: the host writes status DRIVER_OK (0x04) alone instead of
            ACKNOWLEDGE | DRIVER then | DRIVER_OK (OpenAMP's Linux port).
        kick_after_features: the host kicks once right after writing ``gfeatures``.
    """

    tx_len_whole_buffer: bool = False
    driver_ok_only: bool = False
    kick_after_features: bool = False


LINUX_QUIRKS = VirtioQuirks()
OPENAMP_QUIRKS = VirtioQuirks(
    tx_len_whole_buffer=True, driver_ok_only=True, kick_after_features=True
)
