/* record.h - the result record: the one thing every writer (stdout table, HDF5 file) reads.
 *
 * A cell is one (model, quant, context length, TP size) of a sweep; it holds every timed repetition (run),
 * each with its per-step decode latencies and generated tokens. Statistics are computed two-pass in double.
 * A cell that did not produce valid numbers carries a status and a reason instead, never a made-up number.
 * The cell's members are its output columns, declared once in cell_columns.h.
 */
#ifndef QB_RESULTS_RECORD_H
#define QB_RESULTS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "results/cell_columns.h"

typedef enum {
    QB_CELL_VALID = 0,
    QB_CELL_INVALID,       /* ran, but a check failed (reason says which) */
    QB_CELL_DOES_NOT_FIT,  /* memory plan exceeds the devices (reason has the numbers) */
    QB_CELL_FAILED,        /* an error stopped it (reason has the message) */
} qb_cell_status;

const char *qb_cell_status_name(qb_cell_status s); /* "VALID", ... */

typedef struct {
    double mean, stddev, min, max; /* stddev: sample (n-1); 0 for one sample */
} qb_stats;

void qb_stats_compute(const double *x, int n, qb_stats *out);

typedef struct {
    int repetition;           /* 0-based */
    int n_prompt, n_gen;
    double total_s;           /* wall time of the whole generation (prefill included) */
    double prefill_s;         /* time to first token */
    double decode_s;          /* total_s - prefill_s */
    double tok_per_s;         /* n_gen / total_s: the published metric */
    double decode_tok_per_s;  /* (n_gen - 1) / decode_s */
    double tpot_s;            /* time per output token after the first: decode_s / (n_gen - 1) */
    double *step_s;           /* [n_gen - 1] every decode step (owned) */
    int32_t *tokens;          /* [n_gen] generated ids (owned) */
    double start_unix_s;      /* when the run started and ended, Unix seconds on rank 0's clock (bench/clock_sync.h):
                               * which runs of cells side by side overlapped; NaN when not recorded */
    double end_unix_s;
} qb_run_record;

#define QB_MAX_RANKS 1024

/* The record's members of each kind of column (cell_columns.h); GIB_OF and RUN_ROW columns have none. */
#define QB_RECORD_MEMBER_STR(name, arg) char name[arg];
#define QB_RECORD_MEMBER_I32(name, arg) int32_t name;
#define QB_RECORD_MEMBER_I64(name, arg) int64_t name;
#define QB_RECORD_MEMBER_U64(name, arg) uint64_t name;
#define QB_RECORD_MEMBER_F64(name, arg) double name;
#define QB_RECORD_MEMBER_STATS(name, arg) qb_stats name;
#define QB_RECORD_MEMBER_STATUS(name, arg) qb_cell_status name;
#define QB_RECORD_MEMBER_F64_OF(name, arg) double arg;
#define QB_RECORD_MEMBER_GIB_OF(name, arg)
#define QB_RECORD_MEMBER_RUN_ROW(name, arg)
#define QB_RECORD_MEMBER(kind, name, arg, flags) QB_RECORD_MEMBER_##kind(name, arg)

/* One cell: every column of cell_columns.h (model, status, reason, speed, energy_j, n_runs, ...; the comments
 * there say what each holds), and what the columns point into. A cell that was not measured has NaN (float),
 * -1 (integer) or "unavailable: why" in its OPT_NA columns. */
typedef struct {
    QB_CELL_COLUMNS(QB_RECORD_MEMBER)
    double *peak_mem_rank;    /* [n_ranks] peak allocated bytes of each rank (owned) */
    qb_run_record *runs;      /* [n_runs] (owned) */
} qb_cell_record;

/* Fill the per-run derived fields (decode_s, tok_per_s, ...) from total_s, prefill_s, n_gen. */
void qb_run_finish(qb_run_record *r);
/* Fill the cell's stats from its runs. */
void qb_cell_summarize(qb_cell_record *c);
void qb_cell_free(qb_cell_record *c);

#endif
