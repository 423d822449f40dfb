/* test_cuda_quant_layout.c - the CUDA engine's host side for quantized weights, without a GPU: the memory plan
 * and both weight paths of src/cuda/cuda_memory.c and cuda_weights.c run against host memory (cuda_layout_standins.c
 * replaces the few CUDA runtime calls they make with host versions, and the random quantized fill with a host copy
 * of kernels/weights/random_fill_quant.cu's loops). Checked, for GPTQ-Int4, GPTQ-Int8 and AWQ at TP1 and on both ranks of TP2:
 *   - random weights: each linear's rows in the fused device matrices (q|k|v, gate|up) equal
 *     qb_qmat_from_linear of the CPU engine's random linear (qb_weights_random): ids, slices and row offsets;
 *   - checkpoint path: qb_cuda_weights_upload of those CPU weights gives the same bytes;
 *   - the weights region equals the memory planner's weights up to 256 bytes of alignment per tensor, and the
 *     prefill dequantization scratch exists exactly when a prefill chunk has more than one row;
 *   - dispatch (cuda_forward.c with recording stand-ins for the kernels): a decode step reads each layer linear
 *     with the quantized GEMV on its fused matrix and shape, a prefill dequantizes each into the scratch right
 *     before the bf16 GEMM reads it, f16 tables take the f16 kernels, and a bf16 model calls no quantized kernel;
 *     with the decode fusion on, a quantized decode step reads each linear with the fused quantized kernels;
 *   - the tensor-parallel residual exchange's rule, and a decode step with the exchange (stand-in context);
 *   - tensor-parallel decode (stand-in NCCL context), row layout and tiled: one all-reduce + add + RMSNorm after
 *     each row-parallel linear with the right next norm weight, no other norm kernel, the argmax max-reduced;
 *   - the tiled layout of 4-bit linears (src/cuda/cuda_quant_tiles.c): chosen for these shapes, and the load-time
 *     pass (with a host version of the tiling kernel) leaves every linear's words and scale | zero entries where
 *     kernels/linear/quant_tile.cuh says, with the KV cache zeroed again when it served as the scratch.
 * The GPU kernels themselves are checked against the CPU reference by test_cuda_quant / test_cuda_quant_engine.
 */
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

static int g_failures;

/* ---- the checks ---- */

/* Rows [row_off, +m.n) of the fused device matrix d against the repacked host matrix m. */
static int same_rows(const char *what, const qb_cuda_qmat *d, long row_off, const qb_qmat *m) {
    size_t words = (size_t)m->k * m->bits / 32, groups = (size_t)m->k / m->group_size;
    const uint32_t *dq = d->qweight + (size_t)row_off * words, *ds = d->sz + (size_t)row_off * groups;
    for (size_t i = 0; i < (size_t)m->n * words; i++)
        if (dq[i] != m->qweight[i]) {
            printf("FAIL %s: qweight row %zu word %zu: device %08x, expected %08x\n", what, i / words, i % words, dq[i],
                   m->qweight[i]);
            return 0;
        }
    for (size_t i = 0; i < (size_t)m->n * groups; i++)
        if (ds[i] != m->sz[i]) {
            printf("FAIL %s: sz row %zu group %zu: device %08x, expected %08x\n", what, i / groups, i % groups, ds[i],
                   m->sz[i]);
            return 0;
        }
    return 1;
}

/* Every quantized linear of the engine's weights region against the CPU weights w. */
static int check_linears(const char *label, const qb_cuda_engine *e, qb_weights *w) {
    long nq = (long)e->hq * e->hd, nkv = (long)e->hkv * e->hd;
    for (int l = 0; l < e->layers; l++) {
        const qb_cuda_layer *L = &e->layer[l];
        const qb_cuda_qmat *dst[QB_NUM_LINEAR] = {&L->q_qkv, &L->q_qkv, &L->q_qkv, &L->q_o, &L->q_gate_up,
                                                  &L->q_gate_up, &L->q_down};
        const long off[QB_NUM_LINEAR] = {0, nq, nq + nkv, 0, 0, e->I, 0};
        for (int which = 0; which < QB_NUM_LINEAR; which++) {
            qb_qmat m;
            char what[200];
            snprintf(what, sizeof what, "%s layer %d %s", label, l, qb_linear_suffix[which]);
            if (qb_qmat_from_linear(qb_layer_linear(&w->layers[l], which), &m, 1) != 0) {
                printf("FAIL %s: %s\n", what, qb_last_error());
                return 0;
            }
            int ok = same_rows(what, dst[which], off[which], &m);
            qb_qmat_free(&m);
            if (!ok) return 0;
        }
    }
    return 1;
}

/* Layer linears in call order: the matrix each of the 4 per layer must read, and its (n, k). */
static void layer_linears(const qb_cuda_engine *e, int l, int quant, const void *w[4], int n[4], int k[4]) {
    const qb_cuda_layer *L = &e->layer[l];
    int nq = e->hq * e->hd;
    w[0] = quant ? (const void *)L->q_qkv.qweight : (const void *)L->w_qkv;
    w[1] = quant ? (const void *)L->q_o.qweight : (const void *)L->w_o;
    w[2] = quant ? (const void *)L->q_gate_up.qweight : (const void *)L->w_gate_up;
    w[3] = quant ? (const void *)L->q_down.qweight : (const void *)L->w_down;
    n[0] = e->n_qkv; k[0] = e->H;
    n[1] = e->H;     k[1] = nq;
    n[2] = 2 * e->I; k[2] = e->H;
    n[3] = e->H;     k[3] = e->I;
}

/* The decode fusion as the engine resolves it with every option "auto" (on), or none (off: the unfused sequence,
 * one named call per linear, see the stand-ins). */
static void set_fusion(qb_cuda_engine *e, int on) {
    qb_engine_options automatic = {{0}};
    e->fusion = on ? qb_choose_decode_fusion(e, e->nc ? 2 : 1, &automatic) : QB_FUSE_NONE;
    qb_cuda_decode_plan_build(e); /* the plan of these choices (as qb_cuda_setup builds it) */
}

/* One decode step and one prefill of `rows` rows through cuda_forward.c; the kernels each must call. */
/* With the decode fusion on (the default), a 4-bit decode step reads each layer linear with the fused quantized
 * kernels, in order, on its fused matrix and shape (every fixture shape is a multiple of 128). */
static int check_fused_dispatch(const char *label, qb_cuda_engine *e) {
    const qb_call *c[256], *unfused[1];
    set_fusion(e, 1);
    g_n_calls = 0;
    int rc = qb_cuda_decode_step(e, 64, e->max_seq);
    set_fusion(e, 0);
    if (rc != 0) {
        printf("FAIL %s: fused decode step: %s\n", label, qb_last_error());
        return 0;
    }
    int n = calls_of("gemv_quant_fused", c, 256), L4 = 4 * e->layers;
    int n_unfused = calls_of("gemv_quant", unfused, 1);
    if (n != L4 || n_unfused != 0) {
        printf("FAIL %s: fused decode: %d fused quantized GEMVs (want %d), %d unfused\n", label, n, L4, n_unfused);
        return 0;
    }
    for (int i = 0; i < L4; i++) {
        const void *w[4];
        int nn[4], k[4];
        layer_linears(e, i / 4, 1, w, nn, k);
        if (c[i]->w != w[i % 4] || c[i]->n != nn[i % 4] || c[i]->k != k[i % 4]) {
            printf("FAIL %s: fused decode layer %d linear %d reads %p [%d][%d], want %p [%d][%d]\n", label, i / 4,
                   i % 4, c[i]->w, c[i]->n, c[i]->k, w[i % 4], nn[i % 4], k[i % 4]);
            return 0;
        }
    }
    return 1;
}

static int check_dispatch(const char *label, qb_cuda_engine *e, int rows) {
    int quant = e->quant_bits != 0, L4 = 4 * e->layers;
    const char *lin_kernel = quant ? "gemv_quant" : "gemv";
    const qb_call *c[256], *other[8], *heads[256];
    qb_cuda_decode_plan_build(e); /* this engine's choices and tables */
    g_n_calls = 0;
    if (qb_cuda_decode_step(e, 64, e->max_seq) != 0) {
        printf("FAIL %s: decode step: %s\n", label, qb_last_error());
        return 0;
    }
    int n_lin = calls_of(lin_kernel, c, 256), n_other = calls_of(quant ? "gemv" : "gemv_quant", other, 8);
    int n_head = calls_of(e->lm_head_f16 ? "gemv_f16" : "gemv", heads, 256);
    int expect_lin = L4 + (!quant && !e->lm_head_f16), expect_other = quant && !e->lm_head_f16;
    if (n_lin != expect_lin || n_other != expect_other || n_head < 1 || n_head > 256 || n_lin > 256) {
        printf("FAIL %s: decode: %d %s calls (want %d), %d of the other GEMV (want %d), %d lm_head\n", label, n_lin,
               lin_kernel, expect_lin, n_other, expect_other, n_head);
        return 0;
    }
    const qb_call *head = heads[n_head - 1];
    if (head->w != e->lm_head || head->n != e->vocab_rows || head->k != e->H || head->out != e->logits) {
        printf("FAIL %s: decode: lm_head GEMV reads %p [%d][%d], want %p [%d][%d] into the logits\n", label, head->w,
               head->n, head->k, (const void *)e->lm_head, e->vocab_rows, e->H);
        return 0;
    }
    for (int i = 0; i < L4; i++) {
        const void *w[4];
        int n[4], k[4];
        layer_linears(e, i / 4, quant, w, n, k);
        if (c[i]->w != w[i % 4] || c[i]->n != n[i % 4] || c[i]->k != k[i % 4]) {
            printf("FAIL %s: decode layer %d linear %d: %s reads %p [%d][%d], want %p [%d][%d]\n", label, i / 4, i % 4,
                   lin_kernel, c[i]->w, c[i]->n, c[i]->k, w[i % 4], n[i % 4], k[i % 4]);
            return 0;
        }
    }
    if (calls_of(e->embed_f16 ? "embedding_f16" : "embedding", c, 1) != 1 || c[0]->w != e->embed ||
        calls_of(e->embed_f16 ? "embedding" : "embedding_f16", c, 1) != 0) {
        printf("FAIL %s: decode: the embedding lookup is not the %s one on the table\n", label,
               e->embed_f16 ? "f16" : "bf16");
        return 0;
    }
    if (quant && e->quant_bits == 4 && !check_fused_dispatch(label, e)) return 0;
    if (rows < 2) return 1;
    int32_t prompt[64] = {0};
    g_n_calls = 0;
    if (qb_cuda_prefill(e, prompt, rows) != 0) {
        printf("FAIL %s: prefill: %s\n", label, qb_last_error());
        return 0;
    }
    for (int i = 0, lin = 0; i < g_n_calls; i++) {
        if (strcmp(g_calls[i].kernel, "gemm_bf16")) continue;
        const void *w[4];
        int n[4], k[4];
        layer_linears(e, lin / 4, quant, w, n, k);
        const qb_call *g = &g_calls[i], *d = i > 0 ? &g_calls[i - 1] : NULL;
        int j = lin % 4;
        int ok = g->m == rows && g->n == n[j] && g->k == k[j];
        if (quant)
            ok = ok && g->w == e->wdq && d && !strcmp(d->kernel, "dequant") && d->w == w[j] && d->out == e->wdq &&
                 d->n == n[j] && d->k == k[j];
        else
            ok = ok && g->w == w[j];
        if (!ok) {
            printf("FAIL %s: prefill layer %d linear %d: GEMM reads %p (%d x [%d][%d]) after %s\n", label, lin / 4, j,
                   g->w, g->m, g->n, g->k, d ? d->kernel : "nothing");
            return 0;
        }
        lin++;
    }
    if (calls_of("gemm_bf16", c, 1) != L4 || calls_of("dequant", c, 1) != (quant ? L4 : 0)) {
        printf("FAIL %s: prefill: %d GEMMs and %d dequantizations for %d layers\n", label, calls_of("gemm_bf16", c, 1),
               calls_of("dequant", c, 1), e->layers);
        return 0;
    }
    return 1;
}

/* The tiled layout (cuda_quant_tiles.c): 4-bit engines of these shapes choose it (with the decode fusion on),
 * --quant-layout tiled gives it to 8-bit ones too, and the load-time pass (at either width) leaves each linear's words at [tile][step][slot pieces] of its rows by its kind (written out
 * here independently of the pass), the scale | zero entries at [tile][group][slot], and the KV cache zeroed again
 * if it served as the scratch. */
static int check_tiling(const char *label, qb_cuda_engine *e) {
    qb_engine_options automatic = {{0}}, rows = {{0}}, unfused = {{0}}, forced = {{0}}, forced_unfused = {{0}};
    rows.v[QB_EOPT_QUANT_LAYOUT] = QB_LAYOUT_OPT_ROWS;
    unfused.v[QB_EOPT_DECODE_FUSION] = QB_FUSION_OPT_NONE;
    forced.v[QB_EOPT_QUANT_LAYOUT] = forced_unfused.v[QB_EOPT_QUANT_LAYOUT] = QB_LAYOUT_OPT_TILED;
    forced_unfused.v[QB_EOPT_DECODE_FUSION] = QB_FUSION_OPT_NONE;
    int tiled = qb_choose_quant_tiled(e, &automatic), forced_tiled = qb_choose_quant_tiled(e, &forced);
    int rows_kept = !qb_choose_quant_tiled(e, &rows) && !qb_choose_quant_tiled(e, &unfused) &&
                    !qb_choose_quant_tiled(e, &forced_unfused);
    if (tiled != (e->quant_bits == 4) || forced_tiled != (e->quant_bits > 0) || !rows_kept) {
        printf("FAIL %s: tiled layout chosen %d (want %d), under --quant-layout tiled %d (want %d), kept rows under "
               "--quant-layout rows / --decode-fusion none %d\n", label, tiled, e->quant_bits == 4, forced_tiled,
               e->quant_bits > 0, rows_kept);
        return 0;
    }
    /* a forced layout this cell cannot take is refused when the choices are resolved, never replaced */
    if (e->quant_bits) {
        qb_cuda_engine probe = *e;
        if (qb_cuda_choices_resolve(&probe, 1, 9, &forced_unfused) == 0 ||
            !strstr(qb_last_error(), "--quant-layout tiled: not possible")) {
            printf("FAIL %s: --quant-layout tiled with --decode-fusion none not refused\n", label);
            return 0;
        }
    }
    if (!forced_tiled) return 1;
    int nq = e->hq * e->hd, words_step = 4 * 4; /* u32 words of 4 pieces: one 512-bit step of a row */
    int L4 = 4 * e->layers;
    uint32_t **qw_rows = calloc((size_t)L4, sizeof *qw_rows), **sz_rows = calloc((size_t)L4, sizeof *sz_rows);
    int ok = 1;
    for (int i = 0; i < L4; i++) {
        qb_cuda_layer *L = &e->layer[i / 4];
        qb_cuda_qmat *m = i % 4 == 0 ? &L->q_qkv : i % 4 == 1 ? &L->q_o : i % 4 == 2 ? &L->q_gate_up : &L->q_down;
        int n = i % 4 == 0 ? e->n_qkv : i % 4 == 2 ? 2 * e->I : e->H, k = i % 4 == 1 ? nq : i % 4 == 3 ? e->I : e->H;
        size_t qwb = (size_t)n * k * e->quant_bits / 8, szb = (size_t)n * (k / e->group_size) * 4;
        qw_rows[i] = malloc(qwb);
        sz_rows[i] = malloc(szb);
        memcpy(qw_rows[i], m->qweight, qwb);
        memcpy(sz_rows[i], m->sz, szb);
    }
    memset(e->region[1], 0x5A, e->region_bytes[1]); /* a KV cache used as scratch must come back zeroed */
    size_t peak = e->peak_bytes;
    e->quant_tiled = 1;
    if (qb_cuda_quant_tile_weights(e) != 0) {
        printf("FAIL %s: tiling: %s\n", label, qb_last_error());
        ok = 0;
    }
    for (int i = 0; i < L4 && ok; i++) {
        qb_cuda_layer *L = &e->layer[i / 4];
        qb_cuda_qmat *m = i % 4 == 0 ? &L->q_qkv : i % 4 == 1 ? &L->q_o : i % 4 == 2 ? &L->q_gate_up : &L->q_down;
        int kind = i % 4 == 0 ? QB_TILE_ROPE : i % 4 == 2 ? QB_TILE_SILU : QB_TILE_ROWS;
        int n = i % 4 == 0 ? e->n_qkv : i % 4 == 2 ? 2 * e->I : e->H, k = i % 4 == 1 ? nq : i % 4 == 3 ? e->I : e->H;
        int steps = k * e->quant_bits / 512, groups = k / e->group_size;
        for (int t = 0; t < n / 16 && ok; t++)
            for (int j = 0; j < 16 && ok; j++) {
                int row = qb_tile_row(kind, t, j, e->hd, e->I);
                for (int st = 0; st < steps && ok; st++)
                    for (int p = 0; p < 4; p++) {
                        const uint32_t *want = qw_rows[i] + (size_t)row * steps * words_step + st * words_step + 4 * p;
                        const uint32_t *got = m->qweight + ((size_t)(t * steps + st) * 64 + (j / 8) * 32 +
                                                            (j % 8) * 4 + p) * 4;
                        if (memcmp(want, got, 16) != 0) {
                            printf("FAIL %s: layer %d linear %d tile %d slot %d step %d piece %d not row %d's\n",
                                   label, i / 4, i % 4, t, j, st, p, row);
                            ok = 0;
                            break;
                        }
                    }
                for (int gi = 0; gi < groups && ok; gi++)
                    if (m->sz[((size_t)t * groups + gi) * 16 + j] != sz_rows[i][(size_t)row * groups + gi]) {
                        printf("FAIL %s: layer %d linear %d tile %d slot %d group %d scale | zero not row %d's\n",
                               label, i / 4, i % 4, t, j, gi, row);
                        ok = 0;
                    }
            }
    }
    /* the scratch: the dequantization buffer if any (KV untouched, peak unchanged), else the KV cache if large
     * enough (zeroed after, peak unchanged), else a temporary allocation (KV untouched, counted in the peak) */
    int kv_zero = 1, kv_kept = 1;
    for (size_t b = 0; b < e->region_bytes[1]; b++) {
        unsigned char v = ((unsigned char *)e->region[1])[b];
        kv_zero &= v == 0;
        kv_kept &= v == 0x5A;
    }
    const char *how = e->wdq ? "the dequantization buffer" : kv_zero ? "the KV cache" : "a temporary buffer";
    if (ok && ((!kv_zero && !kv_kept) || (e->wdq && !kv_kept) || (kv_zero && e->peak_bytes != peak) ||
               (!e->wdq && kv_kept && e->peak_bytes <= peak))) {
        printf("FAIL %s: after tiling with %s: KV cache %s, peak %zu -> %zu bytes\n", label, how,
               kv_zero ? "zeroed" : kv_kept ? "untouched" : "partly overwritten", peak, e->peak_bytes);
        ok = 0;
    }
    if (ok) printf("ok %s: tiled%s, scratch %s\n", label, tiled ? "" : " (--quant-layout tiled)", how);
    memset(e->region[1], 0, e->region_bytes[1]);
    e->quant_tiled = 0;
    for (int i = 0; i < L4; i++) {
        free(qw_rows[i]);
        free(sz_rows[i]);
    }
    free(qw_rows);
    free(sz_rows);
    return ok;
}

/* A tensor-parallel decode step (a stand-in NCCL context; the all-reduce stand-ins record, nothing is reduced),
 * row layout (unfused linears) and tiled (the fused kernels): the first layer normalises the embedding; then each
 * layer's o_proj and down_proj outputs go through one all-reduce + add + RMSNorm with the next norm weight
 * (post-attention norm, the next layer's input norm, the final norm after the last layer), no other add_rmsnorm
 * and no plain all-reduce; the head takes xn as it is, picks its shard's best and max-reduces the packed key. */
static int check_tp_decode(const char *label, qb_cuda_engine *e) {
    const qb_call *c[1024];
    int ok = 1;
    for (int tiled = 0; tiled < 2 && ok; tiled++) {
        if (tiled && e->quant_bits != 4) break;
        e->nc = (struct qb_nccl *)(uintptr_t)0x10; /* never dereferenced by cuda_forward.c */
        e->quant_tiled = tiled;
        set_fusion(e, 1);
        g_n_calls = 0;
        int rc = qb_cuda_decode_step(e, 64, e->max_seq);
        set_fusion(e, 0);
        e->nc = NULL;
        e->quant_tiled = 0;
        if (rc != 0) {
            printf("FAIL %s: TP decode step (%s): %s\n", label, tiled ? "tiled" : "rows", qb_last_error());
            return 0;
        }
        const qb_call *norm[1] = {NULL}, *one[1];
        int n_norm = calls_of("add_rmsnorm", norm, 1), n_sum = calls_of("allreduce_sum", one, 1);
        int n_max = calls_of("allreduce_max", one, 1);
        int n_lin = calls_of(tiled ? "gemv_quant_fused" : "gemv_quant", one, 1);
        int n_arn = calls_of("allreduce_add_rmsnorm", c, 1024);
        if (n_norm != 1 || !norm[0] || norm[0]->out != e->xn || n_sum != 0 || n_arn != 2 * e->layers || n_max != 1 ||
            n_lin != 4 * e->layers) {
            printf("FAIL %s: TP decode (%s): %d add_rmsnorm, %d all-reduce, %d all-reduce + norm (want 1, 0, %d), "
                   "%d argmax all-reduce, %d layer linears (want %d)\n", label, tiled ? "tiled" : "rows", n_norm,
                   n_sum, n_arn, 2 * e->layers, n_max, n_lin, 4 * e->layers);
            ok = 0;
            break;
        }
        for (int i = 0; i < n_arn && ok; i++) {
            int l = i / 2;
            const float *want = i % 2 == 0 ? e->layer[l].norm_post
                                : l + 1 < e->layers ? e->layer[l + 1].norm_in : e->final_norm;
            if (c[i]->w != want || c[i]->out != e->xn || c[i]->n != e->H) {
                printf("FAIL %s: TP decode (%s) layer %d all-reduce %d normalises with %p into %p, want %p into xn\n",
                       label, tiled ? "tiled" : "rows", l, i % 2, c[i]->w, c[i]->out, (const void *)want);
                ok = 0;
            }
        }
    }
    return ok;
}

/* A tensor-parallel decode step with the residual exchange (kernels/comm/tp_exchange.cuh; xchg_on, stand-in context):
 * no all-reduce and no norm kernel in the layers; layer l's o_proj and down_proj push into points 2l and 2l + 1;
 * gate|up normalises resid + point 2l into resid_alt, the next q|k|v resid_alt + point 2l + 1 into resid (layer 0's
 * q|k|v the embedding in resid, no exchange); the head sums the last point onto resid_alt with the final norm into
 * xn, then the argmax all-reduce. Bf16 linears and tiled 4-bit ones (the fused kernels); the row layout is unfused there. */
static int check_tp_exchange(const char *label, qb_cuda_engine *e) {
    if (e->quant_bits && e->quant_bits != 4) return 1;
    float *alt = calloc((size_t)e->H, sizeof(float));
    e->nc = (struct qb_nccl *)(uintptr_t)0x10; /* never dereferenced by cuda_forward.c */
    e->xchg_on = 1;
    e->resid_alt = alt;
    e->quant_tiled = e->quant_bits != 0;
    set_fusion(e, 1);
    g_n_calls = 0;
    int rc = qb_cuda_decode_step(e, 64, e->max_seq);
    set_fusion(e, 0);
    e->nc = NULL;
    e->xchg_on = 0;
    e->resid_alt = NULL;
    e->quant_tiled = 0;
    free(alt);
    if (rc != 0) {
        printf("FAIL %s: TP exchange decode step: %s\n", label, qb_last_error());
        return 0;
    }
    const char *gemv = e->quant_bits ? "gemv_quant_fused" : "gemv_fused";
    const qb_call *c[1024], *one[1] = {NULL};
    int n_other = calls_of("add_rmsnorm", one, 1) + calls_of("allreduce_sum", one, 1) +
                  calls_of("allreduce_add_rmsnorm", one, 1) + calls_of("gemv_quant", one, 1) +
                  calls_of("qkv_rope", one, 1) + calls_of("silu_mul", one, 1);
    int n_max = calls_of("allreduce_max", one, 1), n_head = calls_of("tp_sum_rmsnorm", one, 1);
    const qb_call *head = n_head == 1 ? one[0] : NULL;
    int n_push = calls_of("tp_push", c, 1024);
    int ok = n_other == 0 && n_max == 1 && n_head == 1 && n_push == 2 * e->layers;
    if (!ok)
        printf("FAIL %s: TP exchange: %d other norm / all-reduce / unfused kernels, %d argmax all-reduce, %d head sums, "
               "%d pushes (want 0, 1, 1, %d)\n", label, n_other, n_max, n_head, n_push, 2 * e->layers);
    for (int i = 0; i < n_push && ok; i++) {
        const qb_cuda_layer *L = &e->layer[i / 2];
        const void *want = i % 2 == 0 ? (e->quant_bits ? (const void *)L->q_o.qweight : (const void *)L->w_o)
                                      : (e->quant_bits ? (const void *)L->q_down.qweight : (const void *)L->w_down);
        if (c[i]->w != want || c[i]->m != i || c[i]->n != e->H) {
            printf("FAIL %s: TP exchange push %d reads %p into point %d (want %p, point %d)\n", label, i, c[i]->w,
                   c[i]->m, want, i);
            ok = 0;
        }
    }
    if (ok && head && (head->w != e->final_norm || head->out != e->xn || head->m != 2 * e->layers - 1 ||
                       head->in_resid != alt)) {
        printf("FAIL %s: TP exchange head: point %d onto %p with %p into %p\n", label, head->m, head->in_resid,
               head->w, head->out);
        ok = 0;
    }
    int n_lin = ok ? calls_of(gemv, c, 1024) : 0;
    if (ok && n_lin != 2 * e->layers) {
        printf("FAIL %s: TP exchange: %d fused q|k|v and gate|up GEMVs (want %d)\n", label, n_lin, 2 * e->layers);
        ok = 0;
    }
    for (int i = 0; i < n_lin && ok; i++) {
        int l = i / 2, mlp = i % 2, first = l == 0 && !mlp;
        const void *r_in = mlp ? (const void *)e->resid : first ? (const void *)e->resid : (const void *)alt;
        const void *r_next = first ? NULL : mlp ? (const void *)alt : (const void *)e->resid;
        if (c[i]->in_tp != !first || c[i]->in_resid != r_in || c[i]->in_next != r_next ||
            (!first && c[i]->in_point != (mlp ? 2 * l : 2 * l - 1))) {
            printf("FAIL %s: TP exchange layer %d %s: exchange %d point %d reads %p writes %p\n", label, l,
                   mlp ? "gate|up" : "q|k|v", c[i]->in_tp, c[i]->in_point, c[i]->in_resid, c[i]->in_next);
            ok = 0;
        }
    }
    return ok;
}

static void check_rank(const qb_model_config *c, int tp, int rank, int max_prompt, int max_seq) {
    char label[320];
    snprintf(label, sizeof label, "%s %s tp%d rank %d prompt %d seq %d", c->name, qb_quant_name(c->quant), tp, rank,
             max_prompt, max_seq);
    qb_shard_plan plan;
    qb_weights w;
    memset(&w, 0, sizeof w);
    qb_cuda_engine *e = calloc(1, sizeof *e);
    if (!e || qb_shard_plan_make(c, tp, rank, &plan) != 0) {
        printf("FAIL %s: %s\n", label, e ? qb_last_error() : "out of memory");
        g_failures++;
        free(e);
        return;
    }
    int ok = 1;
    qb_cuda_engine_shapes(e, c, &plan, max_seq, max_prompt);
    e->layer = calloc((size_t)e->layers, sizeof *e->layer);
    if (!e->layer || qb_cuda_memory_plan(e) != 0 || qb_cuda_weights_random(e, 11) != 0 ||
        qb_weights_random(c, &plan, 11, &w) != 0) {
        printf("FAIL %s: %s\n", label, qb_last_error());
        ok = 0;
    }
    if (ok && !check_linears(label, e, &w)) ok = 0;
    if (ok) { /* the checkpoint path on the same weights */
        memset(e->region[0], 0, e->region_bytes[0]);
        if (qb_cuda_weights_upload(e, &w) != 0) {
            printf("FAIL %s: upload: %s\n", label, qb_last_error());
            ok = 0;
        } else if (!check_linears(label, e, &w)) {
            ok = 0;
        }
    }
    qb_rank_memory pm;
    if (ok && qb_plan_rank_memory(c, tp, max_prompt, 8, &pm) != 0) {
        printf("FAIL %s: planner: %s\n", label, qb_last_error());
        ok = 0;
    }
    size_t slack = 256 * (11 * (size_t)c->num_layers + 3);
    if (ok && (e->region_bytes[0] < pm.weights_bytes || e->region_bytes[0] > pm.weights_bytes + slack)) {
        printf("FAIL %s: weights region %zu bytes, the planner says %zu (+ up to %zu of alignment)\n", label,
               e->region_bytes[0], pm.weights_bytes, slack);
        ok = 0;
    }
    if (ok && (e->wdq != NULL) != (e->chunk_rows > 1)) {
        printf("FAIL %s: dequantization scratch %s with %d prefill rows\n", label, e->wdq ? "present" : "absent",
               e->chunk_rows);
        ok = 0;
    }
    if (ok && tp == 1 && !check_dispatch(label, e, max_prompt)) ok = 0;
    if (ok && tp == 1) { /* a checkpoint's f16 tables */
        e->embed_f16 = e->lm_head_f16 = 1;
        if (!check_dispatch(label, e, max_prompt)) ok = 0;
        e->embed_f16 = e->lm_head_f16 = 0;
    }
    if (ok && tp > 1 && !check_tp_decode(label, e)) ok = 0;
    if (ok && tp > 1 && !check_tp_exchange(label, e)) ok = 0;
    if (ok && !check_tiling(label, e)) ok = 0;
    if (ok) printf("ok %s: weights region %zu bytes (planner %zu)\n", label, e->region_bytes[0], pm.weights_bytes);
    else g_failures++;
    qb_weights_free(&w);
    qb_cuda_memory_free(e);
    free(e->layer);
    free(e);
}

/* A bf16 model calls the bf16 kernels only, on its bf16 matrices (the path measured before quantized formats). */
static void check_bf16_dispatch(const char *path) {
    qb_model_config c;
    qb_shard_plan plan;
    qb_cuda_engine *e = calloc(1, sizeof *e);
    int ok = e && qb_model_config_load_file(path, &c) == 0 && qb_shard_plan_make(&c, 1, 0, &plan) == 0;
    if (ok) {
        qb_cuda_engine_shapes(e, &c, &plan, 9 + 8, 9);
        e->layer = calloc((size_t)e->layers, sizeof *e->layer);
        ok = e->layer && qb_cuda_memory_plan(e) == 0;
    }
    if (!ok) printf("FAIL %s bf16: %s\n", path, qb_last_error());
    else if (e->wdq || !check_dispatch("bf16", e, 9)) ok = 0;
    if (ok) printf("ok %s bf16: bf16 kernels only, no dequantization scratch\n", path);
    else g_failures++;
    if (e) {
        qb_cuda_memory_free(e);
        free(e->layer);
        free(e);
    }
}

static void check_config(const char *path, const char *name, int intermediate, qb_quant q, int tp) {
    qb_model_config c;
    if (qb_model_config_load_file(path, &c) != 0 || qb_model_config_apply_quant(&c, q, false) != 0) {
        printf("FAIL %s: %s\n", path, qb_last_error());
        g_failures++;
        return;
    }
    if (intermediate) c.intermediate_size = intermediate; /* whole groups per rank at TP2 */
    snprintf(c.name, sizeof c.name, "%s", name);
    for (int rank = 0; rank < tp; rank++) {
        check_rank(&c, tp, rank, 1, 9);
        check_rank(&c, tp, rank, 9, 17);
        check_rank(&c, tp, rank, 1, 1024); /* a KV cache large enough to serve as the tiling scratch */
    }
}

/* The exchange's rule (qb_choose_tp_exchange): bf16 at TP2 up to hidden size 4096 and at TP >= 4 always, tiled
 * 4-bit always, other quantized never, TP1 never; --tp-exchange on / off force it (TP1 still never). */
static void check_exchange_rule(void) {
    static const struct {
        int H, bits, tiled, tp, want;
    } cases[] = {{3584, 0, 0, 2, 1}, {3584, 0, 0, 4, 1}, {5120, 0, 0, 2, 0}, {5120, 0, 0, 4, 1}, {8192, 0, 0, 2, 0},
                 {8192, 0, 0, 8, 1}, {8192, 4, 1, 2, 1}, {3584, 4, 0, 2, 0}, {3584, 8, 0, 2, 0}, {3584, 0, 0, 1, 0}};
    for (int force = -1; force <= 1; force++) {
        qb_engine_options o = {{0}};
        o.v[QB_EOPT_TP_EXCHANGE] = force < 0 ? QB_EOPT_AUTO : force ? QB_ONOFF_ON : QB_ONOFF_OFF;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            qb_cuda_engine e;
            memset(&e, 0, sizeof e);
            e.H = cases[i].H;
            e.quant_bits = cases[i].bits;
            e.quant_tiled = cases[i].tiled;
            e.fusion = QB_FUSE_EPILOGUES; /* the exchange runs in the fused decode only */
            int want = cases[i].tp < 2 ? 0 : force < 0 ? cases[i].want : force;
            int got = qb_choose_tp_exchange(&e, cases[i].tp, &o);
            if (got != want) {
                printf("FAIL exchange rule: H %d, %d bits%s, TP%d, --tp-exchange %s: %d, want %d\n", e.H, e.quant_bits,
                       e.quant_tiled ? " tiled" : "", cases[i].tp, force < 0 ? "auto" : force ? "on" : "off", got, want);
                g_failures++;
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_cuda_quant_layout <fixtures dir>\n");
        return 2;
    }
    char gqa[4200], tied[4200];
    snprintf(gqa, sizeof gqa, "%s/gqa_untied/config.json", argv[1]);
    snprintf(tied, sizeof tied, "%s/tied_hd128/config.json", argv[1]);
    check_exchange_rule();
    check_bf16_dispatch(gqa);
    check_bf16_dispatch(tied);
    static const qb_quant formats[3] = {QB_QUANT_GPTQ_INT4, QB_QUANT_GPTQ_INT8, QB_QUANT_AWQ};
    for (int i = 0; i < 3; i++) {
        check_config(gqa, "gqa_untied", 0, formats[i], 1);
        check_config(gqa, "gqa_untied I512", 512, formats[i], 2);
        check_config(tied, "tied_hd128", 0, formats[i], 1);
    }
    if (g_failures) {
        printf("test_cuda_quant_layout: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_cuda_quant_layout: all cases passed\n");
    return 0;
}
