/* packed_schedule.h - --schedule packed: independent cells side by side on disjoint groups of ranks.
 *
 * The cells run in phases, one per tensor-parallel size, largest size first. In a phase the ranks are carved
 * into groups of that size, each on one host (bench/rank_groups.h), and every group gets its own communicator
 * (MPI_Comm_split, every phase's made at the start while all ranks are there), so a cell's collectives stay inside
 * its group. Rank 0 runs a dealer thread besides its own group's work: a group's leader asks it for a cell
 * whenever the group is free; the dealer (bench/packed_dealer.h) answers with a cell of the group's phase (the
 * unit it has loaded first, else the costliest unit nobody has started, ...) or "none left".
 * There is no barrier between phases: a group told "none left" is done, and each of its ranks goes on to its group
 * of the next phase, which starts as soon as all its ranks are free, while the previous phase's other groups still
 * run (the protocol and why it cannot deadlock: packed_schedule.c).
 * After each cell the leader sends the finished record to rank 0 (bench/cell_transfer.h), whose dealer thread
 * hands it to the caller's record function, which rewrites the results file as the serial schedule does.
 *
 * --interference (bench/interference.h) changes the dealing of its cell's phase: the cell alone first, every other
 * group told to wait, then the same cell again beside the others. That phase keeps a barrier over every rank
 * before and after it, so no group of another phase runs beside the cell.
 *
 * Faults: a rank that dies ends the job through mpirun; one that hangs inside a collective of its group is caught
 * by the watchdog as in the serial schedule; a group that has sent nothing for a cell within --deadline x
 * (warm-up + repetitions + 3) is taken for hung by the dealer, which aborts the job. Every cell received before is
 * in the file already, and --resume runs only the missing ones. A stop signal (bench/stop_signals.h) ends the
 * dealing: groups finish their current cell and the run ends as a stopped serial run does.
 */
#ifndef QB_BENCH_PACKED_SCHEDULE_H
#define QB_BENCH_PACKED_SCHEDULE_H

#include "bench/cell_exec.h"
#include "bench/cell_transfer.h"
#include "bench/runner.h"

typedef struct {
    const qb_runner *r;               /* the whole job (its dist is the world) */
    const qb_cell_spec *cells;
    const qb_model_config *cfgs;      /* resolved config of every cell */
    const int *tps;                   /* planned TP size of every cell; 0: the caller records it (does not fit) */
    const int *done;                  /* 1: already in the file (--resume) */
    const char (*rope_labels)[64];
    int n_cells;
    int interference_cell;            /* --interference: the cell timed alone, then beside the others
                                       * (bench/interference.h); -1: none */
    /* Rank 0, on the dealer thread, one call at a time: a finished cell (moved: the callee owns c's arrays).
     * -1 ends the job (a results file that cannot be written). */
    int (*record)(void *ctx, qb_cell_record *c, const qb_cell_origin *from, const qb_rank_summary *ranks);
    void *ctx;
} qb_packed_job;

/* Collective over the world. *stopped: a stop signal ended the dealing early. *layout (rank 0, may be NULL):
 * the groups of each phase, one line each, for the notes. -1 on a fatal error (message recorded). */
int qb_run_packed(const qb_packed_job *job, int *stopped, char *layout, size_t layout_cap);

/* The planned cost of a cell, for dealing largest first: weight bytes read per token x tokens x runs. */
double qb_packed_cell_cost(const qb_model_config *cfg, int tp, int context_len, int generate_length, int runs);

#endif
