/* test_dist_fault.c - a peer that hangs or dies must not leave the others waiting (run by dist_fault_check.py).
 *
 * Usage: mpirun -np N test_dist_fault hang|die DEADLINE_S
 *   hang: rank 1 sleeps 120 s before the barrier; the others' watchdog must abort the job after DEADLINE_S.
 *   die:  rank 1 kills itself with SIGKILL before the barrier; mpirun must end the job by itself.
 * Reaching the end is the failure: it prints "UNEXPECTED: barrier completed" and exits 0, which the wrapper
 * script rejects (it wants a non-zero exit, in time, with the watchdog's message for "hang").
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "comm/dist.h"
#include "util/error.h"

int main(int argc, char **argv) {
    qb_dist d;
    if (argc != 3 || (strcmp(argv[1], "hang") != 0 && strcmp(argv[1], "die") != 0)) {
        fprintf(stderr, "usage: %s hang|die DEADLINE_S\n", argv[0]);
        return 2;
    }
    if (qb_dist_init(&argc, &argv, 600.0, &d) != 0) QB_FATAL(&d, qb_last_error());
    d.deadline_s = atof(argv[2]); /* as main does with --deadline, after init */
    /* Many short watched operations first: the watchdog sleeps through them without a wake-up per arm and
     * must still catch the one that hangs below. */
    for (int i = 0; i < 200; i++)
        if (qb_dist_barrier(&d) != 0) QB_FATAL(&d, qb_last_error());
    if (d.world_rank == 1) {
        if (strcmp(argv[1], "die") == 0) raise(SIGKILL);
        sleep(120);
    }
    if (qb_dist_barrier(&d) != 0) QB_FATAL(&d, qb_last_error());
    if (d.world_rank == 0) printf("UNEXPECTED: barrier completed\n");
    qb_dist_finalize(&d);
    return 0;
}
