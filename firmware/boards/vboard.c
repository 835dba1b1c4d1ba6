/*
 * The aioamp virtual board (docs/emulated-firmware.md): a doorbell and a UART at fixed device
 * addresses, RAM where the resource table's carveouts ask for it. The doorbell raises
 * interrupt line 0 while the host has queued notifications: RX pops one (0xFFFFFFFF when
 * none is left), TX sends one to the host, CRASH tells the host we crashed.
 */
#include <stddef.h>
#include <stdint.h>

#include "armv7m.h"
#include "board.h"
#include "remoteproc.h"
#include "rpmsg.h"
#include "trace.h"

#define DOORBELL 0x40000000u
#define DB_TX REG32(DOORBELL + 0x04u)
#define DB_RX REG32(DOORBELL + 0x08u)
#define DB_CRASH REG32(DOORBELL + 0x10u)
#define DB_EMPTY 0xFFFFFFFFu
#define UART_DATA REG32(0x40001000u)

const char board_name[] = "aioamp virtual board";
const uint32_t board_unmapped_address = 0x70000000u; /* nothing mapped there */
const uint32_t board_hole_address = 0x40002000u;     /* the peripheral window, no device */

void board_irq_handler(void)
{
    for (uint32_t value; (value = DB_RX) != DB_EMPTY;)
        rpmsg_notified(value);
}

void board_kick(uint32_t notifyid)
{
    DB_TX = notifyid;
}

void board_init(void)
{
    irq_enable(BOARD_IRQ);
}

void board_crash(uint32_t code)
{
    DB_CRASH = code;
}

void board_log(const char *line)
{
    while (*line)
        UART_DATA = (uint8_t)*line++;
}

struct vboard_table {
    struct resource_table hdr;
    uint32_t offset[4];
    struct fw_rsc_vdev vdev;
    struct fw_rsc_carveout text;
    struct fw_rsc_carveout data;
    struct fw_rsc_trace trace;
} __attribute__((packed));

__attribute__((section(".resource_table"), used, aligned(16))) volatile struct vboard_table
    rsc_table = {
        .hdr = {.ver = 1, .num = 4},
        .offset =
            {
                offsetof(struct vboard_table, vdev),
                offsetof(struct vboard_table, text),
                offsetof(struct vboard_table, data),
                offsetof(struct vboard_table, trace),
            },
        .vdev = AIOAMP_RPMSG_VDEV,
        .text = {RSC_CARVEOUT, 0x00000000u, FW_RSC_ADDR_ANY, 0x100000u, 0, 0, "text"},
        .data = {RSC_CARVEOUT, 0x80000000u, FW_RSC_ADDR_ANY, 0x100000u, 0, 0, "data"},
        .trace = {RSC_TRACE, (uint32_t)trace_buf, TRACE_SIZE, 0, "trace0"},
};

const struct aioamp_table_view rsc_view = {&rsc_table.vdev, &rsc_table.trace};
