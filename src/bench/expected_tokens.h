/* expected_tokens.h - the --expect-tokens file, read and checked whole before the first cell.
 *
 * Format: {"engine": "...", "cells": [{"model": "qwen2.5-0.5b", "context_len": 1, "tokens": [ids...]}, ...]}
 * (written by tests/peer_transformers.py; other keys are ignored). "engine" is an optional string; "cells" a
 * required array; in each cell "context_len" is an integer in [1, QB_LIMIT_CONTEXT_LEN], "tokens" an array of
 * integer token ids in [0, 2^31 - 1], "model" an optional string ("" or absent matches any model). The file
 * must be a regular file (a FIFO or device is refused at once, never waited on) of at most
 * QB_LIMIT_EXPECT_TOKENS_FILE_BYTES. Every error is one line naming the file and the field, e.g.
 * "--expect-tokens peer.json: cells[2].tokens[7]: must be an integer token id, got 3.5".
 * A cell may carry the peer's teacher-forced comparison (tests/peer_transformers.py --teacher-forced: the peer
 * fed qwenbench's generated tokens and looked at its own logits at every step):
 * "teacher_forced": {"top1_rate": number in [0, 1], "top5_all": bool, "first_outside_top5": step >= 0 or null,
 * "steps": optional integer >= 0}; first_outside_top5 must be null exactly when top5_all is true.
 */
#ifndef QB_BENCH_EXPECTED_TOKENS_H
#define QB_BENCH_EXPECTED_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *model;          /* "" matches any model */
    int context_len;
    int32_t *tokens;
    int n_tokens;
    /* the peer's teacher-forced comparison, when the file has one */
    int has_teacher_forced;
    double top1_rate;         /* share of steps where qwenbench's token is the peer's top 1 */
    int top5_all;             /* every qwenbench token in the peer's top 5 */
    int first_outside_top5;   /* the first step where it is not, -1 when none */
    int teacher_forced_steps; /* steps compared, -1 when the file does not say */
} qb_expected_cell;

typedef struct {
    char engine[128];     /* the file's "engine", else "another engine" */
    qb_expected_cell *cells;
    int n_cells;
} qb_expected_tokens;

/* Read and validate the file. 0 ok (free with qb_expected_tokens_free); -1 with a one-line message. */
int qb_expected_tokens_load(const char *path, qb_expected_tokens *out);
/* The same from JSON in memory (len bytes); origin names it in messages. */
int qb_expected_tokens_parse(const char *json, size_t len, const char *origin, qb_expected_tokens *out);
/* The first cell for (model, context_len), or NULL. */
const qb_expected_cell *qb_expected_tokens_find(const qb_expected_tokens *e, const char *model, int context_len);
void qb_expected_tokens_free(qb_expected_tokens *e);

#endif
