/* rank_agreement.h - ranks check that they are about to run the same thing before they run it together.
 *
 * Ranks that resolved different models (one model directory per node, say) or were given different flags
 * would otherwise meet in collectives of different sizes or counts and hang until the watchdog's deadline.
 * Each rank builds a fingerprint of what it will run: the build, the options that every rank must share
 * (generated length, repetitions, seed, ...), the resolved model config (every shape field) and the
 * checkpoint's tensor headers (names, dtypes, shapes; FNV-1a 64). Rank 0 broadcasts its fingerprint and every
 * other rank compares field by field, so the message names what differs:
 *   "config differs from rank 0's: hidden_size 128 here, 256 on rank 0"
 * The verdicts then go through qb_dist_gather_errors (dist.h), which rank 0 prints or records.
 * Not compared: paths (the same model may live at different paths on different nodes), --out, --deadline,
 * --threads.
 */
#ifndef QB_BENCH_RANK_AGREEMENT_H
#define QB_BENCH_RANK_AGREEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/runner.h"

#define QB_FINGERPRINT_FIELDS 48

/* What travels between ranks (fixed size). */
typedef struct {
    int32_t valid;           /* 0: the sender has nothing to compare (it failed before) */
    int32_t n;               /* fields used */
    int32_t has_tensors;     /* 1: tensor headers of a checkpoint; 0: random weights (a preset) */
    int32_t pad;
    uint64_t value[QB_FINGERPRINT_FIELDS];
    uint64_t tensors_digest;
    uint64_t n_tensors;
} qb_fingerprint_values;

typedef enum { QB_FP_INT = 0, QB_FP_REAL, QB_FP_BOOL, QB_FP_TEXT, QB_FP_QUANT } qb_fingerprint_kind;

/* One rank's fingerprint: the values and, locally, what each field is. */
typedef struct {
    qb_fingerprint_values v;
    const char *name[QB_FINGERPRINT_FIELDS];
    const char *section[QB_FINGERPRINT_FIELDS];   /* "build", "options", "config" */
    qb_fingerprint_kind kind[QB_FINGERPRINT_FIELDS];
} qb_fingerprint;

uint64_t qb_fnv1a64(uint64_t h, const void *data, size_t n);
#define QB_FNV1A64_OFFSET 0xcbf29ce484222325ull

void qb_fingerprint_init(qb_fingerprint *f);
/* The build and the options every rank must share (n_cells: length of the sweep). */
void qb_fingerprint_add_options(qb_fingerprint *f, const qb_options *o, const char *backend_name, int n_cells);
/* Every field of a resolved config (names as in config.json). */
void qb_fingerprint_add_config(qb_fingerprint *f, const qb_model_config *c);
/* One cell of the sweep: its format and input length. */
void qb_fingerprint_add_cell(qb_fingerprint *f, qb_quant quant, int context_len, const qb_engine_options *engine);
/* The tensor headers of the checkpoint in dir (opened, not read); -1 if it cannot be opened. */
int qb_fingerprint_add_tensors(qb_fingerprint *f, const char *dir);

/* Compare with rank 0's values: 0 when equal (or when rank 0 sent nothing to compare); else a message naming
 * the first field that differs in why, and 1 (build, options, config, weights) or 2 (only the tensor headers:
 * the rank can name the tensor once it sees rank 0's list, see qb_ranks_agree_on_group). */
int qb_fingerprint_compare(const qb_fingerprint *mine, const qb_fingerprint_values *rank0, char *why, size_t cap);

/* Collective over the world: rank 0 broadcasts its fingerprint (mine; `have` 0 = nothing to compare, e.g.
 * it failed earlier), the others compare theirs when they `have` one. *verdict is qb_fingerprint_compare's
 * (0: same), with the reason in why on a rank that differs. -1 only when the communication failed. */
int qb_ranks_compare(qb_dist *d, const qb_fingerprint *mine, int have, int *verdict, char *why, size_t cap);

/* Startup: the options and every cell (format, input length, resolved config) against rank 0's, one
 * collective. Every rank must call it with the same n_cells (compare the options first). *same = 0 with the
 * first difference in why ("cell 2 (--model PATH, input 16): config differs ..."). -1: communication. */
int qb_ranks_compare_cells(qb_dist *d, const qb_cell_spec *cells, int n_cells, int *same, char *why, size_t cap);

/* A cell group, before its backend is created (the first collective that depends on the model): each
 * active rank's fingerprint (options, the config it will run, its checkpoint's tensor headers) against rank
 * 0's (a rank with other tensor headers names the first tensor that differs from rank 0's list:
 * "tensors differ from rank 0's: model.norm.weight: F32 [256] here, BF16 [256] on rank 0"), then every
 * rank's verdict gathered (dist.h). ok: this rank's verdict so far (message in
 * qb_last_error when 0); idle ranks (outside the TP group that runs the cells) pass active = 0 and compare
 * nothing. *all_ok on every rank; when 0, failure holds every failing rank's line ("; "-joined), the same on
 * every rank. -1 only when the communication failed. */
int qb_ranks_agree_on_group(const qb_runner *r, const char *model, const qb_model_config *cfg,
                            const char *checkpoint_dir, int active, int ok, int *all_ok, char *failure, size_t cap);

#endif
