/* quant_repack.c - GPTQ / AWQ linears into the K-contiguous layout of the CUDA decode kernels
 * (see quant_repack.h). Rows are independent: threads split the output rows.
 */
#include "engine/quant_repack.h"

#include <stdlib.h>
#include <string.h>

#include "engine/cpu_threads.h"
#include "engine/quant_pack.h"
#include "model/weight_format.h"
#include "util/error.h"

/* the repacked layout's sizes, as the memory plan counts them (model/weight_format.h) */
size_t qb_qmat_qweight_bytes(const qb_qmat *m) { return qb_engine_qweight_bytes(m->bits, (size_t)m->n, (size_t)m->k); }
size_t qb_qmat_sz_bytes(const qb_qmat *m) { return qb_engine_sz_bytes((size_t)m->n, (size_t)m->k, (size_t)m->group_size); }

typedef struct {
    const qb_linear *l;
    qb_qmat *m;
} repack_job;

static void repack_rows(void *ctx, int begin, int end) {
    const repack_job *j = ctx;
    const qb_linear *l = j->l;
    const int N = l->out_features, K = l->in_features, g = l->group_size, bits = l->bits;
    const int words = K * bits / 32, groups = K / g, awq = l->fmt == QB_WFMT_AWQ;
    const uint32_t *qw = (const uint32_t *)l->qweight, *qz = (const uint32_t *)l->qzeros;
    for (int n = begin; n < end; n++) {
        uint32_t *out = j->m->qweight + (size_t)n * words, *sz = j->m->sz + (size_t)n * groups;
        if (awq) {
            int c = n / QB_AWQ_PACK, sh = qb_awq_shift(n % QB_AWQ_PACK), in_words = N / QB_AWQ_PACK;
            for (int w = 0; w < words; w++) {
                uint32_t word = 0;
                for (int i = 0; i < 8; i++) word |= ((qw[(size_t)(8 * w + i) * in_words + c] >> sh) & 15u) << (4 * i);
                out[w] = word;
            }
            for (int gi = 0; gi < groups; gi++) {
                uint32_t z = (qz[(size_t)gi * in_words + c] >> sh) & 15u;
                sz[gi] = (uint32_t)l->scales[(size_t)gi * N + n] | z << 16;
            }
        } else {
            int pf = 32 / bits;
            for (int w = 0; w < words; w++) out[w] = qw[(size_t)w * N + n];
            for (int gi = 0; gi < groups; gi++) {
                uint32_t z = qb_gptq_unpack(qz[(size_t)gi * (N / pf) + n / pf], bits, n % pf) + 1u;
                sz[gi] = (uint32_t)l->scales[(size_t)gi * N + n] | z << 16;
            }
        }
    }
}

int qb_qmat_from_linear(const qb_linear *l, qb_qmat *out, int threads) {
    memset(out, 0, sizeof *out);
    if ((l->fmt != QB_WFMT_GPTQ && l->fmt != QB_WFMT_AWQ) ||
        !qb_format_supported(l->fmt == QB_WFMT_AWQ ? QB_PACK_AWQ : QB_PACK_GPTQ, l->bits) || l->group_size <= 0)
        return qb_errorf("quant repack: format %d with %d bits is not GPTQ int4/int8 or AWQ int4", (int)l->fmt, l->bits);
    if (l->in_features % l->group_size || l->group_size % (128 / l->bits) || l->in_features % (128 / l->bits))
        return qb_errorf("quant repack: K %d and group_size %d must be multiples of %d (one 16-byte piece)",
                         l->in_features, l->group_size, 128 / l->bits);
    if (l->fmt == QB_WFMT_GPTQ) /* the kernels assume g = k / group_size (the loader checks g_idx so) */
        for (int k = 0; k < l->in_features; k++)
            if (l->g_idx[k] != k / l->group_size)
                return qb_errorf("quant repack: g_idx[%d] = %d is not k / group_size (act-order)", k, l->g_idx[k]);
    out->n = l->out_features;
    out->k = l->in_features;
    out->bits = l->bits;
    out->group_size = l->group_size;
    out->qweight = malloc(qb_qmat_qweight_bytes(out));
    out->sz = malloc(qb_qmat_sz_bytes(out));
    if (!out->qweight || !out->sz) {
        qb_qmat_free(out);
        return qb_errorf("quant repack: out of memory for a %d x %d matrix", l->out_features, l->in_features);
    }
    repack_job job = {l, out};
    if ((long long)l->out_features * l->in_features < (1 << 20)) threads = 1;
    qb_parallel_for(l->out_features, threads, repack_rows, &job);
    return 0;
}

void qb_qmat_free(qb_qmat *m) {
    free(m->qweight);
    free(m->sz);
    memset(m, 0, sizeof *m);
}

float qb_qmat_dequant_at(const qb_qmat *m, int n, int k) {
    int pf = 32 / m->bits;
    uint32_t word = m->qweight[(size_t)n * (m->k / pf) + k / pf];
    uint32_t sz = m->sz[(size_t)n * (m->k / m->group_size) + k / m->group_size];
    int q = (int)qb_gptq_unpack(word, m->bits, k % pf), z = (int)(sz >> 16);
    return (float)(q - z) * qb_f16_to_float((uint16_t)(sz & 0xffffu));
}
