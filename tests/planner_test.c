/* planner_test.c - the memory planner (src/bench/planner.h) on the Qwen2.5 presets: exact cross-checks against
 * the parameter counts and the KV formula, and the tensor-parallel size chosen for known cells.
 *
 * GPU sizes are cudaMemGetInfo totals as PyTorch reports them: H100 80GB HBM3 79.19 GiB, H200 139.80 GiB
 * (usable = 97% of that). The expected sizes follow from the per-rank numbers printed by this test:
 *   7B   bf16: weights 14.19 GiB at TP1 -> TP1 at every context (23.4 GiB at 129024 + 2048).
 *   32B  bf16: weights 61.03 GiB at TP1 -> TP1 up to 30720 (71.4 GiB; the published transformers run used
 *        one A100 80GB there too), TP2 from 63488 (TP1 would need 79.5 GiB) on H100.
 *   72B  bf16: weights 135.43 GiB at TP1, 68.88 at TP2 (the embedding table is replicated) -> on H200 TP2
 *        (TP1 needs 137.6 GiB > 135.6 usable); on H100 TP2 at input 1 (71.7 GiB) but TP4 at 30720
 *        (TP2 needs 77.10 GiB > 76.82 usable).
 * Run: ctest -R planner (or build/tests/planner_test).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench/planner.h"
#include "engine/shard_plan.h"
#include "util/error.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
static const size_t H100 = (size_t)(79.19 * GIB), H200 = (size_t)(139.80 * GIB);
static int failures = 0;

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            failures++;                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                           \
            fprintf(stderr, "\n");                                  \
        }                                                           \
    } while (0)

static qb_model_config load(const char *name) {
    qb_model_config c;
    bool is_checkpoint = false;
    char dir[1024];
    if (qb_model_config_resolve(name, &c, &is_checkpoint, dir, sizeof dir) != 0) {
        fprintf(stderr, "FAIL: cannot load preset %s: %s\n", name, qb_last_error());
        failures++;
        memset(&c, 0, sizeof c);
    }
    return c;
}

static int choose(const qb_model_config *c, int context, size_t gpu, int gpus, int forced, qb_plan_result *r) {
    qb_plan_request q = {.context_len = context, .gen_len = 2048, .gpu_bytes = gpu, .gpus = gpus, .forced_tp = forced};
    return qb_plan_choose_tp(c, &q, r);
}

static void expect_tp(const char *model, int context, size_t gpu, const char *gpu_name, int want) {
    qb_model_config c = load(model);
    qb_plan_result r;
    int rc = choose(&c, context, gpu, 8, 0, &r);
    char numbers[200] = "";
    if (rc == 0) qb_plan_format(&r.chosen, numbers, sizeof numbers);
    printf("%-12s %-5s context %6d + 2048 on %s: %s%d  %s\n", model, qb_quant_name(c.quant), context, gpu_name,
           rc == 0 ? "TP" : "error ", rc == 0 ? r.tp : rc, rc == 0 ? numbers : qb_last_error());
    CHECK(rc == 0 && r.tp == want, "%s context %d on %s: want TP%d, got %s%d (%s)", model, context, gpu_name, want,
          rc == 0 ? "TP" : "error ", rc == 0 ? r.tp : rc, rc == 0 ? numbers : qb_last_error());
}

/* TP1 weights = 2 bytes per parameter, except biases and norms which the engine keeps in fp32 (2 more each). */
static void check_against_param_count(const char *model) {
    qb_model_config c = load(model);
    qb_rank_memory m1, m2;
    if (qb_plan_rank_memory(&c, 1, 1, 0, &m1) != 0 || qb_plan_rank_memory(&c, 2, 1, 0, &m2) != 0) {
        CHECK(0, "%s: %s", model, qb_last_error());
        return;
    }
    size_t H = (size_t)c.hidden_size, n_qkv = (size_t)(c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
    size_t fp32_values = (size_t)c.num_layers * (n_qkv + 2 * H) + H;
    size_t want1 = 2 * qb_model_param_count(&c) + 2 * fp32_values;
    CHECK(m1.weights_bytes == want1, "%s TP1 weights %zu bytes, want 2 x %zu params + 2 x %zu fp32 values = %zu", model,
          m1.weights_bytes, qb_model_param_count(&c), fp32_values, want1);
    /* two TP2 shards hold everything once, plus the replicated embedding and norms once more */
    size_t replicated = (size_t)c.vocab_size * H * 2 + ((size_t)c.num_layers * 2 * H + H) * 4;
    CHECK(2 * m2.weights_bytes == m1.weights_bytes + replicated,
          "%s: 2 x TP2 shard = %zu bytes, want TP1 %zu + replicated %zu", model, 2 * m2.weights_bytes,
          m1.weights_bytes, replicated);
    printf("%-12s params %zu (%.2f GB in bf16): TP1 weights %.2f GiB, TP2 shard %.2f GiB\n", model,
           qb_model_param_count(&c), 2.0 * qb_model_param_count(&c) / 1e9, m1.weights_bytes / GIB,
           m2.weights_bytes / GIB);
}

static void check_kv(void) {
    qb_model_config c = load("qwen2.5-7b");
    qb_rank_memory m;
    CHECK(qb_plan_rank_memory(&c, 1, 30720, 2048, &m) == 0, "%s", qb_last_error());
    size_t want = (size_t)2 * 28 * 4 * 128 * 32768 * 2; /* K and V, layers, kv heads, head_dim, positions, bf16 */
    CHECK(m.kv_cache_bytes == want, "7B KV at 32768 positions: %zu bytes, want %zu", m.kv_cache_bytes, want);
    qb_model_config c72 = load("qwen2.5-72b");
    qb_rank_memory m8;
    CHECK(qb_plan_rank_memory(&c72, 8, 30720, 2048, &m8) == 0, "%s", qb_last_error());
    want = (size_t)2 * 80 * 1 * 128 * 32768 * 2; /* 8 kv heads over 8 ranks: one each */
    CHECK(m8.kv_cache_bytes == want, "72B TP8 KV: %zu bytes, want %zu", m8.kv_cache_bytes, want);
}

static void check_does_not_fit(void) {
    qb_model_config c = load("qwen2.5-72b");
    qb_plan_result r;
    int rc = choose(&c, 129024, H100, 2, 0, &r);
    const char *msg = qb_last_error();
    printf("72B 129024 on 2 x H100: %s\n", msg);
    CHECK(rc == -1 && strncmp(msg, "does not fit:", 13) == 0, "want 'does not fit:', got rc %d '%s'", rc, msg);
    CHECK(strstr(msg, "TP4 would fit") != NULL, "the message should say TP4 would fit: %s", msg);
    CHECK(r.n_candidates == 4, "all four sizes computed, got %d", r.n_candidates);

    rc = choose(&c, 1, H100, 2, 1, &r); /* forced --tp 1 */
    msg = qb_last_error();
    CHECK(rc == -1 && strncmp(msg, "does not fit:", 13) == 0 && strstr(msg, "--tp 1"), "forced TP1: got '%s'", msg);
    rc = choose(&c, 1, H100, 2, 2, &r); /* forced --tp 2 fits */
    CHECK(rc == 0 && r.tp == 2, "forced TP2 at input 1 should fit: %s", rc ? qb_last_error() : "");
    rc = choose(&c, 1, H100, 2, 4, &r); /* more ranks than the job has: an error, not DOES_NOT_FIT */
    msg = qb_last_error();
    CHECK(rc == -1 && strncmp(msg, "does not fit:", 13) != 0, "forced TP4 with 2 GPUs: got '%s'", msg);
}

static void check_quantized(void) {
    qb_model_config c = load("qwen2.5-72b");
    c.quant = QB_QUANT_GPTQ_INT4;
    c.quant_bits = 4;
    c.group_size = 128;
    c.intermediate_size = 29696; /* as in the GPTQ/AWQ releases */
    qb_plan_result r;
    int rc = choose(&c, 1, H100, 8, 0, &r);
    CHECK(rc == 0 && r.tp == 1, "72B GPTQ-int4 at input 1 should fit one H100: %s", rc ? qb_last_error() : "");
    if (rc == 0) printf("72B gptq-int4 context 1: TP1 weights %.2f GiB\n", r.chosen.weights_bytes / GIB);

    qb_model_config s = load("qwen2.5-0.5b");
    s.quant = QB_QUANT_GPTQ_INT4;
    s.quant_bits = 4;
    s.group_size = 128;
    rc = choose(&s, 1, H100, 2, 2, &r); /* 0.5B quantized cannot go past TP1 (o_proj slice 448 % 128) */
    const char *msg = qb_last_error();
    CHECK(rc == -1 && strncmp(msg, "does not fit:", 13) != 0 && strstr(msg, "group_size"),
          "0.5B int4 at --tp 2: want the shard-plan error, got '%s'", msg);
}

int main(void) {
    check_against_param_count("qwen2.5-7b");
    check_against_param_count("qwen2.5-32b");
    check_against_param_count("qwen2.5-72b");
    check_kv();
    expect_tp("qwen2.5-7b", 30720, H100, "H100", 1);
    expect_tp("qwen2.5-7b", 129024, H100, "H100", 1);
    expect_tp("qwen2.5-32b", 1, H100, "H100", 1);
    expect_tp("qwen2.5-32b", 30720, H100, "H100", 1);
    expect_tp("qwen2.5-32b", 63488, H100, "H100", 2);
    expect_tp("qwen2.5-32b", 129024, H200, "H200", 1);
    expect_tp("qwen2.5-72b", 1, H200, "H200", 2);
    expect_tp("qwen2.5-72b", 30720, H200, "H200", 2);
    expect_tp("qwen2.5-72b", 1, H100, "H100", 2);
    expect_tp("qwen2.5-72b", 30720, H100, "H100", 4);
    expect_tp("qwen2.5-72b", 129024, H100, "H100", 4);
    check_does_not_fit();
    check_quantized();
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("planner: all checks passed\n");
    return failures ? 1 : 0;
}
