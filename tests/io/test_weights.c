/* test_weights.c - random weights and checkpoint loading for the tiny preset:
 *   - each rank's random weights at TP 2 and 4 equal the slices of the TP 1 random weights (bit-exact);
 *   - a written checkpoint (single file, and 3 shards with an index) loads back bit-exactly at TP 1, 2, 4;
 *   - tied embeddings: lm_head aliases the embedding rows of the rank's vocabulary;
 *   - refusals: shape mismatch, missing tensor, extra tensor, quantized config.
 * Usage: test_weights <source dir> <scratch dir> */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/model_config.h"
#include "engine/random_init.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "io/weights_export.h"
#include "io_test_util.h"

#define SEED 1234u

static int g_reported = 0;

static void report(const char *what, int tp, int rank, uint64_t index, double got, double want) {
    g_failures++;
    if (g_reported++ < 10)
        fprintf(stderr, "FAILED %s tp %d rank %d element %llu: %g != %g (exact match required: same bf16 bits)\n",
                what, tp, rank, (unsigned long long)index, got, want);
}

/* a (this rank, [n_rows][n_cols]) against the block of full (TP 1, [rows][cols]) */
static void cmp_block(const char *what, int tp, int rank, const uint16_t *a, const uint16_t *full, const qb_slice *s) {
    for (uint64_t r = 0; r < s->n_rows; r++)
        for (uint64_t c = 0; c < s->n_cols; c++) {
            uint16_t x = a[r * s->n_cols + c], y = full[(s->row0 + r) * s->cols + s->col0 + c];
            if (x != y) report(what, tp, rank, r * s->n_cols + c, qb_bf16_to_float(x), qb_bf16_to_float(y));
        }
}

static void cmp_floats(const char *what, int tp, int rank, const float *a, const float *b, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) report(what, tp, rank, i, a[i], b[i]);
}

/* w (a rank's weights) against full (TP 1 weights of the same model) */
static void cmp_weights(const qb_weights *w, const qb_weights *full, const char *tag) {
    const qb_model_config *c = &w->cfg;
    const qb_shard_plan *p = &w->plan;
    const uint64_t H = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    int tp = p->tp_size, rank = p->tp_rank;
    char what[160];
    CHECK(memcmp(w->embed, full->embed, V * H * 2) == 0);
    qb_slice lm = {.rows = V, .cols = H, .row0 = (uint64_t)p->vocab_start, .n_rows = (uint64_t)p->vocab_size, .n_cols = H};
    snprintf(what, sizeof what, "%s lm_head", tag);
    cmp_block(what, tp, rank, w->lm_head.w, full->lm_head.w, &lm);
    CHECK(w->lm_head.out_features == p->vocab_size && w->lm_head.in_features == c->hidden_size);
    if (c->tie_word_embeddings) CHECK(w->lm_head.owns_w == 0 && w->lm_head.w == w->embed + (size_t)p->vocab_start * H);
    else CHECK(w->lm_head.owns_w == 1);
    cmp_floats(tag, tp, rank, w->final_norm, full->final_norm, H);
    for (int i = 0; i < c->num_layers; i++) {
        cmp_floats(tag, tp, rank, w->layers[i].input_norm, full->layers[i].input_norm, H);
        cmp_floats(tag, tp, rank, w->layers[i].post_attn_norm, full->layers[i].post_attn_norm, H);
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            const qb_linear *a = qb_layer_linear(&w->layers[i], k), *b = qb_layer_linear(&full->layers[i], k);
            snprintf(what, sizeof what, "%s layer %d %s", tag, i, qb_linear_suffix[k]);
            CHECK(a->fmt == QB_WFMT_BF16 && a->out_features == (int)s.n_rows && a->in_features == (int)s.n_cols);
            cmp_block(what, tp, rank, a->w, b->w, &s);
            if (s.has_bias) cmp_floats(what, tp, rank, a->bias, b->bias + s.row0, s.n_rows);
            else CHECK(a->bias == NULL);
        }
    }
}

static void check_values(const qb_weights *w) {
    /* never zeros, within the initializer scale, norms near 1 */
    size_t n = (size_t)w->cfg.vocab_size * (size_t)w->cfg.hidden_size, zeros = 0;
    for (size_t i = 0; i < n; i++) {
        float x = qb_bf16_to_float(w->embed[i]);
        if (x == 0.0f) zeros++;
        if (!(fabsf(x) <= QB_RANDOM_SCALE * 1.01f)) report("embed scale", 1, 0, i, x, QB_RANDOM_SCALE);
    }
    CHECK(zeros < n / 1000);
    for (int i = 0; i < w->cfg.hidden_size; i++)
        CHECK(w->final_norm[i] >= 0.89f && w->final_norm[i] <= 1.11f);
}

static int plan(const qb_model_config *c, int tp, int rank, qb_shard_plan *p) {
    int rc = qb_shard_plan_make(c, tp, rank, p);
    CHECK_OK(rc);
    return rc;
}

static void test_model(const qb_model_config *c, const char *scratch, const char *tag) {
    qb_shard_plan p1;
    qb_weights full;
    if (plan(c, 1, 0, &p1) || qb_weights_random(c, &p1, SEED, &full) != 0) {
        fprintf(stderr, "%s: %s\n", tag, qb_last_error());
        g_failures++;
        return;
    }
    check_values(&full);
    CHECK(full.host_bytes == qb_weights_rank_bytes(c, &p1));
    const int tps[3] = {1, 2, 4};
    for (int t = 0; t < 3; t++)
        for (int r = 0; r < tps[t]; r++) {
            qb_shard_plan p;
            qb_weights w;
            if (plan(c, tps[t], r, &p)) continue;
            CHECK_OK(qb_weights_random(c, &p, SEED, &w));
            CHECK(w.host_bytes == qb_weights_rank_bytes(c, &p));
            cmp_weights(&w, &full, "random");
            qb_weights_free(&w);
        }
    /* another seed differs */
    qb_weights other;
    CHECK_OK(qb_weights_random(c, &p1, SEED + 1, &other));
    CHECK(memcmp(other.embed, full.embed, 64) != 0);
    qb_weights_free(&other);
    /* write and load back, single file and sharded */
    for (int shards = 1; shards <= 3; shards += 2) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s-%d", scratch, tag, shards);
        mkdir(dir, 0755);
        CHECK_OK(qb_weights_export(dir, &full, shards));
        qb_model_config back;
        bool is_ckpt = false;
        CHECK_OK(qb_model_config_resolve(dir, &back, &is_ckpt, NULL, 0));
        CHECK(is_ckpt && back.hidden_size == c->hidden_size && back.tie_word_embeddings == c->tie_word_embeddings);
        for (int t = 0; t < 3; t++)
            for (int r = 0; r < tps[t]; r++) {
                qb_shard_plan p;
                qb_weights w;
                if (plan(&back, tps[t], r, &p)) continue;
                int rc = qb_weights_load(dir, &back, &p, &w);
                CHECK_OK(rc);
                if (rc) continue;
                cmp_weights(&w, &full, shards == 1 ? "loaded single" : "loaded sharded");
                qb_weights_free(&w);
            }
    }
    qb_weights_free(&full);
}

static void test_refusals(const qb_model_config *tiny, const char *scratch) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/untied-1", scratch); /* written by test_model */
    qb_shard_plan p;
    qb_weights w;
    qb_model_config c = *tiny;
    c.intermediate_size = 256;
    CHECK_OK(qb_shard_plan_make(&c, 1, 0, &p));
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w),
              "model.safetensors: model.layers.0.mlp.gate_proj.weight: shape [384, 128] but config says [256, 128]");
    c = *tiny;
    c.num_layers = 3;
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w), "tensor \"model.layers.2.input_layernorm.weight\" is missing");
    c.num_layers = 1;
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w), "tensor \"model.layers.1.input_layernorm.weight\" is not used by a 1-layer Qwen2 model");
    c = *tiny;
    c.tie_word_embeddings = true; /* checkpoint has lm_head.weight: tolerated and ignored */
    CHECK_OK(qb_weights_load(dir, &c, &p, &w));
    qb_weights_free(&w);
    c = *tiny;
    c.quant = QB_QUANT_GPTQ_INT4, c.quant_bits = 4, c.group_size = 128;
    /* a bf16 checkpoint under a quantized config: the packed tensors are missing (quantized loading and random
     * packed weights are tested in tests/quant/) */
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w), "tensor \"model.layers.0.self_attn.q_proj.qweight\" is missing");
    CHECK_OK(qb_weights_random(&c, &p, 1, &w));
    qb_weights_free(&w);
    snprintf(dir, sizeof dir, "%s/tied-1", scratch); /* no lm_head.weight */
    c = *tiny;
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w), "\"lm_head.weight\" is missing and tie_word_embeddings is false");
    snprintf(dir, sizeof dir, "%s/does-not-exist", scratch);
    CHECK_ERR(qb_weights_load(dir, &c, &p, &w), "does-not-exist: cannot resolve the model directory");
    CHECK_ERR(qb_weights_load(scratch, &c, &p, &w), "no model.safetensors or model.safetensors.index.json");
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    char cfgdir[4096];
    snprintf(cfgdir, sizeof cfgdir, "%s/configs/models", argv[1]);
    setenv("QWENBENCH_CONFIG_DIR", cfgdir, 1);
    mkdir(argv[2], 0755);
    char name[64];
    qb_tensor_name(name, sizeof name, 3, "mlp.up_proj.weight");
    CHECK(strcmp(name, "model.layers.3.mlp.up_proj.weight") == 0);
    qb_tensor_name(name, sizeof name, -1, "model.norm.weight");
    CHECK(strcmp(name, "model.norm.weight") == 0);
    qb_model_config tiny;
    CHECK_OK(qb_model_config_resolve("qwen2.5-tiny", &tiny, NULL, NULL, 0));
    if (g_failures) return test_finish("test_weights");
    test_model(&tiny, argv[2], "untied");
    qb_model_config tied = tiny;
    tied.tie_word_embeddings = true;
    test_model(&tied, argv[2], "tied");
    test_refusals(&tiny, argv[2]);
    return test_finish("test_weights");
}
