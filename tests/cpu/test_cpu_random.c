/* test_cpu_random.c - the CPU engine on random weights (qwen2.5-tiny preset): tensor parallelism must not
 * change the answer, runs must repeat exactly, and misuse must come back as an error, not a crash.
 *
 *   mpirun -np 2 test_cpu_random     (TP1 on each rank, then TP2 over both; compared)
 *   test_cpu_random                  (a world of one: the TP1 checks only)
 *
 * Tolerance TP1 vs TP2 logits: 1e-5 of the largest |logit|. The two differ only in how the o_proj and
 * down_proj partial sums are split and added (two halves all-reduced instead of one sum), i.e. fp32 rounding
 * of a handful of additions per layer: ~1e-7 relative. Tokens must be identical; a greedy step whose
 * top-2 gap is under the tolerance would be reported as such rather than as a token mismatch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/prompt.h"
#include "config/model_config.h"
#include "comm/dist.h"
#include "engine/backend.h"
#include "engine/shard_plan.h"
#include "util/error.h"

#define N_PROMPT 24
#define N_GEN 8
#define WEIGHT_SEED 7
#define TP_REL_TOL 1e-5

static int g_rank, g_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            if (g_failures++ < 10) fprintf(stderr, "FAIL (rank %d): ", g_rank); \
            if (g_failures <= 10) fprintf(stderr, __VA_ARGS__);                 \
        }                                                                       \
    } while (0)

typedef struct {
    float *logits;
    int32_t tokens[N_GEN], tokens_again[N_GEN];
} run_result;

static int run_tp(qb_dist *d, const qb_model_config *cfg, int tp, const int32_t *prompt, run_result *r) {
    QB_TRY(qb_dist_set_tp(d, tp));
    qb_shard_plan plan;
    QB_TRY(qb_shard_plan_make(cfg, d->tp_size, d->tp_rank, &plan));
    qb_backend_params params = {.cfg = cfg, .plan = &plan, .dist = d, .weight_seed = WEIGHT_SEED,
                                .max_seq_len = N_PROMPT + N_GEN, .max_prompt_len = N_PROMPT, .threads = 2};
    qb_backend *b;
    QB_TRY(qb_cpu_backend_create(&params, &b));
    int rc = b->prefill_logits(b, prompt, N_PROMPT, r->logits);
    double steps[N_GEN];
    qb_gen_timing timing = {0, steps, NULL};
    if (rc == 0) rc = b->generate(b, prompt, N_PROMPT, N_GEN, r->tokens, &timing);
    if (rc == 0) rc = b->generate(b, prompt, N_PROMPT, N_GEN, r->tokens_again, NULL);
    if (rc == 0) {
        /* misuse: more tokens than the cache holds, a token outside the vocabulary */
        int32_t out[N_GEN + 2];
        CHECK(b->generate(b, prompt, N_PROMPT, N_GEN + 2, out, NULL) != 0, "generate past max_seq_len succeeded\n");
        int32_t bad[2] = {0, cfg->vocab_size};
        CHECK(b->generate(b, bad, 2, 1, out, NULL) != 0, "a token outside the vocabulary was accepted\n");
        /* the engine still works after refused calls */
        int32_t after[N_GEN];
        rc = b->generate(b, prompt, N_PROMPT, N_GEN, after, NULL);
        if (rc == 0) CHECK(memcmp(after, r->tokens, sizeof after) == 0, "tokens changed after refused calls\n");
        qb_memory_stats m;
        b->memory(b, &m);
        CHECK(m.peak_allocated_bytes == m.weights_bytes + m.kv_cache_bytes + m.workspace_bytes && m.weights_bytes > 0,
              "memory stats: peak %zu != weights %zu + kv %zu + workspace %zu\n", m.peak_allocated_bytes,
              m.weights_bytes, m.kv_cache_bytes, m.workspace_bytes);
        CHECK(strcmp(b->name, "cpu") == 0, "backend name \"%s\"\n", b->name);
    }
    b->destroy(b);
    return rc;
}

static int run(qb_dist *d) {
    qb_model_config cfg;
    const char *path = QB_SOURCE_DIR "/configs/models/qwen2.5-tiny.json";
    if (qb_model_config_load_file(path, &cfg) != 0) return qb_error_prefix("loading %s", path);
    int32_t prompt[N_PROMPT];
    qb_prompt_fill(prompt, N_PROMPT, 0, 0, 1, cfg.vocab_size);
    run_result one = {0}, two = {0};
    one.logits = malloc((size_t)cfg.vocab_size * sizeof(float));
    two.logits = malloc((size_t)cfg.vocab_size * sizeof(float));
    if (!one.logits || !two.logits) return qb_errorf("out of memory");
    int rc = run_tp(d, &cfg, 1, prompt, &one);
    if (rc == 0) {
        CHECK(memcmp(one.tokens, one.tokens_again, sizeof one.tokens) == 0, "TP1: a second run gave other tokens\n");
        if (g_rank == 0) {
            printf("TP1 tokens:");
            for (int i = 0; i < N_GEN; i++) printf(" %d", one.tokens[i]);
            printf("\n");
        }
    }
    if (rc == 0 && d->world_size == 2) {
        rc = run_tp(d, &cfg, 2, prompt, &two);
        if (rc == 0) {
            double scale = 0, max_diff = 0;
            for (int i = 0; i < cfg.vocab_size; i++) scale = fmax(scale, fabs(one.logits[i]));
            for (int i = 0; i < cfg.vocab_size; i++) {
                double diff = fabs(one.logits[i] - two.logits[i]);
                max_diff = fmax(max_diff, diff);
                CHECK(diff <= TP_REL_TOL * scale, "logit[%d]: TP2 %.9g vs TP1 %.9g (tol %.3g = 1e-5 of max |logit|)\n",
                      i, two.logits[i], one.logits[i], TP_REL_TOL * scale);
            }
            for (int i = 0; i < N_GEN; i++)
                CHECK(two.tokens[i] == one.tokens[i], "greedy token %d: TP2 %d vs TP1 %d (tol: identical)\n", i,
                      two.tokens[i], one.tokens[i]);
            CHECK(memcmp(two.tokens, two.tokens_again, sizeof two.tokens) == 0, "TP2: a second run differs\n");
            if (g_rank == 0) printf("TP2 vs TP1: max |logit diff| %.3g of max |logit| %.3g\n", max_diff, scale);
        }
    }
    free(one.logits);
    free(two.logits);
    return rc;
}

int main(int argc, char **argv) {
    qb_dist d;
    if (qb_dist_init(&argc, &argv, 120.0, &d) != 0) {
        fprintf(stderr, "test_cpu_random: %s\n", qb_last_error());
        return 1;
    }
    g_rank = d.world_rank;
    int rc = run(&d);
    if (rc != 0) fprintf(stderr, "test_cpu_random (rank %d): %s\n", g_rank, qb_last_error());
    int all_ok = 0;
    if (qb_dist_all_ok(&d, rc == 0 && g_failures == 0, &all_ok) != 0) all_ok = 0;
    qb_dist_finalize(&d);
    if (g_rank == 0) printf("test_cpu_random: %s\n", all_ok ? "passed" : "FAILED");
    return all_ok ? 0 : 1;
}
