/* sweep.h - a sweep config: the grid of cells one qwenbench run measures, read from a JSON file.
 *
 * Format (configs/sweeps/<name>.json; parsed with jansson, duplicate keys and unknown keys refused):
 *
 *   {
 *     "name": "qwen2.5-quick",              optional; default: the file name without ".json"
 *     "description": "free text",           optional; ignored
 *     "generate_length": 2048,              optional; tokens generated per run, [1, 1048576]
 *     "repetitions": 3,                     optional; timed runs per cell, [1, 1000]
 *     "warmup": 1,                          optional; untimed runs per cell, [0, 100]
 *     "tp": "auto" | N,                     optional; tensor-parallel size: N in [1, 1024], or "auto" (= --tp 0)
 *     "allreduce": "nccl" | ["auto", ...],  optional, any engine option by its sweep key (engine/engine_options.h:
 *                                           allreduce, tp_exchange, allreduce_norm, decode_fusion, quant_layout,
 *                                           attn_prefill, pdl): one value or a list; every combination of the
 *                                           lists runs as its own cells (model and format outermost, then the
 *                                           options, input length innermost)
 *     "entries": [                          required, non-empty
 *       {"models": ["qwen2.5-7b", ...],     preset names or checkpoint directories (<= 4095 bytes), non-empty
 *        "quants": ["bf16", "gptq-int4"],   names accepted by qb_quant_parse, non-empty
 *        "context_lengths": [1, 6144]},     input lengths in tokens, [1, 1048576], non-empty
 *       ...
 *     ]
 *   }
 *
 * Limits (config/limits.h, the same as the command line's): the settings' ranges above; the file is a regular
 * file of at most 1 MiB (a FIFO or device is refused, never waited on); a sweep has at most 10000 cells, all
 * entries together, counted from the array sizes before anything is expanded (and, crossed with the engine
 * options' combinations, again at most 10000: bench/sweep_cells.c).
 *
 * Semantics:
 * - Each entry is the cross product models x quants x context_lengths. The cells are listed in file order:
 *   entry by entry, and inside an entry model (outermost), then quant, then context length (innermost), so
 *   one loaded model and format serves all its lengths in a row. The runner measures them in this order.
 * - A (model, quant, context length) cell may appear only once in the whole file: a duplicate is refused,
 *   so that --resume can tell cells apart by that triple and "every cell exactly once" is well defined.
 * - Sweep-level settings the file leaves out keep has_<setting> == false (their value is then 0 and must not
 *   be used). The runner takes, for each setting: the command-line flag when the user gave it, else the
 *   file's value when has_<setting>, else the built-in default (qb_options_defaults). The effective values
 *   are what the results file records; model, quant and context lengths of each cell come from the sweep
 *   (--model, --quant and --context-lengths cannot be combined with --sweep).
 * - Every error is one line naming the file and the field at fault, e.g.
 *   "configs/sweeps/x.json: entries[1].quants[0]: unknown quant \"int3\" (expected bf16, gptq-int8, ...)".
 */
#ifndef QB_CONFIG_SWEEP_H
#define QB_CONFIG_SWEEP_H

#include <stdbool.h>

#include "config/model_config.h"
#include "engine/engine_options.h"

#define QB_SWEEP_NAME_MAX 128
#define QB_SWEEP_TP_AUTO 0           /* "tp": "auto": the same meaning as --tp 0 */

typedef struct {
    const char *model;               /* preset name or checkpoint directory (points into model_names) */
    qb_quant quant;
    int context_len;                 /* input length in tokens */
    int entry;                       /* index of the entry it came from, for messages */
} qb_sweep_cell;

typedef struct {
    char name[QB_SWEEP_NAME_MAX];
    /* sweep-level settings; each value is valid only when its has_ flag is set */
    int generate_length;  bool has_generate_length;
    int repetitions;      bool has_repetitions;
    int warmup;           bool has_warmup;
    int tp;               bool has_tp;   /* QB_SWEEP_TP_AUTO or >= 1 */
    qb_engine_option_lists engine;       /* engine options; bit id of engine_given set: the file gave option id */
    unsigned engine_given;
    /* the expanded grid, in run order */
    qb_sweep_cell *cells;
    int n_cells;
    char **model_names;              /* owned: each entry's model strings, stored once for all their cells */
    int n_model_names;
} qb_sweep;

/* Load and validate a sweep file, expanding its entries into cells. 0 ok (free with qb_sweep_free);
 * -1 with a one-line message naming the file and the field (out is left empty). */
int qb_sweep_load(const char *path, qb_sweep *out);
/* The same from JSON in memory; origin names it in error messages and gives the default name. */
int qb_sweep_parse(const char *json, const char *origin, qb_sweep *out);
void qb_sweep_free(qb_sweep *s);

#endif
