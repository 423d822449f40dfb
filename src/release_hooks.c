/* release_hooks.c - the release binary's test hooks: none (see bench/test_hooks.h). Linked into `qwenbench` only,
 * never into the core library, so that the test binary can link its own definition instead. */
#include <stddef.h>

#include "bench/test_hooks.h"

const qb_test_hooks *qb_test_hooks_get(void) { return NULL; }
