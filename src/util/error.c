/* error.c - the thread-local last-error message (see error.h). */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_message[QB_ERROR_MAX];

int qb_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return -1;
}

int qb_error_prefix(const char *fmt, ...) {
    char prefix[QB_ERROR_MAX], old[QB_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_message, sizeof old);
    size_t k = strlen(prefix);
    if (k > sizeof g_message - 3) k = sizeof g_message - 3;
    memcpy(g_message, prefix, k);
    memcpy(g_message + k, ": ", 2);
    size_t room = sizeof g_message - k - 3, n = strlen(old);
    if (n > room) n = room;
    memcpy(g_message + k + 2, old, n);
    g_message[k + 2 + n] = '\0';
    return -1;
}

const char *qb_last_error(void) { return g_message; }

void qb_error_clear(void) { g_message[0] = '\0'; }
