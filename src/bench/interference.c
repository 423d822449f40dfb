/* interference.c - one cell timed alone, then beside the other packed groups (see interference.h). */
#include "bench/interference.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/rope_policy.h"
#include "bench/token_checks.h"
#include "config/limits.h"
#include "io/printable.h"
#include "util/error.h"

/* A whole field of digits (no sign, no blanks) in [1, limit]. */
static int parse_count(const char *s, size_t len, long limit, int *out) {
    if (len == 0 || len > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = 10 * v + (s[i] - '0');
    }
    if (v < 1 || v > limit) return -1;
    *out = (int)v;
    return 0;
}

/* The field after the last colon of s[0, *len): its start; *len becomes the length before that colon. NULL: none. */
static const char *last_field(const char *s, size_t *len, size_t *field_len) {
    for (size_t i = *len; i > 0; i--)
        if (s[i - 1] == ':') {
            *field_len = *len - i;
            *len = i - 1;
            return s + i;
        }
    return NULL;
}

static int quant_field(const char *s, size_t len, qb_quant *q) {
    char name[32];
    if (len == 0 || len >= sizeof name) return -1;
    memcpy(name, s, len);
    name[len] = '\0';
    return qb_quant_parse(name, q);
}

int qb_interference_parse(const char *text, qb_interference_spec *out) {
    memset(out, 0, sizeof *out);
    char shown[512];
    qb_printable(text, shown, sizeof shown);
    size_t len = strlen(text), a_len = 0, b_len = 0, c_len = 0;
    const char *a = last_field(text, &len, &a_len);             /* INPUT or TP */
    const char *b = a ? last_field(text, &len, &b_len) : NULL;  /* FORMAT or INPUT */
    if (!a || !b)
        return qb_errorf("'%s' is not MODEL:FORMAT:INPUT[:TP] (e.g. qwen2.5-0.5b:bf16:1)", shown);
    size_t model_len = len;
    qb_quant q;
    if (quant_field(b, b_len, &q) == 0) { /* MODEL:FORMAT:INPUT */
        if (parse_count(a, a_len, QB_LIMIT_CONTEXT_LEN, &out->context_len) != 0)
            return qb_errorf("'%s': the input length is not a number in [1, %d]", shown, QB_LIMIT_CONTEXT_LEN);
    } else { /* MODEL:FORMAT:INPUT:TP */
        const char *c = last_field(text, &len, &c_len);
        if (!c || quant_field(c, c_len, &q) != 0)
            return qb_errorf("'%s' is not MODEL:FORMAT:INPUT[:TP]: no format (%s) before the input length", shown,
                             qb_quant_name_list());
        if (parse_count(b, b_len, QB_LIMIT_CONTEXT_LEN, &out->context_len) != 0)
            return qb_errorf("'%s': the input length is not a number in [1, %d]", shown, QB_LIMIT_CONTEXT_LEN);
        if (parse_count(a, a_len, QB_LIMIT_TP, &out->tp) != 0)
            return qb_errorf("'%s': the TP size is not a number in [1, %d]", shown, QB_LIMIT_TP);
        model_len = len;
    }
    if (model_len == 0) return qb_errorf("'%s': no model before the format", shown);
    if (model_len >= sizeof out->model) return qb_errorf("'%s': the model is longer than %zu characters", shown,
                                                         sizeof out->model - 1);
    memcpy(out->model, text, model_len);
    out->model[model_len] = '\0';
    out->quant = q;
    return 0;
}

int qb_interference_find(const char *text, const qb_cell_spec *cells, const char *const *names, const int *tps, int n,
                         int *index) {
    qb_interference_spec spec;
    QB_TRY(qb_interference_parse(text, &spec));
    int found = 0, first = -1, second = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(spec.model, cells[i].model) != 0 && strcmp(spec.model, names[i]) != 0) continue;
        if (cells[i].quant != spec.quant || cells[i].context_len != spec.context_len) continue;
        if (spec.tp > 0 && tps[i] != spec.tp) continue;
        if (found++ == 0) first = i;
        else if (found == 2) second = i;
    }
    char shown[512];
    qb_printable(text, shown, sizeof shown);
    if (found == 0) return qb_errorf("'%s' names none of the sweep's %d cells (matched on model, format and input "
                                     "length%s)", shown, n, spec.tp ? ", and the TP size they run on" : "");
    if (found > 1)
        return qb_errorf("'%s' names %d cells of the sweep (one is needed; they differ in %s)", shown, found,
                         tps[first] != tps[second] ? "TP size: add :TP" : "engine options: give one value of each");
    *index = first;
    return 0;
}

int qb_interference_check(const qb_runner *r, const qb_cell_spec *cells, int n) {
    const qb_options *o = r->opt;
    if (!o->interference[0]) return 0;
    const char **names = calloc((size_t)(n > 0 ? n : 1), sizeof *names);
    qb_model_config *cfgs = calloc((size_t)(n > 0 ? n : 1), sizeof *cfgs);
    int *tps = calloc((size_t)(n > 0 ? n : 1), sizeof *tps);
    int rc = -1, index = -1;
    qb_rope_policy rope;
    if (!names || !cfgs || !tps) { qb_errorf("out of memory"); goto out; }
    if (qb_rope_policy_parse(o->rope_scaling, &rope) != 0) goto out;
    for (int i = 0; i < n; i++) { /* the names and TP sizes the runner will give the cells (bench/runner.c) */
        bool ckpt;
        char dir[QB_PATH_MAX], label[64], why[512];
        if (qb_model_config_resolve(cells[i].model, &cfgs[i], &ckpt, dir, sizeof dir) != 0 ||
            qb_model_config_apply_quant(&cfgs[i], cells[i].quant, ckpt) != 0 ||
            qb_rope_policy_apply(&rope, &cfgs[i], cells[i].context_len, o->generate_length, label, sizeof label) != 0 ||
            qb_runner_plan_tp(r, &cfgs[i], &cells[i], &tps[i], why, sizeof why) != 0)
            goto out;
        names[i] = cfgs[i].name;
    }
    rc = qb_interference_find(o->interference, cells, names, tps, n, &index);
    if (rc == 0 && tps[index] == 0) {
        char shown[512];
        rc = qb_errorf("'%s': the cell fits on no TP size: nothing to measure",
                       qb_printable(o->interference, shown, sizeof shown));
    }
out:
    if (rc != 0) qb_error_prefix("--interference");
    free(names);
    free(cfgs);
    free(tps);
    return rc;
}

int qb_interference_start(qb_interference *it, int cell, int n_groups) {
    memset(it, 0, sizeof *it);
    it->cell = cell;
    it->group = -1;
    it->n_groups = n_groups;
    if (cell < 0) return 0;
    it->company = calloc((size_t)n_groups, 1);
    it->pending = calloc((size_t)n_groups, 1);
    if (!it->company || !it->pending) {
        qb_interference_end(it);
        return qb_errorf("out of memory dealing the --interference cell");
    }
    it->state = QB_ITF_READY;
    return 0;
}

void qb_interference_end(qb_interference *it) {
    if (it->state == QB_ITF_HELD) { /* a job that ends early: the held record is dropped with the rest */
        qb_cell_free(&it->beside);
        free(it->beside_ranks);
    }
    free(it->company);
    free(it->pending);
    free(it->windows);
    free(it->window_group);
    memset(it, 0, sizeof *it);
    it->cell = it->group = -1;
}

qb_itf_answer qb_interference_answer(qb_interference *it, int g, const char *group_done, int stopping) {
    if (stopping) return QB_ITF_SWEEP; /* the dealer answers "none left" to everyone */
    switch (it->state) {
    case QB_ITF_READY: /* the phase's first request: nothing else runs */
        it->state = QB_ITF_ALONE;
        it->group = g;
        return QB_ITF_CHOSEN;
    case QB_ITF_ALONE: return QB_ITF_WAIT;
    case QB_ITF_ALONE_DONE:
        if (g != it->group) {
            if (it->company[g] < 2) it->company[g]++;
            return QB_ITF_SWEEP;
        }
        /* The others start first, and with weights loaded: each has finished the cell it loaded them for and
         * begun the next one (of the same weights, or a background repeat of them). */
        for (int h = 0; h < it->n_groups; h++)
            if (h != it->group && it->company[h] < 2 && !group_done[h]) return QB_ITF_WAIT;
        it->state = QB_ITF_BESIDE;
        return QB_ITF_CHOSEN;
    default: return QB_ITF_SWEEP;
    }
}

int qb_interference_wants_company(const qb_interference *it) {
    return it->state == QB_ITF_ALONE_DONE || it->state == QB_ITF_BESIDE;
}

/* Another group's cell in progress: from its first timed run's start to its last one's end. The group is busy
 * between its runs too (a cell's runs follow each other at once), so a short beside run that falls between two of
 * them still ran beside that group; only the gaps between cells (weights loading, the warm-up and check runs) are
 * not counted. */
static void keep_windows(qb_interference *it, int g, const qb_cell_record *c) {
    if (c->n_runs < 1) return;
    if (it->n_windows + 1 > it->cap_windows) {
        int cap = 2 * it->n_windows + 16;
        double *w = realloc(it->windows, sizeof *w * 2 * (size_t)cap);
        if (w) it->windows = w;
        int *wg = realloc(it->window_group, sizeof *wg * (size_t)cap);
        if (wg) it->window_group = wg;
        if (!w || !wg) return; /* out of memory: fewer windows, at worst "no overlap" */
        it->cap_windows = cap;
    }
    double start = c->runs[0].start_unix_s, end = c->runs[0].end_unix_s;
    for (int i = 1; i < c->n_runs; i++) {
        if (c->runs[i].start_unix_s < start) start = c->runs[i].start_unix_s;
        if (c->runs[i].end_unix_s > end) end = c->runs[i].end_unix_s;
    }
    it->windows[2 * it->n_windows] = start;
    it->windows[2 * it->n_windows + 1] = end;
    it->window_group[it->n_windows++] = g;
}

int qb_interference_receive(qb_interference *it, int g, int k, qb_cell_record *c, const qb_cell_origin *from,
                            qb_rank_summary **ranks, const int *group_cell) {
    if (it->state == QB_ITF_OFF || it->state == QB_ITF_READY) return 0;
    if (g != it->group || k != it->cell) {
        if (it->state != QB_ITF_ALONE) keep_windows(it, g, c);
        it->pending[g] = 0;
        return 0;
    }
    if (it->state == QB_ITF_ALONE) {
        it->alone = c->speed;
        it->alone_runs = c->n_runs;
        it->alone_status = c->status;
        snprintf(it->alone_reason, sizeof it->alone_reason, "%.150s", c->reason);
        char model[sizeof c->model * 4];
        fprintf(stderr, "# interference: %s %s input %d alone: %.2f tok/s (%s); now beside the other groups\n",
                qb_printable(c->model, model, sizeof model), c->quant, c->context_len, it->alone.mean,
                qb_cell_status_name(c->status));
        fflush(stderr);
        qb_cell_free(c);
        free(*ranks);
        *ranks = NULL;
        it->state = QB_ITF_ALONE_DONE;
        return 1;
    }
    /* the beside record: held until every group running beside it has reported */
    it->beside = *c;
    memset(c, 0, sizeof *c);
    it->beside_from = *from;
    it->beside_ranks = *ranks;
    *ranks = NULL;
    for (int h = 0; h < it->n_groups; h++) it->pending[h] = h != it->group && group_cell[h] >= 0;
    it->state = QB_ITF_HELD;
    return 1;
}

/* The fields and the checks line of the beside record, from the alone runs and the windows of the others. */
static void judge(qb_interference *it, qb_cell_record *c) {
    char line[256];
    if (it->alone_status != QB_CELL_VALID || it->alone_runs == 0 || !(it->alone.mean > 0)) {
        snprintf(line, sizeof line, "interference: not measured: the alone runs were %s (%.120s)",
                 qb_cell_status_name(it->alone_status), it->alone_reason);
        qb_cell_note(c, line);
        return;
    }
    c->alone_speed_mean = it->alone.mean;
    c->alone_speed_std = it->alone.stddev;
    if (c->status != QB_CELL_VALID || c->n_runs == 0) {
        snprintf(line, sizeof line, "interference: not measured: the beside runs were %s (alone %.2f ± %.2f tok/s)",
                 qb_cell_status_name(c->status), it->alone.mean, it->alone.stddev);
        qb_cell_note(c, line);
        return;
    }
    char seen[QB_MAX_RANKS] = {0};
    int groups = 0, alone_run = -1;
    for (int i = 0; i < c->n_runs; i++) {
        double s = c->runs[i].start_unix_s, e = c->runs[i].end_unix_s;
        int overlaps = 0;
        for (int w = 0; w < it->n_windows; w++)
            if (it->windows[2 * w] < e && s < it->windows[2 * w + 1]) {
                overlaps = 1;
                int h = it->window_group[w];
                if (h >= 0 && h < QB_MAX_RANKS && !seen[h]) { seen[h] = 1; groups++; }
            }
        if (!overlaps && alone_run < 0) alone_run = i;
    }
    if (alone_run >= 0) {
        snprintf(line, sizeof line, "interference: no overlap: beside run %d overlapped no cell of another group "
                 "(alone %.2f ± %.2f tok/s)", alone_run, it->alone.mean, it->alone.stddev);
        qb_cell_note(c, line);
        return;
    }
    c->interference_ratio = c->speed.mean / it->alone.mean;
    double limit = 0.0;
    int slowed = qb_interference_slowed(c, &limit);
    snprintf(line, sizeof line, "interference: beside %d groups: %.4f of alone (alone %.2f ± %.2f tok/s), %s (limit "
             "%.1f%%)", groups, c->interference_ratio, it->alone.mean, it->alone.stddev,
             slowed ? "slower beyond noise: packed cells NOISY" : "no slow-down beyond noise", 100.0 * limit);
    qb_cell_note(c, line);
}

int qb_interference_release(qb_interference *it, qb_cell_record *c, qb_cell_origin *from, qb_rank_summary **ranks) {
    if (it->state != QB_ITF_HELD) return 0;
    for (int h = 0; h < it->n_groups; h++)
        if (it->pending[h]) return 0;
    judge(it, &it->beside);
    *c = it->beside;
    *from = it->beside_from;
    *ranks = it->beside_ranks;
    memset(&it->beside, 0, sizeof it->beside);
    it->beside_ranks = NULL;
    it->state = QB_ITF_OFF;
    return 1;
}

int qb_interference_slowed(const qb_cell_record *c, double *limit) {
    *limit = QB_INTERFERENCE_MIN_SLOWDOWN;
    if (!isfinite(c->interference_ratio) || !(c->alone_speed_mean > 0) || c->n_runs <= 0) return 0;
    double runs = (double)c->n_runs; /* the alone runs were as many: the same --repetitions */
    double se_alone = c->alone_speed_std / sqrt(runs), se_beside = c->speed.stddev / sqrt(runs);
    double bound = 2.0 * sqrt(se_alone * se_alone + se_beside * se_beside) / c->alone_speed_mean;
    if (bound > *limit) *limit = bound;
    return c->interference_ratio < 1.0 - *limit;
}
