/* sweep_cells.c - expand flags (or a sweep file) into the cell list (see sweep_cells.h).
 *
 * Order: model and format outermost (one loaded model serves a run of cells), then each combination of the engine
 * options (a backend per combination), input length innermost.
 */
#include "bench/sweep_cells.h"

#include <stdlib.h>
#include <string.h>

#include "config/limits.h"
#include "config/model_config.h"
#include "config/sweep.h"
#include "util/error.h"

/* base[0..n) in (model, format) runs; each run repeated once per option combination. */
static int cross_options(const qb_cell_spec *base, int n, const qb_engine_option_lists *lists, qb_cell_spec **cells,
                         int *n_cells) {
    int combos = qb_engine_option_combinations(lists);
    if (n > 0 && combos > QB_LIMIT_SWEEP_CELLS / n) /* checked before anything is allocated */
        return qb_errorf("too many cells: %d x %d engine-option combinations is more than %d", n, combos,
                         QB_LIMIT_SWEEP_CELLS);
    qb_cell_spec *c = calloc((size_t)(n * combos > 0 ? n * combos : 1), sizeof *c);
    if (!c) return qb_errorf("out of memory");
    int k = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && base[j].quant == base[i].quant && strcmp(base[j].model, base[i].model) == 0) j++;
        for (int combo = 0; combo < combos; combo++) {
            qb_engine_options opt;
            qb_engine_option_combination(lists, combo, &opt);
            for (int m = i; m < j; m++) {
                c[k] = base[m];
                c[k].engine = opt;
                k++;
            }
        }
        i = j;
    }
    *cells = c;
    *n_cells = k;
    return 0;
}

static int from_sweep_file(qb_options *o, qb_cell_spec **base, int *n_base) {
    static const char *exclusive[] = {"model", "quant", "context-lengths"};
    for (size_t i = 0; i < sizeof exclusive / sizeof *exclusive; i++)
        if (qb_options_given(o, exclusive[i]))
            return qb_errorf("--%s cannot be combined with --sweep (the sweep file lists the cells)", exclusive[i]);
    qb_sweep s;
    QB_TRY(qb_sweep_load(o->sweep, &s));
    /* The flag the user gave wins, else the file's value, else the built-in default. */
    if (s.has_generate_length && !qb_options_given(o, "generate-length")) o->generate_length = s.generate_length;
    if (s.has_repetitions && !qb_options_given(o, "repetitions")) o->repetitions = s.repetitions;
    if (s.has_warmup && !qb_options_given(o, "warmup")) o->warmup = s.warmup;
    if (s.has_tp && !qb_options_given(o, "tp")) o->tp = s.tp;
    for (int id = 0; id < QB_EOPT_COUNT; id++)
        if ((s.engine_given >> id & 1u) && !(o->engine_given >> id & 1u)) {
            o->engine.n[id] = s.engine.n[id];
            memcpy(o->engine.v[id], s.engine.v[id], sizeof o->engine.v[id]);
        }
    qb_cell_spec *c = calloc((size_t)(s.n_cells > 0 ? s.n_cells : 1), sizeof *c);
    if (!c) {
        qb_sweep_free(&s);
        return qb_errorf("out of memory");
    }
    for (int i = 0; i < s.n_cells; i++) {
        if (strlen(s.cells[i].model) >= sizeof c[i].model) {
            free(c);
            qb_sweep_free(&s);
            return qb_errorf("%s: model name too long", o->sweep);
        }
        snprintf(c[i].model, sizeof c[i].model, "%s", s.cells[i].model);
        c[i].quant = s.cells[i].quant;
        c[i].context_len = s.cells[i].context_len;
        c[i].own_tp = s.cells[i].has_tp; /* an entry's own "tp" wins even over --tp */
        c[i].tp = s.cells[i].tp;
        c[i].sweep_entry = s.cells[i].entry;
    }
    *base = c;
    *n_base = s.n_cells;
    qb_sweep_free(&s);
    return 0;
}

/* --model and --quant are comma-separated lists: models x formats x input lengths, model outermost. */
static int from_flags(const qb_options *o, qb_cell_spec **base, int *n_base) {
    int n_models = qb_options_model_item(o, 0, NULL, 0);
    long n = (long)n_models * o->n_quants * o->n_context_lengths;
    if (n > QB_LIMIT_SWEEP_CELLS) /* checked before anything is allocated */
        return qb_errorf("too many cells: %d models x %d formats x %d input lengths is more than %d", n_models,
                         o->n_quants, o->n_context_lengths, QB_LIMIT_SWEEP_CELLS);
    qb_cell_spec *c = calloc((size_t)n, sizeof *c);
    if (!c) return qb_errorf("out of memory");
    int k = 0;
    for (int m = 0; m < n_models; m++) {
        char model[sizeof c->model];
        if (qb_options_model_item(o, m, model, sizeof model) < 0) {
            free(c);
            return qb_errorf("--model: item %d is longer than %zu characters", m + 1, sizeof model - 1);
        }
        for (int q = 0; q < o->n_quants; q++) {
            /* Without --quant a checkpoint runs in its own format (a GPTQ directory needs no --quant gptq-int4); a
             * model that does not resolve is reported later, with the other checks of the plan. */
            qb_quant quant = o->quants[q];
            if (!qb_options_given(o, "quant")) {
                qb_model_config cfg;
                bool ckpt = false;
                if (qb_model_config_resolve(model, &cfg, &ckpt, NULL, 0) == 0 && ckpt) quant = cfg.quant;
                qb_error_clear();
            }
            for (int i = 0; i < o->n_context_lengths; i++, k++) {
                snprintf(c[k].model, sizeof c[k].model, "%s", model);
                c[k].quant = quant;
                c[k].context_len = o->context_lengths[i];
            }
        }
    }
    *base = c;
    *n_base = k;
    return 0;
}

int qb_sweep_cells(qb_options *o, qb_cell_spec **cells, int *n_cells) {
    *cells = NULL;
    *n_cells = 0;
    qb_cell_spec *base = NULL;
    int n_base = 0;
    QB_TRY(o->sweep[0] ? from_sweep_file(o, &base, &n_base) : from_flags(o, &base, &n_base));
    int rc = cross_options(base, n_base, &o->engine, cells, n_cells);
    free(base);
    return rc;
}
