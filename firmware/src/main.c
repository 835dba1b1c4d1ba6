/*
 * The project's rpmsg remote: an echo service, the remote half of Linux's rpmsg client sample,
 * and a "fault" service that performs the bad access it is asked for (to test crash
 * handling). Everything happens in thread mode; the board's interrupt handler only notes
 * that there is work, and the core waits for it with WFI (interrupts masked between the
 * check and the WFI, so a kick cannot slip in between: WFI wakes on a pending interrupt even
 * while it is masked, and it is taken when the mask is lowered).
 */
#include <stdint.h>

#include "armv7m.h"
#include "board.h"
#include "rpmsg.h"
#include "trace.h"

#define CLIENT_SAMPLE_COUNT 100 /* MSG_LIMIT of samples/rpmsg/rpmsg_client_sample.c */

static void echo_cb(struct endpoint *ept, uint32_t src, const uint8_t *data, uint16_t len)
{
    rpmsg_send(ept->addr, src, data, len);
}

static void sample_cb(struct endpoint *ept, uint32_t src, const uint8_t *data, uint16_t len)
{
    rpmsg_send(ept->addr, src, data, len);
    if (ept->count == CLIENT_SAMPLE_COUNT) {
        trace("%s: echoed %u messages, withdrawing", ept->name, ept->count);
        rpmsg_announce(ept, RPMSG_NS_DESTROY);
    }
}

static int is(const uint8_t *data, uint16_t len, const char *word)
{
    return len == strlen(word) && memcmp(data, word, len) == 0;
}

/* Each bad access in a function of its own, so a test can find it in the symbol table. */
__attribute__((noinline)) uint32_t fault_read(uint32_t address)
{
    return *(volatile uint32_t *)address;
}

__attribute__((noinline)) void fault_write(uint32_t address)
{
    *(volatile uint32_t *)address = 0xDEADBEEFu;
}

__attribute__((noinline)) void fault_undefined(void)
{
    __asm volatile("udf #0x42");
}

__attribute__((noinline)) void fault_svc_masked(void)
{
    /* An SVC that cannot be taken (interrupts masked) escalates to HardFault. */
    __asm volatile("cpsid i\n svc #1\n cpsie i" ::: "memory");
}

__attribute__((noinline)) void fault_hang(void)
{
    cpu_irq_disable();
    for (;;)
        __asm volatile("" ::: "memory"); /* no WFI: the watchdog fires */
}

static void fault_cb(struct endpoint *ept, uint32_t src, const uint8_t *data, uint16_t len)
{
    trace("fault: asked for '%c...' (%u bytes)", len ? data[0] : '?', (uint32_t)len);
    if (is(data, len, "mmu"))
        fault_read(board_unmapped_address);
    else if (is(data, len, "bus"))
        fault_read(board_hole_address);
    else if (is(data, len, "write"))
        fault_write(board_unmapped_address);
    else if (is(data, len, "undefined"))
        fault_undefined();
    else if (is(data, len, "svc"))
        fault_svc_masked();
    else if (is(data, len, "hang"))
        fault_hang();
    rpmsg_send(ept->addr, src, "unknown fault", 13);
}

static struct endpoint sample = {"rpmsg-client-sample", 0x400, sample_cb, 0};
static struct endpoint echo = {"rpmsg-echo", 0x401, echo_cb, 0};
static struct endpoint fault = {"rpmsg-fault", 0x402, fault_cb, 0};
static struct endpoint *const endpoints[] = {&sample, &echo, &fault, 0};

void svc_handler(void)
{
    /* an SVC that was taken: nothing to do */
}

int main(void)
{
    board_init();
    trace("aioamp firmware on %s: up", board_name);
    rpmsg_start(endpoints);
    for (;;) {
        cpu_irq_disable();
        if (!rpmsg_work)
            cpu_wfi();
        rpmsg_work = 0;
        cpu_irq_enable();
        rpmsg_poll();
    }
}
