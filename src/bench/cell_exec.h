/* cell_exec.h - one group of cells (one backend instance) and one cell's runs, on every rank.
 *
 * Before the backend is created the ranks compare what they will run (bench/rank_agreement.h). A group whose
 * ranks disagree, or whose backend cannot be created (bad checkpoint, out of memory), fails its cells with
 * every failing rank's message ("rank R (host H): ..."): DOES_NOT_FIT when the message says "does not fit"
 * (backends use that prefix when memory is short), else FAILED. The sweep goes on either way.
 */
#ifndef QB_BENCH_CELL_EXEC_H
#define QB_BENCH_CELL_EXEC_H

#include "bench/energy.h"
#include "bench/runner.h"

/* What each rank reports to rank 0 after a cell (fixed size, gathered with MPI). */
typedef struct {
    int32_t ok;
    int32_t rank;
    double peak_bytes, weights_bytes, kv_bytes;
    uint64_t token_digest;   /* over every timed run's tokens: ranks must agree */
    qb_energy_totals energy; /* this rank's GPU over the timed runs (bench/energy.h) */
    char host[64];
    char device[128];
    char uuid[64];
    char error[384];
} qb_rank_summary;

typedef struct {
    qb_backend *backend;
    qb_backend_params params;       /* what the backend was created with (the reference check reuses it) */
    char checkpoint_dir[QB_PATH_MAX];
    qb_model_config cfg;
    qb_shard_plan plan;
    qb_cell_status failure_status;
    char failure[512];
    qb_rank_summary *ranks;  /* rank 0: [world_size], refreshed after each cell */
    int n_ranks;
    int idle;                /* this rank is outside the TP group that runs the cells (tp < world size) */
    qb_energy_meter *energy; /* this rank's GPU, opened at the group's first cell */
} qb_cell_group;

/* Create the group's backend on every rank. 0: created; 1: not created (failure fields set, same on every
 * rank); -1: fatal (communication failed). */
int qb_cell_group_open(const qb_runner *r, const char *model, const qb_model_config *cfg,
                       const qb_engine_options *engine, int max_ctx, qb_cell_group *g);
void qb_cell_group_close(qb_cell_group *g);

void qb_cell_init(const qb_runner *r, const qb_model_config *cfg, const qb_cell_spec *spec, qb_cell_record *c);
void qb_cell_set_failure(qb_cell_record *c, qb_cell_status s, const char *reason);
/* Warm-up, timed runs, checks; rank 0 gets the complete record. -1 only on a communication failure. */
int qb_cell_execute(const qb_runner *r, qb_cell_group *g, const qb_cell_spec *spec, qb_cell_record *c);

/* Rank 0, after the runs: spread (NOISY) and the implied bandwidth against the measured copy bandwidth
 * (above it: INVALID, "faster than the hardware allows"). */
void qb_cell_check_speed(const qb_runner *r, const qb_model_config *cfg, const qb_results_meta *meta,
                         qb_cell_record *c);

#endif
