/* What a board provides to the firmware: its interrupt line, kicks, crash reports, logs. */
#ifndef AIOAMP_BOARD_H
#define AIOAMP_BOARD_H

#include <stdint.h>

#define CRASH_FAULT 1
#define CRASH_WATCHDOG 2

extern const char board_name[];
void board_init(void);
void board_irq_handler(void);
void board_kick(uint32_t notifyid);
void board_crash(uint32_t code);
void board_log(const char *line);
/* An address the host never maps (an MMU / IOMMU fault) and one that maps to no device. */
extern const uint32_t board_unmapped_address;
extern const uint32_t board_hole_address;

#endif
