/* record.c - statistics and bookkeeping for result records (see record.h). */
#include "results/record.h"

#include <math.h>
#include <stdlib.h>

const char *qb_cell_status_name(qb_cell_status s) {
    switch (s) {
    case QB_CELL_VALID: return "VALID";
    case QB_CELL_INVALID: return "INVALID";
    case QB_CELL_DOES_NOT_FIT: return "DOES_NOT_FIT";
    case QB_CELL_FAILED: return "FAILED";
    }
    return "UNKNOWN";
}

void qb_stats_compute(const double *x, int n, qb_stats *out) {
    out->mean = out->stddev = out->min = out->max = 0.0;
    if (n <= 0) return;
    double sum = 0.0;
    out->min = out->max = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        if (x[i] < out->min) out->min = x[i];
        if (x[i] > out->max) out->max = x[i];
    }
    out->mean = sum / n;
    if (n > 1) {
        double ss = 0.0; /* second pass: no catastrophic cancellation */
        for (int i = 0; i < n; i++) ss += (x[i] - out->mean) * (x[i] - out->mean);
        out->stddev = sqrt(ss / (n - 1));
    }
}

void qb_run_finish(qb_run_record *r) {
    r->decode_s = r->total_s - r->prefill_s;
    r->tok_per_s = r->total_s > 0 ? r->n_gen / r->total_s : 0.0;
    if (r->n_gen > 1 && r->decode_s > 0) {
        r->decode_tok_per_s = (r->n_gen - 1) / r->decode_s;
        r->tpot_s = r->decode_s / (r->n_gen - 1);
    } else {
        r->decode_tok_per_s = 0.0;
        r->tpot_s = 0.0;
    }
}

void qb_cell_summarize(qb_cell_record *c) {
    int n = c->n_runs;
    double *tmp = malloc(sizeof(double) * (n > 0 ? n : 1));
    if (!tmp) return;
    for (int i = 0; i < n; i++) tmp[i] = c->runs[i].tok_per_s;
    qb_stats_compute(tmp, n, &c->speed);
    for (int i = 0; i < n; i++) tmp[i] = c->runs[i].prefill_s;
    qb_stats_compute(tmp, n, &c->ttft_s);
    for (int i = 0; i < n; i++) tmp[i] = c->runs[i].tpot_s;
    qb_stats_compute(tmp, n, &c->tpot_s);
    for (int i = 0; i < n; i++) tmp[i] = c->runs[i].decode_tok_per_s;
    qb_stats_compute(tmp, n, &c->decode_tok_per_s);
    free(tmp);
}

void qb_cell_free(qb_cell_record *c) {
    for (int i = 0; i < c->n_runs; i++) {
        free(c->runs[i].step_s);
        free(c->runs[i].tokens);
    }
    free(c->runs);
    free(c->peak_mem_rank);
    c->runs = NULL;
    c->peak_mem_rank = NULL;
    c->n_runs = 0;
}
