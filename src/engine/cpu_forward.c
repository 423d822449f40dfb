/* cpu_forward.c - the Qwen2 forward pass of the CPU reference backend, one TP rank's share.
 *
 * Per layer: input RMSNorm; q/k/v with bias for this rank's heads (k/v written straight into the cache rows
 * of their positions); RoPE on q and the new k rows; causal GQA attention; o_proj over this rank's input
 * columns, all-reduced over the TP group, added to the residual; post-attention RMSNorm; gate/up rows;
 * silu(gate)*up; down_proj columns, all-reduced, added to the residual. Then the final RMSNorm of the last row
 * and lm_head over this rank's vocabulary rows. Everything fp32 (see cpu_ops.h).
 */
#include "engine/cpu_engine.h"

#include "engine/cpu_ops.h"
#include "engine/cpu_quant_ops.h"
#include "util/error.h"

static float *kv_rows(float *cache, const qb_cpu_engine *e, int layer, int pos) {
    size_t row = (size_t)e->plan.kv_heads * e->cfg.head_dim;
    return cache + ((size_t)layer * e->max_seq_len + pos) * row;
}

/* bf16, f16, GPTQ or AWQ weights (cpu_quant_ops.h) */
static void linear(const qb_cpu_engine *e, const float *x, const qb_linear *l, int rows, float *y) {
    qb_ref_linear(x, l, rows, y, e->threads);
}

static int attention_block(qb_cpu_engine *e, int layer, int n) {
    const qb_layer_weights *lw = &e->w.layers[layer];
    int hd = e->cfg.head_dim, hq = e->plan.q_heads, hkv = e->plan.kv_heads, start = e->seq_len;
    float *k_new = kv_rows(e->k_cache, e, layer, start);
    float *v_new = kv_rows(e->v_cache, e, layer, start);

    linear(e, e->normed, &lw->q, n, e->q);
    linear(e, e->normed, &lw->k, n, k_new);
    linear(e, e->normed, &lw->v, n, v_new);
    qb_ref_rope(e->q, n, hq, hd, e->positions, e->cos_table, e->sin_table);
    qb_ref_rope(k_new, n, hkv, hd, e->positions, e->cos_table, e->sin_table);
    qb_ref_attention(e->q, kv_rows(e->k_cache, e, layer, 0), kv_rows(e->v_cache, e, layer, 0), n, start, hq, hkv,
                     hd, e->attn, e->threads);
    linear(e, e->attn, &lw->o, n, e->proj);
    if (qb_dist_allreduce_sum_f32(e->dist, e->proj, (size_t)n * e->cfg.hidden_size) != 0)
        return qb_error_prefix("layer %d o_proj all-reduce", layer);
    return 0;
}

static int mlp_block(qb_cpu_engine *e, int layer, int n) {
    const qb_layer_weights *lw = &e->w.layers[layer];
    linear(e, e->normed, &lw->gate, n, e->gate);
    linear(e, e->normed, &lw->up, n, e->up);
    qb_ref_silu_mul(e->gate, e->up, n * e->plan.inter_size, e->gate);
    linear(e, e->gate, &lw->down, n, e->proj);
    if (qb_dist_allreduce_sum_f32(e->dist, e->proj, (size_t)n * e->cfg.hidden_size) != 0)
        return qb_error_prefix("layer %d down_proj all-reduce", layer);
    return 0;
}

int qb_cpu_forward(qb_cpu_engine *e, const int32_t *tokens, int n) {
    const qb_model_config *c = &e->cfg;
    int H = c->hidden_size;
    float eps = (float)c->rms_norm_eps;
    if (n < 1 || n > e->max_prompt_len)
        return qb_errorf("cpu backend: %d tokens in one step, workspace holds 1..%d", n, e->max_prompt_len);
    if (e->seq_len + n > e->max_seq_len)
        return qb_errorf("cpu backend: position %d is past the KV cache of %d positions", e->seq_len + n - 1,
                         e->max_seq_len);
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return qb_errorf("cpu backend: token %d at index %d is outside the vocabulary [0, %d)", tokens[i], i,
                             c->vocab_size);
        e->positions[i] = e->seq_len + i;
    }

    if (e->w.embed_fmt == QB_WFMT_F16) qb_ref_embedding_f16(e->w.embed, H, tokens, n, e->hidden);
    else qb_ref_embedding(e->w.embed, H, tokens, n, e->hidden);
    qb_ref_rmsnorm(e->hidden, e->w.layers[0].input_norm, n, H, eps, e->normed);
    for (int l = 0; l < c->num_layers; l++) {
        QB_TRY(attention_block(e, l, n));
        qb_ref_add_rmsnorm(e->hidden, e->proj, e->w.layers[l].post_attn_norm, n, H, eps, e->normed);
        QB_TRY(mlp_block(e, l, n));
        const float *next_norm = l + 1 < c->num_layers ? e->w.layers[l + 1].input_norm : e->w.final_norm;
        qb_ref_add_rmsnorm(e->hidden, e->proj, next_norm, n, H, eps, e->normed);
    }
    e->seq_len += n;
    /* only the last row's logits are needed: the next token */
    const float *last = e->normed + (size_t)(n - 1) * H;
    qb_ref_linear(last, &e->w.lm_head, 1, e->logits, e->threads);
    return 0;
}

int qb_cpu_pick_token(qb_cpu_engine *e, int32_t *token) {
    float best_value;
    int32_t local = qb_ref_argmax(e->logits, e->plan.vocab_size, &best_value);
    if (qb_dist_argmax(e->dist, best_value, e->plan.vocab_start + local, token) != 0)
        return qb_error_prefix("cpu backend: vocabulary argmax");
    return 0;
}
