"""The pure virtio layer: the split vring, the vdev entry every transport exposes, the shared
memory layout, device memory and the constants.

Pure: these modules import only the standard library's non-I/O parts, attrs, each other and
:mod:`transports.errors` (and the optional C twin of the rings, ``transports._vring_accel``).
Importing any of them loads no event loop, socket, selectors or mmap module; a test checks it.
"""

from .constants import (
    ENDIAN,
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED,
    VIRTIO_CONFIG_S_FEATURES_OK,
    VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_F_VERSION_1,
    VIRTIO_ID_RPMSG,
    VIRTIO_RPMSG_F_NS,
)
from .layout import OPENAMP_LAYOUT, SharedLayout
from .memory import DeviceMemory, Region
from .vdev import LINUX_QUIRKS, OPENAMP_QUIRKS, VdevView, VirtioQuirks, VringInfo
from .vring import ACCELERATED, VringDevice, VringDriver, VringLayout, vring_size

__all__ = [
    "ACCELERATED",
    "ENDIAN",
    "LINUX_QUIRKS",
    "OPENAMP_LAYOUT",
    "OPENAMP_QUIRKS",
    "VIRTIO_CONFIG_S_ACKNOWLEDGE",
    "VIRTIO_CONFIG_S_DRIVER",
    "VIRTIO_CONFIG_S_DRIVER_OK",
    "VIRTIO_CONFIG_S_FAILED",
    "VIRTIO_CONFIG_S_FEATURES_OK",
    "VIRTIO_CONFIG_S_NEEDS_RESET",
    "VIRTIO_F_VERSION_1",
    "VIRTIO_ID_RPMSG",
    "VIRTIO_RPMSG_F_NS",
    "DeviceMemory",
    "Region",
    "SharedLayout",
    "VdevView",
    "VirtioQuirks",
    "VringDevice",
    "VringDriver",
    "VringInfo",
    "VringLayout",
    "vring_size",
]
