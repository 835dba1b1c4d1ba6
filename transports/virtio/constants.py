"""The constants of virtio and of the remoteproc resource table that every layer shares.

Each is defined here once: the vdev codec, the rings, remoteproc's resource table and the
backends import them from this module (include/uapi/linux/virtio_config.h, virtio_ids.h,
include/linux/remoteproc.h, drivers/rpmsg/virtio_rpmsg_bus.c).
"""

from __future__ import annotations

#: Byte order of every shared structure. Legacy virtio is "native of the host"; every host
#: aioamp supports is little-endian, so it is one constant.
ENDIAN = "<"

#: include/linux/remoteproc.h ``enum fw_resource_type``: RSC_VDEV.
RSC_VDEV = 3

# include/uapi/linux/virtio_config.h status bits.
VIRTIO_CONFIG_S_ACKNOWLEDGE = 0x01
VIRTIO_CONFIG_S_DRIVER = 0x02
VIRTIO_CONFIG_S_DRIVER_OK = 0x04
VIRTIO_CONFIG_S_FEATURES_OK = 0x08
VIRTIO_CONFIG_S_NEEDS_RESET = 0x40
VIRTIO_CONFIG_S_FAILED = 0x80

#: include/uapi/linux/virtio_config.h: the device complies with virtio 1.x (feature bit 32).
VIRTIO_F_VERSION_1 = 32

#: The largest split virtqueue the virtio spec allows (Queue Size is at most 32768).
MAX_VRING_NUM = 32768

#: include/uapi/linux/virtio_ids.h: VIRTIO_ID_RPMSG.
VIRTIO_ID_RPMSG = 7
#: drivers/rpmsg/virtio_rpmsg_bus.c: the remote supports name-service announcements.
VIRTIO_RPMSG_F_NS = 0

# include/uapi/linux/virtio_ring.h: descriptor flags (chained, device-writable, indirect) and
# the notification suppression flags of the avail ring (driver -> device: "don't interrupt me
# when you consume a buffer") and of the used ring (device -> driver: "don't kick me when you
# add a buffer").
VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
VRING_DESC_F_INDIRECT = 4
VRING_AVAIL_F_NO_INTERRUPT = 1
VRING_USED_F_NO_NOTIFY = 1
