/* cuda_forward.c - the Qwen2 forward pass as a sequence of kernel launches on the engine's stream.
 *
 * One layer: add+norm -> q|k|v projection -> bias+RoPE+cache append -> attention -> o_proj -> add+norm ->
 * gate|up projection -> SiLU*up -> down_proj (the residual add of down_proj is fused into the next layer's
 * norm). The dispatch place for kernels is here: one row (decode) -> GEMV and split-KV decode attention;
 * several rows (prefill) -> cuBLASLt GEMM and flash prefill attention. Tensor parallel (later issue): an
 * all-reduce of `delta` after o_proj and after down_proj goes where the TP comments are.
 * Quantized layer linears (qb_cuda_qmat set): one row -> the quantized GEMV on the packed weights; several
 * rows -> dequantize the linear into the bf16 scratch `wdq`, then the same GEMM. f16 embedding / lm_head
 * (checkpoints of the quantized releases) use the f16 lookup and GEMV; the bf16 path is unchanged.
 * No host synchronisation anywhere here: the decode step is captured into a CUDA graph as is.
 */
#include <stdlib.h>

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
#include "qkv_rope.cuh"
#include "silu_mul.cuh"

/* y (m, n) = x (m, k) . W^T with W quantized: one row reads the packed weights (decode); several rows
 * dequantize W into the scratch and run the bf16 GEMM (prefill, compute-bound). */
static int qb_matmul_quant(qb_cuda_engine *e, const uint16_t *x, const qb_cuda_qmat *q, int m, int n, int k,
                           uint16_t *y) {
    if (m == 1)
        return qb_launch_gemv_quant(q->qweight, q->sz, x, n, k, e->quant_bits, e->group_size, y, NULL, e->stream);
    if (!e->wdq) return qb_errorf("cuda: %d-row quantized matmul without a dequantization scratch", m);
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

/* The layers over m rows at positions *state[0] .. + m - 1; decode_chunk > 0 selects decode attention. */
static int qb_layers(qb_cuda_engine *e, int m, int start, int decode_chunk, int len_cap) {
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
        if (decode_chunk > 0)
            QB_TRY(qb_launch_attention_decode(e->q, kc, vc, e->max_seq, len_cap, e->state, e->hq, e->hkv, e->hd,
                                              decode_chunk, e->part_o, e->part_ml, e->attn, s));
        else
            QB_TRY(qb_launch_attention_prefill(e->q, kc, vc, e->max_seq, m, start, e->hq, e->hkv, e->hd, e->attn, s));
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

/* Final norm of the last row, logits, greedy choice; advances the decode state by pos_advance. */
static int qb_head(qb_cuda_engine *e, int m, int pos_advance) {
    size_t last = (size_t)(m - 1) * e->H;
    QB_TRY(qb_launch_add_rmsnorm(e->resid + last, e->delta + last, e->final_norm, 1, e->H, e->eps, e->xn, e->stream));
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
        if (c0 + m == n_prompt) QB_TRY(qb_head(e, m, m)); /* position becomes n_prompt */
    }
    return 0;
}

int qb_cuda_decode_step(qb_cuda_engine *e, int chunk, int len_cap) {
    QB_TRY(qb_embed(e, e->token, 1));
    QB_TRY(qb_layers(e, 1, -1, chunk, len_cap));
    QB_TRY(qb_head(e, 1, 1));
    return 0;
}

/* Named condition for the decode-attention split size: the largest power-of-two multiple of 64 (up to 2048)
 * that still gives about two waves of blocks (splits x kv heads >= 2 x 132). */
int qb_cuda_decode_chunk_for(const qb_cuda_engine *e, int context_len) {
    const int want_blocks = 264;
    int chunk = 64;
    for (int lv = 1; lv < QB_CUDA_DECODE_LEVELS; lv++) {
        int next = chunk * 2;
        long splits = (context_len + next - 1) / next;
        if (splits * e->hkv < want_blocks) break;
        chunk = next;
    }
    return chunk;
}
