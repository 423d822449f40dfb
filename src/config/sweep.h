/* sweep.h - a sweep config: the grid of cells one qwenbench run measures, read from a JSON file.
 *
 * The format, its semantics (cell order, duplicates refused, which of flag / file / default wins) and its limits
 * are documented in docs/SWEEPS.md, the authoritative description; keep it in step with this parser.
 *
 * For the code: each entry expands to models x quants x context_lengths in file order (model outermost, length
 * innermost); a duplicate (model, quant, context length) cell is refused. Sweep-level settings the file leaves
 * out keep has_<setting> == false (their value is then 0 and must not be used). Every error is one line naming
 * the file and the field, e.g. "x.json: entries[1].quants[0]: unknown quant \"int3\" (expected bf16, ...)".
 * An entry may give its own "tp" (same values as the top-level key); its cells carry it (has_tp, tp).
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
    bool has_tp;                     /* the entry gave its own "tp" (it overrides the top-level "tp" and --tp) */
    int tp;                          /* then: QB_SWEEP_TP_AUTO or >= 1 */
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
