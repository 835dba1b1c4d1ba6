/* The ARMv7-M registers the firmware uses (ARMv7-M ARM B3.2, B3.3). */
#ifndef AIOAMP_ARMV7M_H
#define AIOAMP_ARMV7M_H

#include <stdint.h>

#define REG32(a) (*(volatile uint32_t *)(a))
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define NVIC_ISPR(n) REG32(0xE000E200u + 4u * (n))
#define NVIC_IPR8(n) (*(volatile uint8_t *)(0xE000E400u + (n)))
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_SHPR3 REG32(0xE000ED20u)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define CFSR_MMARVALID (1u << 7)
#define CFSR_BFARVALID (1u << 15)
#define ICSR_PENDSVSET (1u << 28)

static inline void irq_enable(uint32_t irq) { NVIC_ISER(irq / 32) = 1u << (irq % 32); }
static inline void cpu_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void cpu_irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void cpu_wfi(void) { __asm volatile("wfi" ::: "memory"); }
static inline void cpu_dmb(void) { __asm volatile("dmb" ::: "memory"); }

#endif
