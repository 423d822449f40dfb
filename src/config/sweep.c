/* sweep.c - load a sweep config (JSON, see sweep.h) and expand it into the flat list of cells. */
#include "config/sweep.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/limits.h"
#include "io/printable.h"
#include "io/small_file.h"
#include "util/error.h"

static const char *const k_top_keys[] = {"name", "description", "generate_length", "repetitions",
                                         "warmup", "tp", "entries", NULL};
static const char *const k_entry_keys[] = {"models", "quants", "context_lengths", "tp", NULL};

static bool key_known(const char *key, const char *const *known) {
    for (int i = 0; known[i]; i++)
        if (strcmp(key, known[i]) == 0) return true;
    return false;
}

/* Refuse keys that are not part of the format: a typo ("repetition") must not be silently ignored. */
static int check_keys(json_t *obj, const char *const *known, const char *origin, const char *where) {
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        (void)value;
        if (!key_known(key, known) && !(known == k_top_keys && qb_engine_option_by_sweep_key(key) >= 0))
            return qb_errorf("%s: %s%s: unknown field", origin, where, key);
    }
    return 0;
}

/* An optional integer field in [lo, hi]; *has says whether it was present. */
static int get_int(json_t *obj, const char *field, long long lo, long long hi, const char *origin,
                   int *out, bool *has) {
    json_t *v = json_object_get(obj, field);
    *has = false;
    *out = 0;
    if (!v) return 0;
    if (!json_is_integer(v))
        return qb_errorf("%s: %s: must be an integer", origin, field);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return qb_errorf("%s: %s: %lld is out of range [%lld, %lld]", origin, field, x, lo, hi);
    *out = (int)x;
    *has = true;
    return 0;
}

/* An optional "tp": "auto" | N of obj (the top level, or an entry: where is then "entries[i]."). */
static int get_tp(json_t *obj, const char *origin, const char *where, int *tp, bool *has) {
    json_t *v = json_object_get(obj, "tp");
    *has = false;
    *tp = QB_SWEEP_TP_AUTO;
    if (!v) return 0;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "auto") != 0)
            return qb_errorf("%s: %stp: must be \"auto\" or a positive integer, not \"%s\"", origin, where,
                             json_string_value(v));
        *has = true;
        return 0;
    }
    if (!json_is_integer(v)) return qb_errorf("%s: %stp: must be \"auto\" or a positive integer", origin, where);
    long long x = json_integer_value(v);
    if (x < 1 || x > QB_LIMIT_TP)
        return qb_errorf("%s: %stp: %lld is out of range [1, %d]", origin, where, x, QB_LIMIT_TP);
    *tp = (int)x;
    *has = true;
    return 0;
}

/* The engine options the file gives: "key": "value" or "key": ["value", ...]. */
static int get_engine_options(json_t *obj, const char *origin, qb_sweep *s) {
    qb_engine_option_lists_default(&s->engine);
    s->engine_given = 0;
    for (int id = 0; id < QB_EOPT_COUNT; id++) {
        const char *key = qb_engine_option_table[id].sweep_key;
        json_t *v = json_object_get(obj, key), *item;
        if (!v) continue;
        char where[256], list[256] = "";
        snprintf(where, sizeof where, "%.200s: %s", origin, key);
        if (json_is_string(v)) {
            snprintf(list, sizeof list, "%s", json_string_value(v));
        } else if (json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= QB_EOPT_MAX_VALUES) {
            size_t j;
            json_array_foreach(v, j, item) {
                if (!json_is_string(item) || strchr(json_string_value(item), ','))
                    return qb_errorf("%s[%zu]: must be one value (a string)", where, j);
                size_t k = strlen(list);
                snprintf(list + k, sizeof list - k, "%s%s", j ? "," : "", json_string_value(item));
            }
        } else {
            return qb_errorf("%s: must be a string or a non-empty list of at most %d strings", where,
                             QB_EOPT_MAX_VALUES);
        }
        QB_TRY(qb_engine_option_parse_list(id, list, where, &s->engine));
        s->engine_given |= 1u << id;
    }
    return 0;
}

static int get_name(json_t *obj, const char *origin, qb_sweep *s) {
    json_t *v = json_object_get(obj, "name");
    if (v) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return qb_errorf("%s: name: must be a non-empty string", origin);
        if (json_string_length(v) >= sizeof s->name)
            return qb_errorf("%s: name: longer than %zu characters", origin, sizeof s->name - 1);
        strcpy(s->name, json_string_value(v));
        return 0;
    }
    const char *base = strrchr(origin, '/');
    base = base ? base + 1 : origin;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0) n -= 5;
    if (n >= sizeof s->name) n = sizeof s->name - 1;
    memcpy(s->name, base, n);
    s->name[n] = '\0';
    return 0;
}

/* entries[i].<field>: a non-empty array; returns it. */
static int get_array(json_t *entry, const char *field, const char *origin, int i, json_t **out) {
    json_t *a = json_object_get(entry, field);
    if (!a) return qb_errorf("%s: entries[%d].%s: missing", origin, i, field);
    if (!json_is_array(a) || json_array_size(a) == 0)
        return qb_errorf("%s: entries[%d].%s: must be a non-empty array", origin, i, field);
    *out = a;
    return 0;
}

static int check_entry(json_t *entry, const char *origin, int i) {
    char where[48];
    if (!json_is_object(entry)) return qb_errorf("%s: entries[%d]: must be an object", origin, i);
    snprintf(where, sizeof where, "entries[%d].", i);
    QB_TRY(check_keys(entry, k_entry_keys, origin, where));
    int tp;
    bool has_tp;
    QB_TRY(get_tp(entry, origin, where, &tp, &has_tp));
    json_t *models, *quants, *lengths, *v;
    size_t j;
    QB_TRY(get_array(entry, "models", origin, i, &models));
    QB_TRY(get_array(entry, "quants", origin, i, &quants));
    QB_TRY(get_array(entry, "context_lengths", origin, i, &lengths));
    json_array_foreach(models, j, v) {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return qb_errorf("%s: entries[%d].models[%zu]: must be a non-empty string", origin, i, j);
        if (json_string_length(v) > QB_LIMIT_MODEL_NAME_LEN || strlen(json_string_value(v)) != json_string_length(v))
            return qb_errorf("%s: entries[%d].models[%zu]: longer than %d characters or holds a NUL", origin, i, j,
                             QB_LIMIT_MODEL_NAME_LEN);
    }
    json_array_foreach(quants, j, v) {
        qb_quant q;
        if (!json_is_string(v))
            return qb_errorf("%s: entries[%d].quants[%zu]: must be a string", origin, i, j);
        if (qb_quant_parse(json_string_value(v), &q) != 0) {
            char expected[128] = "";
            for (int k = 0; k < QB_QUANT_COUNT; k++) {
                strncat(expected, k ? ", " : "", sizeof expected - strlen(expected) - 1);
                strncat(expected, qb_quant_name((qb_quant)k), sizeof expected - strlen(expected) - 1);
            }
            return qb_errorf("%s: entries[%d].quants[%zu]: unknown quant \"%s\" (expected %s)", origin, i, j,
                             json_string_value(v), expected);
        }
    }
    json_array_foreach(lengths, j, v) {
        if (!json_is_integer(v))
            return qb_errorf("%s: entries[%d].context_lengths[%zu]: must be an integer", origin, i, j);
        long long x = json_integer_value(v);
        if (x < 1 || x > QB_LIMIT_CONTEXT_LEN)
            return qb_errorf("%s: entries[%d].context_lengths[%zu]: %lld is out of range [1, %d]", origin, i,
                             j, x, QB_LIMIT_CONTEXT_LEN);
    }
    return 0;
}

/* Number of cells of all entries (already checked), refused above QB_LIMIT_SWEEP_CELLS before anything is
 * expanded. Each factor is compared with the limit first, so the products cannot overflow. */
static int count_cells(json_t *entries, const char *origin, int *n_cells) {
    unsigned long long total = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        unsigned long long m = json_array_size(json_object_get(entry, "models"));
        unsigned long long q = json_array_size(json_object_get(entry, "quants"));
        unsigned long long l = json_array_size(json_object_get(entry, "context_lengths"));
        bool over = m > QB_LIMIT_SWEEP_CELLS || q > QB_LIMIT_SWEEP_CELLS || l > QB_LIMIT_SWEEP_CELLS;
        if (!over) total += m * q * l;
        if (over || total > QB_LIMIT_SWEEP_CELLS)
            return qb_errorf("%s: entries[%zu]: the sweep has more than %d cells (models x quants x context_lengths, "
                             "summed over the entries); split it into several sweeps", origin, i, QB_LIMIT_SWEEP_CELLS);
    }
    *n_cells = (int)total;
    return 0;
}

/* Append entry i's cross product (already checked and counted) in model, quant, length order. */
static int expand_entry(json_t *entry, const char *origin, int i, qb_sweep *s) {
    json_t *models = json_object_get(entry, "models"), *quants = json_object_get(entry, "quants");
    json_t *lengths = json_object_get(entry, "context_lengths"), *m, *q, *l;
    size_t a, b, c;
    int tp;
    bool has_tp;
    (void)get_tp(entry, origin, "", &tp, &has_tp); /* checked in check_entry */
    json_array_foreach(models, a, m) {
        char *model = strdup(json_string_value(m)); /* stored once; its cells point to it */
        if (!model) return qb_errorf("%s: out of memory expanding the sweep", origin);
        s->model_names[s->n_model_names++] = model; /* parse_root made one slot per model string */
        json_array_foreach(quants, b, q) {
            qb_quant quant;
            (void)qb_quant_parse(json_string_value(q), &quant); /* checked in check_entry */
            json_array_foreach(lengths, c, l)
                s->cells[s->n_cells++] = (qb_sweep_cell){model, quant, (int)json_integer_value(l), i, has_tp, tp};
        }
    }
    return 0;
}

/* Order of the duplicate check: model, quant, length, then position in the file. */
static int compare_cells(const void *x, const void *y) {
    const qb_sweep_cell *a = *(const qb_sweep_cell *const *)x, *b = *(const qb_sweep_cell *const *)y;
    int r = strcmp(a->model, b->model);
    if (r) return r;
    if (a->quant != b->quant) return a->quant < b->quant ? -1 : 1;
    if (a->context_len != b->context_len) return a->context_len < b->context_len ? -1 : 1;
    return a < b ? -1 : a > b;
}

static bool same_cell(const qb_sweep_cell *a, const qb_sweep_cell *b) {
    return a->quant == b->quant && a->context_len == b->context_len && strcmp(a->model, b->model) == 0;
}

/* Refuse a (model, quant, length) listed twice, naming the first repeat in file order: sort, then compare
 * neighbours (n log n; a 10^4-cell sweep takes milliseconds). */
static int check_duplicates(const qb_sweep *s, const char *origin) {
    const qb_sweep_cell **sorted = malloc(sizeof *sorted * (size_t)(s->n_cells ? s->n_cells : 1));
    if (!sorted) return qb_errorf("%s: out of memory checking the sweep for duplicates", origin);
    for (int c = 0; c < s->n_cells; c++) sorted[c] = &s->cells[c];
    qsort(sorted, (size_t)s->n_cells, sizeof *sorted, compare_cells);
    const qb_sweep_cell *repeat = NULL, *first = NULL, *run_start = sorted[0];
    for (int k = 1; k < s->n_cells; k++) {
        if (!same_cell(sorted[k], sorted[k - 1])) {
            run_start = sorted[k];
            continue;
        }
        if (!repeat || sorted[k] < repeat) {
            repeat = sorted[k];
            first = run_start;
        }
    }
    free(sorted);
    if (!repeat) return 0;
    return qb_errorf("%s: entries[%d]: cell (%s, %s, %d) is already listed in entries[%d]", origin, repeat->entry,
                     repeat->model, qb_quant_name(repeat->quant), repeat->context_len, first->entry);
}

static int parse_root(json_t *root, const char *origin, qb_sweep *s) {
    if (!json_is_object(root)) return qb_errorf("%s: the top level must be an object", origin);
    QB_TRY(check_keys(root, k_top_keys, origin, ""));
    QB_TRY(get_name(root, origin, s));
    json_t *desc = json_object_get(root, "description");
    if (desc && !json_is_string(desc)) return qb_errorf("%s: description: must be a string", origin);
    QB_TRY(get_int(root, "generate_length", 1, QB_LIMIT_GENERATE_LEN, origin, &s->generate_length,
                   &s->has_generate_length));
    QB_TRY(get_int(root, "repetitions", 1, QB_LIMIT_REPETITIONS, origin, &s->repetitions, &s->has_repetitions));
    QB_TRY(get_int(root, "warmup", 0, QB_LIMIT_WARMUP, origin, &s->warmup, &s->has_warmup));
    QB_TRY(get_tp(root, origin, "", &s->tp, &s->has_tp));
    QB_TRY(get_engine_options(root, origin, s));

    json_t *entries = json_object_get(root, "entries"), *entry;
    if (!entries) return qb_errorf("%s: entries: missing", origin);
    if (!json_is_array(entries) || json_array_size(entries) == 0)
        return qb_errorf("%s: entries: must be a non-empty array", origin);
    size_t i, names = 0;
    json_array_foreach(entries, i, entry) QB_TRY(check_entry(entry, origin, (int)i));
    int n_cells = 0;
    QB_TRY(count_cells(entries, origin, &n_cells));
    json_array_foreach(entries, i, entry) names += json_array_size(json_object_get(entry, "models"));
    s->cells = malloc(sizeof *s->cells * (size_t)n_cells);
    s->model_names = malloc(sizeof *s->model_names * names);
    if (!s->cells || !s->model_names) return qb_errorf("%s: out of memory expanding the sweep", origin);
    json_array_foreach(entries, i, entry) QB_TRY(expand_entry(entry, origin, (int)i, s));
    return check_duplicates(s, origin);
}

static int finish(json_t *root, const char *origin, qb_sweep *out) {
    memset(out, 0, sizeof *out);
    int rc = parse_root(root, origin, out);
    json_decref(root);
    if (rc != 0) {
        qb_sweep_free(out);
        qb_error_make_printable(); /* the message may quote the file's own strings */
    }
    return rc;
}

static int parse_buffer(const char *json, size_t len, const char *origin, qb_sweep *out) {
    json_error_t err;
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        qb_errorf("%s: line %d column %d: %s", origin, err.line, err.column, err.text);
        return qb_error_make_printable();
    }
    return finish(root, origin, out);
}

int qb_sweep_parse(const char *json, const char *origin, qb_sweep *out) {
    return parse_buffer(json, strlen(json), origin, out);
}

int qb_sweep_load(const char *path, qb_sweep *out) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (qb_read_small_file(path, QB_LIMIT_SWEEP_FILE_BYTES, &text, &len) != 0) return qb_error_make_printable();
    int rc = parse_buffer(text, len, path, out);
    free(text);
    return rc;
}

void qb_sweep_free(qb_sweep *s) {
    for (int i = 0; i < s->n_model_names; i++) free(s->model_names[i]);
    free(s->model_names);
    free(s->cells);
    memset(s, 0, sizeof *s);
}
