/* io_test_util.h - tiny check helpers for the config / safetensors / checkpoint / weights tests.
 * A failed check prints file:line and what differed, and counts; main returns the count (non-zero = fail). */
#ifndef QB_TESTS_IO_TEST_UTIL_H
#define QB_TESTS_IO_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int g_failures = 0;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    qb_last_error());                                                       \
            g_failures++;                                                                   \
        }                                                                                   \
    } while (0)

/* rc must be -1 and the message must contain want. */
#define CHECK_ERR(rc, want)                                                                        \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (rc_ != -1 || !strstr(qb_last_error(), (want))) {                                       \
            fprintf(stderr, "%s:%d: FAILED: expected error containing \"%s\", got rc %d, \"%s\"\n", \
                    __FILE__, __LINE__, (want), rc_, rc_ ? qb_last_error() : "");                  \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)

#define CHECK_OK(rc)                                                                                   \
    do {                                                                                               \
        if ((rc) != 0) {                                                                               \
            fprintf(stderr, "%s:%d: FAILED: %s: %s\n", __FILE__, __LINE__, #rc, qb_last_error());      \
            g_failures++;                                                                              \
        }                                                                                              \
    } while (0)

static inline int test_finish(const char *name) {
    if (g_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
    else printf("%s: all checks passed\n", name);
    return g_failures ? 1 : 0;
}

#endif
