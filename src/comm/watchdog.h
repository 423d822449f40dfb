/* watchdog.h - internal to src/comm: the per-process watchdog thread behind qb_watchdog_arm/disarm (dist.h).
 *
 * One thread per rank, started by qb_dist_init and stopped by qb_dist_finalize. While an operation is armed
 * for longer than the deadline it prints
 *   "qwenbench: rank R on HOST: OPERATION did not complete within N s (a peer rank died or hung); aborting"
 * and calls MPI_Abort on the world, which ends every rank of the job with a non-zero status.
 */
#ifndef QB_DIST_WATCHDOG_H
#define QB_DIST_WATCHDOG_H

#include "comm/dist.h"

/* Start the thread; copies rank and host. The deadline is read from d->deadline_s at every arm, so the
 * caller may set it (from --deadline) after qb_dist_init; deadline_s <= 0 leaves operations unwatched. */
int qb_watchdog_start(const qb_dist *d);
/* Stop and join the thread; harmless if it never started. */
void qb_watchdog_stop(void);

#endif
