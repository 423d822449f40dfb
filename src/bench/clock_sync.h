/* clock_sync.h - one wall clock across the ranks: each rank's offset to rank 0's clock, measured at start-up.
 *
 * Each rank exchanges a few time stamps with rank 0 (rank 0 answers each ping with its CLOCK_REALTIME); the round
 * with the shortest round trip gives offset = rank 0's time - the midpoint of the rank's send and receive. The
 * error is at most half that round trip (microseconds on one host, tens of them across a network). Times recorded
 * per run (start/end, bench/cell_exec.c) are the rank's CLOCK_REALTIME + its offset: Unix seconds on rank 0's
 * clock, so the runs of cells that ran side by side on different hosts can be put on one time line.
 */
#ifndef QB_BENCH_CLOCK_SYNC_H
#define QB_BENCH_CLOCK_SYNC_H

#include "comm/dist.h"

/* Collective over the world: *offset_s (0 on rank 0) and the best round trip *rtt_s (0 on rank 0). */
int qb_clock_sync(qb_dist *d, double *offset_s, double *rtt_s);
/* This rank's CLOCK_REALTIME in Unix seconds. */
double qb_wall_now(void);

#endif
