/* resume_check.c - is the --resume target this run's file? (see resume_check.h) */
#include "bench/resume_check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/rope_policy.h"
#include "bench/run_meta.h"
#include "io/printable.h"
#include "results/results_file.h"
#include "util/error.h"

/* A value as the message shows it: a string bare, anything else as compact JSON, absent as "(absent)". */
static void show(const json_t *v, char *out, size_t cap) {
    char raw[256];
    if (!v) snprintf(raw, sizeof raw, "(absent)");
    else if (json_is_string(v)) snprintf(raw, sizeof raw, "%s", json_string_value(v));
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(raw, sizeof raw, "%s", s ? s : "?");
        free(s);
    }
    qb_printable(raw, out, cap); /* from a file: escaped */
}

static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The first differing path under a and b into path (its prefix already there); 1 when one was found. */
static int first_difference(const json_t *a, const json_t *b, char *path, size_t cap, const json_t **da,
                            const json_t **db) {
    if (a && b && json_equal(a, b)) return 0;
    if (json_is_object(a) && json_is_object(b)) {
        size_t n = json_object_size(a) + json_object_size(b), k = 0;
        const char **keys = malloc(sizeof *keys * (n ? n : 1));
        if (!keys) return *da = a, *db = b, 1;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)a, key, v) keys[k++] = key;
        json_object_foreach((json_t *)b, key, v) if (!json_object_get(a, key)) keys[k++] = key;
        qsort(keys, k, sizeof *keys, cmp_keys);
        size_t len = strlen(path);
        /* single values first (generate_length, seed, ...), then lists and objects (the cells) */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < k; i++) {
                const json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);
                int nested = json_is_array(x) || json_is_object(x) || json_is_array(y) || json_is_object(y);
                if (nested != pass) continue;
                snprintf(path + len, cap - len, "%s%s", len ? "." : "", keys[i]);
                if (first_difference(x, y, path, cap, da, db)) {
                    free(keys);
                    return 1;
                }
            }
        free(keys);
        path[len] = '\0';
    } else if (json_is_array(a) && json_is_array(b)) {
        size_t na = json_array_size(a), nb = json_array_size(b), len = strlen(path);
        for (size_t i = 0; i < na || i < nb; i++) {
            const json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
            if (x && y && json_equal(x, y)) continue;
            snprintf(path + len, cap - len, "[%zu]", i);
            *da = x;
            *db = y;
            return 1;
        }
    }
    *da = a;
    *db = b;
    return 1;
}

void qb_settings_first_difference(const char *there, const char *now, char *out, size_t cap) {
    json_error_t err;
    json_t *a = json_loads(there, 0, &err), *b = json_loads(now, 0, &err);
    char path[512] = "", sa[160], sb[160];
    const json_t *da = NULL, *db = NULL;
    out[0] = '\0';
    if (!a) snprintf(out, cap, "its settings are not JSON");
    else if (b && first_difference(a, b, path, sizeof path, &da, &db)) {
        show(da, sa, sizeof sa);
        show(db, sb, sizeof sb);
        snprintf(out, cap, "%s %s there, %s now", path[0] ? path : "settings", sa, sb);
    }
    json_decref(a);
    json_decref(b);
}

int qb_resume_check(const qb_runner *r, const qb_cell_spec *cells, int n_cells) {
    const char *path = r->opt->out;
    char shown[512];
    qb_printable(path, shown, sizeof shown);
    if (access(path, F_OK) != 0) return 0; /* nothing to complete yet: the runner starts a new file */
    static qb_results_meta old;
    qb_cell_record *old_cells = NULL;
    int n_old = 0;
    if (qb_results_read(path, &old, &old_cells, &n_old) != 0)
        return qb_error_prefix("--resume: %s is not a readable qwenbench results file", path), qb_error_make_printable();
    for (int i = 0; i < n_old; i++) qb_cell_free(&old_cells[i]);
    free(old_cells);

    /* This run's settings, as the runner will record them: each cell's resolved model name. */
    qb_model_config *cfgs = calloc((size_t)(n_cells > 0 ? n_cells : 1), sizeof *cfgs);
    const char **names = calloc((size_t)(n_cells > 0 ? n_cells : 1), sizeof *names);
    static char now[sizeof old.settings_json];
    int rc = -1;
    qb_rope_policy rope;
    if (!cfgs || !names) { qb_errorf("out of memory"); goto out; }
    if (qb_rope_policy_parse(r->opt->rope_scaling, &rope) != 0) goto out;
    for (int i = 0; i < n_cells; i++) {
        bool ckpt;
        char dir[QB_PATH_MAX], label[64];
        if (qb_model_config_resolve(cells[i].model, &cfgs[i], &ckpt, dir, sizeof dir) != 0 ||
            qb_model_config_apply_quant(&cfgs[i], cells[i].quant, ckpt) != 0 ||
            qb_rope_policy_apply(&rope, &cfgs[i], cells[i].context_len, r->opt->generate_length, label,
                                 sizeof label) != 0)
            goto out;
        names[i] = cfgs[i].name;
    }
    if (qb_run_meta_settings_json(r, cells, names, n_cells, now, sizeof now) != 0) goto out;
    char why[512];
    qb_settings_first_difference(old.settings_json, now, why, sizeof why);
    if (why[0]) qb_errorf("--resume: %s was made with other settings: %s", shown, why);
    else rc = 0;
out:
    free(cfgs);
    free(names);
    return rc;
}
