/* rpmsg on the remote side (include/linux/rpmsg/..., drivers/rpmsg/virtio_rpmsg_bus.c). */
#ifndef AIOAMP_RPMSG_H
#define AIOAMP_RPMSG_H

#include <stdint.h>

#define RPMSG_NS_ADDR 53
#define RPMSG_NS_CREATE 0
#define RPMSG_NS_DESTROY 1
#define RPMSG_NAME_SIZE 32
#define RPMSG_BUF_SIZE 512

struct rpmsg_hdr {
    uint32_t src;
    uint32_t dst;
    uint32_t reserved;
    uint16_t len;
    uint16_t flags;
    uint8_t data[];
} __attribute__((packed));

struct rpmsg_ns_msg {
    char name[RPMSG_NAME_SIZE];
    uint32_t addr;
    uint32_t flags;
} __attribute__((packed));

#define RPMSG_MTU (RPMSG_BUF_SIZE - sizeof(struct rpmsg_hdr))

struct endpoint;
typedef void (*rpmsg_cb)(struct endpoint *ept, uint32_t src, const uint8_t *data, uint16_t len);

struct endpoint {
    const char *name;
    uint32_t addr;
    rpmsg_cb cb;
    uint32_t count; /* messages received */
};

/* Wait for DRIVER_OK, set the rings up and announce every endpoint. */
void rpmsg_start(struct endpoint *const *epts);
/* Handle everything the host sent; returns when nothing is left (or no reply buffer). */
void rpmsg_poll(void);
/* Send now; -1 when the host has no free buffer for us (call only from a callback, which
 * rpmsg_poll calls only when one is available). */
int rpmsg_send(uint32_t src, uint32_t dst, const void *data, uint16_t len);
int rpmsg_announce(const struct endpoint *ept, uint32_t flags);
/* The host kicked notify id 'id' (called from the board's interrupt handler). */
void rpmsg_notified(uint32_t id);
/* Something to do (set by the interrupt handler, cleared by the main loop). */
extern volatile uint32_t rpmsg_work;

#endif
