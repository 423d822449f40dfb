/* weights_quant.c - one rank's GPTQ / AWQ weights (see weights_quant.h, quant_pack.h, formats.md).
 *
 * Loading checks every packed tensor's dtype (I32, scales F16) and exact shape, that this rank's slice holds
 * whole packed words and whole groups, that g_idx is k / group_size (act-order checkpoints are refused), and
 * that every scale is finite. Tensors the model does not use are an error, as for bf16 checkpoints.
 */
#include "engine/weights_quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_threads.h"
#include "engine/quant_pack.h"
#include "engine/random_init.h"
#include "model/weight_format.h"
#include "io/checkpoint.h"
#include "io/printable.h"
#include "util/error.h"

static const qb_weight_format_info *format_of(const qb_model_config *c) { return qb_format_info(c->quant); }
static int is_awq(const qb_model_config *c) { return format_of(c)->packing == QB_PACK_AWQ; }
static int pack_factor(const qb_model_config *c) { return format_of(c)->values_per_word; }

/* Packed sizes of one slice (the format table's counts): words of qweight, qzeros and count of scales, g_idx. */
static qb_format_counts counts_of(const qb_model_config *c, const qb_slice *s) {
    return qb_format_checkpoint_counts(c->quant, (size_t)s->n_cols, (size_t)s->n_rows, (size_t)c->group_size);
}

size_t qb_linear_quant_bytes(const qb_model_config *c, const qb_slice *s) {
    return qb_format_host_linear_bytes(c->quant, (size_t)s->n_cols, (size_t)s->n_rows, (size_t)c->group_size) +
           (s->has_bias ? (size_t)s->n_rows * sizeof(float) : 0);
}

/* The slice must hold whole packed words along the packed dimensions and whole groups along K. */
static int check_slice(const qb_model_config *c, const char *prefix, const qb_slice *s) {
    int pf = pack_factor(c), g = c->group_size;
    const char *fmt = qb_quant_name(c->quant);
    if (s->cols % (uint64_t)g || s->col0 % (uint64_t)g || s->n_cols % (uint64_t)g)
        return qb_errorf("%s: %s input slice [%llu, +%llu) of %llu splits a quantization group of %d", prefix, fmt,
                         (unsigned long long)s->col0, (unsigned long long)s->n_cols, (unsigned long long)s->cols, g);
    if (s->rows % (uint64_t)pf || s->row0 % (uint64_t)pf || s->n_rows % (uint64_t)pf)
        return qb_errorf("%s: %s output slice [%llu, +%llu) of %llu splits a packed word of %d values", prefix, fmt,
                         (unsigned long long)s->row0, (unsigned long long)s->n_rows, (unsigned long long)s->rows, pf);
    if (!is_awq(c) && s->cols % (uint64_t)pf)
        return qb_errorf("%s: %s input size %llu is not a multiple of %d", prefix, fmt, (unsigned long long)s->cols, pf);
    return 0;
}

static int alloc_linear(const qb_model_config *c, const qb_slice *s, int layer, int which, qb_weights *w,
                        qb_linear *lin) {
    char what[96];
    qb_tensor_name(what, sizeof what, layer, qb_linear_suffix[which]);
    QB_TRY(check_slice(c, what, s));
    qb_format_counts q = counts_of(c, s);
    lin->fmt = is_awq(c) ? QB_WFMT_AWQ : QB_WFMT_GPTQ;
    lin->out_features = (int)s->n_rows;
    lin->in_features = (int)s->n_cols;
    lin->bits = c->quant_bits;
    lin->group_size = c->group_size;
    lin->owns_w = 1;
    lin->w = NULL;
    if (!(lin->qweight = qb_weights_alloc_bytes(w, q.qweight * 4, what))) return -1;
    if (!(lin->qzeros = qb_weights_alloc_bytes(w, q.qzeros * 4, what))) return -1;
    if (!(lin->scales = qb_weights_alloc_bytes(w, q.scales * (size_t)format_of(c)->scale_bytes, what))) return -1;
    if (q.g_idx && !(lin->g_idx = qb_weights_alloc_bytes(w, q.g_idx * 4, what))) return -1;
    if (s->has_bias && !(lin->bias = qb_weights_alloc_bytes(w, (size_t)s->n_rows * sizeof(float), what))) return -1;
    return 0;
}

int qb_weights_alloc_quant(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    memset(w, 0, sizeof *w);
    const qb_weight_format_info *f = qb_format_info(c->quant);
    if (!f || f->packing == QB_PACK_DENSE || f->bits != c->quant_bits || c->group_size <= 0)
        return qb_errorf("%s: not a quantized config (%s, bits %d, group_size %d)", c->name, qb_quant_name(c->quant),
                         c->quant_bits, c->group_size);
    if (c->desc_act)
        return qb_errorf("%s: quantization_config.desc_act is true: act-order GPTQ checkpoints are not supported "
                         "(their g_idx permutes the input dimension)", c->name);
    return qb_weights_alloc_common(c, p, w, alloc_linear);
}

/* ---- random ---- */

typedef struct {
    qb_linear *lin;
    const qb_slice *s;
    uint64_t seed, qweight_id, zeros_id, scales_id;
} random_job;

/* qzeros and scales of group rows [begin, end) */
static void random_group_rows(void *ctx, int begin, int end) {
    const random_job *j = ctx;
    qb_linear *lin = j->lin;
    const qb_slice *s = j->s;
    int awq = lin->fmt == QB_WFMT_AWQ, bits = lin->bits, N = lin->out_features, pf = awq ? QB_AWQ_PACK : 32 / bits;
    uint64_t Nf = s->rows, g0 = s->col0 / (uint64_t)lin->group_size;
    for (int gi = begin; gi < end; gi++) {
        uint64_t gf = g0 + (uint64_t)gi;
        for (int w = 0; w < N / pf; w++) {
            uint32_t word = 0;
            for (int i = 0; i < pf; i++) {
                uint64_t n = s->row0 + (uint64_t)w * pf + (uint64_t)i;
                uint32_t z = qb_random_quant_zero_stored(j->seed, j->zeros_id, gf * Nf + n, bits, awq);
                word |= z << (awq ? qb_awq_shift(i) : bits * i);
            }
            lin->qzeros[(size_t)gi * (N / pf) + w] = (int32_t)word;
        }
        for (int n = 0; n < N; n++)
            lin->scales[(size_t)gi * N + n] = qb_random_quant_scale(j->seed, j->scales_id, gf * Nf + s->row0 + (uint64_t)n, bits);
    }
}

/* qweight rows [begin, end) (packed rows for GPTQ, K rows for AWQ) */
static void random_qweight_rows(void *ctx, int begin, int end) {
    const random_job *j = ctx;
    const qb_linear *lin = j->lin;
    const qb_slice *s = j->s;
    int bits = lin->bits, N = lin->out_features;
    uint64_t Nf = s->rows;
    if (lin->fmt == QB_WFMT_GPTQ) {
        int pf = 32 / bits;
        for (int r = begin; r < end; r++)
            for (int n = 0; n < N; n++) {
                uint32_t word = 0;
                for (int i = 0; i < pf; i++) {
                    uint64_t k = s->col0 + (uint64_t)r * pf + (uint64_t)i;
                    word |= qb_random_quant_q(j->seed, j->qweight_id, k * Nf + s->row0 + (uint64_t)n, bits, 0) << (bits * i);
                }
                lin->qweight[(size_t)r * N + n] = (int32_t)word;
            }
    } else {
        int words = N / QB_AWQ_PACK;
        for (int r = begin; r < end; r++)
            for (int cw = 0; cw < words; cw++) {
                uint32_t word = 0;
                for (int jj = 0; jj < QB_AWQ_PACK; jj++) {
                    uint64_t k = s->col0 + (uint64_t)r, n = s->row0 + (uint64_t)cw * QB_AWQ_PACK + (uint64_t)jj;
                    word |= qb_random_quant_q(j->seed, j->qweight_id, k * Nf + n, 4, 1) << qb_awq_shift(jj);
                }
                lin->qweight[(size_t)r * words + cw] = (int32_t)word;
            }
    }
}

void qb_linear_random_quant(qb_linear *lin, const char *prefix, const qb_slice *s, uint64_t seed, int threads) {
    char name[256];
    const qb_weight_format_info *fmt = qb_format_find(lin->fmt == QB_WFMT_AWQ ? QB_PACK_AWQ : QB_PACK_GPTQ, lin->bits);
    if (!fmt) return; /* qb_weights_alloc_quant allocates only formats of the table */
    int awq = lin->fmt == QB_WFMT_AWQ, bits = lin->bits, g = lin->group_size;
    int K = lin->in_features, N = lin->out_features, pf = awq ? QB_AWQ_PACK : 32 / bits;
    snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QWEIGHT]);
    random_job job = {lin, s, seed, qb_tensor_id(name), 0, 0};
    int packed_rows = awq ? K : K / pf;
    if ((long long)K * N < (1 << 20)) threads = 1;
    qb_parallel_for(packed_rows, threads, random_qweight_rows, &job);
    snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QZEROS]);
    job.zeros_id = qb_tensor_id(name);
    snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_SCALES]);
    job.scales_id = qb_tensor_id(name);
    qb_parallel_for(K / g, threads, random_group_rows, &job);
    if (lin->g_idx)
        for (int k = 0; k < K; k++) lin->g_idx[k] = k / g;
}

/* ---- checkpoint ---- */

/* Look up `name`: dtype and exact shape dims[n] checked, marked used. */
static int lookup(qb_checkpoint *ck, const char *name, qb_st_dtype dtype, const uint64_t *dims, int n,
                  const qb_ck_entry **out) {
    qb_ck_entry *e = qb_checkpoint_find(ck, name);
    if (!e) return qb_errorf("%s: tensor \"%s\" is missing from the checkpoint", ck->dir, name);
    const qb_st_tensor *t = e->tensor;
    if (t->dtype != dtype)
        return qb_errorf("%s: %s: dtype %s, expected %s", e->file->origin, name, qb_st_dtype_name(t->dtype),
                         qb_st_dtype_name(dtype));
    int same = t->ndim == n;
    for (int i = 0; same && i < n; i++) same = t->shape[i] == dims[i];
    if (!same) {
        char got[128];
        qb_st_shape_str(t, got, sizeof got);
        if (n == 1)
            return qb_errorf("%s: %s: shape %s but config says [%llu]", e->file->origin, name, got,
                             (unsigned long long)dims[0]);
        return qb_errorf("%s: %s: shape %s but config says [%llu, %llu]", e->file->origin, name, got,
                         (unsigned long long)dims[0], (unsigned long long)dims[1]);
    }
    e->used = true;
    *out = e;
    return 0;
}

/* Block [row0, +n_rows) x [col0, +n_cols) of a 2-D tensor [rows][cols] of esize-byte elements, raw. */
static int read_block(qb_checkpoint *ck, const char *name, qb_st_dtype dtype, uint64_t rows, uint64_t cols,
                      uint64_t row0, uint64_t n_rows, uint64_t col0, uint64_t n_cols, void *dst) {
    uint64_t dims[2] = {rows, cols};
    const qb_ck_entry *e;
    QB_TRY(lookup(ck, name, dtype, dims, 2, &e));
    size_t esize = (size_t)qb_st_dtype_bits(dtype) / 8;
    const uint8_t *src = qb_st_bytes(e->file, e->tensor);
    for (uint64_t r = 0; r < n_rows; r++)
        memcpy((uint8_t *)dst + r * n_cols * esize, src + ((row0 + r) * cols + col0) * esize, n_cols * esize);
    return 0;
}

static int check_scales(const qb_checkpoint *ck, const char *name, const uint16_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((s[i] & 0x7c00u) == 0x7c00u)
            return qb_errorf("%s: %s: scale %zu of this rank's slice is not finite (f16 bits 0x%04x)", ck->dir, name, i,
                             (unsigned)s[i]);
    return 0;
}

static int load_linear(qb_checkpoint *ck, const qb_model_config *c, const char *prefix, const qb_slice *s,
                       qb_linear *lin) {
    const qb_weight_format_info *fmt = format_of(c);
    char name[256];
    const uint64_t g = (uint64_t)c->group_size, K = s->cols, N = s->rows;
    const uint64_t groups = K / g, g0 = s->col0 / g, n_groups = s->n_cols / g;
    if (lin->fmt == QB_WFMT_GPTQ) {
        const uint64_t pf = (uint64_t)pack_factor(c);
        snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QWEIGHT]);
        QB_TRY(read_block(ck, name, QB_ST_I32, K / pf, N, s->col0 / pf, s->n_cols / pf, s->row0, s->n_rows, lin->qweight));
        snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QZEROS]);
        QB_TRY(read_block(ck, name, QB_ST_I32, groups, N / pf, g0, n_groups, s->row0 / pf, s->n_rows / pf, lin->qzeros));
        snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_G_IDX]);
        const qb_ck_entry *e;
        QB_TRY(lookup(ck, name, QB_ST_I32, &K, 1, &e));
        const uint8_t *src = qb_st_bytes(e->file, e->tensor);
        for (uint64_t k = 0; k < K; k++) {
            int32_t v;
            memcpy(&v, src + k * 4, 4);
            if ((uint64_t)v != k / g || v < 0)
                return qb_errorf("%s: %s: g_idx[%llu] = %d, not k / group_size = %llu (act-order / desc_act "
                                 "checkpoints are not supported)", e->file->origin, name, (unsigned long long)k, v,
                                 (unsigned long long)(k / g));
        }
        for (uint64_t k = 0; k < s->n_cols; k++) lin->g_idx[k] = (int32_t)(k / g);
    } else {
        const uint64_t words = N / QB_AWQ_PACK;
        snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QWEIGHT]);
        QB_TRY(read_block(ck, name, QB_ST_I32, K, words, s->col0, s->n_cols, s->row0 / QB_AWQ_PACK,
                          s->n_rows / QB_AWQ_PACK, lin->qweight));
        snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_QZEROS]);
        QB_TRY(read_block(ck, name, QB_ST_I32, groups, words, g0, n_groups, s->row0 / QB_AWQ_PACK,
                          s->n_rows / QB_AWQ_PACK, lin->qzeros));
    }
    snprintf(name, sizeof name, "%s.%s", prefix, fmt->parts[QB_PART_SCALES]);
    QB_TRY(read_block(ck, name, QB_ST_F16, groups, N, g0, n_groups, s->row0, s->n_rows, lin->scales));
    QB_TRY(check_scales(ck, name, lin->scales, (size_t)(n_groups * s->n_rows)));
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (s->has_bias) {
        QB_TRY(qb_checkpoint_read_vec_f32(ck, name, N, s->row0, s->n_rows, lin->bias));
    } else if (qb_checkpoint_find(ck, name)) {
        /* some quantizers store an all-zero bias for layers without one: accept exactly that */
        float *tmp = malloc((size_t)N * sizeof *tmp);
        if (!tmp) return qb_errorf("%s: out of memory", name);
        int rc = qb_checkpoint_read_vec_f32(ck, name, N, 0, N, tmp);
        for (uint64_t i = 0; rc == 0 && i < N; i++)
            if (tmp[i] != 0.0f)
                rc = qb_errorf("%s: %s: element %llu is %g, but this layer has no bias in Qwen2", ck->dir, name,
                               (unsigned long long)i, tmp[i]);
        free(tmp);
        QB_TRY(rc);
    }
    return 0;
}

/* embed_tokens / lm_head rows: F16 (GPTQ/AWQ releases) or BF16, raw bits; sets *fmt. */
static int read_dense_rows(qb_checkpoint *ck, const char *name, uint64_t rows, uint64_t cols, uint64_t row0,
                           uint64_t n_rows, uint16_t *dst, qb_weight_format *fmt) {
    qb_ck_entry *e = qb_checkpoint_find(ck, name);
    if (!e) return qb_errorf("%s: tensor \"%s\" is missing from the checkpoint", ck->dir, name);
    qb_st_dtype dt = e->tensor->dtype;
    if (dt != QB_ST_F16 && dt != QB_ST_BF16)
        return qb_errorf("%s: %s: dtype %s is not supported in a quantized checkpoint (F16 or BF16)", e->file->origin,
                         name, qb_st_dtype_name(dt));
    *fmt = dt == QB_ST_F16 ? QB_WFMT_F16 : QB_WFMT_BF16;
    return read_block(ck, name, dt, rows, cols, row0, n_rows, 0, cols, dst);
}

int qb_weights_read_quant(qb_checkpoint *ck, const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    const uint64_t H = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    const qb_model_family *fam = qb_model_family_of(c);
    char prefix[160];
    QB_TRY(read_dense_rows(ck, fam->embed, V, H, 0, V, w->embed, &w->embed_fmt));
    QB_TRY(qb_checkpoint_read_vec_f32(ck, fam->final_norm, H, 0, H, w->final_norm));
    qb_ck_entry *lm = qb_checkpoint_find(ck, fam->lm_head);
    if (!c->tie_word_embeddings) {
        if (!lm)
            return qb_errorf("%s: tensor \"%s\" is missing and tie_word_embeddings is false", ck->dir, fam->lm_head);
        QB_TRY(read_dense_rows(ck, fam->lm_head, V, H, (uint64_t)p->vocab_start, (uint64_t)p->vocab_size,
                               w->lm_head.w, &w->lm_head.fmt));
    } else {
        w->lm_head.fmt = w->embed_fmt;
        if (lm) lm->used = true; /* tied: transformers ignores a stored lm_head too */
    }
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &w->layers[i];
        QB_TRY(qb_weights_read_layer_norms(ck, c, i, l)); /* weights_load.c */
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            qb_tensor_name(prefix, sizeof prefix, i, qb_linear_suffix[k]);
            QB_TRY(load_linear(ck, c, prefix, &s, qb_layer_linear(l, k)));
        }
    }
    return 0;
}
