/* test_model_tables.c - the weight-format table and the Qwen2 family table (src/model/) against what the
 * readers do with them: bytes per weight against what the loaders allocate and what the engines' repacked
 * layout holds, for every format on real layer shapes (the Qwen2.5 presets, one layer, tp 1 and 2); the
 * roofline's bytes against the formula it had before the tables; name and checkpoint-name round trips;
 * slices that tile each full tensor; and configs/formats.json equal to the tables' JSON.
 * Usage: test_model_tables <source dir> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/roofline.h"
#include "config/model_config.h"
#include "engine/quant_repack.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "engine/weights_quant.h"
#include "io/weights_export.h"
#include "io_test_util.h"
#include "model/formats_cmd.h"
#include "model/model_family.h"
#include "model/weight_format.h"

static void check_format_rows(void) {
    for (int i = 0; i < QB_QUANT_COUNT; i++) {
        const qb_weight_format_info *f = qb_format_info((qb_quant)i);
        CHECK(f && (int)f->id == i);
        qb_quant back;
        CHECK(qb_quant_parse(f->name, &back) == 0 && back == f->id);
        CHECK(strcmp(qb_quant_name(f->id), f->name) == 0);
        CHECK(strstr(qb_quant_name_list(), f->name) != NULL);
        CHECK(qb_format_find(f->packing, f->bits) == f);
        if (f->packing == QB_PACK_DENSE) {
            CHECK(f->bits == 16 && f->n_parts == 1 && strcmp(f->parts[QB_PART_WEIGHT], "weight") == 0);
            CHECK(f->quant_method == NULL);
            continue;
        }
        CHECK(f->values_per_word * f->bits == 32);
        CHECK(f->default_group_size == 128 && f->scale_bytes == 2);
        CHECK(qb_quant_from_checkpoint(f->quant_method, f->bits, &back) == 0 && back == f->id);
        CHECK(strcmp(f->parts[QB_PART_QWEIGHT], "qweight") == 0 && strcmp(f->parts[QB_PART_QZEROS], "qzeros") == 0 &&
              strcmp(f->parts[QB_PART_SCALES], "scales") == 0);
        CHECK(f->has_g_idx == (f->n_parts == 4));
        if (f->has_g_idx) CHECK(strcmp(f->parts[QB_PART_G_IDX], "g_idx") == 0);
    }
    qb_quant q;
    CHECK(qb_quant_parse("gptq-int3", &q) == -1 && strstr(qb_last_error(), "bf16, gptq-int8, gptq-int4, awq"));
    CHECK(qb_quant_from_checkpoint("GPTQ", 4, &q) == 0 && q == QB_QUANT_GPTQ_INT4);
    CHECK(qb_quant_from_checkpoint("gptq", 3, &q) == -1 && qb_quant_from_checkpoint("awq", 8, &q) == -1);
    CHECK(strcmp(qb_quant_bits_list("gptq"), "4 or 8") == 0 && strcmp(qb_quant_bits_list("awq"), "4 only") == 0);
    CHECK(qb_format_info(QB_QUANT_COUNT) == NULL && strcmp(qb_quant_name(QB_QUANT_COUNT), "unknown") == 0);
}

/* The host bytes of a K x N linear written out from the layouts of weight_format.h / quant_pack.h. */
static size_t documented_host_bytes(const qb_weight_format_info *f, size_t K, size_t N, size_t g) {
    if (f->packing == QB_PACK_DENSE) return K * N * 2;
    size_t qweight = K * N * (size_t)f->bits / 8, qzeros = K / g * N * (size_t)f->bits / 8, scales = K / g * N * 2;
    return qweight + qzeros + scales + (f->has_g_idx ? K * 4 : 0);
}

/* qb_decode_weight_bytes as it was written before the tables (bench/roofline.c, commit 1b93b07). */
static double roofline_before(const qb_model_config *c, const qb_shard_plan *p) {
    const double group = c->group_size > 0 ? c->group_size : 128;
    double w = c->quant == QB_QUANT_GPTQ_INT8 ? 1.0 + 4.0 / group
               : (c->quant == QB_QUANT_GPTQ_INT4 || c->quant == QB_QUANT_AWQ) ? 0.5 + 4.0 / group : 2.0;
    const double H = c->hidden_size, hd = c->head_dim;
    const double q = p->q_heads * hd, kv = p->kv_heads * hd, inter = p->inter_size;
    const double per_layer_params = H * q + 2.0 * H * kv + q * H + 3.0 * H * inter;
    const double bias_and_norm_bytes = 2.0 * (q + 2.0 * kv) + 2.0 * 2.0 * H;
    return c->num_layers * (per_layer_params * w + bias_and_norm_bytes) + (double)p->vocab_size * H * 2.0 + H * 2.0 +
           H * 2.0;
}

static void check_shape(const char *preset, qb_quant q, int tp) {
    qb_model_config c;
    if (qb_model_config_resolve(preset, &c, NULL, NULL, 0) != 0) {
        fprintf(stderr, "%s: %s\n", preset, qb_last_error());
        g_failures++;
        return;
    }
    CHECK_OK(qb_model_config_apply_quant(&c, q, false));
    const qb_weight_format_info *f = qb_format_info(q);
    if (q != QB_QUANT_BF16) CHECK(c.quant_bits == f->bits && c.group_size == f->default_group_size && c.sym == f->symmetric);
    if (qb_shard_plan_check(&c, tp) != 0) return; /* illegal here (test_shard_plan covers which) */
    c.num_layers = 1;  /* real layer shapes, small host memory */
    c.vocab_size = 1024;
    qb_shard_plan p;
    CHECK_OK(qb_shard_plan_make(&c, tp, tp - 1, &p));
    CHECK(roofline_before(&c, &p) == qb_decode_weight_bytes(&c, &p));
    qb_weights w;
    if (qb_weights_random(&c, &p, 7, &w) != 0) {
        fprintf(stderr, "%s %s tp %d: %s\n", preset, f->name, tp, qb_last_error());
        g_failures++;
        return;
    }
    CHECK(w.host_bytes == qb_weights_rank_bytes(&c, &p)); /* what the allocator took = what the table says */
    for (int k = 0; k < QB_NUM_LINEAR; k++) {
        qb_slice s;
        qb_linear_slice(&c, &p, k, &s);
        qb_linear *lin = qb_layer_linear(&w.layers[0], k);
        size_t K = (size_t)s.n_cols, N = (size_t)s.n_rows, g = (size_t)c.group_size;
        CHECK(lin->in_features == (int)K && lin->out_features == (int)N);
        size_t host = qb_format_host_linear_bytes(q, K, N, g);
        CHECK(host == documented_host_bytes(f, K, N, g));
        if (q == QB_QUANT_BF16) {
            CHECK(lin->w && lin->fmt == QB_WFMT_BF16);
            continue;
        }
        CHECK(qb_linear_quant_bytes(&c, &s) == host + (s.has_bias ? N * sizeof(float) : 0));
        CHECK((lin->g_idx != NULL) == f->has_g_idx);
        /* the engines' repacked layout: the bytes the memory plans count, bits/8 + 4/g per weight */
        qb_qmat m;
        CHECK_OK(qb_qmat_from_linear(lin, &m, 1));
        size_t engine = qb_engine_qweight_bytes(f->bits, N, K) + qb_engine_sz_bytes(N, K, g);
        CHECK(engine == qb_qmat_qweight_bytes(&m) + qb_qmat_sz_bytes(&m));
        CHECK(engine == N * (K * (size_t)f->bits / 32) * 4 + N * (K / g) * 4); /* quant_repack.h's layout */
        CHECK((double)engine == qb_format_engine_bytes_per_weight(q, (int)g) * (double)K * (double)N);
        qb_qmat_free(&m);
    }
    qb_weights_free(&w);
}

/* Every rank's slices tile the full tensor of each linear; names are the checkpoint's. */
static void check_family(void) {
    qb_model_config c;
    CHECK_OK(qb_model_config_resolve("qwen2.5-7b", &c, NULL, NULL, 0));
    for (int k = 0; k < QB_NUM_LINEAR; k++) {
        const qb_linear_desc *d = qb_linear_desc_of(k);
        CHECK(d && d->id == k && strcmp(d->suffix, qb_linear_suffix[k]) == 0);
        uint64_t covered = 0, full = 0;
        for (int r = 0; r < 4; r++) {
            qb_shard_plan p;
            CHECK_OK(qb_shard_plan_make(&c, 4, r, &p));
            qb_slice s;
            qb_linear_slice(&c, &p, k, &s);
            CHECK(s.rows == qb_dim_full(&c, d->out) && s.cols == qb_dim_full(&c, d->in));
            CHECK(s.has_bias == d->has_bias);
            if (d->shard == QB_SHARD_COLUMN) {
                CHECK(s.n_cols == s.cols && s.row0 == covered);
                covered += s.n_rows;
            } else {
                CHECK(s.n_rows == s.rows && s.col0 == covered);
                covered += s.n_cols;
            }
            full = d->shard == QB_SHARD_COLUMN ? s.rows : s.cols;
        }
        CHECK(covered == full);
    }
    char name[128];
    qb_linear_tensor_name(name, sizeof name, 3, QB_LIN_UP, "qweight");
    CHECK(strcmp(name, "model.layers.3.mlp.up_proj.qweight") == 0);
    qb_tensor_name(name, sizeof name, 0, qb_qwen2_family.layer_norms[1]);
    CHECK(strcmp(name, "model.layers.0.post_attention_layernorm.weight") == 0);
    CHECK(strcmp(qb_qwen2_family.embed, "model.embed_tokens.weight") == 0 &&
          strcmp(qb_qwen2_family.lm_head, "lm_head.weight") == 0 &&
          strcmp(qb_qwen2_family.final_norm, "model.norm.weight") == 0);
    /* export: embedding, per layer 2 norms + 7 weights + 3 biases, final norm, lm_head unless tied */
    c.tie_word_embeddings = false;
    CHECK(qb_weights_export_tensor_count(&c) == 1 + (size_t)c.num_layers * 12 + 1 + 1);
}

static void check_json(const char *src) {
    char path[4200];
    snprintf(path, sizeof path, "%s/configs/formats.json", src);
    FILE *fp = fopen(path, "rb");
    char *want = qb_formats_json();
    CHECK(want != NULL);
    if (!fp) {
        fprintf(stderr, "FAILED: %s is missing: write it with `qwenbench formats --json > configs/formats.json`\n", path);
        g_failures++;
        free(want);
        return;
    }
    static char got[1 << 16];
    size_t n = fread(got, 1, sizeof got - 1, fp);
    got[n] = '\0';
    fclose(fp);
    if (want && strcmp(got, want) != 0) {
        fprintf(stderr, "FAILED: %s differs from the C tables: regenerate it with "
                        "`qwenbench formats --json > configs/formats.json`\n", path);
        g_failures++;
    }
    free(want);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char cfgdir[4096];
    snprintf(cfgdir, sizeof cfgdir, "%s/configs/models", argv[1]);
    setenv("QWENBENCH_CONFIG_DIR", cfgdir, 1);
    check_format_rows();
    static const char *const presets[] = {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b"};
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        for (int q = 0; q < QB_QUANT_COUNT; q++)
            for (int tp = 1; tp <= 2; tp++) check_shape(presets[i], (qb_quant)q, tp);
    check_family();
    check_json(argv[1]);
    if (g_failures) fprintf(stderr, "%d check(s) failed\n", g_failures);
    else printf("model tables: ok\n");
    return g_failures ? 1 : 0;
}
