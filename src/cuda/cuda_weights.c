/* cuda_weights.c - filling the weights region: random weights made on the device (the values of
 * engine/random_init.h, so they equal the CPU reference's), or a host qb_weights (checkpoint) uploaded.
 * Fused layouts: q|k|v rows stacked into w_qkv (and their biases), gate|up rows into w_gate_up.
 * Tensor-parallel slices are taken by row (column-parallel) or column (row-parallel) offsets into the full
 * tensor, following the shard plan.
 */
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "engine/random_init.h"
#include "random_fill.cuh"

static uint64_t qb_layer_tensor_id(int layer, const char *suffix) {
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s", layer, suffix);
    return qb_tensor_id(name);
}

/* rows [row0, row0 + rows) x all cols of a column-parallel matrix with full_cols = cols */
static int qb_fill_rows(uint16_t *dst, long rows, long cols, long row0, uint64_t seed, uint64_t id, cudaStream_t s) {
    return qb_launch_random_fill_bf16(dst, rows, cols, row0, 0, cols, seed, id, s);
}

int qb_cuda_weights_random(qb_cuda_engine *e, uint64_t seed) {
    const qb_shard_plan *p = &e->plan;
    long H = e->H, I = e->I, hd = e->hd;
    long nq = (long)e->hq * hd, nkv = (long)e->hkv * hd;
    long nq_full = (long)e->cfg.num_heads * hd, i_full = e->cfg.intermediate_size;
    cudaStream_t s = e->stream;
    QB_TRY(qb_fill_rows(e->embed, e->vocab_full, H, 0, seed, qb_tensor_id("model.embed_tokens.weight"), s));
    if (!e->cfg.tie_word_embeddings)
        QB_TRY(qb_fill_rows(e->lm_head, e->vocab_rows, H, p->vocab_start, seed, qb_tensor_id("lm_head.weight"), s));
    QB_TRY(qb_launch_random_fill_norm_f32(e->final_norm, H, seed, qb_tensor_id("model.norm.weight"), s));
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        long q0 = (long)p->q_head_start * hd, kv0 = (long)p->kv_head_start * hd;
        QB_TRY(qb_fill_rows(L->w_qkv, nq, H, q0, seed, qb_layer_tensor_id(l, "self_attn.q_proj.weight"), s));
        QB_TRY(qb_fill_rows(L->w_qkv + nq * H, nkv, H, kv0, seed, qb_layer_tensor_id(l, "self_attn.k_proj.weight"), s));
        QB_TRY(qb_fill_rows(L->w_qkv + (nq + nkv) * H, nkv, H, kv0, seed,
                            qb_layer_tensor_id(l, "self_attn.v_proj.weight"), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv, nq, q0, seed, qb_layer_tensor_id(l, "self_attn.q_proj.bias"), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq, nkv, kv0, seed,
                                              qb_layer_tensor_id(l, "self_attn.k_proj.bias"), s));
        QB_TRY(qb_launch_random_fill_bias_f32(L->b_qkv + nq + nkv, nkv, kv0, seed,
                                              qb_layer_tensor_id(l, "self_attn.v_proj.bias"), s));
        QB_TRY(qb_launch_random_fill_bf16(L->w_o, H, nq, 0, q0, nq_full, seed,
                                          qb_layer_tensor_id(l, "self_attn.o_proj.weight"), s));
        QB_TRY(qb_fill_rows(L->w_gate_up, I, H, p->inter_start, seed, qb_layer_tensor_id(l, "mlp.gate_proj.weight"), s));
        QB_TRY(qb_fill_rows(L->w_gate_up + I * H, I, H, p->inter_start, seed,
                            qb_layer_tensor_id(l, "mlp.up_proj.weight"), s));
        QB_TRY(qb_launch_random_fill_bf16(L->w_down, H, I, 0, p->inter_start, i_full, seed,
                                          qb_layer_tensor_id(l, "mlp.down_proj.weight"), s));
        QB_TRY(qb_launch_random_fill_norm_f32(L->norm_in, H, seed, qb_layer_tensor_id(l, "input_layernorm.weight"), s));
        QB_TRY(qb_launch_random_fill_norm_f32(L->norm_post, H, seed,
                                              qb_layer_tensor_id(l, "post_attention_layernorm.weight"), s));
    }
    QB_CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}

/* One dense bf16 linear of the expected shape into dst. */
static int qb_upload_linear(void *dst, const qb_linear *lin, int rows, int cols, const char *what, int layer,
                            cudaStream_t s) {
    if (lin->fmt != QB_WFMT_BF16 || !lin->w)
        return qb_errorf("cuda: layer %d %s: only dense bf16 weights are supported by the CUDA engine yet", layer, what);
    if (lin->out_features != rows || lin->in_features != cols)
        return qb_errorf("cuda: layer %d %s: shape [%d][%d], expected [%d][%d]", layer, what, lin->out_features,
                         lin->in_features, rows, cols);
    QB_CUDA_TRY(cudaMemcpyAsync(dst, lin->w, (size_t)rows * cols * 2, cudaMemcpyHostToDevice, s));
    return 0;
}

static int qb_upload_bias(float *dst, const qb_linear *lin, int n, cudaStream_t s) {
    if (lin->bias) QB_CUDA_TRY(cudaMemcpyAsync(dst, lin->bias, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, s));
    else QB_CUDA_TRY(cudaMemsetAsync(dst, 0, (size_t)n * sizeof(float), s));
    return 0;
}

int qb_cuda_weights_upload(qb_cuda_engine *e, const qb_weights *w) {
    cudaStream_t s = e->stream;
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd, nkv = (size_t)e->hkv * e->hd;
    if (w->embed_fmt != QB_WFMT_BF16 || !w->embed)
        return qb_errorf("cuda: model.embed_tokens.weight: only bf16 embeddings are supported by the CUDA engine yet");
    QB_CUDA_TRY(cudaMemcpyAsync(e->embed, w->embed, (size_t)e->vocab_full * H * 2, cudaMemcpyHostToDevice, s));
    if (!e->cfg.tie_word_embeddings)
        QB_TRY(qb_upload_linear(e->lm_head, &w->lm_head, e->vocab_rows, e->H, "lm_head", -1, s));
    QB_CUDA_TRY(cudaMemcpyAsync(e->final_norm, w->final_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
    for (int l = 0; l < e->layers; l++) {
        const qb_layer_weights *src = &w->layers[l];
        qb_cuda_layer *L = &e->layer[l];
        QB_TRY(qb_upload_linear(L->w_qkv, &src->q, (int)nq, e->H, "q_proj", l, s));
        QB_TRY(qb_upload_linear(L->w_qkv + nq * H, &src->k, (int)nkv, e->H, "k_proj", l, s));
        QB_TRY(qb_upload_linear(L->w_qkv + (nq + nkv) * H, &src->v, (int)nkv, e->H, "v_proj", l, s));
        QB_TRY(qb_upload_bias(L->b_qkv, &src->q, (int)nq, s));
        QB_TRY(qb_upload_bias(L->b_qkv + nq, &src->k, (int)nkv, s));
        QB_TRY(qb_upload_bias(L->b_qkv + nq + nkv, &src->v, (int)nkv, s));
        QB_TRY(qb_upload_linear(L->w_o, &src->o, e->H, (int)nq, "o_proj", l, s));
        QB_TRY(qb_upload_linear(L->w_gate_up, &src->gate, e->I, e->H, "gate_proj", l, s));
        QB_TRY(qb_upload_linear(L->w_gate_up + I * H, &src->up, e->I, e->H, "up_proj", l, s));
        QB_TRY(qb_upload_linear(L->w_down, &src->down, e->H, e->I, "down_proj", l, s));
        QB_CUDA_TRY(cudaMemcpyAsync(L->norm_in, src->input_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
        QB_CUDA_TRY(cudaMemcpyAsync(L->norm_post, src->post_attn_norm, H * sizeof(float), cudaMemcpyHostToDevice, s));
    }
    QB_CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}
