/* cpu_ops.c - the plain-C reference of every Qwen2 forward operation (see cpu_ops.h).
 *
 * fp32 arithmetic on bf16 weights (the matmul also on f16 weights, with the same sums), written to mirror
 * transformers' float32 eager forward step by step (RMSNorm: w * (x * rsqrt(mean(x^2) + eps)); RoPE:
 * x*cos + rotate_half(x)*sin; attention: softmax of q.k * hd^-0.5, then the weighted sum of v). Reductions
 * keep 8 fp32 partial sums (pairwise-like accuracy, and the compiler can vectorise them); nothing here
 * depends on the thread count.
 */
#include "engine/cpu_ops.h"
#include "engine/cpu_dot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_threads.h"
#include "engine/quant_pack.h"   /* qb_f16_to_float */
#include "engine/random_init.h" /* qb_bf16_to_float */


/* qb_dot_f32 with the weights in a 16-bit float format: each converted exactly to fp32, then the same sums in
 * the same order. Inlined with a constant to_float, so the conversion is inlined too. */
static inline float dot_f32_16bit(const float *x, const uint16_t *w, int n, float (*to_float)(uint16_t)) {
    float acc[QB_LANES] = {0};
    int k = 0;
    for (; k + QB_LANES <= n; k += QB_LANES)
        for (int j = 0; j < QB_LANES; j++) acc[j] += x[k + j] * to_float(w[k + j]);
    float sum = 0.0f;
    for (int j = 0; j < QB_LANES; j++) sum += acc[j];
    for (; k < n; k++) sum += x[k] * to_float(w[k]);
    return sum;
}

void qb_ref_embedding(const uint16_t *table, int hidden, const int32_t *tokens, int n, float *out) {
    for (int i = 0; i < n; i++) {
        const uint16_t *row = table + (size_t)tokens[i] * hidden;
        for (int j = 0; j < hidden; j++) out[(size_t)i * hidden + j] = qb_bf16_to_float(row[j]);
    }
}

void qb_ref_rmsnorm(const float *x, const float *w, int n, int dim, float eps, float *out) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *oi = out + (size_t)i * dim;
        float mean_sq = qb_dot_f32(xi, xi, dim) / (float)dim;
        float inv_rms = 1.0f / sqrtf(mean_sq + eps);
        for (int j = 0; j < dim; j++) oi[j] = w[j] * (xi[j] * inv_rms);
    }
}

void qb_ref_add_rmsnorm(float *residual, const float *x, const float *w, int n, int dim, float eps, float *out) {
    size_t total = (size_t)n * dim;
    for (size_t i = 0; i < total; i++) residual[i] += x[i];
    qb_ref_rmsnorm(residual, w, n, dim, eps, out);
}

typedef struct {
    const float *x;
    const uint16_t *w;
    const float *bias;
    int M, N, K;
    float *y;
} matmul_job;

/* Output columns [begin, end): each weight row is read once and used for all M input rows. */
static inline void matmul_columns(const matmul_job *j, int begin, int end, float (*to_float)(uint16_t)) {
    for (int n = begin; n < end; n++) {
        const uint16_t *wn = j->w + (size_t)n * j->K;
        float b = j->bias ? j->bias[n] : 0.0f;
        for (int m = 0; m < j->M; m++)
            j->y[(size_t)m * j->N + n] = dot_f32_16bit(j->x + (size_t)m * j->K, wn, j->K, to_float) + b;
    }
}

static void matmul_columns_bf16(void *ctx, int begin, int end) { matmul_columns(ctx, begin, end, qb_bf16_to_float); }
static void matmul_columns_f16(void *ctx, int begin, int end) { matmul_columns(ctx, begin, end, qb_f16_to_float); }

static void matmul_16bit(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                         int threads, qb_range_fn columns) {
    matmul_job job = {x, w, bias, M, N, K, y};
    /* below ~64k multiply-adds a thread costs more than it saves */
    if ((long long)M * N * K < 65536) threads = 1;
    qb_parallel_for(N, threads, columns, &job);
}

void qb_ref_matmul_bf16(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                        int threads) {
    matmul_16bit(x, w, bias, M, N, K, y, threads, matmul_columns_bf16);
}

void qb_ref_matmul_f16(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                       int threads) {
    matmul_16bit(x, w, bias, M, N, K, y, threads, matmul_columns_f16);
}

void qb_ref_rope(float *x, int n, int heads, int hd, const int32_t *positions, const float *cos_table,
                 const float *sin_table) {
    int half = hd / 2;
    for (int i = 0; i < n; i++) {
        const float *c = cos_table + (size_t)positions[i] * half;
        const float *s = sin_table + (size_t)positions[i] * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)i * heads + h) * hd;
            for (int d = 0; d < half; d++) {
                float lo = v[d], hi = v[d + half];
                v[d] = lo * c[d] + (-hi) * s[d];
                v[d + half] = hi * c[d] + lo * s[d];
            }
        }
    }
}

typedef struct {
    const float *q, *k_cache, *v_cache;
    int n, start_pos, hq, hkv, hd;
    float *out;
} attention_job;

/* Query heads [begin, end), every query row; scores scratch of start_pos+n floats per call. */
static void attention_heads(void *ctx, int begin, int end) {
    const attention_job *j = ctx;
    int group = j->hq / j->hkv;
    int total = j->start_pos + j->n;
    float scale = (float)(1.0 / sqrt((double)j->hd));
    float *p = malloc((size_t)total * sizeof *p);
    float *acc = malloc((size_t)j->hd * sizeof *acc);
    if (!p || !acc) abort(); /* a few KB; nothing sensible to do without them */
    for (int h = begin; h < end; h++) {
        int kvh = h / group;
        for (int i = 0; i < j->n; i++) {
            int len = j->start_pos + i + 1; /* causal: keys 0 .. own position */
            const float *qi = j->q + ((size_t)i * j->hq + h) * j->hd;
            float max = -INFINITY;
            for (int t = 0; t < len; t++) {
                p[t] = qb_dot_f32(qi, j->k_cache + ((size_t)t * j->hkv + kvh) * j->hd, j->hd) * scale;
                if (p[t] > max) max = p[t];
            }
            float sum = 0.0f;
            for (int t = 0; t < len; t++) {
                p[t] = expf(p[t] - max);
                sum += p[t];
            }
            for (int d = 0; d < j->hd; d++) acc[d] = 0.0f;
            for (int t = 0; t < len; t++) {
                float wt = p[t] / sum;
                const float *vt = j->v_cache + ((size_t)t * j->hkv + kvh) * j->hd;
                for (int d = 0; d < j->hd; d++) acc[d] += wt * vt[d];
            }
            memcpy(j->out + ((size_t)i * j->hq + h) * j->hd, acc, (size_t)j->hd * sizeof *acc);
        }
    }
    free(p);
    free(acc);
}

void qb_ref_attention(const float *q, const float *k_cache, const float *v_cache, int n, int start_pos,
                      int hq, int hkv, int hd, float *out, int threads) {
    attention_job job = {q, k_cache, v_cache, n, start_pos, hq, hkv, hd, out};
    qb_parallel_for(hq, threads, attention_heads, &job);
}

void qb_ref_silu_mul(const float *gate, const float *up, int n, float *out) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

int32_t qb_ref_argmax(const float *x, int n, float *max_value) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i; /* strict: the first of equal maxima wins */
    if (max_value) *max_value = n > 0 ? x[best] : -INFINITY;
    return best;
}
