/* runner.h - the timing protocol over a list of cells, on every rank, and rank 0's bookkeeping.
 *
 * For each group of consecutive cells with the same model and format, one backend is created (weights loaded
 * once, KV cache sized for the group's longest input + generate length). Per cell: --warmup untimed runs (the
 * first one's time is kept apart), then --repetitions timed runs, wall time around the whole generation;
 * checks (generated count, same tokens every run, token ids in range) outside the timed region. Rank 0
 * gathers every rank's memory and token digest, appends the cell record, and rewrites the results file
 * after every cell, so a kill loses at most the cell in flight.
 */
#ifndef QB_BENCH_RUNNER_H
#define QB_BENCH_RUNNER_H

#include "bench/test_hooks.h"
#include "bench/expected_tokens.h"
#include "cli/options.h"
#include "comm/dist.h"
#include "engine/backend.h"
#include "results/results_file.h"

typedef struct {
    char model[QB_PATH_MAX];
    qb_quant quant;
    int context_len;
    qb_engine_options engine;       /* this cell's engine options (one combination of the run's lists) */
    bool own_tp;                    /* its sweep entry gave "tp": that wins over the run's --tp / top-level "tp" */
    int tp;                         /* then: >= 1, or 0 for auto (the same meaning as --tp 0) */
    int sweep_entry;                /* then: the entry's index, for messages */
} qb_cell_spec;

typedef struct {
    const qb_options *opt;          /* effective settings (after CPU fallback and sweep merge) */
    qb_dist *dist;
    qb_backend_create_fn create;    /* the chosen engine */
    const char *backend_name;       /* "cpu" | "cuda" */
    const char *command_line;
    size_t gpu_bytes;               /* CUDA: memory of one GPU, for the planner; 0 on the CPU */
    const qb_test_hooks *hooks;     /* NULL except in the test build (bench/test_hooks.h) */
    const qb_expected_tokens *expected; /* the --expect-tokens file, read before the first cell; NULL: none */
    const int *world_ranks;         /* packed groups (bench/packed_schedule.h): the world rank of each rank of dist
                                     * (dist is then the group's); NULL: dist is the world */
    double clock_offset_s;          /* this rank's offset to rank 0's wall clock (bench/clock_sync.h), measured
                                     * by qb_run_cells at its start */
} qb_runner;

/* Exit status per options.c's --help: 0 all VALID, 1 some cell not VALID, 3 stopped by a signal.
 * Returns -1 on a fatal error (message recorded; main aborts the job). */
int qb_run_cells(const qb_runner *r, const qb_cell_spec *cells, int n_cells, int *exit_status);

/* The TP size a cell asks for: its own (its sweep entry's "tp") if it has one, else the run's --tp; 0: auto. */
int qb_cell_requested_tp(const qb_options *o, const qb_cell_spec *cell);

/* The tensor-parallel size of a cell, the same on every rank: the requested N (qb_cell_requested_tp) as given;
 * else, on CUDA, the fewest GPUs whose memory holds it (bench/planner.h; none: *tp = 0 and why says so); on the
 * CPU, every rank (serial) or one (packed). -1 on an error of the planner. */
int qb_runner_plan_tp(const qb_runner *r, const qb_model_config *cfg, const qb_cell_spec *cell, int *tp, char *why,
                      size_t cap);

/* Test build only (bench/test_hooks.h): the delay before a cell and the fault at this process's cell_number-th
 * cell (0-based), for r->dist's world rank. Does nothing in the release binary. */
void qb_runner_inject_fault(const qb_runner *r, int cell_number);

/* Install SIGUSR1/SIGTERM handlers: stop cleanly after the current cell. */
void qb_runner_install_signal_handlers(void);

#endif
