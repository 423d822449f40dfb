/* cuda_forward.c - the Qwen2 forward pass as a sequence of kernel launches on the engine's stream.
 *
 * One layer: add+norm -> q|k|v projection -> bias+RoPE+cache append -> attention -> o_proj -> add+norm ->
 * gate|up projection -> SiLU*up -> down_proj (the residual add of down_proj is fused into the next layer's
 * norm). The dispatch place for kernels is here: one row (decode) -> GEMV and split-KV decode attention;
 * several rows (prefill) -> cuBLASLt GEMM and flash prefill attention. Tensor parallel (later issue): an
 * all-reduce of `delta` after o_proj and after down_proj goes where the TP comments are.
 * Quantized layer linears (qb_cuda_qmat set): one row -> the quantized GEMV on the packed weights; several
 * rows -> dequantize the linear into the bf16 scratch `wdq`, then the same GEMM. Tiled packed weights
 * (e->quant_tiled, cuda_quant_tiles.c): decode always takes the fused kernels, prefill the tiled dequantization.
 * f16 embedding / lm_head (checkpoints of the quantized releases) use the f16 lookup and GEMV; the bf16 path is
 * unchanged.
 * Decode fusion (one token; e->fusion, chosen by qb_choose_decode_fusion in cuda_choices.c): QB_FUSE_NONE = the
 * unfused sequence above; QB_FUSE_EPILOGUES = the q|k|v GEMV does bias+RoPE+cache append in its epilogue and the
 * gate|up GEMV SiLU*up (8 kernels a layer with attention's two, from 10); QB_FUSE_RESIDUAL = also, at one GPU, the
 * o_proj / down_proj GEMVs add into the fp32 residual and the q|k|v / gate|up GEMVs normalise it in their prologue
 * (6 kernels a layer: no add_rmsnorm, qkv_rope or silu_mul). bf16 linears use the fused kernels of gemv.cuh, 4-bit
 * ones those of gemv_quant_fused.cuh. Which kernel runs where is decided in cuda_choices.c only; this file carries
 * it out. Measurements: docs/PERFORMANCE.md, "Decode fusion".
 * Tensor-parallel decode (fused or not): after o_proj and down_proj one step all-reduces `delta`, adds it to the
 * residual and normalises it with the next norm weight (qb_allreduce_add_rmsnorm_bf16: one kernel or the
 * all-reduce then add_rmsnorm, e->ar_norm_one_kernel), so no add_rmsnorm is left at the top of a layer nor in the
 * head. Prefill keeps the unfused sequence. With the residual exchange (e->xchg_on, kernels/tp_exchange.cuh;
 * qb_choose_tp_exchange) there is no all-reduce kernel at all:
 * the row-parallel GEMVs push their partial sums into every rank and the next GEMV sums them in its prologue
 * (qb_layers_decode_exchange, 6 kernels a layer as at one GPU).
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
#include "cuda/nccl_comm.h"
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

/* A decode GEMV whose output is stored as is: quantized -> the fused quantized kernel; bf16 -> the fused kernel
 * (split K) where N is small, else qb_launch_gemv (tuned for the large shapes). */
static int qb_decode_gemv_store(qb_cuda_engine *e, const uint16_t *w, const qb_cuda_qmat *q, const uint16_t *x, int n,
                                int k, uint16_t *y) {
    qb_gemv_input in = {.x = x};
    if (q->qweight) {
        qb_gemv_qweights qw = qb_qweights(e, q);
        return qb_launch_gemv_quant_fused_store(&qw, n, k, &in, y, e->stream);
    }
    if (n < 2112) return qb_launch_gemv_fused_store(w, n, k, &in, y, e->stream);
    return qb_launch_gemv(w, x, n, k, y, NULL, e->stream);
}

/* resid[n] += bf16(W . x), bf16 or quantized W */
static int qb_decode_gemv_resid_add(qb_cuda_engine *e, const uint16_t *w, const qb_cuda_qmat *q, const uint16_t *x,
                                    int n, int k) {
    qb_gemv_input in = {.x = x};
    if (q->qweight) {
        qb_gemv_qweights qw = qb_qweights(e, q);
        return qb_launch_gemv_quant_resid_add(&qw, n, k, &in, e->resid, e->stream);
    }
    return qb_launch_gemv_resid_add(w, n, k, &in, e->resid, e->stream);
}

/* q|k|v GEMV + bias + RoPE + cache append of layer L, bf16 or quantized */
static int qb_decode_qkv_rope(qb_cuda_engine *e, const qb_cuda_layer *L, const qb_gemv_input *in, uint16_t *kc,
                              uint16_t *vc) {
    if (L->q_qkv.qweight) {
        qb_gemv_qweights qw = qb_qweights(e, &L->q_qkv);
        return qb_launch_gemv_quant_qkv_rope(&qw, e->H, in, L->b_qkv, e->hq, e->hkv, e->hd, e->state, e->cos_t,
                                             e->sin_t, e->q, kc, vc, e->max_seq, e->stream);
    }
    return qb_launch_gemv_qkv_rope(L->w_qkv, e->H, in, L->b_qkv, e->hq, e->hkv, e->hd, e->state, e->cos_t, e->sin_t,
                                   e->q, kc, vc, e->max_seq, e->stream);
}

/* gate|up GEMV + SiLU * up of layer L into e->act, bf16 or quantized */
static int qb_decode_gate_up_silu(qb_cuda_engine *e, const qb_cuda_layer *L, const qb_gemv_input *in) {
    if (L->q_gate_up.qweight) {
        qb_gemv_qweights qw = qb_qweights(e, &L->q_gate_up);
        return qb_launch_gemv_quant_gate_up_silu(&qw, e->I, e->H, in, e->act, e->stream);
    }
    return qb_launch_gemv_gate_up_silu(L->w_gate_up, e->I, e->H, in, e->act, e->stream);
}

/* y (m, n) = x (m, k) . W^T with W quantized: one row reads the packed weights (decode); several rows
 * dequantize W into the scratch and run the bf16 GEMM (prefill, compute-bound). */
static int qb_matmul_quant(qb_cuda_engine *e, const uint16_t *x, const qb_cuda_qmat *q, int m, int n, int k,
                           uint16_t *y) {
    if (m == 1 && e->quant_tiled) { /* a one-row prefill chunk (or unfused decode) on tiled weights */
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
 * row is a GEMV (bandwidth-bound decode). */
static int qb_matmul(qb_cuda_engine *e, const uint16_t *x, const uint16_t *w, const qb_cuda_qmat *q, int m, int n,
                     int k, uint16_t *y) {
    if (q && q->qweight) return qb_matmul_quant(e, x, q, m, n, k, y);
    if (m == 1) return qb_launch_gemv(w, x, n, k, y, NULL, e->stream);
    return qb_gemm_bf16(e->gemm, x, w, m, n, k, y, e->stream);
}

/* The row-parallel linear of a tensor-parallel decode step with the exchange: its partial sums pushed into
 * exchange point `point` of every rank (tp_exchange.cuh), bf16 or quantized W. */
static int qb_decode_gemv_push(qb_cuda_engine *e, const uint16_t *w, const qb_cuda_qmat *q, const uint16_t *x, int n,
                               int k, int point) {
    qb_gemv_input in = {.x = x};
    if (q->qweight) {
        qb_gemv_qweights qw = qb_qweights(e, q);
        return qb_launch_gemv_quant_tp_push(&qw, n, k, &in, &e->xchg, point, e->stream);
    }
    return qb_launch_gemv_tp_push(w, n, k, &in, &e->xchg, point, e->stream);
}

/* One decode token at tensor parallel with the residual exchange (kernels/tp_exchange.cuh), no all-reduce kernel:
 * o_proj and down_proj of layer l push their partial sums (points 2l and 2l + 1), and the next GEMV - gate|up, the
 * next layer's q|k|v, or the head's sum + final norm - takes the peers' as they arrive and normalises resid + their
 * sum in its prologue.
 * The residual alternates: the gate|up prologue reads resid and its block 0 writes resid_alt, the next q|k|v reads
 * resid_alt and writes resid (layer 0's q|k|v just normalises the embedding in resid). 6 kernels a layer, as at
 * one GPU. */
static int qb_layers_decode_exchange(qb_cuda_engine *e, int decode_chunk, int len_cap) {
    int H = e->H, I = e->I, nq = e->hq * e->hd;
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        uint16_t *kc = e->k_cache + l * kv_layer, *vc = e->v_cache + l * kv_layer;
        qb_gemv_input in_attn = {.resid = e->resid, .norm_w = L->norm_in, .eps = e->eps};
        if (l > 0)
            in_attn = (qb_gemv_input){.resid = e->resid_alt, .norm_w = L->norm_in, .eps = e->eps, .tp = &e->xchg,
                                      .tp_point = 2 * l - 1, .resid_next = e->resid};
        QB_TRY(qb_decode_qkv_rope(e, L, &in_attn, kc, vc));
        QB_TRY(qb_launch_attention_decode(e->q, kc, vc, e->max_seq, len_cap, e->state, e->hq, e->hkv, e->hd,
                                          decode_chunk, e->part_o, e->part_ml, e->attn, e->stream));
        QB_TRY(qb_decode_gemv_push(e, L->w_o, &L->q_o, e->attn, H, nq, 2 * l));
        qb_gemv_input in_mlp = {.resid = e->resid, .norm_w = L->norm_post, .eps = e->eps, .tp = &e->xchg,
                                .tp_point = 2 * l, .resid_next = e->resid_alt};
        QB_TRY(qb_decode_gate_up_silu(e, L, &in_mlp));
        QB_TRY(qb_decode_gemv_push(e, L->w_down, &L->q_down, e->act, H, I, 2 * l + 1));
    }
    return qb_launch_tp_sum_rmsnorm(&e->xchg, 2 * e->layers - 1, e->resid_alt, e->final_norm, H, e->eps, e->xn,
                                    e->stream);
}

/* One decode token through the layers with the fused kernels (fusion QB_FUSE_EPILOGUES or QB_FUSE_RESIDUAL).
 * Residual fusion: resid already holds every sub-layer's output (the o_proj / down_proj epilogues add into it),
 * so `delta` is not used and the head must not add it again. Tensor parallel: the all-reduce of `delta` after
 * down_proj also adds it and normalises with the next layer's input norm (the final norm after the last layer),
 * so xn is ready for the next q|k|v GEMV (or the head) and the residual is up to date. */
static int qb_layers_decode_fused(qb_cuda_engine *e, int fusion, int decode_chunk, int len_cap) {
    if (e->nc && e->xchg_on) return qb_layers_decode_exchange(e, decode_chunk, len_cap);
    cudaStream_t s = e->stream;
    int H = e->H, I = e->I, nq = e->hq * e->hd, resid_fused = fusion == QB_FUSE_RESIDUAL;
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        uint16_t *kc = e->k_cache + l * kv_layer, *vc = e->v_cache + l * kv_layer;
        qb_gemv_input in_attn = {.x = e->xn}, in_mlp = {.x = e->xn};
        if (resid_fused) {
            in_attn = (qb_gemv_input){.resid = e->resid, .norm_w = L->norm_in, .eps = e->eps};
            in_mlp = (qb_gemv_input){.resid = e->resid, .norm_w = L->norm_post, .eps = e->eps};
        } else if (l == 0 || !e->nc) {
            QB_TRY(qb_launch_add_rmsnorm(e->resid, l == 0 ? NULL : e->delta, L->norm_in, 1, H, e->eps, e->xn, s));
        }
        QB_TRY(qb_decode_qkv_rope(e, L, &in_attn, kc, vc));
        QB_TRY(qb_launch_attention_decode(e->q, kc, vc, e->max_seq, len_cap, e->state, e->hq, e->hkv, e->hd,
                                          decode_chunk, e->part_o, e->part_ml, e->attn, s));
        if (resid_fused) {
            QB_TRY(qb_decode_gemv_resid_add(e, L->w_o, &L->q_o, e->attn, H, nq));
        } else {
            QB_TRY(qb_decode_gemv_store(e, L->w_o, &L->q_o, e->attn, H, nq, e->delta));
            if (e->nc) /* row-parallel o_proj: sum, add, normalise */
                QB_TRY(qb_allreduce_add_rmsnorm_bf16(e->nc, e->delta, e->resid, L->norm_post, 1, H, e->eps, e->ar_norm_one_kernel,
                                                 e->xn, s));
            else
                QB_TRY(qb_launch_add_rmsnorm(e->resid, e->delta, L->norm_post, 1, H, e->eps, e->xn, s));
        }
        QB_TRY(qb_decode_gate_up_silu(e, L, &in_mlp));
        if (resid_fused) {
            QB_TRY(qb_decode_gemv_resid_add(e, L->w_down, &L->q_down, e->act, H, I));
        } else {
            QB_TRY(qb_decode_gemv_store(e, L->w_down, &L->q_down, e->act, H, I, e->delta));
            if (e->nc) { /* row-parallel down_proj: sum, add, normalise for what comes next */
                const float *next_norm = l + 1 < e->layers ? e->layer[l + 1].norm_in : e->final_norm;
                QB_TRY(qb_allreduce_add_rmsnorm_bf16(e->nc, e->delta, e->resid, next_norm, 1, H, e->eps, e->ar_norm_one_kernel,
                                                     e->xn, s));
            }
        }
    }
    return 0;
}

/* The layers over m rows at positions *state[0] .. + m - 1; decode_chunk > 0 selects decode attention.
 * Tensor-parallel decode (one row; the unfused sequence runs there for quantized linears): as in
 * qb_layers_decode_fused, each all-reduce of delta also adds it and normalises (qb_allreduce_add_rmsnorm_bf16), the
 * last one with the final norm, so the head finds xn ready. */
static int qb_layers(qb_cuda_engine *e, int m, int start, int decode_chunk, int len_cap) {
    cudaStream_t s = e->stream;
    int H = e->H, I = e->I, nq = e->hq * e->hd, tp_norm = e->nc && m == 1 && decode_chunk > 0;
    size_t kv_layer = (size_t)e->hkv * e->max_seq * e->hd;
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        uint16_t *kc = e->k_cache + l * kv_layer, *vc = e->v_cache + l * kv_layer;
        if (l == 0 || !tp_norm)
            QB_TRY(qb_launch_add_rmsnorm(e->resid, l == 0 ? NULL : e->delta, L->norm_in, m, H, e->eps, e->xn, s));
        QB_TRY(qb_matmul(e, e->xn, L->w_qkv, &L->q_qkv, m, e->n_qkv, H, e->big));
        QB_TRY(qb_launch_qkv_rope(e->big, L->b_qkv, m, e->hq, e->hkv, e->hd, e->state, e->cos_t, e->sin_t, e->q, kc,
                                  vc, e->max_seq, s));
        if (decode_chunk > 0)
            QB_TRY(qb_launch_attention_decode(e->q, kc, vc, e->max_seq, len_cap, e->state, e->hq, e->hkv, e->hd,
                                              decode_chunk, e->part_o, e->part_ml, e->attn, s));
        else
            QB_TRY(qb_launch_attention_prefill_variant(e->q, kc, vc, e->max_seq, m, start, e->hq, e->hkv, e->hd, e->attn,
                                                       e->attn_prefill, s));
        QB_TRY(qb_matmul(e, e->attn, L->w_o, &L->q_o, m, H, nq, e->delta));
        if (tp_norm) { /* row-parallel o_proj: sum, add, normalise */
            QB_TRY(qb_allreduce_add_rmsnorm_bf16(e->nc, e->delta, e->resid, L->norm_post, 1, H, e->eps, e->ar_norm_one_kernel,
                                                 e->xn, s));
        } else {
            if (e->nc) QB_TRY(qb_allreduce_sum_bf16(e->nc, e->delta, (size_t)m * H, s)); /* row-parallel o_proj */
            QB_TRY(qb_launch_add_rmsnorm(e->resid, e->delta, L->norm_post, m, H, e->eps, e->xn, s));
        }
        QB_TRY(qb_matmul(e, e->xn, L->w_gate_up, &L->q_gate_up, m, 2 * I, H, e->big));
        QB_TRY(qb_launch_silu_mul(e->big, m, I, e->act, s));
        QB_TRY(qb_matmul(e, e->act, L->w_down, &L->q_down, m, H, I, e->delta));
        if (tp_norm) { /* row-parallel down_proj: sum, add, normalise for what comes next */
            const float *next_norm = l + 1 < e->layers ? e->layer[l + 1].norm_in : e->final_norm;
            QB_TRY(qb_allreduce_add_rmsnorm_bf16(e->nc, e->delta, e->resid, next_norm, 1, H, e->eps, e->ar_norm_one_kernel,
                                                     e->xn, s));
        } else if (e->nc) {
            QB_TRY(qb_allreduce_sum_bf16(e->nc, e->delta, (size_t)m * H, s)); /* row-parallel down_proj */
        }
    }
    return 0;
}

/* How the head finds the last row: add `delta` then normalise (the unfused layers), normalise only (the residual
 * already holds everything: decode with the residual fusion), or nothing (xn already holds the final norm: tensor
 * parallel decode with the fusion). */
enum { QB_HEAD_ADD_NORM = 0, QB_HEAD_NORM = 1, QB_HEAD_READY = 2 };

/* Final norm of the last row, logits, greedy choice; advances the decode state by pos_advance. */
static int qb_head(qb_cuda_engine *e, int m, int pos_advance, int how) {
    size_t last = (size_t)(m - 1) * e->H;
    if (how != QB_HEAD_READY)
        QB_TRY(qb_launch_add_rmsnorm(e->resid + last, how == QB_HEAD_ADD_NORM ? e->delta + last : NULL, e->final_norm,
                                     1, e->H, e->eps, e->xn, e->stream));
    if (e->lm_head_f16)
        QB_TRY(qb_launch_gemv_f16(e->lm_head, e->xn, e->vocab_rows, e->H, NULL, e->logits, e->stream));
    else
        QB_TRY(qb_launch_gemv(e->lm_head, e->xn, e->vocab_rows, e->H, NULL, e->logits, e->stream));
    if (!e->nc)
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
    if (e->embed_f16) return qb_launch_embedding_f16(e->embed, e->vocab_full, e->H, tokens, n, e->resid, e->stream);
    return qb_launch_embedding(e->embed, e->vocab_full, e->H, tokens, n, e->resid, e->stream);
}

int qb_cuda_prefill(qb_cuda_engine *e, const int32_t *prompt, int n_prompt) {
    cudaStream_t s = e->stream;
    QB_TRY(qb_launch_set_int(e->state + 1, 0, s));
    for (int c0 = 0; c0 < n_prompt; c0 += e->chunk_rows) {
        int m = n_prompt - c0 < e->chunk_rows ? n_prompt - c0 : e->chunk_rows;
        QB_CUDA_TRY(cudaMemcpyAsync(e->prompt, prompt + c0, (size_t)m * sizeof(int32_t), cudaMemcpyHostToDevice, s));
        QB_TRY(qb_launch_set_int(e->state, c0, s));
        QB_TRY(qb_embed(e, e->prompt, m));
        QB_TRY(qb_layers(e, m, c0, 0, 0));
        if (c0 + m == n_prompt) QB_TRY(qb_head(e, m, m, QB_HEAD_ADD_NORM)); /* position becomes n_prompt */
    }
    return 0;
}

int qb_cuda_decode_step(qb_cuda_engine *e, int chunk, int len_cap) {
    int fusion = e->fusion;
    QB_TRY(qb_embed(e, e->token, 1));
    if (fusion == QB_FUSE_NONE) QB_TRY(qb_layers(e, 1, -1, chunk, len_cap));
    else QB_TRY(qb_layers_decode_fused(e, fusion, chunk, len_cap));
    int how = fusion == QB_FUSE_RESIDUAL ? QB_HEAD_NORM : e->nc ? QB_HEAD_READY : QB_HEAD_ADD_NORM;
    QB_TRY(qb_head(e, 1, 1, how));
    return 0;
}

/* Named condition for the decode-attention split size: the largest power-of-two multiple of 64 (up to 2048)
 * that still gives splits x kv heads >= 120 blocks. Measured on the H100 (mma kernel, split + merge, KV GB/s by
 * chunk): the best chunk leaves about 128 blocks (one round of the 132 SMs, the merge's partials then are ~1% of
 * the KV bytes), e.g. 7B ctx 4096 -> 128, 16384 -> 512, 32768 -> 1024, 65536 -> 2048; 14B/72B ctx 4096 -> 256;
 * 0.5B ctx 32768 -> 512. 120 rather than 128 so that contexts just under a power of two keep the larger chunk
 * (7B ctx 30720: 1024 at 2300 GB/s vs 512 at 2222; 0.5B ctx 129024: 2048 at 2386 vs 1024 at 2329). Splits
 * grow with the context, so the chunk never shrinks as it grows: each level serves one band of contexts. */
int qb_cuda_decode_chunk_for(const qb_cuda_engine *e, int context_len) {
    const int want_blocks = 120;
    int chunk = 64;
    for (int lv = 1; lv < QB_CUDA_DECODE_LEVELS; lv++) {
        int next = chunk * 2;
        long splits = (context_len + next - 1) / next;
        if (splits * e->hkv < want_blocks) break;
        chunk = next;
    }
    return chunk;
}
