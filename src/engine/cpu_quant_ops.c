/* cpu_quant_ops.c - reference dequantization and matmul for GPTQ / AWQ weights, the f16 embedding and the
 * dispatch of any linear (see cpu_quant_ops.h).
 *
 * The quantized matmul dequantizes blocks of QB_DEQUANT_ROWS output rows x QB_DEQUANT_COLS inputs of W into
 * an fp32 scratch block (reading packed rows of qweight contiguously), then accumulates the same 8-lane dot
 * products as cpu_ops.c.
 * Threads split the output rows; no result depends on the thread count.
 */
#include "engine/cpu_quant_ops.h"

#include <stdlib.h>
#include <string.h>

#include "engine/cpu_ops.h"
#include "engine/cpu_dot.h"
#include "engine/cpu_threads.h"
#include "engine/quant_pack.h"

#define QB_DEQUANT_ROWS 16
#define QB_DEQUANT_COLS 512 /* 16 x 512 floats = 32 KB: the L1 (a multiple of 8: lanes stay aligned) */

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

/* out (k1 - k0, QB_DEQUANT_ROWS) = W[n0..n1)[k0..k1) transposed: out[(k - k0) * QB_DEQUANT_ROWS + n - n0]
 * (columns n1 - n0 .. QB_DEQUANT_ROWS - 1 untouched). Consecutive n are adjacent, as in GPTQ's qweight rows. */
static void dequant_block(const qb_linear *l, int n0, int n1, int k0, int k1, float *out) {
    const int N = l->out_features, awq = l->fmt == QB_WFMT_AWQ;
    const int bits = l->bits, pf = awq ? 1 : 32 / bits, words = N / QB_AWQ_PACK;
    const int awq_aligned = awq && n0 % QB_AWQ_PACK == 0 && (n1 - n0) % QB_AWQ_PACK == 0;
    float scale[QB_DEQUANT_ROWS];
    int zero[QB_DEQUANT_ROWS], word[QB_DEQUANT_ROWS], shift_of[QB_DEQUANT_ROWS], g_now = -1;
    for (int n = n0; n < n1; n++) {
        word[n - n0] = n / QB_AWQ_PACK;
        shift_of[n - n0] = qb_awq_shift(n % QB_AWQ_PACK);
    }
    for (int k = k0; k < k1; k++) {
        int g = awq ? k / l->group_size : l->g_idx[k];
        if (g != g_now) {
            group_params(l, g, n0, n1, scale, zero);
            g_now = g;
        }
        float *col = out + (size_t)(k - k0) * QB_DEQUANT_ROWS;
        if (awq_aligned) { /* whole words: constant shifts */
            const uint32_t *qrow = (const uint32_t *)l->qweight + (size_t)k * words + n0 / QB_AWQ_PACK;
            for (int c = 0; c < (n1 - n0) / QB_AWQ_PACK; c++) {
                uint32_t wv = qrow[c];
                for (int j = 0; j < QB_AWQ_PACK; j++) {
                    int i = c * QB_AWQ_PACK + j, q = (int)((wv >> qb_awq_shift(j)) & 15u);
                    col[i] = (float)(q - zero[i]) * scale[i];
                }
            }
        } else if (awq) {
            const uint32_t *qrow = (const uint32_t *)l->qweight + (size_t)k * words;
            for (int i = 0; i < n1 - n0; i++) {
                int q = (int)((qrow[word[i]] >> shift_of[i]) & 15u);
                col[i] = (float)(q - zero[i]) * scale[i];
            }
        } else {
            const uint32_t *qrow = (const uint32_t *)l->qweight + (size_t)(k / pf) * N + n0;
            int shift = bits * (k % pf);
            uint32_t mask = (1u << bits) - 1u;
            for (int i = 0; i < n1 - n0; i++) {
                int q = (int)((qrow[i] >> shift) & mask);
                col[i] = (float)(q - zero[i]) * scale[i];
            }
        }
    }
}

void qb_ref_dequant_rows(const qb_linear *l, int n0, int n1, float *out) {
    const int K = l->in_features;
    float *t = malloc((size_t)K * QB_DEQUANT_ROWS * sizeof *t);
    if (!t) abort(); /* at most 16 x 29696 floats */
    for (int b = n0; b < n1; b += QB_DEQUANT_ROWS) {
        int e = b + QB_DEQUANT_ROWS < n1 ? b + QB_DEQUANT_ROWS : n1;
        dequant_block(l, b, e, 0, K, t);
        for (int n = b; n < e; n++)
            for (int k = 0; k < K; k++) out[(size_t)(n - n0) * K + k] = t[(size_t)k * QB_DEQUANT_ROWS + n - b];
    }
    free(t);
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

/* Output rows [begin, end) in blocks of QB_DEQUANT_ROWS (aligned to multiples of it) x QB_DEQUANT_COLS
 * columns of K, so the dequantized block stays in the L1. Each (m, n) keeps the 8 lane sums of dot_f32 across
 * the K chunks, added in the same order: the result is dot_f32's, bit for bit (K is a multiple of 8: groups
 * are multiples of 32). */
static void quant_rows(void *ctx, int begin, int end) {
    const quant_job *j = ctx;
    const int K = j->l->in_features, N = j->l->out_features, M = j->M;
    float *block = malloc((size_t)QB_DEQUANT_ROWS * QB_DEQUANT_COLS * sizeof *block);
    float *acc = malloc((size_t)M * QB_LANES * QB_DEQUANT_ROWS * sizeof *acc); /* [m][lane][row] */
    if (!block || !acc) abort(); /* a few KB per input row; nothing sensible to do without them */
    for (int n0 = begin; n0 < end;) {
        int n1 = (n0 / QB_DEQUANT_ROWS + 1) * QB_DEQUANT_ROWS;
        if (n1 > end) n1 = end;
        int nb = n1 - n0;
        memset(acc, 0, (size_t)M * QB_LANES * QB_DEQUANT_ROWS * sizeof *acc);
        for (int k0 = 0; k0 < K; k0 += QB_DEQUANT_COLS) {
            int k1 = k0 + QB_DEQUANT_COLS < K ? k0 + QB_DEQUANT_COLS : K;
            dequant_block(j->l, n0, n1, k0, k1, block);
            for (int m = 0; m < M; m++) {
                const float *xm = j->x + (size_t)m * K;
                float *am = acc + (size_t)m * QB_LANES * QB_DEQUANT_ROWS;
                for (int k = k0; k < k1; k++) {
                    const float xv = xm[k], *wk = block + (size_t)(k - k0) * QB_DEQUANT_ROWS;
                    float *a = am + (k % QB_LANES) * QB_DEQUANT_ROWS; /* dot_f32's lane of this k */
                    for (int i = 0; i < nb; i++) a[i] += xv * wk[i];
                }
            }
        }
        for (int i = 0; i < nb; i++) {
            float b = j->l->bias ? j->l->bias[n0 + i] : 0.0f;
            for (int m = 0; m < M; m++) {
                const float *am = acc + (size_t)m * QB_LANES * QB_DEQUANT_ROWS;
                float sum = 0.0f;
                for (int lane = 0; lane < QB_LANES; lane++) sum += am[lane * QB_DEQUANT_ROWS + i];
                j->y[(size_t)m * N + n0 + i] = sum + b;
            }
        }
        n0 = n1;
    }
    free(block);
    free(acc);
}

/* K not a multiple of 8 (never for real configs): whole rows and dot_f32 with its tail. */
static void quant_rows_any_k(void *ctx, int begin, int end) {
    const quant_job *j = ctx;
    const int K = j->l->in_features, N = j->l->out_features;
    float *row = malloc((size_t)K * sizeof *row);
    if (!row) abort();
    for (int n = begin; n < end; n++) {
        qb_ref_dequant_rows(j->l, n, n + 1, row);
        float b = j->l->bias ? j->l->bias[n] : 0.0f;
        for (int m = 0; m < j->M; m++) j->y[(size_t)m * N + n] = qb_dot_f32(j->x + (size_t)m * K, row, K) + b;
    }
    free(row);
}

void qb_ref_matmul_quant(const float *x, const qb_linear *l, int M, float *y, int threads) {
    quant_job job = {x, l, M, y};
    if ((long long)l->out_features * l->in_features < 65536) threads = 1;
    /* each output row is computed alone, so the split cannot change a result */
    qb_parallel_for(l->out_features, threads, l->in_features % QB_LANES ? quant_rows_any_k : quant_rows, &job);
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
