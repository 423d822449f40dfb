/* test_hooks.h - fault injection for the test build only.
 *
 * The release binary `qwenbench` links src/release_hooks.c, whose qb_test_hooks_get() returns NULL: nothing in it
 * can change a measured number or inject a fault. The test binary `qwenbench-testhooks` (tests/e2e.cmake) links
 * tests/test_hooks_env.c instead, which reads the QWENBENCH_TEST_* variables into these fields and records them in
 * the results file's settings, so the end-to-end tests can show that the checks and the fault handling work.
 */
#ifndef QB_BENCH_TEST_HOOKS_H
#define QB_BENCH_TEST_HOOKS_H

typedef struct {
    double speedup;        /* > 0: every measured time divided by it (the "faster than the hardware" check) */
    int corrupt_argmax;    /* the backend emits (argmax + 1) % vocab from the second token on */
    char fault_kind[8];    /* "kill" | "hang" | "" (none): world rank fault_rank at its fault_cell-th cell */
    int fault_rank, fault_cell;
    double cell_delay_s;   /* sleep before each cell (to signal a sweep of tiny cells mid-way) */
    char description[256]; /* the hooks that change numbers (speedup, corrupt_argmax), for the results file's
                            * settings; "" when none is set */
} qb_test_hooks;

/* This build's hooks: NULL in the release binary. */
const qb_test_hooks *qb_test_hooks_get(void);

#endif
