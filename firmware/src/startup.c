/*
 * Start-up: the vector table, .data / .bss set-up, the fault handlers.
 *
 * The table sits at device address 0 (the text carveout, as TI's IPU firmware links it), so
 * the core finds its initial stack pointer and reset vector there. A fault (HardFault, or a
 * configurable fault if enabled) and the watchdog's NMI write one "crash:" line naming the
 * faulting PC and address into the trace buffer, tell the host through the board, and wait to
 * be reset.
 */
#include <stdint.h>

#include "armv7m.h"
#include "board.h"
#include "trace.h"

#ifndef BOARD_IRQ
#error "BOARD_IRQ: the board's interrupt line"
#endif

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void reset_handler(void);
void default_handler(void);
void nmi_handler(void);
void hardfault_handler(void);
void memmanage_handler(void);
void busfault_handler(void);
void usagefault_handler(void);
void svc_handler(void) __attribute__((weak, alias("default_handler")));
void pendsv_handler(void) __attribute__((weak, alias("default_handler")));
void systick_handler(void) __attribute__((weak, alias("default_handler")));

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t vectors[16 + BOARD_IRQ + 1] = {
    [0] = (vector_t)&_estack,
    [1] = reset_handler,
    [2] = nmi_handler,
    [3] = hardfault_handler,
    [4] = memmanage_handler,
    [5] = busfault_handler,
    [6] = usagefault_handler,
    [11] = svc_handler,
    [14] = pendsv_handler,
    [15] = systick_handler,
    [16 + BOARD_IRQ] = board_irq_handler,
};

void reset_handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
    main();
    for (;;)
        cpu_wfi();
}

void default_handler(void)
{
    for (;;)
        cpu_wfi();
}

/* Called with the exception's stacked frame (r0-r3, r12, lr, pc, xpsr) and its number. */
void fault_report(const uint32_t *frame, uint32_t exception) __attribute__((used, noreturn));

void fault_report(const uint32_t *frame, uint32_t exception)
{
    static const char *const names[] = {"?", "?", "watchdog", "HardFault", "MemManage",
                                        "BusFault", "UsageFault"};
    uint32_t cfsr = SCB_CFSR, hfsr = SCB_HFSR, pc = frame[6], address = pc;
    if (cfsr & CFSR_BFARVALID)
        address = SCB_BFAR;
    else if (cfsr & CFSR_MMARVALID)
        address = SCB_MMFAR;
    trace("crash: %s at pc 0x%x, address 0x%x (cfsr 0x%x hfsr 0x%x lr 0x%x)",
          exception < 7 ? names[exception] : "?", pc, address, cfsr, hfsr, frame[5]);
    board_crash(exception == 2 ? CRASH_WATCHDOG : CRASH_FAULT);
    for (;;)
        cpu_wfi(); /* the host resets us */
}

/* The frame is on the stack EXC_RETURN (lr) names: bit 2 set means the process stack. */
#define FAULT_ENTRY(name, number)                                                              \
    __attribute__((naked)) void name(void)                                                     \
    {                                                                                          \
        __asm volatile("tst lr, #4\n"                                                          \
                       "ite eq\n"                                                              \
                       "mrseq r0, msp\n"                                                       \
                       "mrsne r0, psp\n"                                                       \
                       "movs r1, #" #number "\n"                                               \
                       "b fault_report\n");                                                    \
    }

FAULT_ENTRY(nmi_handler, 2)
FAULT_ENTRY(hardfault_handler, 3)
FAULT_ENTRY(memmanage_handler, 4)
FAULT_ENTRY(busfault_handler, 5)
FAULT_ENTRY(usagefault_handler, 6)
