/* The trace buffer the host reads (the resource table's RSC_TRACE entry). */
#ifndef AIOAMP_TRACE_H
#define AIOAMP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_SIZE 4096
extern char trace_buf[TRACE_SIZE];

/* printf-like: %s, %c, %u and %x (eight digits) of a uint32_t; appends one line (also to the
 * board's log). */
void trace(const char *fmt, ...);

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);
int memcmp(const void *a, const void *b, size_t n);

#endif
