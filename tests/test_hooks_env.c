/* test_hooks_env.c - the test build's hooks (bench/test_hooks.h), read from the environment once:
 *   QWENBENCH_TEST_SPEEDUP=F        every measured time divided by F
 *   QWENBENCH_TEST_CORRUPT=argmax   the engine emits (argmax + 1) % vocab from the second token on
 *   QWENBENCH_TEST_FAULT=KIND:R:C   world rank R dies (kill) or hangs (hang) at its C-th cell (0-based)
 *   QWENBENCH_TEST_CELL_DELAY=S     sleep S seconds before each cell
 * Linked into `qwenbench-testhooks` only (tests/e2e.cmake); the release binary cannot read them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/test_hooks.h"

const qb_test_hooks *qb_test_hooks_get(void) {
    static qb_test_hooks h;
    static int loaded;
    if (loaded) return &h;
    loaded = 1;
    const char *v;
    if ((v = getenv("QWENBENCH_TEST_SPEEDUP")) && atof(v) > 0) h.speedup = atof(v);
    if ((v = getenv("QWENBENCH_TEST_CORRUPT")) && strcmp(v, "argmax") == 0) h.corrupt_argmax = 1;
    if ((v = getenv("QWENBENCH_TEST_FAULT")) &&
        sscanf(v, "%7[a-z]:%d:%d", h.fault_kind, &h.fault_rank, &h.fault_cell) != 3)
        h.fault_kind[0] = '\0';
    if ((v = getenv("QWENBENCH_TEST_CELL_DELAY")) && atof(v) > 0) h.cell_delay_s = atof(v);
    if (h.speedup > 0 || h.corrupt_argmax) /* what changes the numbers; faults and delays only stop or slow */
        snprintf(h.description, sizeof h.description, "speedup=%g;corrupt_argmax=%d", h.speedup, h.corrupt_argmax);
    return &h;
}
