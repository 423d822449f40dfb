/* token_checks.c - reference-engine and expected-token checks (see token_checks.h). */
#include "bench/token_checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/weights.h"
#include "util/error.h"

#define QB_TOP_K 5
#define QB_REFERENCE_BUDGET_S 120.0

void qb_cell_note(qb_cell_record *c, const char *text) {
    size_t k = strlen(c->checks);
    snprintf(c->checks + k, sizeof c->checks - k, "%s%s", k ? "; " : "", text);
}

static int in_top_k(const float *logits, int vocab, int32_t token, int k) {
    if (token < 0 || token >= vocab) return 0;
    float v = logits[token];
    int above = 0;
    for (int i = 0; i < vocab; i++)
        if (logits[i] > v || (logits[i] == v && i < token)) above++;
    return above < k;
}

/* Logits of the step after prompt + prefix[0..s). */
static int step_logits(qb_backend *b, const int32_t *prompt, int n_prompt, const int32_t *prefix, int s,
                       float *logits) {
    int32_t *seq = malloc(sizeof *seq * (size_t)(n_prompt + s));
    if (!seq) return qb_errorf("out of memory for a %d-token check sequence", n_prompt + s);
    memcpy(seq, prompt, sizeof *seq * (size_t)n_prompt);
    memcpy(seq + n_prompt, prefix, sizeof *seq * (size_t)s);
    int rc = b->prefill_logits(b, seq, n_prompt + s, logits);
    free(seq);
    return rc;
}

static int first_difference(const int32_t *a, const int32_t *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return n;
}

static int reference_check(const qb_runner *r, qb_cell_group *g, const int32_t *prompt, int n_prompt,
                           const int32_t *tokens, int n_gen, qb_cell_record *c) {
    const int steps = r->opt->check_steps < n_gen ? r->opt->check_steps : n_gen;
    char note[320];
    double params = (double)qb_model_param_count(&g->cfg) / g->plan.tp_size;
    double est_s = 2.0 * params * (n_prompt + steps) / 20e9 + steps * 2.0 * params / 5e9;
    if (est_s > QB_REFERENCE_BUDGET_S) {
        snprintf(note, sizeof note, "reference check skipped: about %.0f s on the CPU for input %d", est_s, n_prompt);
        qb_cell_note(c, note);
        return 0;
    }
    qb_backend_params p = g->params;
    p.checkpoint_dir = g->checkpoint_dir[0] ? g->checkpoint_dir : NULL;
    p.max_seq_len = n_prompt + steps;
    p.max_prompt_len = n_prompt + steps;
    p.test_corrupt_argmax = 0;
    qb_backend *ref = NULL;
    int32_t *ref_tokens = malloc(sizeof *ref_tokens * (size_t)steps);
    float *a = malloc(sizeof *a * (size_t)g->cfg.vocab_size), *b = malloc(sizeof *b * (size_t)g->cfg.vocab_size);
    int rc = -1;
    if (!ref_tokens || !a || !b) { qb_errorf("out of memory for the reference check"); goto out; }
    if (qb_cpu_backend_create(&p, &ref) != 0) { qb_error_prefix("reference check"); goto out; }
    qb_gen_timing t = {0, NULL, NULL};
    if (ref->generate(ref, prompt, n_prompt, steps, ref_tokens, &t) != 0) goto out;
    int s = first_difference(tokens, ref_tokens, steps);
    if (s == steps) {
        snprintf(note, sizeof note, "reference: %d/%d steps equal", steps, steps);
        qb_cell_note(c, note);
        rc = 0;
        goto out;
    }
    /* Same prefix up to s: compare the two engines' logits at step s. */
    if (step_logits(g->backend, prompt, n_prompt, tokens, s, a) != 0 ||
        step_logits(ref, prompt, n_prompt, tokens, s, b) != 0)
        goto out;
    int ok = in_top_k(b, g->cfg.vocab_size, tokens[s], QB_TOP_K) && in_top_k(a, g->cfg.vocab_size, ref_tokens[s], QB_TOP_K);
    snprintf(note, sizeof note, "reference: first %d/%d steps equal; step %d: engine %d, reference %d, %s", s, steps,
             s, (int)tokens[s], (int)ref_tokens[s], ok ? "each in the other's top 5" : "NOT in each other's top 5");
    qb_cell_note(c, note);
    if (!ok && c->status == QB_CELL_VALID) {
        c->status = QB_CELL_INVALID;
        snprintf(c->reason, sizeof c->reason, "reference check failed at step %d: engine token %d, CPU reference %d, "
                 "not in each other's top 5", s, (int)tokens[s], (int)ref_tokens[s]);
    }
    rc = 0;
out:
    if (ref) ref->destroy(ref);
    free(ref_tokens);
    free(a);
    free(b);
    return rc;
}

/* The peer's teacher-forced comparison, as the file gives it: recorded in the checks, never a verdict (the
 * free-running comparison below alone decides validity). */
static void teacher_forced_note(qb_cell_record *c, const qb_expected_cell *e, const char *engine) {
    if (!e->has_teacher_forced) return;
    char steps[48] = "", note[320];
    if (e->teacher_forced_steps >= 0) snprintf(steps, sizeof steps, " over %d steps", e->teacher_forced_steps);
    if (e->top5_all)
        snprintf(note, sizeof note, "peer teacher-forced (%s)%s: top-1 agreement %.1f %%, every token in the peer's "
                 "top 5", engine, steps, 100.0 * e->top1_rate);
    else
        snprintf(note, sizeof note, "peer teacher-forced (%s)%s: top-1 agreement %.1f %%, step %d outside the peer's "
                 "top 5", engine, steps, 100.0 * e->top1_rate, e->first_outside_top5);
    qb_cell_note(c, note);
}

static int expect_check(const qb_runner *r, qb_cell_group *g, const int32_t *prompt, int n_prompt,
                        const int32_t *tokens, int n_gen, qb_cell_record *c) {
    char note[320];
    if (!r->expected)
        return qb_errorf("--expect-tokens %s: the file was not read before the first cell", r->opt->expect_tokens);
    const char *engine = r->expected->engine;
    const qb_expected_cell *e = qb_expected_tokens_find(r->expected, c->model, n_prompt);
    if (!e) {
        snprintf(note, sizeof note, "expect-tokens: no entry for %s input %d", c->model, n_prompt);
        qb_cell_note(c, note);
        return 0;
    }
    teacher_forced_note(c, e, engine);
    const int32_t *exp = e->tokens;
    int n = e->n_tokens < n_gen ? e->n_tokens : n_gen;
    int s = first_difference(tokens, exp, n);
    if (s == n) {
        snprintf(note, sizeof note, "expect-tokens (%s): %d/%d steps equal", engine, n, n);
        qb_cell_note(c, note);
        return 0;
    }
    float *a = malloc(sizeof *a * (size_t)g->cfg.vocab_size);
    int rc = -1;
    if (!a) { qb_errorf("out of memory for the expect-tokens check"); goto out; }
    if (step_logits(g->backend, prompt, n_prompt, tokens, s, a) != 0) goto out;
    int ok = in_top_k(a, g->cfg.vocab_size, exp[s], QB_TOP_K);
    snprintf(note, sizeof note, "expect-tokens (%s): first %d/%d steps equal; step %d: ours %d, theirs %d, %s", engine,
             s, n, s, (int)tokens[s], (int)exp[s], ok ? "theirs in our top 5" : "theirs NOT in our top 5");
    qb_cell_note(c, note);
    if (!ok && c->status == QB_CELL_VALID) {
        c->status = QB_CELL_INVALID;
        snprintf(c->reason, sizeof c->reason, "expected tokens (%s) differ at step %d: ours %d, theirs %d, not in "
                 "our top 5", engine, s, (int)tokens[s], (int)exp[s]);
    }
    rc = 0;
out:
    free(a);
    return rc;
}

/* The logits of the first generated step must all be finite: non-finite numbers (weights of huge values
 * that overflow, or an engine bug) would make argmax pick token 0 forever, repeatably. Untimed. */
static int finite_logits_check(qb_cell_group *g, const int32_t *prompt, int n_prompt, qb_cell_record *c) {
    float *a = malloc(sizeof *a * (size_t)g->cfg.vocab_size);
    if (!a) return qb_errorf("out of memory for the logits check");
    int rc = g->backend->prefill_logits(g->backend, prompt, n_prompt, a);
    long long bad = rc == 0 ? qb_first_nonfinite_f32(a, (size_t)g->cfg.vocab_size) : -1;
    if (rc == 0 && bad < 0) qb_cell_note(c, "logits of step 0 finite");
    if (bad >= 0 && c->status == QB_CELL_VALID) {
        c->status = QB_CELL_INVALID;
        snprintf(c->reason, sizeof c->reason, "non-finite logits at step 0: logit %lld is %g (NaN/Inf from the "
                 "weights or the engine)", bad, (double)a[bad]);
    }
    free(a);
    return rc;
}

int qb_token_checks(const qb_runner *r, qb_cell_group *g, const int32_t *prompt, int n_prompt,
                    const int32_t *tokens, int n_gen, qb_cell_record *c) {
    QB_TRY(finite_logits_check(g, prompt, n_prompt, c));
    if (r->opt->check_steps > 0) QB_TRY(reference_check(r, g, prompt, n_prompt, tokens, n_gen, c));
    if (r->opt->expect_tokens[0]) QB_TRY(expect_check(r, g, prompt, n_prompt, tokens, n_gen, c));
    return 0;
}
