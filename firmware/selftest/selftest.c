/*
 * Exception-model self-test for the emulated core (tests/shell/test_emu_exceptions.py).
 *
 * It runs each scenario in turn and writes what happened into 'results' (a log of letters per
 * scenario, fault registers, stack pointers); the host reads them from memory after 'done'
 * is set. The expected letters are the ARMv7-M rules: preemption by group priority, nesting,
 * tail-chaining, BASEPRI and PRIMASK masking (WFI wakes while masked), SVC then PendSV at the
 * lowest priority, SysTick preempting a lower handler, NMI, the process stack, and faults
 * taken by their own handler when enabled or escalated to HardFault when not.
 */
#include <stdint.h>

#include "armv7m.h"

#define NVIC_STIR REG32(0xE000EF00u)
#define SCB_CCR REG32(0xE000ED14u)
#define ICSR_NMIPENDSET (1u << 31)
#define ICSR_PENDSTCLR (1u << 25)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)

struct results {
    uint32_t done;
    char log[12][8];       /* letters per scenario */
    uint32_t vectactive;   /* ICSR.VECTACTIVE seen by the nested handler */
    uint32_t psp_lr;       /* EXC_RETURN seen by a handler that interrupted PSP code */
    uint32_t psp_ok;       /* thread registers and SP intact after that interrupt */
    uint32_t fault_exc[3]; /* handler that took: bus fault enabled, usage fault, escalated */
    uint32_t fault_cfsr[3];
    uint32_t fault_hfsr[3];
    uint32_t fault_bfar;
    uint32_t systick_in_irq;
};

struct results results;
static volatile uint32_t scenario;
static volatile uint32_t flag;
static uint32_t process_stack[128];

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

static void mark(char c)
{
    char *log = results.log[scenario];
    for (int i = 0; i < 7; i++) {
        if (!log[i]) {
            log[i] = c;
            return;
        }
    }
}

static void pend(uint32_t irq) { NVIC_STIR = irq; }

void irq1_handler(void)
{
    mark('A');
    if (scenario == 0) {
        pend(2); /* higher priority: preempts now */
        mark('C');
        pend(3); /* lower priority: waits for us */
    } else if (scenario == 5) {
        results.psp_lr = (uint32_t)__builtin_return_address(0);
    } else if (scenario == 7) {
        SYST_RVR = 20000; /* 100 us at the nominal 200 MHz */
        SYST_CVR = 0;
        SYST_CSR = 7;     /* enable, interrupt, core clock */
        while (!flag)     /* SysTick (higher priority) must preempt this spin */
            ;
        SYST_CSR = 0;
        results.systick_in_irq = 1;
    }
}

void irq2_handler(void)
{
    mark('B');
    if (scenario == 0)
        results.vectactive = SCB_ICSR & 0x1FFu;
}

void irq3_handler(void) { mark('D'); }

void systick_handler(void)
{
    mark('T');
    flag = 1;
    SYST_CSR = 0;
    /* A tick that came while this ran stays pending after the disable (as on silicon); the
     * emulator's SysTick counts wall-clock time, so a descheduled core can see one. */
    SCB_ICSR = ICSR_PENDSTCLR;
}

void svc_handler(void)
{
    mark('S');
    SCB_ICSR = ICSR_PENDSVSET; /* the lowest priority: runs after we return */
}

void pendsv_handler(void) { mark('P'); }

void nmi_handler(void) { mark('N'); }

/* Faults: record which handler took it, then skip the 16-bit faulting instruction. */
void fault_c(uint32_t *frame, uint32_t exception) __attribute__((used));
void fault_c(uint32_t *frame, uint32_t exception)
{
    uint32_t i = scenario - 8;
    results.fault_exc[i] = exception;
    results.fault_cfsr[i] = SCB_CFSR;
    results.fault_hfsr[i] = SCB_HFSR;
    if (SCB_CFSR & CFSR_BFARVALID)
        results.fault_bfar = SCB_BFAR;
    SCB_CFSR = 0xFFFFFFFFu;
    SCB_HFSR = 0xFFFFFFFFu;
    frame[6] += 2;
}

#define FAULT_ENTRY(name, number)                                                              \
    __attribute__((naked)) void name(void)                                                     \
    {                                                                                          \
        __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n"                 \
                       "movs r1, #" #number "\n push {lr}\n bl fault_c\n pop {pc}\n");         \
    }

FAULT_ENTRY(hardfault_handler, 3)
FAULT_ENTRY(busfault_handler, 5)
FAULT_ENTRY(usagefault_handler, 6)

void reset_handler(void);
typedef void (*vector_t)(void);
__attribute__((section(".vectors"), used)) const vector_t vectors[20] = {
    [0] = (vector_t)&_estack,
    [1] = reset_handler,
    [2] = nmi_handler,
    [3] = hardfault_handler,
    [5] = busfault_handler,
    [6] = usagefault_handler,
    [11] = svc_handler,
    [14] = pendsv_handler,
    [15] = systick_handler,
    [17] = irq1_handler,
    [18] = irq2_handler,
    [19] = irq3_handler,
};

static uint32_t psp_check(void)
{
    /* r0-r3 and r12 must survive an interrupt (the frame restores them), and so must SP. */
    uint32_t ok;
    __asm volatile("mov r4, sp\n"
                   "ldr r0, =0x11111111\n ldr r1, =0x22222222\n ldr r2, =0x33333333\n"
                   "ldr r3, =0x44444444\n ldr r12, =0x55555555\n"
                   "ldr r5, =0xE000EF00\n movs r6, #1\n str r6, [r5]\n" /* STIR: IRQ 1 */
                   "isb\n"
                   "movs %0, #0\n"
                   "ldr r5, =0x11111111\n cmp r0, r5\n bne 1f\n"
                   "ldr r5, =0x22222222\n cmp r1, r5\n bne 1f\n"
                   "ldr r5, =0x33333333\n cmp r2, r5\n bne 1f\n"
                   "ldr r5, =0x44444444\n cmp r3, r5\n bne 1f\n"
                   "ldr r5, =0x55555555\n cmp r12, r5\n bne 1f\n"
                   "mov r5, sp\n cmp r4, r5\n bne 1f\n"
                   "movs %0, #1\n"
                   "1:\n"
                   : "=r"(ok)
                   :
                   : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r12", "memory", "cc");
    return ok;
}

static void run(void)
{
    irq_enable(1);
    irq_enable(2);
    irq_enable(3);
    NVIC_IPR8(1) = 0x80;
    NVIC_IPR8(2) = 0x40;
    NVIC_IPR8(3) = 0xC0;
    SCB_SHPR3 = 0xFFu << 16 | 0x40u << 24; /* PendSV lowest, SysTick above IRQ 1 */

    scenario = 0; /* nesting and tail-chaining: A B C D */
    pend(1);
    mark('E');

    scenario = 1; /* BASEPRI 0x80 holds IRQ 1 back, not IRQ 2: B, then A when lowered */
    __asm volatile("msr basepri, %0" ::"r"(0x80u) : "memory");
    pend(1);
    pend(2);
    mark('x');
    __asm volatile("msr basepri, %0" ::"r"(0u) : "memory");
    mark('y');

    scenario = 2; /* PRIMASK: WFI wakes on the masked SysTick, taken after cpsie: W T E */
    cpu_irq_disable();
    SYST_RVR = 20000;
    SYST_CVR = 0;
    SYST_CSR = 7;
    cpu_wfi();
    mark('W');
    cpu_irq_enable();
    mark('E');
    SYST_CSR = 0;

    scenario = 3; /* SVC, then PendSV after it returns: S P Q */
    __asm volatile("svc #0" ::: "memory");
    mark('Q');

    scenario = 4; /* NMI (ICSR.NMIPENDSET) even while PRIMASK is set: N R */
    cpu_irq_disable();
    SCB_ICSR = ICSR_NMIPENDSET;
    mark('R');
    cpu_irq_enable();

    scenario = 5; /* an interrupt of process-stack code */
    __asm volatile("msr psp, %0\n movs r0, #2\n msr control, r0\n isb" ::"r"(
                       &process_stack[128])
                   : "r0", "memory");
    results.psp_ok = psp_check();
    __asm volatile("movs r0, #0\n msr control, r0\n isb" ::: "r0", "memory");

    scenario = 6; /* tail-chain of two pended at once, in priority order: B A */
    cpu_irq_disable();
    pend(1);
    pend(2);
    cpu_irq_enable();

    scenario = 7; /* SysTick preempts the IRQ 1 handler spinning on its flag: A T */
    flag = 0;
    pend(1);

    SCB_SHCSR = SHCSR_BUSFAULTENA | SHCSR_USGFAULTENA;
    scenario = 8; /* BusFault enabled: taken by its own handler */
    __asm volatile("ldr r0, [%0]" ::"r"(0x70000000u) : "r0", "memory");
    scenario = 9; /* UsageFault enabled */
    __asm volatile("udf #7" ::: "memory");
    SCB_SHCSR = 0;
    scenario = 10; /* disabled: escalated to HardFault */
    __asm volatile("ldr r0, [%0]" ::"r"(0x70000000u) : "r0", "memory");
}

void reset_handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    run();
    results.done = 0xD0E;
    for (;;)
        cpu_wfi();
}

/* The table remoteproc needs to boot the image: two carveouts, no vdev. */
#include <stddef.h>

#include "remoteproc.h"

struct selftest_table {
    struct resource_table hdr;
    uint32_t offset[2];
    struct fw_rsc_carveout text;
    struct fw_rsc_carveout data;
} __attribute__((packed));

__attribute__((section(".resource_table"), used, aligned(16))) const struct selftest_table
    rsc_table = {
        .hdr = {.ver = 1, .num = 2},
        .offset = {offsetof(struct selftest_table, text), offsetof(struct selftest_table, data)},
        .text = {RSC_CARVEOUT, 0x00000000u, FW_RSC_ADDR_ANY, 0x10000u, 0, 0, "text"},
        .data = {RSC_CARVEOUT, 0x80000000u, FW_RSC_ADDR_ANY, 0x10000u, 0, 0, "data"},
};
