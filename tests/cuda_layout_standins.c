/* cuda_layout_standins.c - host stand-ins for test_cuda_quant_layout.c, test_memory_plan.c and
 * test_cuda_launch_trace.c (see cuda_layout_standins.h): the CUDA runtime calls and fill kernels of cuda_memory.c /
 * cuda_weights.c on host memory (cudaMalloc's sizes recorded; with g_mallocs_fake, no memory at all), and recording
 * stand-ins for the kernels cuda_forward.c and cuda_quant_tiles.c launch (also as text: the launch trace).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/planner.h"
#include "config/model_config.h"
#include "add_rmsnorm.cuh"
#include "argmax.cuh"
#include "argmax_tp.cuh"
#include "attention_decode.cuh"
#include "attention_prefill.cuh"
#include "cuda/cuda_engine.h"
#include "comm/cuda/nccl_comm.h"
#include "dense_f16.cuh"
#include "embedding.cuh"
#include "gemm.cuh"
#include "gemv.cuh"
#include "gemv_quant.cuh"
#include "gemv_quant_fused.cuh"
#include "quant_tile.cuh"
#include "qkv_rope.cuh"
#include "silu_mul.cuh"
#include "engine/quant_pack.h"
#include "engine/quant_repack.h"
#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "random_fill.cuh"
#include "random_fill_quant.cuh"
#include "util/error.h"

#include "cuda_layout_standins.h"
#include "nonfinite.cuh"

/* ---- the launch trace as text (cuda_layout_standins.h) ---- */

int trace_on;
static char *g_text;
static size_t g_text_len, g_text_cap;
typedef struct {
    char name[64];
    const char *base;
    size_t bytes;
} trace_buffer;
static trace_buffer g_names[4096];
static int g_n_names;
static trace_buffer g_spans[16];
static int g_n_spans;

void trace_clear(void) {
    g_text_len = 0;
    if (g_text) g_text[0] = 0;
    g_n_names = g_n_spans = 0;
}
void trace_name(const char *name, const void *base, size_t bytes) {
    if (!base || g_n_names >= (int)(sizeof g_names / sizeof g_names[0])) return;
    trace_buffer *b = &g_names[g_n_names++];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->base = base;
    b->bytes = bytes;
}
void trace_span(const void *base, size_t bytes) {
    if (!base || g_n_spans >= (int)(sizeof g_spans / sizeof g_spans[0])) return;
    g_spans[g_n_spans].base = base;
    g_spans[g_n_spans++].bytes = bytes;
}
const char *trace_text(void) { return g_text ? g_text : ""; }

static void trace_vappend(const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        va_end(again);
        return;
    }
    if (g_text_len + (size_t)n + 2 > g_text_cap) {
        size_t cap = (g_text_cap ? 2 * g_text_cap : 65536) + (size_t)n + 2;
        char *t = realloc(g_text, cap);
        if (!t) {
            va_end(again);
            return;
        }
        g_text = t;
        g_text_cap = cap;
    }
    vsnprintf(g_text + g_text_len, (size_t)n + 1, fmt, again);
    va_end(again);
    g_text_len += (size_t)n;
    g_text[g_text_len++] = '\n';
    g_text[g_text_len] = 0;
}
void trace_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    trace_vappend(fmt, ap);
    va_end(ap);
}
/* one launch's line (nothing while trace_on is clear) */
static void tr(const char *fmt, ...) {
    if (!trace_on) return;
    va_list ap;
    va_start(ap, fmt);
    trace_vappend(fmt, ap);
    va_end(ap);
}

/* The span (region) holding p, or -1. */
static int span_of(const char *p) {
    for (int i = 0; i < g_n_spans; i++)
        if (p >= g_spans[i].base && p < g_spans[i].base + g_spans[i].bytes) return i;
    return -1;
}
/* p as "name+offset": the named buffer of the greatest base <= p that holds it (sized names: within their bytes;
 * open-ended ones: within the same span); the first named wins a tie. Rotating static strings (16 per line). */
static const char *P(const void *vp) {
    static char ring[16][96];
    static int next;
    char *out = ring[next++ % 16];
    const char *p = vp;
    if (!p) return "null";
    const trace_buffer *best = NULL;
    int span = span_of(p);
    for (int i = 0; i < g_n_names; i++) {
        const trace_buffer *b = &g_names[i];
        if (b->base > p || (best && b->base <= best->base)) continue;
        if (b->bytes ? p >= b->base + b->bytes : (span < 0 || span_of(b->base) != span)) continue;
        best = b;
    }
    if (!best) return "unknown";
    size_t off = (size_t)(p - best->base);
    if (off) snprintf(out, 96, "%s+%zu", best->name, off);
    else snprintf(out, 96, "%s", best->name);
    return out;
}
/* A fused GEMV's input (gemv.cuh) in words. */
static const char *IN(const qb_gemv_input *in) {
    static char ring[4][400];
    static int next;
    char *out = ring[next++ % 4];
    if (!in) return "null";
    snprintf(out, 400, "{x=%s resid=%s norm=%s eps=%.9g tp=%s point=%d next=%s}", P(in->x), P(in->resid),
             P(in->norm_w), (double)in->eps, P(in->tp), in->tp_point, P(in->resid_next));
    return out;
}
/* The packed weights of a fused quantized GEMV in words. */
static const char *QW(const qb_gemv_qweights *w) {
    static char ring[4][300];
    static int next;
    char *out = ring[next++ % 4];
    snprintf(out, 300, "{qweight=%s sz=%s bits=%d group=%d tiled=%d kind=%d hd=%d inter=%d}", P(w->qweight), P(w->sz),
             w->bits, w->group_size, w->tiled, w->kind, w->hd, w->inter);
    return out;
}

/* ---- host stand-ins for the CUDA runtime and the fill kernels used by cuda_memory.c / cuda_weights.c ---- */

size_t g_mallocs[QB_MALLOCS_CAP];
int g_n_mallocs;
int g_mallocs_fake;

cudaError_t cudaMalloc(void **p, size_t n) {
    if (g_n_mallocs < QB_MALLOCS_CAP) g_mallocs[g_n_mallocs] = n;
    g_n_mallocs++;
    if (g_mallocs_fake) { /* distinct addresses 16 TiB apart, never dereferenced */
        *p = (void *)((uintptr_t)g_n_mallocs << 44);
        return cudaSuccess;
    }
    *p = calloc(1, n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    if (!g_mallocs_fake) free(p);
    return cudaSuccess;
}
size_t g_free_bytes;

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    *total = (size_t)1 << 40;
    *free_bytes = g_free_bytes ? g_free_bytes : *total;
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    (void)s;
    if (g_mallocs_fake) return cudaSuccess;
    memset(p, value, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
    tr("memcpy_async dst=%s src=%s bytes=%zu kind=%d stream=%s", P(dst), kind == cudaMemcpyHostToDevice ? "host" : P(src), n,
       (int)kind, P(s));
    if (g_mallocs_fake) return cudaSuccess;
    memcpy(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    (void)s;
    return cudaSuccess;
}
const char *cudaGetErrorString(cudaError_t err) {
    (void)err;
    return "host stand-in error";
}
size_t qb_attention_decode_workspace_floats(int hq, int hd, int max_seq) {
    return (size_t)hq * hd * (size_t)((max_seq + 63) / 64);
}
/* dense random fills: not what this test checks (random_fill.cu has its own test) */
int qb_launch_random_fill_bf16(uint16_t *dst, long rows, long cols, long row0, long col0, long full_cols,
                               uint64_t seed, uint64_t tensor_id, cudaStream_t stream) {
    (void)dst; (void)rows; (void)cols; (void)row0; (void)col0; (void)full_cols; (void)seed; (void)tensor_id;
    (void)stream;
    return 0;
}
int qb_launch_random_fill_bias_f32(float *dst, long n, long start, uint64_t seed, uint64_t tensor_id,
                                   cudaStream_t stream) {
    (void)dst; (void)n; (void)start; (void)seed; (void)tensor_id; (void)stream;
    return 0;
}
int qb_launch_random_fill_norm_f32(float *dst, long n, uint64_t seed, uint64_t tensor_id, cudaStream_t stream) {
    (void)dst; (void)n; (void)seed; (void)tensor_id; (void)stream;
    return 0;
}
/* the loops of kernels/weights/random_fill_quant.cu, one iteration per thread there */
int qb_launch_random_fill_qmat(uint32_t *qweight, uint32_t *sz, int n, int k, int bits, int group_size, int awq,
                               long n_full, long row0, long col0, uint64_t seed, uint64_t qweight_id,
                               uint64_t qzeros_id, uint64_t scales_id, cudaStream_t stream) {
    (void)stream;
    if ((bits != 4 && bits != 8) || n <= 0 || k <= 0 || k % group_size || col0 % group_size || row0 < 0 ||
        row0 + n > n_full)
        return qb_errorf("random_fill_qmat (host): unsupported slice N=%d K=%d rows [%ld, +%d) of %ld col0 %ld", n, k,
                         row0, n, n_full, col0);
    int words = k * bits / 32, groups = k / group_size, pf = 32 / bits;
    for (long row = 0; row < n; row++) {
        uint64_t nn = (uint64_t)(row0 + row);
        for (int w = 0; w < words; w++) {
            uint32_t word = 0;
            for (int j = 0; j < pf; j++) {
                uint64_t kk = (uint64_t)(col0 + (long)w * pf + j);
                word |= qb_random_quant_q(seed, qweight_id, kk * (uint64_t)n_full + nn, bits, awq) << (bits * j);
            }
            qweight[row * words + w] = word;
        }
        for (int g = 0; g < groups; g++) {
            uint64_t idx = (uint64_t)(col0 / group_size + g) * (uint64_t)n_full + nn;
            uint32_t zero = qb_random_quant_zero_stored(seed, qzeros_id, idx, bits, awq) + (awq ? 0u : 1u);
            sz[row * groups + g] = (uint32_t)qb_random_quant_scale(seed, scales_id, idx, bits) | zero << 16;
        }
    }
    return 0;
}

/* ---- recording stand-ins for the kernels cuda_forward.c launches ---- */

qb_call g_calls[QB_CALLS_CAP];
int g_n_calls;

static int record(const char *kernel, const void *w, const void *out, int m, int n, int k) {
    if (g_n_calls < QB_CALLS_CAP)
        g_calls[g_n_calls] = (qb_call){kernel, w, out, m, n, k, NULL, NULL, 0, 0};
    g_n_calls++;
    return 0;
}
static int record_in(const char *kernel, const void *w, const void *out, int n, int k, const qb_gemv_input *in) {
    record(kernel, w, out, 1, n, k);
    if (g_n_calls <= QB_CALLS_CAP && in) {
        qb_call *c = &g_calls[g_n_calls - 1];
        c->in_resid = in->x ? NULL : in->resid;
        c->in_next = in->resid_next;
        c->in_tp = in->tp != NULL;
        c->in_point = in->tp_point;
    }
    return 0;
}
int qb_launch_add_rmsnorm(float *residual, const uint16_t *delta, const float *w, int n, int dim, float eps,
                          uint16_t *out, cudaStream_t stream) {
    (void)residual; (void)delta; (void)w; (void)eps; (void)stream;
    tr("add_rmsnorm resid=%s delta=%s w=%s rows=%d dim=%d eps=%.9g out=%s stream=%s", P(residual), P(delta), P(w), n, dim,
       (double)eps, P(out), P(stream));
    return record("add_rmsnorm", NULL, out, n, dim, 0);
}
int qb_launch_argmax(const float *logits, int n, int32_t *token_out, int32_t *token_log, int *step, int *pos,
                     int pos_advance, cudaStream_t stream) {
    (void)token_out; (void)token_log; (void)step; (void)pos; (void)pos_advance; (void)stream;
    tr("argmax logits=%s n=%d token=%s log=%s step=%s pos=%s advance=%d stream=%s", P(logits), n, P(token_out),
       P(token_log), P(step), P(pos), pos_advance, P(stream));
    return record("argmax", logits, NULL, 1, n, 0);
}
int qb_launch_set_int(int *dst, int value, cudaStream_t stream) {
    tr("set_int dst=%s value=%d stream=%s", P(dst), value, P(stream));
    return 0;
}
int qb_launch_argmax_pack(const float *logits, const int32_t *local, int index_base, uint64_t *key,
                          cudaStream_t stream) {
    (void)logits; (void)local; (void)index_base; (void)key; (void)stream;
    tr("argmax_pack logits=%s local=%s base=%d key=%s stream=%s", P(logits), P(local), index_base, P(key), P(stream));
    return record("argmax_pack", NULL, NULL, 0, 0, 0);
}
int qb_launch_argmax_unpack(const uint64_t *key, int32_t *token_out, int32_t *token_log, int *step, int *pos,
                            int pos_advance, cudaStream_t stream) {
    (void)key; (void)token_out; (void)token_log; (void)step; (void)pos; (void)pos_advance; (void)stream;
    tr("argmax_unpack key=%s token=%s log=%s step=%s pos=%s advance=%d stream=%s", P(key), P(token_out), P(token_log),
       P(step), P(pos), pos_advance, P(stream));
    return record("argmax_unpack", NULL, NULL, 0, 0, 0);
}
int qb_launch_attention_decode(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                               int len_cap, const int *pos, int hq, int hkv, int hd, int chunk, float *part_o,
                               float *part_ml, uint16_t *out, cudaStream_t stream) {
    (void)q; (void)k_cache; (void)v_cache; (void)max_seq; (void)len_cap; (void)pos; (void)hkv; (void)hd; (void)chunk;
    (void)part_o; (void)part_ml; (void)stream;
    tr("attention_decode q=%s k=%s v=%s max_seq=%d len_cap=%d pos=%s hq=%d hkv=%d hd=%d chunk=%d part_o=%s part_ml=%s "
       "out=%s stream=%s", P(q), P(k_cache), P(v_cache), max_seq, len_cap, P(pos), hq, hkv, hd, chunk, P(part_o),
       P(part_ml), P(out), P(stream));
    return record("attention_decode", NULL, out, 1, hq, 0);
}
int qb_launch_attention_prefill_variant(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                        int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                        int variant, cudaStream_t stream) {
    (void)q; (void)k_cache; (void)v_cache; (void)max_seq; (void)start; (void)hkv; (void)hd; (void)variant;
    (void)stream;
    tr("attention_prefill q=%s k=%s v=%s max_seq=%d n=%d start=%d hq=%d hkv=%d hd=%d out=%s variant=%d stream=%s", P(q),
       P(k_cache), P(v_cache), max_seq, n, start, hq, hkv, hd, P(out), variant, P(stream));
    return record("attention_prefill", NULL, out, n, hq, 0);
}
int qb_gemv_quant_default_choice(int n, int k, int bits, int group_size, char *name, size_t name_len) {
    (void)n; (void)k; (void)bits; (void)group_size;
    snprintf(name, name_len, "stand-in");
    return 0;
}
int standin_nccl_impl = QB_AR_IPC_ONESHOT;
qb_allreduce_impl qb_nccl_impl(const qb_nccl *c) {
    (void)c;
    return (qb_allreduce_impl)standin_nccl_impl;
}
int qb_launch_embedding(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n, float *out,
                        cudaStream_t stream) {
    (void)tokens; (void)stream;
    tr("embedding table=%s vocab=%d hidden=%d tokens=%s n=%d out=%s stream=%s", P(table), vocab, hidden, P(tokens), n,
       P(out), P(stream));
    return record("embedding", table, out, n, vocab, hidden);
}
int qb_launch_embedding_f16(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n, float *out,
                            cudaStream_t stream) {
    (void)tokens; (void)stream;
    tr("embedding_f16 table=%s vocab=%d hidden=%d tokens=%s n=%d out=%s stream=%s", P(table), vocab, hidden, P(tokens),
       n, P(out), P(stream));
    return record("embedding_f16", table, out, n, vocab, hidden);
}
int qb_gemm_bf16(qb_gemm *g, const uint16_t *x, const uint16_t *w, int m, int n, int k, uint16_t *y,
                 cudaStream_t stream) {
    (void)g; (void)x; (void)stream;
    tr("gemm_bf16 gemm=%s x=%s w=%s m=%d n=%d k=%d y=%s stream=%s", g ? "gemm" : "null", P(x), P(w), m, n, k, P(y),
       P(stream));
    return record("gemm_bf16", w, y, m, n, k);
}
int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                   cudaStream_t stream) {
    (void)x; (void)stream;
    tr("gemv w=%s x=%s n=%d k=%d y_bf16=%s y_f32=%s stream=%s", P(w), P(x), n, k, P(y_bf16), P(y_f32), P(stream));
    return record("gemv", w, y_bf16 ? (const void *)y_bf16 : (const void *)y_f32, 1, n, k);
}
/* The fused decode GEMVs: this test runs the unfused sequence (--decode-fusion none, set_fusion), whose calls
 * name each linear; a call of these shows up as an unexpected kernel. */
int qb_launch_gemv_fused_store(const uint16_t *w, int n, int k, const qb_gemv_input *in, uint16_t *y,
                               cudaStream_t stream) {
    (void)in; (void)stream;
    tr("gemv_fused_store w=%s n=%d k=%d in=%s y=%s stream=%s", P(w), n, k, IN(in), P(y), P(stream));
    return record("gemv_fused", w, y, 1, n, k);
}
int qb_launch_gemv_resid_add(const uint16_t *w, int n, int k, const qb_gemv_input *in, float *resid,
                             cudaStream_t stream) {
    (void)in; (void)stream;
    tr("gemv_resid_add w=%s n=%d k=%d in=%s resid=%s stream=%s", P(w), n, k, IN(in), P(resid), P(stream));
    return record("gemv_fused", w, resid, 1, n, k);
}
int qb_launch_gemv_qkv_rope(const uint16_t *w, int k, const qb_gemv_input *in, const float *bias, int hq, int hkv,
                            int hd, const int *pos, const float *cos_t, const float *sin_t, uint16_t *q_out,
                            uint16_t *k_cache, uint16_t *v_cache, int max_seq, cudaStream_t stream) {
    (void)bias; (void)pos; (void)cos_t; (void)sin_t; (void)k_cache; (void)v_cache; (void)max_seq; (void)stream;
    tr("gemv_qkv_rope w=%s k=%d in=%s bias=%s hq=%d hkv=%d hd=%d pos=%s cos=%s sin=%s q=%s kc=%s vc=%s max_seq=%d "
       "stream=%s", P(w), k, IN(in), P(bias), hq, hkv, hd, P(pos), P(cos_t), P(sin_t), P(q_out), P(k_cache),
       P(v_cache), max_seq, P(stream));
    return record_in("gemv_fused", w, q_out, (hq + 2 * hkv) * hd, k, in);
}
int qb_launch_gemv_gate_up_silu(const uint16_t *w, int inter, int k, const qb_gemv_input *in, uint16_t *act,
                                cudaStream_t stream) {
    (void)stream;
    tr("gemv_gate_up_silu w=%s inter=%d k=%d in=%s act=%s stream=%s", P(w), inter, k, IN(in), P(act), P(stream));
    return record_in("gemv_fused", w, act, 2 * inter, k, in);
}
int qb_launch_gemv_tp_push(const uint16_t *w, int n, int k, const qb_gemv_input *in, const qb_tp_exchange *tp,
                           int point, cudaStream_t stream) {
    (void)in; (void)tp; (void)stream;
    tr("gemv_tp_push w=%s n=%d k=%d in=%s tp=%s point=%d stream=%s", P(w), n, k, IN(in), P(tp), point, P(stream));
    return record("tp_push", w, NULL, point, n, k); /* m: the exchange point */
}
int qb_launch_tp_sum_rmsnorm(const qb_tp_exchange *tp, int point, const float *resid, const float *w, int dim,
                             float eps, uint16_t *out, cudaStream_t stream) {
    (void)tp; (void)eps; (void)stream;
    tr("tp_sum_rmsnorm tp=%s point=%d resid=%s w=%s dim=%d eps=%.9g out=%s stream=%s", P(tp), point, P(resid), P(w), dim,
       (double)eps, P(out), P(stream));
    record("tp_sum_rmsnorm", w, out, point, dim, 0);
    if (g_n_calls <= QB_CALLS_CAP) g_calls[g_n_calls - 1].in_resid = resid;
    return 0;
}

/* The fused quantized decode GEMVs (gemv_quant_fused.cuh): recorded with the packed weights they read. */
int qb_gemv_quant_tc_supported(int bits, int k, int group_size) { /* the rule of gemv_quant.cu */
    if (bits != 4 && bits != 8) return 0;
    int step_k = 512 / bits;
    return k > 0 && group_size > 0 && k % step_k == 0 && group_size % step_k == 0 && k % group_size == 0;
}
int qb_launch_gemv_quant_fused_store(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in, uint16_t *y,
                                     cudaStream_t stream) {
    (void)in; (void)stream;
    tr("gemv_quant_fused_store w=%s n=%d k=%d in=%s y=%s stream=%s", QW(w), n, k, IN(in), P(y), P(stream));
    return record("gemv_quant_fused", w->qweight, y, 1, n, k);
}
int qb_launch_gemv_quant_resid_add(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in, float *resid,
                                   cudaStream_t stream) {
    (void)in; (void)stream;
    tr("gemv_quant_resid_add w=%s n=%d k=%d in=%s resid=%s stream=%s", QW(w), n, k, IN(in), P(resid), P(stream));
    return record("gemv_quant_fused", w->qweight, resid, 1, n, k);
}
int qb_launch_gemv_quant_qkv_rope(const qb_gemv_qweights *w, int k, const qb_gemv_input *in, const float *bias,
                                  int hq, int hkv, int hd, const int *pos, const float *cos_t, const float *sin_t,
                                  uint16_t *q_out, uint16_t *k_cache, uint16_t *v_cache, int max_seq,
                                  cudaStream_t stream) {
    (void)bias; (void)pos; (void)cos_t; (void)sin_t; (void)k_cache; (void)v_cache; (void)max_seq; (void)stream;
    tr("gemv_quant_qkv_rope w=%s k=%d in=%s bias=%s hq=%d hkv=%d hd=%d pos=%s cos=%s sin=%s q=%s kc=%s vc=%s "
       "max_seq=%d stream=%s", QW(w), k, IN(in), P(bias), hq, hkv, hd, P(pos), P(cos_t), P(sin_t), P(q_out),
       P(k_cache), P(v_cache), max_seq, P(stream));
    return record_in("gemv_quant_fused", w->qweight, q_out, (hq + 2 * hkv) * hd, k, in);
}
int qb_launch_gemv_quant_gate_up_silu(const qb_gemv_qweights *w, int inter, int k, const qb_gemv_input *in,
                                      uint16_t *act, cudaStream_t stream) {
    (void)stream;
    tr("gemv_quant_gate_up_silu w=%s inter=%d k=%d in=%s act=%s stream=%s", QW(w), inter, k, IN(in), P(act), P(stream));
    return record_in("gemv_quant_fused", w->qweight, act, 2 * inter, k, in);
}
int qb_launch_gemv_quant_tp_push(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in,
                                 const qb_tp_exchange *tp, int point, cudaStream_t stream) {
    (void)in; (void)tp; (void)stream;
    tr("gemv_quant_tp_push w=%s n=%d k=%d in=%s tp=%s point=%d stream=%s", QW(w), n, k, IN(in), P(tp), point, P(stream));
    return record("tp_push", w->qweight, NULL, point, n, k);
}
int qb_allreduce_add_rmsnorm_bf16(qb_nccl *c, void *delta, float *residual, const float *w, int rows, int dim,
                                  float eps, int one_kernel, void *out, cudaStream_t stream) {
    (void)c; (void)delta; (void)residual; (void)rows; (void)dim; (void)eps; (void)one_kernel; (void)stream;
    tr("allreduce_add_rmsnorm nc=%s delta=%s resid=%s w=%s rows=%d dim=%d eps=%.9g one_kernel=%d out=%s stream=%s", P(c),
       P(delta), P(residual), P(w), rows, dim, (double)eps, one_kernel, P(out), P(stream));
    return record("allreduce_add_rmsnorm", w, out, rows, dim, 0); /* w: the norm weight it normalises with */
}

int qb_launch_dequant_quant_tiled_bf16(const uint32_t *qw_tiles, const uint32_t *sz_tiles, int n, int k, int bits,
                                       int group_size, int kind, int hd, int inter, uint16_t *w_out,
                                       cudaStream_t stream) {
    (void)sz_tiles; (void)bits; (void)group_size; (void)kind; (void)hd; (void)inter; (void)stream;
    tr("dequant_tiled qweight=%s sz=%s n=%d k=%d bits=%d group=%d kind=%d hd=%d inter=%d out=%s stream=%s", P(qw_tiles),
       P(sz_tiles), n, k, bits, group_size, kind, hd, inter, P(w_out), P(stream));
    return record("dequant_tiled", qw_tiles, w_out, 0, n, k); /* engines here keep the row layout */
}
/* The load-time re-layout (quant_tile.cuh), done here on host memory the way the kernel does it (one 16-byte piece
 * or entry per destination index), so that cuda_quant_tiles.c's pass runs for real on these engines. */
int qb_launch_quant_tile(const uint32_t *qw_rows, const uint32_t *sz_rows, int n, int k, int bits, int group_size,
                         int kind, int hd, int inter, uint32_t *qw_tiles, uint32_t *sz_tiles, cudaStream_t stream) {
    (void)stream;
    int steps = k / (512 / bits), groups = k / group_size;
    if (!qb_quant_tile_supported(kind, n, hd, inter)) return qb_errorf("quant_tile stand-in: kind %d n %d", kind, n);
    if (g_mallocs_fake) return record("quant_tile", qw_rows, qw_tiles, 0, n, k);
    for (long d = 0; d < (long)n * steps * 4; d++) {
        long per_tile = (long)steps * 64;
        int tile = (int)(d / per_tile), rem = (int)(d % per_tile), step = rem / 64, q = rem % 64;
        int j = (q % 32) / 4 + 8 * (q / 32), t = q % 4, row = qb_tile_row(kind, tile, j, hd, inter);
        memcpy(qw_tiles + 4 * d, qw_rows + 4 * ((long)row * steps * 4 + step * 4 + t), 16);
    }
    for (long d = 0; d < (long)n * groups; d++) {
        int tile = (int)(d / (groups * 16)), rem = (int)(d % (groups * 16));
        sz_tiles[d] = sz_rows[(long)qb_tile_row(kind, tile, rem % 16, hd, inter) * groups + rem / 16];
    }
    return record("quant_tile", qw_rows, qw_tiles, 0, n, k);
}
int qb_launch_gemv_f16(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                       cudaStream_t stream) {
    (void)x; (void)stream;
    tr("gemv_f16 w=%s x=%s n=%d k=%d y_bf16=%s y_f32=%s stream=%s", P(w), P(x), n, k, P(y_bf16), P(y_f32), P(stream));
    return record("gemv_f16", w, y_bf16 ? (const void *)y_bf16 : (const void *)y_f32, 1, n, k);
}
int qb_launch_gemv_quant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k, int bits,
                         int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
    (void)sz; (void)x; (void)bits; (void)group_size; (void)stream;
    tr("gemv_quant qweight=%s sz=%s x=%s n=%d k=%d bits=%d group=%d y_bf16=%s y_f32=%s stream=%s", P(qweight), P(sz),
       P(x), n, k, bits, group_size, P(y_bf16), P(y_f32), P(stream));
    return record("gemv_quant", qweight, y_bf16 ? (const void *)y_bf16 : (const void *)y_f32, 1, n, k);
}
int qb_launch_dequant_quant_bf16(const uint32_t *qweight, const uint32_t *sz, int n, int k, int bits, int group_size,
                                 uint16_t *w_out, cudaStream_t stream) {
    (void)sz; (void)bits; (void)group_size; (void)stream;
    tr("dequant qweight=%s sz=%s n=%d k=%d bits=%d group=%d out=%s stream=%s", P(qweight), P(sz), n, k, bits,
       group_size, P(w_out), P(stream));
    return record("dequant", qweight, w_out, 0, n, k);
}
int qb_launch_qkv_rope(const uint16_t *qkv, const float *bias, int n, int hq, int hkv, int hd, const int *start_pos,
                       const float *cos_t, const float *sin_t, uint16_t *q_out, uint16_t *k_cache, uint16_t *v_cache,
                       int max_seq, cudaStream_t stream) {
    (void)qkv; (void)bias; (void)hkv; (void)hd; (void)start_pos; (void)cos_t; (void)sin_t; (void)k_cache;
    (void)v_cache; (void)max_seq; (void)stream;
    tr("qkv_rope qkv=%s bias=%s n=%d hq=%d hkv=%d hd=%d pos=%s cos=%s sin=%s q=%s kc=%s vc=%s max_seq=%d stream=%s",
       P(qkv), P(bias), n, hq, hkv, hd, P(start_pos), P(cos_t), P(sin_t), P(q_out), P(k_cache), P(v_cache), max_seq,
       P(stream));
    return record("qkv_rope", NULL, q_out, n, hq, 0);
}
int qb_launch_silu_mul(const uint16_t *gate_up, int n, int inter, uint16_t *out, cudaStream_t stream) {
    (void)gate_up; (void)stream;
    tr("silu_mul gate_up=%s n=%d inter=%d out=%s stream=%s", P(gate_up), n, inter, P(out), P(stream));
    return record("silu_mul", NULL, out, n, inter, 0);
}
int qb_allreduce_sum_bf16(qb_nccl *c, void *buf, size_t count, cudaStream_t stream) {
    (void)c; (void)buf; (void)count; (void)stream;
    tr("allreduce_sum nc=%s buf=%s count=%zu stream=%s", P(c), P(buf), count, P(stream));
    return record("allreduce_sum", NULL, NULL, 0, 0, 0);
}
int qb_allreduce_max_u64(qb_nccl *c, void *buf, size_t count, cudaStream_t stream) {
    (void)c; (void)buf; (void)count; (void)stream;
    tr("allreduce_max nc=%s buf=%s count=%zu stream=%s", P(c), P(buf), count, P(stream));
    return record("allreduce_max", NULL, NULL, 0, 0, 0);
}

/* The calls of kernel `name` in the recorded trace, in order (at most cap). */
int calls_of(const char *name, const qb_call **out, int cap) {
    int n = 0;
    for (int i = 0; i < g_n_calls && i < QB_CALLS_CAP; i++)
        if (!strcmp(g_calls[i].kernel, name)) {
            if (n < cap) out[n] = &g_calls[i];
            n++;
        }
    return n;
}

/* The non-finite weight check after upload (kernels/weights/nonfinite.cuh), on host memory here. */
int qb_launch_first_nonfinite(const void *data, size_t n, int elem_bytes, uint32_t exp_mask,
                              unsigned long long *d_first, void *stream) {
    (void)stream;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = elem_bytes == 2 ? ((const uint16_t *)data)[i] : ((const uint32_t *)data)[i];
        if (qb_bits_nonfinite(bits, exp_mask)) {
            if (i < *d_first) *d_first = i;
            break;
        }
    }
    return 0;
}
int qb_attention_prefill_auto_variant(int hd, int cc_major) { /* the rule of attention_prefill.cu */
    if (cc_major != 9) return QB_ATTN_PREFILL_FA2;
    return hd == 64 ? QB_ATTN_PREFILL_WG : QB_ATTN_PREFILL_WGP;
}
