/*
 * The OMAP4 IPU (Ducati Cortex-M3, core 0) board: the system mailbox and the resource table.
 *
 * The M3 reaches L4_CFG (physical 0x4A000000) at device address 0xAA000000 through the L2 MMU:
 * TI's IPU firmware maps it with a DEVMEM entry (IPU_PERIPHERAL_L4CFG 0xAA000000 in
 * src/ti/resources/rsc_table_ipu.h of sysbios-rpmsg, 2012) and drives the mailbox at
 * 0xAA0F4000 (MAILBOX_BASEADDR in src/ti/ipc/rpmsg/InterruptM3.c): host -> M3 on fifo 0,
 * M3 -> host on fifo 1, as interrupt user 2 (IRQSTATUS_CLR at +0x124), on M3 interrupt 50
 * (M3INT_MBX, SYS/BIOS numbering: external line 34). The text and data carveouts are at
 * TI's IPU_MEM_TEXT 0x0 and IPU_MEM_DATA 0x80000000 (1 MiB each here). Control messages are
 * omap_remoteproc.h's: ECHO_REQUEST is answered with ECHO_REPLY, a crash sends CRASH.
 */
#include <stddef.h>
#include <stdint.h>

#include "armv7m.h"
#include "board.h"
#include "remoteproc.h"
#include "rpmsg.h"
#include "trace.h"

#define L4_CFG_DA 0xAA000000u
#define L4_CFG_PA 0x4A000000u
#define MBOX (L4_CFG_DA + 0x000F4000u)
#define MBOX_MESSAGE(m) REG32(MBOX + 0x40u + 4u * (m))
#define MBOX_FIFOSTATUS(m) REG32(MBOX + 0x80u + 4u * (m))
#define MBOX_MSGSTATUS(m) REG32(MBOX + 0xC0u + 4u * (m))
#define MBOX_IRQSTATUS_CLR(u) REG32(MBOX + 0x104u + 0x10u * (u))
#define MBOX_IRQENABLE_SET(u) REG32(MBOX + 0x108u + 0x10u * (u))
#define MBOX_IRQENABLE_CLR(u) REG32(MBOX + 0x10Cu + 0x10u * (u))
#define NEWMSG(m) (1u << (2u * (m)))
#define NOTFULL(m) (1u << (2u * (m) + 1u))
#define USER 2
#define RX 0 /* host -> M3 */
#define TX 1 /* M3 -> host */
#define RP_MBOX_CRASH 0xFFFFFF02u
#define RP_MBOX_ECHO_REQUEST 0xFFFFFF03u
#define RP_MBOX_ECHO_REPLY 0xFFFFFF04u
#define MAX_NOTIFYID 0xFFu
#define PENDING 8

const char board_name[] = "OMAP4 IPU (Ducati M3, core 0)";
const uint32_t board_unmapped_address = 0x70000000u; /* no TLB entry covers it */
const uint32_t board_hole_address = L4_CFG_DA + 0x000FF000u; /* L4_CFG, no device there */

/* Values the tx fifo had no room for, sent when it signals NOTFULL (coalesced). */
static uint32_t pending[PENDING];
static uint32_t npending, coalesced;

static void tx_flush(void)
{
    uint32_t sent = 0;
    while (sent < npending && !MBOX_FIFOSTATUS(TX))
        MBOX_MESSAGE(TX) = pending[sent++];
    for (uint32_t i = sent; i < npending; i++)
        pending[i - sent] = pending[i];
    npending -= sent;
    if (npending)
        MBOX_IRQENABLE_SET(USER) = NOTFULL(TX);
    else
        MBOX_IRQENABLE_CLR(USER) = NOTFULL(TX);
}

static void tx(uint32_t value)
{
    cpu_irq_disable(); /* the interrupt handler sends too */
    for (uint32_t i = 0; i < npending; i++) {
        if (pending[i] == value) {
            coalesced++;
            cpu_irq_enable();
            return;
        }
    }
    if (npending < PENDING)
        pending[npending++] = value;
    tx_flush();
    cpu_irq_enable();
}

void board_kick(uint32_t notifyid)
{
    tx(notifyid);
}

void board_irq_handler(void)
{
    while (MBOX_MSGSTATUS(RX)) {
        uint32_t value = MBOX_MESSAGE(RX);
        if (value == RP_MBOX_ECHO_REQUEST) {
            if (npending < PENDING)
                pending[npending++] = RP_MBOX_ECHO_REPLY;
        } else if (value <= MAX_NOTIFYID) {
            rpmsg_notified(value);
        }
    }
    MBOX_IRQSTATUS_CLR(USER) = NEWMSG(RX) | NOTFULL(TX);
    if (npending)
        tx_flush();
}

void board_init(void)
{
    MBOX_IRQENABLE_SET(USER) = NEWMSG(RX);
    NVIC_IPR8(BOARD_IRQ) = 0x80;
    irq_enable(BOARD_IRQ);
}

void board_crash(uint32_t code)
{
    (void)code; /* omap_remoteproc knows one crash message */
    for (uint32_t tries = 0; tries < 100000u && MBOX_FIFOSTATUS(TX); tries++)
        ;
    MBOX_MESSAGE(TX) = RP_MBOX_CRASH;
}

void board_log(const char *line)
{
    (void)line; /* the trace buffer is this board's log */
}

/* The resource table (include/linux/remoteproc.h), as TI's rsc_table_ipu.h lays it out:
 * the vdev first, then the carveouts, the trace buffer and the peripherals. */
struct omap4_table {
    struct resource_table hdr;
    uint32_t offset[5];
    struct fw_rsc_vdev vdev;
    struct fw_rsc_carveout text;
    struct fw_rsc_carveout data;
    struct fw_rsc_trace trace;
    struct fw_rsc_devmem l4_cfg;
} __attribute__((packed));

__attribute__((section(".resource_table"), used, aligned(16))) volatile struct omap4_table
    rsc_table = {
        .hdr = {.ver = 1, .num = 5},
        .offset =
            {
                offsetof(struct omap4_table, vdev),
                offsetof(struct omap4_table, text),
                offsetof(struct omap4_table, data),
                offsetof(struct omap4_table, trace),
                offsetof(struct omap4_table, l4_cfg),
            },
        .vdev = AIOAMP_RPMSG_VDEV,
        .text = {RSC_CARVEOUT, 0x00000000u, FW_RSC_ADDR_ANY, 0x100000u, 0, 0, "IPU_MEM_TEXT"},
        .data = {RSC_CARVEOUT, 0x80000000u, FW_RSC_ADDR_ANY, 0x100000u, 0, 0, "IPU_MEM_DATA"},
        .trace = {RSC_TRACE, (uint32_t)trace_buf, TRACE_SIZE, 0, "trace:sysm3"},
        .l4_cfg = {RSC_DEVMEM, L4_CFG_DA, L4_CFG_PA, 0x1000000u, 0, 0, "IPU_PERIPHERAL_L4CFG"},
};

const struct aioamp_table_view rsc_view = {&rsc_table.vdev, &rsc_table.trace};
