/* The resource table as the host reads it: include/linux/remoteproc.h, little endian. */
#ifndef AIOAMP_REMOTEPROC_H
#define AIOAMP_REMOTEPROC_H

#include <stdint.h>

#define RSC_CARVEOUT 0
#define RSC_DEVMEM 1
#define RSC_TRACE 2
#define RSC_VDEV 3
#define FW_RSC_ADDR_ANY 0xFFFFFFFFu
#define RSC_NOTIFY_ID_ANY 0xFFFFFFFFu
#define VIRTIO_ID_RPMSG 7
#define VIRTIO_RPMSG_F_NS 0
#define VIRTIO_CONFIG_S_DRIVER_OK 4

struct resource_table {
    uint32_t ver;
    uint32_t num;
    uint32_t reserved[2];
} __attribute__((packed));

struct fw_rsc_carveout {
    uint32_t type; /* the entry's fw_rsc_hdr */
    uint32_t da;
    uint32_t pa;
    uint32_t len;
    uint32_t flags;
    uint32_t reserved;
    uint8_t name[32];
} __attribute__((packed));

/* struct fw_rsc_devmem has the layout of a carveout. */
#define fw_rsc_devmem fw_rsc_carveout

struct fw_rsc_trace {
    uint32_t type;
    uint32_t da;
    uint32_t len;
    uint32_t reserved;
    uint8_t name[32];
} __attribute__((packed));

struct fw_rsc_vdev_vring {
    uint32_t da;
    uint32_t align;
    uint32_t num;
    uint32_t notifyid;
    uint32_t pa;
} __attribute__((packed));

struct fw_rsc_vdev {
    uint32_t type;
    uint32_t id;
    uint32_t notifyid;
    uint32_t dfeatures;
    uint32_t gfeatures;
    uint32_t config_len;
    uint8_t status;
    uint8_t num_of_vrings;
    uint8_t reserved[2];
    struct fw_rsc_vdev_vring vring[2];
} __attribute__((packed));

/* What every board's table has in common; boards/<board>.c defines the table itself. */
/* The rpmsg vdev every board's table declares: the name service, two vrings of 256
 * buffers whose addresses and notify ids the host picks. */
#define AIOAMP_RPMSG_VDEV                                                                      \
    {                                                                                          \
        .type = RSC_VDEV, .id = VIRTIO_ID_RPMSG, .notifyid = RSC_NOTIFY_ID_ANY,                \
        .dfeatures = 1u << VIRTIO_RPMSG_F_NS, .num_of_vrings = 2,                              \
        .vring = {                                                                             \
            {FW_RSC_ADDR_ANY, 4096, 256, RSC_NOTIFY_ID_ANY, 0},                                 \
            {FW_RSC_ADDR_ANY, 4096, 256, RSC_NOTIFY_ID_ANY, 0},                                 \
        },                                                                                     \
    }

struct aioamp_table_view {
    volatile struct fw_rsc_vdev *vdev;
    volatile struct fw_rsc_trace *trace;
};

extern const struct aioamp_table_view rsc_view;

#endif
