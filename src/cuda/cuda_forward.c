/* cuda_forward.c - the Qwen2 forward pass as a sequence of kernel launches on the engine's stream.
 *
 * Decode (one token): ONE layer loop that carries out the engine's decode plan (e->decode_plan, built once by
 * cuda_decode_plan.c from the choices of cuda_choices.c) and reads like the model: input norm -> q|k|v (+ bias,
 * RoPE, KV-cache append) -> split-KV attention -> o_proj -> residual (+ post-attention norm) -> gate|up (+ SiLU * up)
 * -> down_proj -> residual (+ the next norm), then the head (final norm, lm_head, greedy argmax). Where each norm,
 * residual add or tensor-parallel reduction happens (its own kernel, a GEMV prologue / epilogue, an all-reduce, the
 * residual exchange) and which GEMV runs each linear is the plan's: this file decides nothing, it dispatches.
 * Measurements behind the plan: docs/PERFORMANCE.md, "Decode fusion" and the tensor-parallel sections.
 * Prefill (several rows) keeps its own loop: it is one fixed sequence for every plan (add_rmsnorm, cuBLASLt GEMM
 * - on dequantized bf16 scratch for packed linears -, qkv_rope, flash prefill attention, a plain all-reduce of
 * delta at tensor parallel), none of the decode fusions apply to m-row GEMMs, and folding it into the decode loop
 * would give every plan step an m-row variant that decode never takes. It shares the head (with the add + norm
 * of the last row) and the embedding lookup.
 * Quantized layer linears (qb_cuda_qmat set): one row -> the quantized GEMV on the packed weights; several rows ->
 * dequantize the linear into the bf16 scratch `wdq`, then the same GEMM. Tiled packed weights (e->quant_tiled,
 * cuda_quant_tiles.c) are read by the fused kernels only (and the tiled dequantization in prefill).
 * No host synchronisation anywhere here: the decode step is captured into a CUDA graph as is.
 */
#include <stdlib.h>
#include <string.h>

#include "add_rmsnorm.cuh"
#include "argmax.cuh"
#include "argmax_tp.cuh"
#include "attention_decode.cuh"
#include "attention_prefill.cuh"
#include "cuda/cuda_check.h"
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
#include "tp_exchange.cuh"

/* The packed weights of a quantized linear for the fused kernels. */
static qb_gemv_qweights qb_qweights(const qb_cuda_engine *e, const qb_cuda_qmat *q) {
    qb_gemv_qweights w = {q->qweight, q->sz, e->quant_bits, e->group_size, e->quant_tiled, q->kind, e->hd, e->I};
    return w;
}

/* ---- prefill: m rows ---- */

/* y (m, n) = x (m, k) . W^T with W quantized: one row reads the packed weights; several rows dequantize W into
 * the scratch and run the bf16 GEMM (prefill, compute-bound). */
static int qb_matmul_quant(qb_cuda_engine *e, const uint16_t *x, const qb_cuda_qmat *q, int m, int n, int k,
                           uint16_t *y) {
    if (m == 1 && e->quant_tiled) { /* a one-row prefill chunk on tiled weights */
        qb_gemv_qweights qw = qb_qweights(e, q);
        qb_gemv_input in = {.x = x};
        return qb_launch_gemv_quant_fused_store(&qw, n, k, &in, y, e->stream);
    }
    if (m == 1)
        return qb_launch_gemv_quant(q->qweight, q->sz, x, n, k, e->quant_bits, e->group_size, y, NULL, e->stream);
    if (!e->wdq) return qb_errorf("cuda: %d-row quantized matmul without a dequantization scratch", m);
    if (e->quant_tiled)
        QB_TRY(qb_launch_dequant_quant_tiled_bf16(q->qweight, q->sz, n, k, e->quant_bits, e->group_size, q->kind,
                                                  e->hd, e->I, e->wdq, e->stream));
    else
        QB_TRY(qb_launch_dequant_quant_bf16(q->qweight, q->sz, n, k, e->quant_bits, e->group_size, e->wdq, e->stream));
    return qb_gemm_bf16(e->gemm, x, e->wdq, m, n, k, y, e->stream);
}

/* y (m, n) = x (m, k) . W^T, bf16 (q NULL or empty) or quantized (q->qweight set). Named condition: a single
 * row is a GEMV (bandwidth-bound). */
static int qb_matmul(qb_cuda_engine *e, const uint16_t *x, const uint16_t *w, const qb_cuda_qmat *q, int m, int n,
                     int k, uint16_t *y) {
    if (q && q->qweight) return qb_matmul_quant(e, x, q, m, n, k, y);
    if (m == 1) return qb_launch_gemv(w, x, n, k, y, NULL, e->stream);
    return qb_gemm_bf16(e->gemm, x, w, m, n, k, y, e->stream);
}

/* The layers over m prompt rows at positions start .. start + m - 1. Tensor parallel: delta all-reduced after
 * the row-parallel o_proj and down_proj, then added by the next add_rmsnorm (the head adds the last one). */
static int qb_prefill_layers(qb_cuda_engine *e, int m, int start) {
    cudaStream_t s = e->stream;
    int H = e->H, I = e->I, nq = e->hq * e->hd;
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        uint16_t *kc = e->k_cache + l * kv_layer, *vc = e->v_cache + l * kv_layer;
        QB_TRY(qb_launch_add_rmsnorm(e->resid, l == 0 ? NULL : e->delta, L->norm_in, m, H, e->eps, e->xn, s));
        QB_TRY(qb_matmul(e, e->xn, L->w_qkv, &L->q_qkv, m, e->n_qkv, H, e->big));
        QB_TRY(qb_launch_qkv_rope(e->big, L->b_qkv, m, e->hq, e->hkv, e->hd, e->state, e->cos_t, e->sin_t, e->q, kc,
                                  vc, e->max_seq, s));
        QB_TRY(qb_launch_attention_prefill_variant(e->q, kc, vc, e->max_seq, m, start, e->hq, e->hkv, e->hd, e->attn,
                                                   e->attn_prefill, s));
        QB_TRY(qb_matmul(e, e->attn, L->w_o, &L->q_o, m, H, nq, e->delta));
        if (e->nc) QB_TRY(qb_allreduce_sum_bf16(e->nc, e->delta, (size_t)m * H, s)); /* row-parallel o_proj */
        QB_TRY(qb_launch_add_rmsnorm(e->resid, e->delta, L->norm_post, m, H, e->eps, e->xn, s));
        QB_TRY(qb_matmul(e, e->xn, L->w_gate_up, &L->q_gate_up, m, 2 * I, H, e->big));
        QB_TRY(qb_launch_silu_mul(e->big, m, I, e->act, s));
        QB_TRY(qb_matmul(e, e->act, L->w_down, &L->q_down, m, H, I, e->delta));
        if (e->nc) QB_TRY(qb_allreduce_sum_bf16(e->nc, e->delta, (size_t)m * H, s)); /* row-parallel down_proj */
    }
    return 0;
}

/* ---- the steps of the decode plan (one row) and the head ---- */

/* A norm / residual / reduction step (cuda_decode_plan.h) of row `row` with norm weight w, into xn. */
static int qb_norm_step_run(qb_cuda_engine *e, qb_norm_step step, size_t row, const float *w) {
    cudaStream_t s = e->stream;
    switch (step) {
    case QB_NORM_NONE: return 0;
    case QB_NORM_ONLY: return qb_launch_add_rmsnorm(e->resid + row, NULL, w, 1, e->H, e->eps, e->xn, s);
    case QB_NORM_ADD: return qb_launch_add_rmsnorm(e->resid + row, e->delta + row, w, 1, e->H, e->eps, e->xn, s);
    case QB_NORM_ALLREDUCE_ADD:
        return qb_allreduce_add_rmsnorm_bf16(e->nc, e->delta, e->resid, w, 1, e->H, e->eps,
                                             e->decode_plan.one_kernel_allreduce_norm, e->xn, s);
    case QB_NORM_EXCHANGE_SUM: /* the last exchange point (down_proj of the last layer) */
        return qb_launch_tp_sum_rmsnorm(&e->xchg, 2 * e->layers - 1, e->resid_alt, w, e->H, e->eps, e->xn, s);
    }
    return qb_errorf("cuda: unknown norm step %d in the decode plan", (int)step);
}

/* What a decode linear's prologue reads (gemv.cuh): the vector of the step before; the residual, normalised with
 * norm_w; or the residual plus the partial sums pushed at exchange point `point`. The exchange alternates the
 * residual: after an odd point (down_proj) it is read from resid_alt and the sum written to resid, after an even
 * one (o_proj) the reverse; the head reads resid_alt (the last point is odd). */
static qb_gemv_input qb_decode_input(qb_cuda_engine *e, qb_linear_input how, const uint16_t *vector,
                                     const float *norm_w, int point) {
    if (how == QB_IN_NORM) return (qb_gemv_input){.resid = e->resid, .norm_w = norm_w, .eps = e->eps};
    if (how == QB_IN_EXCHANGE_NORM) {
        int odd = point & 1;
        return (qb_gemv_input){.resid = odd ? e->resid_alt : e->resid, .norm_w = norm_w, .eps = e->eps,
                               .tp = &e->xchg, .tp_point = point, .resid_next = odd ? e->resid : e->resid_alt};
    }
    return (qb_gemv_input){.x = vector};
}

/* Linear `which` of layer l as its plan step s says: the weights (bf16 or packed) and shape of the linear, its
 * input, and its output: stored (q|k|v and gate|up into `big`, then their qkv_rope / silu_mul kernel; o_proj and
 * down_proj into delta), through the fused epilogue, added into the residual, or pushed into exchange point 2l
 * (o_proj) / 2l + 1 (down_proj). */
static int qb_decode_linear(qb_cuda_engine *e, int l, int which, const qb_linear_step *s, const qb_gemv_input *in) {
    const qb_cuda_layer *L = &e->layer[l];
    cudaStream_t st = e->stream;
    int nq = e->hq * e->hd;
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    uint16_t *kc = e->k_cache + l * kv_layer, *vc = e->v_cache + l * kv_layer;
    const uint16_t *w = which == QB_PLAN_QKV ? L->w_qkv : which == QB_PLAN_O ? L->w_o
                        : which == QB_PLAN_GATE_UP ? L->w_gate_up : L->w_down;
    const qb_cuda_qmat *q = which == QB_PLAN_QKV ? &L->q_qkv : which == QB_PLAN_O ? &L->q_o
                            : which == QB_PLAN_GATE_UP ? &L->q_gate_up : &L->q_down;
    const int n = which == QB_PLAN_QKV ? e->n_qkv : which == QB_PLAN_GATE_UP ? 2 * e->I : e->H;
    const int k = which == QB_PLAN_O ? nq : which == QB_PLAN_DOWN ? e->I : e->H;
    int packed = s->kernel == QB_LK_GEMV_QUANT_FUSED;
    qb_gemv_qweights qw = packed ? qb_qweights(e, q) : (qb_gemv_qweights){0};
    switch (s->output) {
    case QB_OUT_STORE: {
        uint16_t *y = which == QB_PLAN_QKV || which == QB_PLAN_GATE_UP ? e->big : e->delta;
        if (s->kernel == QB_LK_GEMV) QB_TRY(qb_launch_gemv(w, in->x, n, k, y, NULL, st));
        else if (s->kernel == QB_LK_GEMV_QUANT)
            QB_TRY(qb_launch_gemv_quant(q->qweight, q->sz, in->x, n, k, e->quant_bits, e->group_size, y, NULL, st));
        else if (packed) QB_TRY(qb_launch_gemv_quant_fused_store(&qw, n, k, in, y, st));
        else QB_TRY(qb_launch_gemv_fused_store(w, n, k, in, y, st));
        if (which == QB_PLAN_QKV)
            return qb_launch_qkv_rope(e->big, L->b_qkv, 1, e->hq, e->hkv, e->hd, e->state, e->cos_t, e->sin_t, e->q,
                                      kc, vc, e->max_seq, st);
        if (which == QB_PLAN_GATE_UP) return qb_launch_silu_mul(e->big, 1, e->I, e->act, st);
        return 0;
    }
    case QB_OUT_QKV_ROPE:
        if (packed)
            return qb_launch_gemv_quant_qkv_rope(&qw, e->H, in, L->b_qkv, e->hq, e->hkv, e->hd, e->state, e->cos_t,
                                                 e->sin_t, e->q, kc, vc, e->max_seq, st);
        return qb_launch_gemv_qkv_rope(w, e->H, in, L->b_qkv, e->hq, e->hkv, e->hd, e->state, e->cos_t, e->sin_t,
                                       e->q, kc, vc, e->max_seq, st);
    case QB_OUT_SILU_MUL:
        if (packed) return qb_launch_gemv_quant_gate_up_silu(&qw, e->I, e->H, in, e->act, st);
        return qb_launch_gemv_gate_up_silu(w, e->I, e->H, in, e->act, st);
    case QB_OUT_RESID_ADD:
        if (packed) return qb_launch_gemv_quant_resid_add(&qw, n, k, in, e->resid, st);
        return qb_launch_gemv_resid_add(w, n, k, in, e->resid, st);
    case QB_OUT_PUSH: {
        int point = which == QB_PLAN_O ? 2 * l : 2 * l + 1;
        if (packed) return qb_launch_gemv_quant_tp_push(&qw, n, k, in, &e->xchg, point, st);
        return qb_launch_gemv_tp_push(w, n, k, in, &e->xchg, point, st);
    }
    }
    return qb_errorf("cuda: unknown linear output %d in the decode plan", (int)s->output);
}

/* Final norm of the last of m rows (the plan's step: decode's head_norm, or add + norm after prefill), logits,
 * greedy choice; advances the decode state by pos_advance. */
static int qb_head(qb_cuda_engine *e, int m, int pos_advance, qb_norm_step final_norm) {
    const qb_decode_plan *p = &e->decode_plan;
    QB_TRY(qb_norm_step_run(e, final_norm, (size_t)(m - 1) * e->H, e->final_norm));
    if (p->lm_head_f16)
        QB_TRY(qb_launch_gemv_f16(e->lm_head, e->xn, e->vocab_rows, e->H, NULL, e->logits, e->stream));
    else
        QB_TRY(qb_launch_gemv(e->lm_head, e->xn, e->vocab_rows, e->H, NULL, e->logits, e->stream));
    if (p->argmax == QB_ARGMAX_LOCAL)
        return qb_launch_argmax(e->logits, e->vocab_rows, e->token, e->tokens, e->state + 1, e->state, pos_advance,
                                e->stream);
    /* Tensor parallel: each shard's best as a packed key, the largest over the group wins. */
    QB_TRY(qb_launch_argmax(e->logits, e->vocab_rows, e->local_best, NULL, NULL, NULL, 0, e->stream));
    QB_TRY(qb_launch_argmax_pack(e->logits, e->local_best, e->plan.vocab_start, e->argmax_key, e->stream));
    QB_TRY(qb_allreduce_max_u64(e->nc, e->argmax_key, 1, e->stream));
    return qb_launch_argmax_unpack(e->argmax_key, e->token, e->tokens, e->state + 1, e->state, pos_advance, e->stream);
}

/* Embedding rows of n tokens into the fp32 residual, from the bf16 or the f16 table. */
static int qb_embed(qb_cuda_engine *e, const int32_t *tokens, int n) {
    if (e->decode_plan.embed_f16)
        return qb_launch_embedding_f16(e->embed, e->vocab_full, e->H, tokens, n, e->resid, e->stream);
    return qb_launch_embedding(e->embed, e->vocab_full, e->H, tokens, n, e->resid, e->stream);
}

int qb_cuda_prefill(qb_cuda_engine *e, const int32_t *prompt, int n_prompt) {
    cudaStream_t s = e->stream;
    if (!e->decode_plan.built) return qb_errorf("cuda: prefill before the engine's plan is built");
    QB_TRY(qb_launch_set_int(e->state + 1, 0, s));
    for (int c0 = 0; c0 < n_prompt; c0 += e->chunk_rows) {
        int m = n_prompt - c0 < e->chunk_rows ? n_prompt - c0 : e->chunk_rows;
        QB_CUDA_TRY(cudaMemcpyAsync(e->prompt, prompt + c0, (size_t)m * sizeof(int32_t), cudaMemcpyHostToDevice, s));
        QB_TRY(qb_launch_set_int(e->state, c0, s));
        QB_TRY(qb_embed(e, e->prompt, m));
        QB_TRY(qb_prefill_layers(e, m, c0));
        if (c0 + m == n_prompt) QB_TRY(qb_head(e, m, m, QB_NORM_ADD)); /* position becomes n_prompt */
    }
    return 0;
}

/* One decode token: the plan's steps, layer by layer, in the model's order. */
int qb_cuda_decode_step(qb_cuda_engine *e, int chunk, int len_cap) {
    const qb_decode_plan *p = &e->decode_plan;
    if (!p->built) return qb_errorf("cuda: decode step before the decode plan is built");
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    QB_TRY(qb_embed(e, e->token, 1));
    for (int l = 0; l < e->layers; l++) {
        const qb_decode_layer_plan *P = qb_decode_plan_layer(p, l);
        const qb_linear_step *lin = P->linear;
        const qb_cuda_layer *L = &e->layer[l];
        const float *next_norm = l + 1 < e->layers ? e->layer[l + 1].norm_in : e->final_norm;
        /* attention: norm, q|k|v, attention over the cache, o_proj, residual */
        QB_TRY(qb_norm_step_run(e, P->attn_norm, 0, L->norm_in));
        qb_gemv_input in = qb_decode_input(e, lin[QB_PLAN_QKV].input, e->xn, L->norm_in, 2 * l - 1);
        QB_TRY(qb_decode_linear(e, l, QB_PLAN_QKV, &lin[QB_PLAN_QKV], &in));
        QB_TRY(qb_launch_attention_decode(e->q, e->k_cache + l * kv_layer, e->v_cache + l * kv_layer, e->max_seq,
                                          len_cap, e->state, e->hq, e->hkv, e->hd, chunk, e->part_o, e->part_ml,
                                          e->attn, e->stream));
        in = qb_decode_input(e, lin[QB_PLAN_O].input, e->attn, NULL, 0);
        QB_TRY(qb_decode_linear(e, l, QB_PLAN_O, &lin[QB_PLAN_O], &in));
        QB_TRY(qb_norm_step_run(e, P->attn_residual, 0, L->norm_post));
        /* MLP: (norm) gate|up with SiLU * up, down_proj, residual and the next norm */
        in = qb_decode_input(e, lin[QB_PLAN_GATE_UP].input, e->xn, L->norm_post, 2 * l);
        QB_TRY(qb_decode_linear(e, l, QB_PLAN_GATE_UP, &lin[QB_PLAN_GATE_UP], &in));
        in = qb_decode_input(e, lin[QB_PLAN_DOWN].input, e->act, NULL, 0);
        QB_TRY(qb_decode_linear(e, l, QB_PLAN_DOWN, &lin[QB_PLAN_DOWN], &in));
        QB_TRY(qb_norm_step_run(e, P->mlp_residual, 0, next_norm));
    }
    return qb_head(e, 1, 1, p->head_norm);
}
