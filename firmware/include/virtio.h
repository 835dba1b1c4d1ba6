/* The split virtqueue, device side (include/uapi/linux/virtio_ring.h, legacy layout). */
#ifndef AIOAMP_VIRTIO_H
#define AIOAMP_VIRTIO_H

#include <stdint.h>

#include "remoteproc.h"

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

struct virtqueue {
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
    uint16_t num;
    uint16_t last_avail;
    uint16_t used_since_kick;
    uint32_t notifyid;
    uint32_t errors; /* descriptors refused (bad id, address or length) */
};

void vq_init(struct virtqueue *vq, const volatile struct fw_rsc_vdev_vring *ring);
/* The next buffer the host made available, or 0 (none); *head identifies it for vq_put. */
void *vq_get(struct virtqueue *vq, uint32_t *len, uint16_t *head);
/* Whether a buffer is available, without taking it. */
int vq_has_buffer(const struct virtqueue *vq);
void vq_put(struct virtqueue *vq, uint16_t head, uint32_t len);
/* Kick the host for this ring if it used buffers since the last kick and allows interrupts. */
void vq_kick(struct virtqueue *vq);
/* Ask (or stop asking) the host to kick us when it adds buffers. */
void vq_want_kicks(struct virtqueue *vq, int want);

#endif
