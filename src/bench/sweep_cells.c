/* sweep_cells.c - expand flags (or a sweep file) into the cell list (see sweep_cells.h). */
#include "bench/sweep_cells.h"

#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "config/sweep.h"
#include "util/error.h"

static int from_sweep_file(qb_options *o, qb_cell_spec **cells, int *n_cells) {
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
    }
    *cells = c;
    *n_cells = s.n_cells;
    qb_sweep_free(&s);
    return 0;
}

int qb_sweep_cells(qb_options *o, qb_cell_spec **cells, int *n_cells) {
    *cells = NULL;
    *n_cells = 0;
    if (o->sweep[0]) return from_sweep_file(o, cells, n_cells);
    /* Without --quant a checkpoint runs in its own format (a GPTQ directory needs no --quant gptq-int4); a
     * model that does not resolve is reported later, with the other checks of the plan. */
    qb_quant quant = o->quant;
    if (!qb_options_given(o, "quant")) {
        qb_model_config cfg;
        bool ckpt = false;
        if (qb_model_config_resolve(o->model, &cfg, &ckpt, NULL, 0) == 0 && ckpt) quant = cfg.quant;
        qb_error_clear();
    }
    qb_cell_spec *c = calloc((size_t)o->n_context_lengths, sizeof *c);
    if (!c) return qb_errorf("out of memory");
    for (int i = 0; i < o->n_context_lengths; i++) {
        snprintf(c[i].model, sizeof c[i].model, "%s", o->model);
        c[i].quant = quant;
        c[i].context_len = o->context_lengths[i];
    }
    *cells = c;
    *n_cells = o->n_context_lengths;
    return 0;
}
