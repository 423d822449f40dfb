/* expected_tokens.c - read and check the --expect-tokens file (see expected_tokens.h). */
#include "bench/expected_tokens.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/limits.h"
#include "io/printable.h"
#include "io/small_file.h"
#include "util/error.h"

/* The optional "teacher_forced" object of a cell (see expected_tokens.h). */
static int parse_teacher_forced(json_t *tf, size_t i, const char *origin, qb_expected_cell *out) {
    out->first_outside_top5 = -1;
    out->teacher_forced_steps = -1;
    if (!tf || json_is_null(tf)) return 0;
    if (!json_is_object(tf)) return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced: must be an object", origin, i);
    json_t *rate = json_object_get(tf, "top1_rate"), *all = json_object_get(tf, "top5_all");
    json_t *first = json_object_get(tf, "first_outside_top5"), *steps = json_object_get(tf, "steps");
    if (!json_is_number(rate) || !(json_number_value(rate) >= 0.0 && json_number_value(rate) <= 1.0))
        return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced.top1_rate: must be a number in [0, 1]", origin, i);
    if (!json_is_boolean(all))
        return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced.top5_all: must be true or false", origin, i);
    if (first && !json_is_null(first) &&
        (!json_is_integer(first) || json_integer_value(first) < 0 || json_integer_value(first) > QB_LIMIT_GENERATE_LEN))
        return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced.first_outside_top5: must be null or a step "
                         "in [0, %d]", origin, i, QB_LIMIT_GENERATE_LEN);
    if (json_is_true(all) != (!first || json_is_null(first)))
        return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced: first_outside_top5 must be null exactly when "
                         "top5_all is true", origin, i);
    if (steps && (!json_is_integer(steps) || json_integer_value(steps) < 0 ||
                  json_integer_value(steps) > QB_LIMIT_GENERATE_LEN))
        return qb_errorf("--expect-tokens: %s: cells[%zu].teacher_forced.steps: must be an integer in [0, %d]", origin,
                         i, QB_LIMIT_GENERATE_LEN);
    out->has_teacher_forced = 1;
    out->top1_rate = json_number_value(rate);
    out->top5_all = json_is_true(all);
    if (json_is_integer(first)) out->first_outside_top5 = (int)json_integer_value(first);
    if (steps) out->teacher_forced_steps = (int)json_integer_value(steps);
    return 0;
}

static int parse_cell(json_t *cell, size_t i, const char *origin, qb_expected_cell *out) {
    if (!json_is_object(cell)) return qb_errorf("--expect-tokens: %s: cells[%zu]: must be an object", origin, i);
    json_t *model = json_object_get(cell, "model"), *ctx = json_object_get(cell, "context_len");
    json_t *tokens = json_object_get(cell, "tokens"), *t;
    if (model && !json_is_null(model) && !json_is_string(model))
        return qb_errorf("--expect-tokens: %s: cells[%zu].model: must be a string", origin, i);
    if (!json_is_integer(ctx) || json_integer_value(ctx) < 1 || json_integer_value(ctx) > QB_LIMIT_CONTEXT_LEN)
        return qb_errorf("--expect-tokens: %s: cells[%zu].context_len: must be an integer in [1, %d]", origin, i,
                         QB_LIMIT_CONTEXT_LEN);
    if (!json_is_array(tokens))
        return qb_errorf("--expect-tokens: %s: cells[%zu].tokens: must be an array of token ids", origin, i);
    size_t n = json_array_size(tokens), k;
    if (n > QB_LIMIT_GENERATE_LEN)
        return qb_errorf("--expect-tokens: %s: cells[%zu].tokens: %zu tokens, more than %d", origin, i, n,
                         QB_LIMIT_GENERATE_LEN);
    out->context_len = (int)json_integer_value(ctx);
    out->model = strdup(json_is_string(model) ? json_string_value(model) : "");
    out->tokens = malloc(sizeof *out->tokens * (n ? n : 1));
    if (!out->model || !out->tokens) return qb_errorf("--expect-tokens: %s: out of memory", origin);
    json_array_foreach(tokens, k, t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX) {
            char got[64];
            if (json_is_integer(t)) snprintf(got, sizeof got, "%lld", (long long)json_integer_value(t));
            else if (json_is_real(t)) snprintf(got, sizeof got, "%g", json_real_value(t));
            else snprintf(got, sizeof got, "%s", json_is_string(t) ? "a string" : json_is_null(t) ? "null" : "no number");
            return qb_errorf("--expect-tokens: %s: cells[%zu].tokens[%zu]: must be an integer token id in [0, %d], "
                             "got %s", origin, i, k, INT32_MAX, got);
        }
        out->tokens[k] = (int32_t)json_integer_value(t);
    }
    out->n_tokens = (int)n;
    return parse_teacher_forced(json_object_get(cell, "teacher_forced"), i, origin, out);
}

static int parse_root(json_t *root, const char *origin, qb_expected_tokens *out) {
    if (!json_is_object(root)) return qb_errorf("--expect-tokens: %s: the top level must be an object", origin);
    json_t *engine = json_object_get(root, "engine"), *cells = json_object_get(root, "cells"), *cell;
    if (engine && !json_is_null(engine) && !json_is_string(engine))
        return qb_errorf("--expect-tokens: %s: engine: must be a string", origin);
    /* the name goes into the results file's notes: control characters escaped, as in error messages */
    qb_printable(json_is_string(engine) ? json_string_value(engine) : "another engine", out->engine,
                 sizeof out->engine);
    if (!json_is_array(cells)) return qb_errorf("--expect-tokens: %s: cells: must be an array", origin);
    out->cells = calloc(json_array_size(cells) ? json_array_size(cells) : 1, sizeof *out->cells);
    if (!out->cells) return qb_errorf("--expect-tokens: %s: out of memory", origin);
    size_t i;
    json_array_foreach(cells, i, cell) {
        out->n_cells = (int)i + 1; /* so that a partly filled cell is freed too */
        QB_TRY(parse_cell(cell, i, origin, &out->cells[i]));
    }
    return 0;
}

int qb_expected_tokens_parse(const char *json, size_t len, const char *origin, qb_expected_tokens *out) {
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        qb_errorf("--expect-tokens: %s: line %d column %d: %s", origin, err.line, err.column, err.text);
        return qb_error_make_printable();
    }
    int rc = parse_root(root, origin, out);
    json_decref(root);
    if (rc != 0) {
        qb_expected_tokens_free(out);
        return qb_error_make_printable();
    }
    return 0;
}

int qb_expected_tokens_load(const char *path, qb_expected_tokens *out) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    if (qb_read_small_file(path, QB_LIMIT_EXPECT_TOKENS_FILE_BYTES, &text, &len) != 0) {
        qb_error_prefix("--expect-tokens");
        return qb_error_make_printable();
    }
    int rc = qb_expected_tokens_parse(text, len, path, out);
    free(text);
    return rc;
}

const qb_expected_cell *qb_expected_tokens_find(const qb_expected_tokens *e, const char *model, int context_len) {
    for (int i = 0; i < e->n_cells; i++) {
        const qb_expected_cell *c = &e->cells[i];
        if (c->context_len == context_len && (!c->model[0] || strcmp(c->model, model) == 0)) return c;
    }
    return NULL;
}

void qb_expected_tokens_free(qb_expected_tokens *e) {
    for (int i = 0; i < e->n_cells; i++) {
        free(e->cells[i].model);
        free(e->cells[i].tokens);
    }
    free(e->cells);
    memset(e, 0, sizeof *e);
}
