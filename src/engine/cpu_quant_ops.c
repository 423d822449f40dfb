/* cpu_quant_ops.c - reference dequantization and matmuls for GPTQ / AWQ / f16 weights (see cpu_quant_ops.h).
 *
 * The quantized matmul dequantizes QB_DEQUANT_ROWS output rows of W at a time into an fp32 scratch block
 * (reading each packed row of qweight contiguously), then takes the same 8-lane dot products as cpu_ops.c.
 * Threads split the output rows; no result depends on the thread count.
 */
#include "engine/cpu_quant_ops.h"

#include <stdlib.h>

#include "engine/cpu_ops.h"
#include "engine/cpu_threads.h"
#include "engine/quant_pack.h"

#define QB_LANES 8
#define QB_DEQUANT_ROWS 16

/* The dot product of cpu_ops.c, term for term (so results match the bf16 path bit for bit). */
static float dot_f32(const float *a, const float *b, int n) {
    float acc[QB_LANES] = {0};
    int k = 0;
    for (; k + QB_LANES <= n; k += QB_LANES)
        for (int j = 0; j < QB_LANES; j++) acc[j] += a[k + j] * b[k + j];
    float sum = 0.0f;
    for (int j = 0; j < QB_LANES; j++) sum += acc[j];
    for (; k < n; k++) sum += a[k] * b[k];
    return sum;
}

static float dot_f32_f16(const float *x, const uint16_t *w, int n) {
    float acc[QB_LANES] = {0};
    int k = 0;
    for (; k + QB_LANES <= n; k += QB_LANES)
        for (int j = 0; j < QB_LANES; j++) acc[j] += x[k + j] * qb_f16_to_float(w[k + j]);
    float sum = 0.0f;
    for (int j = 0; j < QB_LANES; j++) sum += acc[j];
    for (; k < n; k++) sum += x[k] * qb_f16_to_float(w[k]);
    return sum;
}

/* Scales (as float) and true zero points of columns [n0, n1) for group g; n1 - n0 <= QB_DEQUANT_ROWS. */
static void group_params(const qb_linear *l, int g, int n0, int n1, float *scale, int *zero) {
    const int N = l->out_features;
    const uint16_t *srow = l->scales + (size_t)g * N;
    if (l->fmt == QB_WFMT_AWQ) {
        const uint32_t *zrow = (const uint32_t *)l->qzeros + (size_t)g * (N / QB_AWQ_PACK);
        for (int n = n0; n < n1; n++) {
            scale[n - n0] = qb_f16_to_float(srow[n]);
            zero[n - n0] = (int)((zrow[n / QB_AWQ_PACK] >> qb_awq_shift(n % QB_AWQ_PACK)) & 15u);
        }
    } else {
        const int pf = 32 / l->bits;
        const uint32_t *zrow = (const uint32_t *)l->qzeros + (size_t)g * (N / pf);
        for (int n = n0; n < n1; n++) {
            scale[n - n0] = qb_f16_to_float(srow[n]);
            zero[n - n0] = (int)qb_gptq_unpack(zrow[n / pf], l->bits, n % pf) + 1; /* stored minus one */
        }
    }
}

static void dequant_block(const qb_linear *l, int n0, int n1, float *out) {
    const int K = l->in_features, N = l->out_features, awq = l->fmt == QB_WFMT_AWQ;
    const int bits = l->bits, pf = awq ? 1 : 32 / bits, words = N / QB_AWQ_PACK;
    float scale[QB_DEQUANT_ROWS];
    int zero[QB_DEQUANT_ROWS], word[QB_DEQUANT_ROWS], shift_of[QB_DEQUANT_ROWS], g_now = -1;
    for (int n = n0; n < n1; n++) {
        word[n - n0] = n / QB_AWQ_PACK;
        shift_of[n - n0] = qb_awq_shift(n % QB_AWQ_PACK);
    }
    for (int k = 0; k < K; k++) {
        int g = awq ? k / l->group_size : l->g_idx[k];
        if (g != g_now) {
            group_params(l, g, n0, n1, scale, zero);
            g_now = g;
        }
        if (awq) {
            const uint32_t *qrow = (const uint32_t *)l->qweight + (size_t)k * words;
            for (int i = 0; i < n1 - n0; i++) {
                int q = (int)((qrow[word[i]] >> shift_of[i]) & 15u);
                out[(size_t)i * K + k] = (float)(q - zero[i]) * scale[i];
            }
        } else {
            const uint32_t *qrow = (const uint32_t *)l->qweight + (size_t)(k / pf) * N;
            int shift = bits * (k % pf);
            uint32_t mask = (1u << bits) - 1u;
            for (int n = n0; n < n1; n++) {
                int q = (int)((qrow[n] >> shift) & mask);
                out[(size_t)(n - n0) * K + k] = (float)(q - zero[n - n0]) * scale[n - n0];
            }
        }
    }
}

void qb_ref_dequant_rows(const qb_linear *l, int n0, int n1, float *out) {
    for (int b = n0; b < n1; b += QB_DEQUANT_ROWS)
        dequant_block(l, b, b + QB_DEQUANT_ROWS < n1 ? b + QB_DEQUANT_ROWS : n1, out + (size_t)(b - n0) * l->in_features);
}

float qb_ref_dequant_at(const qb_linear *l, int n, int k) {
    if (l->fmt == QB_WFMT_AWQ) {
        int g = l->group_size, words = l->out_features / QB_AWQ_PACK, sh = qb_awq_shift(n % QB_AWQ_PACK);
        uint32_t qw = (uint32_t)l->qweight[(size_t)k * words + n / QB_AWQ_PACK];
        uint32_t zw = (uint32_t)l->qzeros[(size_t)(k / g) * words + n / QB_AWQ_PACK];
        int q = (int)((qw >> sh) & 15u), z = (int)((zw >> sh) & 15u);
        return (float)(q - z) * qb_f16_to_float(l->scales[(size_t)(k / g) * l->out_features + n]);
    }
    int pf = 32 / l->bits, g = l->g_idx[k];
    uint32_t qw = (uint32_t)l->qweight[(size_t)(k / pf) * l->out_features + n];
    uint32_t zw = (uint32_t)l->qzeros[(size_t)g * (l->out_features / pf) + n / pf];
    int q = (int)qb_gptq_unpack(qw, l->bits, k % pf), z = (int)qb_gptq_unpack(zw, l->bits, n % pf) + 1;
    return (float)(q - z) * qb_f16_to_float(l->scales[(size_t)g * l->out_features + n]);
}

typedef struct {
    const float *x;
    const qb_linear *l;
    int M;
    float *y;
} quant_job;

static void quant_rows(void *ctx, int begin, int end) {
    const quant_job *j = ctx;
    const int K = j->l->in_features, N = j->l->out_features;
    float *block = malloc((size_t)QB_DEQUANT_ROWS * K * sizeof *block);
    if (!block) abort(); /* at most 16 x 29696 floats; nothing sensible to do without them */
    for (int n0 = begin; n0 < end; n0 += QB_DEQUANT_ROWS) {
        int n1 = n0 + QB_DEQUANT_ROWS < end ? n0 + QB_DEQUANT_ROWS : end;
        qb_ref_dequant_rows(j->l, n0, n1, block);
        for (int n = n0; n < n1; n++) {
            float b = j->l->bias ? j->l->bias[n] : 0.0f;
            for (int m = 0; m < j->M; m++)
                j->y[(size_t)m * N + n] = dot_f32(j->x + (size_t)m * K, block + (size_t)(n - n0) * K, K) + b;
        }
    }
    free(block);
}

void qb_ref_matmul_quant(const float *x, const qb_linear *l, int M, float *y, int threads) {
    quant_job job = {x, l, M, y};
    if ((long long)l->out_features * l->in_features < 65536) threads = 1;
    /* each output row is computed alone, so the split cannot change a result */
    qb_parallel_for(l->out_features, threads, quant_rows, &job);
}

typedef struct {
    const float *x;
    const uint16_t *w;
    const float *bias;
    int M, N, K;
    float *y;
} f16_job;

static void f16_rows(void *ctx, int begin, int end) {
    const f16_job *j = ctx;
    for (int n = begin; n < end; n++) {
        const uint16_t *wn = j->w + (size_t)n * j->K;
        float b = j->bias ? j->bias[n] : 0.0f;
        for (int m = 0; m < j->M; m++) j->y[(size_t)m * j->N + n] = dot_f32_f16(j->x + (size_t)m * j->K, wn, j->K) + b;
    }
}

void qb_ref_matmul_f16(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                       int threads) {
    f16_job job = {x, w, bias, M, N, K, y};
    if ((long long)M * N * K < 65536) threads = 1;
    qb_parallel_for(N, threads, f16_rows, &job);
}

void qb_ref_linear(const float *x, const qb_linear *l, int M, float *y, int threads) {
    switch (l->fmt) {
    case QB_WFMT_BF16: qb_ref_matmul_bf16(x, l->w, l->bias, M, l->out_features, l->in_features, y, threads); break;
    case QB_WFMT_F16: qb_ref_matmul_f16(x, l->w, l->bias, M, l->out_features, l->in_features, y, threads); break;
    default: qb_ref_matmul_quant(x, l, M, y, threads); break;
    }
}

void qb_ref_embedding_f16(const uint16_t *table, int hidden, const int32_t *tokens, int n, float *out) {
    for (int i = 0; i < n; i++) {
        const uint16_t *row = table + (size_t)tokens[i] * hidden;
        for (int j = 0; j < hidden; j++) out[(size_t)i * hidden + j] = qb_f16_to_float(row[j]);
    }
}
