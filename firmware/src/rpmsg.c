/*
 * rpmsg, remote side, over the one vdev of the resource table (drivers/rpmsg/virtio_rpmsg_bus.c
 * is the host side). vring 0 carries our messages to the host (it makes empty buffers
 * available), vring 1 the host's messages to us. Each message handled may send at most one
 * reply, so a message is only taken when a reply buffer is free; otherwise the host's kicks
 * on vring 0 are asked for (used->flags) and handling resumes when it returns buffers.
 */
#include "rpmsg.h"

#include "armv7m.h"
#include "board.h"
#include "remoteproc.h"
#include "trace.h"
#include "virtio.h"

static struct virtqueue tx_vq, rx_vq; /* vring 0, vring 1 */
static struct endpoint *const *endpoints;
volatile uint32_t rpmsg_work;
static uint32_t dropped; /* messages to no endpoint, or malformed */

void rpmsg_notified(uint32_t id)
{
    (void)id; /* every notification rescans both rings */
    rpmsg_work = 1;
}

static void wait_driver_ok(void)
{
    for (;;) {
        cpu_irq_disable();
        if (rsc_view.vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) {
            cpu_irq_enable();
            return;
        }
        cpu_wfi(); /* the host kicks after it set DRIVER_OK */
        cpu_irq_enable();
    }
}

int rpmsg_send(uint32_t src, uint32_t dst, const void *data, uint16_t len)
{
    uint32_t size;
    uint16_t head;
    if (len > RPMSG_MTU)
        return -1;
    struct rpmsg_hdr *msg = vq_get(&tx_vq, &size, &head);
    if (!msg)
        return -1;
    if (size < sizeof(*msg) + len) {
        vq_put(&tx_vq, head, 0);
        return -1;
    }
    msg->src = src;
    msg->dst = dst;
    msg->reserved = 0;
    msg->len = len;
    msg->flags = 0;
    memcpy(msg->data, data, len);
    vq_put(&tx_vq, head, sizeof(*msg) + len);
    return 0;
}

int rpmsg_announce(const struct endpoint *ept, uint32_t flags)
{
    struct rpmsg_ns_msg ns;
    memset(&ns, 0, sizeof(ns));
    memcpy(ns.name, ept->name, strlen(ept->name));
    ns.addr = ept->addr;
    ns.flags = flags;
    int err = rpmsg_send(ept->addr, RPMSG_NS_ADDR, &ns, sizeof(ns));
    vq_kick(&tx_vq);
    return err;
}

void rpmsg_start(struct endpoint *const *epts)
{
    endpoints = epts;
    wait_driver_ok();
    vq_init(&tx_vq, &rsc_view.vdev->vring[0]);
    vq_init(&rx_vq, &rsc_view.vdev->vring[1]);
    vq_want_kicks(&tx_vq, 0); /* not while we have buffers */
    trace("vdev0: DRIVER_OK, vrings at 0x%x / 0x%x (num %u)", rsc_view.vdev->vring[0].da,
          rsc_view.vdev->vring[1].da, (uint32_t)tx_vq.num);
    for (struct endpoint *const *e = epts; *e; e++) {
        if (rpmsg_announce(*e, RPMSG_NS_CREATE) == 0)
            trace("%s: announced at 0x%x", (*e)->name, (*e)->addr);
    }
}

static void dispatch(const struct rpmsg_hdr *msg, uint32_t size)
{
    if (size < sizeof(*msg) || msg->len > size - sizeof(*msg)) {
        dropped++;
        return;
    }
    for (struct endpoint *const *e = endpoints; *e; e++) {
        if ((*e)->addr == msg->dst) {
            (*e)->count++;
            (*e)->cb(*e, msg->src, msg->data, msg->len);
            return;
        }
    }
    dropped++;
}

void rpmsg_poll(void)
{
    for (;;) {
        if (!vq_has_buffer(&tx_vq)) {
            /* No reply buffer: ask for a kick when the host returns one, then look again
             * (it may have returned one before it saw the request). */
            vq_want_kicks(&tx_vq, 1);
            if (!vq_has_buffer(&tx_vq))
                break;
            vq_want_kicks(&tx_vq, 0);
        }
        uint32_t size;
        uint16_t head;
        const struct rpmsg_hdr *msg = vq_get(&rx_vq, &size, &head);
        if (!msg)
            break;
        dispatch(msg, size);
        vq_put(&rx_vq, head, size);
    }
    vq_kick(&rx_vq);
    vq_kick(&tx_vq);
}
