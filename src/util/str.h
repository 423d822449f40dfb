/* str.h - bounded string copy (truncates, always terminates). */
#ifndef QB_UTIL_STR_H
#define QB_UTIL_STR_H

#include <stddef.h>
#include <string.h>

static inline void qb_copy_str(char *dst, size_t cap, const char *src) {
    if (cap == 0) return;
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

#endif
