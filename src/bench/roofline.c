/* roofline.c - bytes read per decode token (see roofline.h). */
#include "bench/roofline.h"

/* Bytes per weight element of a linear layer in this format: the packed values plus, per group, the f16
 * scale and the zero point the engine keeps beside it (4 bytes per group in its repacked layout). */
static double linear_bytes_per_param(const qb_model_config *c) {
    const double group = c->group_size > 0 ? c->group_size : 128;
    switch (c->quant) {
    case QB_QUANT_GPTQ_INT8: return 1.0 + 4.0 / group;
    case QB_QUANT_GPTQ_INT4:
    case QB_QUANT_AWQ: return 0.5 + 4.0 / group;
    default: return 2.0;
    }
}

double qb_decode_weight_bytes(const qb_model_config *c, const qb_shard_plan *p) {
    const double H = c->hidden_size, hd = c->head_dim;
    const double q = p->q_heads * hd, kv = p->kv_heads * hd, inter = p->inter_size;
    const double per_layer_params = H * q + 2.0 * H * kv + q * H + 3.0 * H * inter;
    const double bias_and_norm_bytes = 2.0 * (q + 2.0 * kv) + 2.0 * 2.0 * H;
    const double layers = c->num_layers * (per_layer_params * linear_bytes_per_param(c) + bias_and_norm_bytes);
    const double lm_head = (double)p->vocab_size * H * 2.0; /* never quantized in the Qwen2.5 releases */
    const double embed_row = H * 2.0, final_norm = H * 2.0;
    return layers + lm_head + embed_row + final_norm;
}

double qb_decode_kv_bytes(const qb_model_config *c, const qb_shard_plan *p, double positions) {
    return 2.0 * c->num_layers * p->kv_heads * (double)c->head_dim * 2.0 * positions;
}
