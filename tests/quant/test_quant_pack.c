/* test_quant_pack.c - the packed layouts and the quantized reference, without checkpoints:
 *   - f16 <-> float: every finite f16 round-trips; round-to-nearest-even cases, subnormals, overflow;
 *   - GPTQ int4 / int8 and AWQ words of known values decode to the expected elements (LSB-first packing,
 *     zeros stored minus one for GPTQ, the AWQ order [0,2,4,6,1,3,5,7]); scales indexed per (group, column);
 *   - qb_ref_dequant_rows = qb_ref_dequant_at element by element, qb_ref_matmul_quant = the dot product with
 *     the dequantized rows (bit-exact: same summation);
 *   - the CUDA kernels' repacked layout (quant_repack.h) holds exactly the same matrix as each format;
 *   - a host model of the CUDA GEMV's arithmetic (byte-permute magic numbers, piece / group indexing) on the
 *     repacked layout agrees with the reference (relative L2 1e-5);
 *   - random quantized weights: TP2 slices equal the slices of TP1 (every format), realistic statistics
 *     (mean ~0, std ~0.02 like the bf16 weights), reproducible from the seed;
 *   - a slice that splits a quantization group is refused, naming the sizes.
 * Run: test_quant_pack (no arguments). Tolerances: all comparisons exact except the statistics (std in
 * [0.012, 0.03]: uniform q with scale 0.0346/2^(bits-1) x U[0.75, 1.25) gives about 0.02).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/cpu_quant_ops.h"
#include "engine/quant_pack.h"
#include "engine/quant_repack.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "engine/weights_quant.h"
#include "util/error.h"

static int g_fail;

#define CHECK(cond, ...)                                                                                             \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            if (g_fail++ < 20) {                                                                                     \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                 \
                fprintf(stderr, __VA_ARGS__);                                                                        \
                fprintf(stderr, "\n");                                                                               \
            }                                                                                                        \
        }                                                                                                            \
    } while (0)

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue; /* NaN */
        uint16_t back = qb_float_to_f16(qb_f16_to_float((uint16_t)h));
        if (back != h && bad++ < 5) CHECK(0, "f16 0x%04x -> %g -> 0x%04x (must round-trip)", h, qb_f16_to_float((uint16_t)h), back);
    }
    struct { float f; uint16_t h; } cases[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00},
        {1.0f + 1.0f / 2048, 0x3c00},          /* tie -> even */
        {1.0f + 3.0f / 2048, 0x3c02},          /* tie -> even (up) */
        {5.9604645e-8f, 0x0001},               /* smallest subnormal 2^-24 */
        {2.9802322e-8f, 0x0000},               /* 2^-25: tie -> 0 */
        {4.4703484e-8f, 0x0001},               /* 1.5 * 2^-25 -> 2^-24 */
        {6.1035156e-5f, 0x0400},               /* smallest normal */
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {INFINITY, 0x7c00},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t got = qb_float_to_f16(cases[i].f);
        CHECK(got == cases[i].h, "qb_float_to_f16(%.9g) = 0x%04x, want 0x%04x", cases[i].f, got, cases[i].h);
    }
    CHECK(qb_f16_to_float(0x3555) == 0.333251953125f, "f16 0x3555 = %.12g", qb_f16_to_float(0x3555));
}

/* A hand-made linear K = 64, N = 8, group 32, all words equal to the given ones. */
typedef struct {
    qb_linear l;
    int32_t qweight[64 * 8], qzeros[2 * 8], g_idx[64];
    uint16_t scales[2 * 8];
} small_linear;

static void make_small(small_linear *s, qb_weight_format fmt, int bits, uint32_t qword, uint32_t zword) {
    memset(s, 0, sizeof *s);
    s->l.fmt = fmt;
    s->l.bits = bits;
    s->l.group_size = 32;
    s->l.in_features = 64;
    s->l.out_features = 8;
    for (int i = 0; i < 64 * 8; i++) s->qweight[i] = (int32_t)qword;
    for (int i = 0; i < 2 * 8; i++) s->qzeros[i] = (int32_t)zword;
    for (int g = 0; g < 2; g++)
        for (int n = 0; n < 8; n++) s->scales[g * 8 + n] = qb_float_to_f16(0.5f * (float)(n + 1) * (float)(g + 1));
    for (int k = 0; k < 64; k++) s->g_idx[k] = k / 32;
    s->l.qweight = s->qweight;
    s->l.qzeros = s->qzeros;
    s->l.scales = s->scales;
    s->l.g_idx = fmt == QB_WFMT_GPTQ ? s->g_idx : NULL;
}

static float scale_of(int n, int k) { return 0.5f * (float)(n + 1) * (float)(k / 32 + 1); }

static void check_consistent(const small_linear *s, const char *what) {
    float rows[8 * 64];
    qb_ref_dequant_rows(&s->l, 0, 8, rows);
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 64; k++)
            CHECK(rows[n * 64 + k] == qb_ref_dequant_at(&s->l, n, k), "%s: dequant_rows[%d][%d] = %g, dequant_at %g",
                  what, n, k, rows[n * 64 + k], qb_ref_dequant_at(&s->l, n, k));
    float x[2 * 64], y[2 * 8];
    for (int i = 0; i < 2 * 64; i++) x[i] = (float)((i * 7) % 13) * 0.125f - 0.75f;
    qb_ref_matmul_quant(x, &s->l, 2, y, 1);
    for (int m = 0; m < 2; m++)
        for (int n = 0; n < 8; n++) {
            float acc[8] = {0}, sum = 0;
            for (int k = 0; k < 64; k += 8)
                for (int j = 0; j < 8; j++) acc[j] += x[m * 64 + k + j] * rows[n * 64 + k + j];
            for (int j = 0; j < 8; j++) sum += acc[j];
            CHECK(y[m * 8 + n] == sum, "%s: matmul y[%d][%d] = %.9g, want %.9g (exact)", what, m, n, y[m * 8 + n], sum);
        }
}

static void test_layouts(void) {
    small_linear s;
    /* GPTQ int4: qweight word 0x76543210 -> element k (along K) is k % 8; zeros stored n -> zero n + 1 */
    make_small(&s, QB_WFMT_GPTQ, 4, 0x76543210u, 0x76543210u);
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 64; k++) {
            float want = (float)((k % 8) - (n + 1)) * scale_of(n, k);
            CHECK(qb_ref_dequant_at(&s.l, n, k) == want, "gptq-int4 W[%d][%d] = %g, want %g", n, k,
                  qb_ref_dequant_at(&s.l, n, k), want);
        }
    check_consistent(&s, "gptq-int4");
    /* GPTQ int8: bytes 0x01, 0x80, 0x7f, 0xff along K; zeros stored 127 (0x7f7f7f7f) -> 128 */
    make_small(&s, QB_WFMT_GPTQ, 8, 0xff7f8001u, 0x7f7f7f7fu);
    const int bytes[4] = {0x01, 0x80, 0x7f, 0xff};
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 64; k++) {
            float want = (float)(bytes[k % 4] - 128) * scale_of(n, k);
            CHECK(qb_ref_dequant_at(&s.l, n, k) == want, "gptq-int8 W[%d][%d] = %g, want %g", n, k,
                  qb_ref_dequant_at(&s.l, n, k), want);
        }
    check_consistent(&s, "gptq-int8");
    /* GPTQ int8 zeros per column: word 0x04030201 -> columns 0..3 stored 1..4 (zero 2..5) */
    make_small(&s, QB_WFMT_GPTQ, 8, 0x00000000u, 0x04030201u);
    for (int n = 0; n < 8; n++)
        CHECK(qb_ref_dequant_at(&s.l, n, 0) == -(float)(n % 4 + 2) * scale_of(n, 0), "gptq-int8 zero of column %d", n);
    /* AWQ: nibble i of the word holds column ORDER[i], ORDER = [0,2,4,6,1,3,5,7]: word 0x76543210 puts
     * value i in column ORDER[i], so column j holds REVERSE[j] = [0,4,1,5,2,6,3,7][j]; zeros 0x11111111 = 1 */
    make_small(&s, QB_WFMT_AWQ, 4, 0x76543210u, 0x11111111u);
    const int reverse[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int n = 0; n < 8; n++)
        for (int k = 0; k < 64; k++) {
            float want = (float)(reverse[n] - 1) * scale_of(n, k);
            CHECK(qb_ref_dequant_at(&s.l, n, k) == want, "awq W[%d][%d] = %g, want %g", n, k,
                  qb_ref_dequant_at(&s.l, n, k), want);
        }
    check_consistent(&s, "awq");
    /* AWQ zeros in the same interleaved order: word 0x76543210 -> column j zero REVERSE[j]; q all 15 */
    make_small(&s, QB_WFMT_AWQ, 4, 0xffffffffu, 0x76543210u);
    for (int n = 0; n < 8; n++)
        CHECK(qb_ref_dequant_at(&s.l, n, 5) == (float)(15 - reverse[n]) * scale_of(n, 5), "awq zero of column %d", n);
    for (int j = 0; j < 8; j++) CHECK(qb_awq_shift(j) == 4 * reverse[j], "qb_awq_shift(%d) = %d", j, qb_awq_shift(j));
}

/* ---- a host model of kernels/linear/gemv_quant.cu's arithmetic (the GPU test checks the kernel itself) ---- */

static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t sel) { /* PTX prmt, default mode */
    uint64_t both = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= (uint32_t)((both >> (8 * ((sel >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

static float magic(uint32_t src, int b) {
    uint32_t u = byte_perm(src, 0x4B000000u, 0x7650u + (uint32_t)b);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* y[n] as the kernel computes it: per 16-byte piece of row n, sum_j (q_j - zero) * x_j, times the scale. */
static float model_gemv_row(const qb_qmat *m, const float *x, int n) {
    const int vpp = 128 / m->bits, pieces = m->k / vpp, ppg = m->group_size / vpp, groups = m->k / m->group_size;
    const uint32_t *row = m->qweight + (size_t)n * pieces * 4;
    double acc = 0;
    for (int p = 0; p < pieces; p++) {
        uint32_t sz = m->sz[(size_t)n * groups + p / ppg];
        float scale = qb_f16_to_float((uint16_t)(sz & 0xffff)), zc = 8388608.0f + (float)(sz >> 16);
        const float *xf = x + (size_t)p * vpp;
        float part = 0;
        for (int wi = 0; wi < 4; wi++) {
            uint32_t w = row[p * 4 + wi];
            if (m->bits == 4) {
                uint32_t lo = w & 0x0F0F0F0Fu, hi = (w >> 4) & 0x0F0F0F0Fu;
                for (int b = 0; b < 4; b++) {
                    part += (magic(lo, b) - zc) * xf[wi * 8 + 2 * b];
                    part += (magic(hi, b) - zc) * xf[wi * 8 + 2 * b + 1];
                }
            } else {
                for (int b = 0; b < 4; b++) part += (magic(w, b) - zc) * xf[wi * 4 + b];
            }
        }
        acc += (double)scale * part;
    }
    return (float)acc;
}

static void test_kernel_model(qb_weights *w, const char *name) {
    qb_linear *l = &w->layers[0].down;
    qb_qmat m;
    if (qb_qmat_from_linear(l, &m, 1) != 0) {
        CHECK(0, "%s: repack: %s", name, qb_last_error());
        return;
    }
    float *x = malloc((size_t)l->in_features * sizeof *x), *ref = malloc((size_t)l->out_features * sizeof *ref);
    for (int k = 0; k < l->in_features; k++) x[k] = qb_bf16_to_float(qb_float_to_bf16((float)((k * 37) % 101) / 50.0f - 1.0f));
    qb_ref_matmul_quant(x, l, 1, ref, 1);
    double num = 0, den = 0;
    for (int n = 0; n < l->out_features; n++) {
        double d = (double)model_gemv_row(&m, x, n) - ref[n];
        num += d * d;
        den += (double)ref[n] * ref[n];
    }
    CHECK(den > 0 && sqrt(num / den) < 1e-5, "%s: the kernel's arithmetic model differs from the reference: relative L2 %g",
          name, den > 0 ? sqrt(num / den) : -1.0);
    free(x);
    free(ref);
    qb_qmat_free(&m);
}

static const char *k_config =
    "{\"vocab_size\": 384, \"hidden_size\": 256, \"intermediate_size\": 512, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 256,"
    " \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false,"
    " \"quantization_config\": {\"quant_method\": \"%s\", \"bits\": %d, \"group_size\": 64%s}}";

static int make_config(qb_quant q, qb_model_config *c) {
    char json[1024];
    int awq = q == QB_QUANT_AWQ;
    snprintf(json, sizeof json, k_config, awq ? "awq" : "gptq", q == QB_QUANT_GPTQ_INT8 ? 8 : 4,
             awq ? ", \"version\": \"gemm\", \"zero_point\": true" : ", \"desc_act\": false, \"sym\": true");
    return qb_model_config_parse(json, strlen(json), "test config", c);
}

static float *dequant_all(qb_linear *l) {
    float *out = malloc((size_t)l->out_features * l->in_features * sizeof *out);
    if (out) qb_ref_dequant_rows(l, 0, l->out_features, out);
    return out;
}

static void test_random(qb_quant q) {
    const char *name = qb_quant_name(q);
    qb_model_config c;
    if (make_config(q, &c) != 0) {
        CHECK(0, "%s: config: %s", name, qb_last_error());
        return;
    }
    qb_shard_plan p1, p2[2];
    qb_weights w1, w2[2], again;
    if (qb_shard_plan_make(&c, 1, 0, &p1) || qb_shard_plan_make(&c, 2, 0, &p2[0]) || qb_shard_plan_make(&c, 2, 1, &p2[1]) ||
        qb_weights_random(&c, &p1, 42, &w1) || qb_weights_random(&c, &p2[0], 42, &w2[0]) ||
        qb_weights_random(&c, &p2[1], 42, &w2[1]) || qb_weights_random(&c, &p1, 42, &again)) {
        CHECK(0, "%s: random weights: %s", name, qb_last_error());
        return;
    }
    double sum = 0, sq = 0;
    size_t count = 0;
    for (int layer = 0; layer < c.num_layers; layer++)
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_linear *full = qb_layer_linear(&w1.layers[layer], k);
            CHECK(full->fmt == (q == QB_QUANT_AWQ ? QB_WFMT_AWQ : QB_WFMT_GPTQ), "%s: format %d", name, (int)full->fmt);
            float *f = dequant_all(full), *f_again = dequant_all(qb_layer_linear(&again.layers[layer], k));
            CHECK(memcmp(f, f_again, (size_t)full->out_features * full->in_features * 4) == 0,
                  "%s: layer %d %s: same seed gives different weights", name, layer, qb_linear_suffix[k]);
            for (size_t i = 0; i < (size_t)full->out_features * full->in_features; i++) {
                sum += f[i];
                sq += (double)f[i] * f[i];
            }
            count += (size_t)full->out_features * full->in_features;
            for (int r = 0; r < 2; r++) {
                qb_slice s;
                qb_linear_slice(&c, &p2[r], k, &s);
                qb_linear *part = qb_layer_linear(&w2[r].layers[layer], k);
                float *d = dequant_all(part);
                int bad = 0;
                for (uint64_t n = 0; n < s.n_rows && !bad; n++)
                    for (uint64_t kk = 0; kk < s.n_cols && !bad; kk++) {
                        float want = f[(s.row0 + n) * s.cols + s.col0 + kk], got = d[n * s.n_cols + kk];
                        if (got != want) {
                            bad = 1;
                            CHECK(0, "%s: layer %d %s rank %d/2: W[%llu][%llu] = %g, TP1 has %g (exact)", name, layer,
                                  qb_linear_suffix[k], r, (unsigned long long)n, (unsigned long long)kk, got, want);
                        }
                    }
                if (s.has_bias)
                    CHECK(memcmp(part->bias, full->bias + s.row0, s.n_rows * sizeof(float)) == 0,
                          "%s: layer %d %s rank %d: bias slice differs", name, layer, qb_linear_suffix[k], r);
                free(d);
            }
            free(f);
            free(f_again);
        }
    /* the CUDA kernels' repacked layout holds the same matrix */
    for (int layer = 0; layer < c.num_layers; layer++)
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_linear *l = qb_layer_linear(&w1.layers[layer], k);
            qb_qmat m;
            if (qb_qmat_from_linear(l, &m, 2) != 0) {
                CHECK(0, "%s: repack: %s", name, qb_last_error());
                continue;
            }
            int bad = 0;
            for (int n = 0; n < l->out_features && !bad; n++)
                for (int kk = 0; kk < l->in_features && !bad; kk++)
                    if (qb_qmat_dequant_at(&m, n, kk) != qb_ref_dequant_at(l, n, kk)) {
                        bad = 1;
                        CHECK(0, "%s: layer %d %s: repacked W[%d][%d] = %g, original %g (exact)", name, layer,
                              qb_linear_suffix[k], n, kk, qb_qmat_dequant_at(&m, n, kk), qb_ref_dequant_at(l, n, kk));
                    }
            qb_qmat_free(&m);
        }
    test_kernel_model(&w1, name);
    double mean = sum / (double)count, sd = sqrt(sq / (double)count - mean * mean);
    CHECK(fabs(mean) < 1e-3 && sd > 0.012 && sd < 0.03, "%s: random weights mean %g std %g (want ~0, ~0.02)", name, mean,
          sd);
    printf("%-9s random: mean %+.2e std %.4f, TP2 slices equal TP1, host bytes %zu (TP1)\n", name, mean, sd,
           w1.host_bytes);
    CHECK(w1.host_bytes == qb_weights_rank_bytes(&c, &p1), "%s: host_bytes %zu != qb_weights_rank_bytes %zu", name,
          w1.host_bytes, qb_weights_rank_bytes(&c, &p1));
    qb_weights_free(&w1);
    qb_weights_free(&w2[0]);
    qb_weights_free(&w2[1]);
    qb_weights_free(&again);

    /* group 512 with the TP2 plan: o_proj's 128-column slice (and the 256 columns of q) split a group */
    qb_model_config bad = c;
    bad.group_size = 512;
    qb_weights wb;
    int rc = qb_weights_random(&bad, &p2[1], 42, &wb);
    CHECK(rc != 0 && strstr(qb_last_error(), "splits a quantization group of 512"),
          "%s: a group-splitting slice must be refused naming the sizes, got rc %d \"%s\"", name, rc, qb_last_error());
    if (rc == 0) qb_weights_free(&wb);
}

int main(void) {
    test_f16();
    test_layouts();
    test_random(QB_QUANT_GPTQ_INT4);
    test_random(QB_QUANT_GPTQ_INT8);
    test_random(QB_QUANT_AWQ);
    if (g_fail) {
        fprintf(stderr, "test_quant_pack: %d failures\n", g_fail);
        return 1;
    }
    printf("test_quant_pack: passed\n");
    return 0;
}
