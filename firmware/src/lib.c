/* The few C library functions the firmware needs (no libc), and the trace buffer writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "trace.h"

__attribute__((section(".trace"), aligned(16))) char trace_buf[TRACE_SIZE];
static uint32_t trace_pos;

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d | (uintptr_t)s) & 3) == 0) {
        for (; n >= 4; n -= 4, d += 4, s += 4)
            *(uint32_t *)d = *(const uint32_t *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

static void put(char *line, uint32_t *len, uint32_t cap, char c)
{
    if (*len + 1 < cap)
        line[(*len)++] = c;
}

void trace(const char *fmt, ...)
{
    char line[160];
    uint32_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%' || !fmt[1]) {
            put(line, &len, sizeof(line), *fmt);
            continue;
        }
        switch (*++fmt) {
        case 's':
            for (const char *s = va_arg(ap, const char *); *s; s++)
                put(line, &len, sizeof(line), *s);
            break;
        case 'c':
            put(line, &len, sizeof(line), (char)va_arg(ap, int));
            break;
        case 'x': {
            uint32_t v = va_arg(ap, uint32_t);
            for (int shift = 28; shift >= 0; shift -= 4)
                put(line, &len, sizeof(line), "0123456789abcdef"[(v >> shift) & 0xF]);
            break;
        }
        case 'u': {
            char digits[10];
            int n = 0;
            uint32_t v = va_arg(ap, uint32_t);
            do {
                digits[n++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            while (n)
                put(line, &len, sizeof(line), digits[--n]);
            break;
        }
        default:
            put(line, &len, sizeof(line), *fmt);
        }
    }
    va_end(ap);
    put(line, &len, sizeof(line), '\n');
    line[len] = 0;
    /* Lines that do not fit are dropped whole; the buffer stays NUL-terminated. */
    if (trace_pos + len + 1 <= TRACE_SIZE) {
        memcpy(&trace_buf[trace_pos], line, len + 1);
        trace_pos += len;
    }
    board_log(line);
}
