/*
 * The virtio device's half of a split virtqueue (virtio 1.x 2.7, legacy layout): take what the
 * driver (the host) made available, give it back through the used ring, and kick the host only
 * when it asks for it (VRING_AVAIL_F_NO_INTERRUPT clear). Every index, descriptor id and length
 * read from shared memory is checked: a bad one is counted and the buffer refused.
 */
#include "virtio.h"

#include "armv7m.h"
#include "board.h"
#include "rpmsg.h"

#define ALIGN_UP(x, a) (((x) + (a) - 1u) & ~((a) - 1u))

void vq_init(struct virtqueue *vq, const volatile struct fw_rsc_vdev_vring *ring)
{
    uint32_t base = ring->da, num = ring->num;
    vq->num = (uint16_t)num;
    vq->desc = (volatile struct vring_desc *)base;
    vq->avail = (volatile struct vring_avail *)(base + 16u * num);
    vq->used = (volatile struct vring_used *)ALIGN_UP(base + 16u * num + 6u + 2u * num,
                                                      ring->align);
    vq->last_avail = vq->used->idx; /* a fresh ring: both are zero */
    vq->used_since_kick = 0;
    vq->notifyid = ring->notifyid;
    vq->errors = 0;
}

int vq_has_buffer(const struct virtqueue *vq)
{
    return vq->avail->idx != vq->last_avail;
}

void *vq_get(struct virtqueue *vq, uint32_t *len, uint16_t *head)
{
    while (vq_has_buffer(vq)) {
        uint16_t slot = vq->last_avail % vq->num;
        cpu_dmb(); /* the index before the slot it covers */
        uint16_t id = vq->avail->ring[slot];
        vq->last_avail++;
        if (id >= vq->num) {
            vq->errors++;
            continue;
        }
        uint32_t n = vq->desc[id].len;
        uint64_t addr = vq->desc[id].addr;
        if (n > RPMSG_BUF_SIZE || (addr >> 32) != 0 || (addr & 3u) != 0) {
            vq->errors++;
            vq_put(vq, id, 0); /* give it back untouched */
            continue;
        }
        *len = n;
        *head = id;
        return (void *)(uint32_t)addr;
    }
    return 0;
}

void vq_put(struct virtqueue *vq, uint16_t head, uint32_t len)
{
    uint16_t idx = vq->used->idx;
    volatile struct vring_used_elem *elem = &vq->used->ring[idx % vq->num];
    elem->id = head;
    elem->len = len;
    cpu_dmb(); /* the element before the index that publishes it */
    vq->used->idx = (uint16_t)(idx + 1u);
    vq->used_since_kick++;
}

void vq_kick(struct virtqueue *vq)
{
    if (!vq->used_since_kick)
        return;
    vq->used_since_kick = 0;
    cpu_dmb();
    if (!(vq->avail->flags & VRING_AVAIL_F_NO_INTERRUPT))
        board_kick(vq->notifyid);
}

void vq_want_kicks(struct virtqueue *vq, int want)
{
    vq->used->flags = want ? 0 : VRING_USED_F_NO_NOTIFY;
    cpu_dmb();
}
