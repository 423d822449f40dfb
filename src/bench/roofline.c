/* roofline.c - bytes read per decode token (see roofline.h): the family table's tensors (model/model_family.h)
 * at the format table's bytes per weight (model/weight_format.h). */
#include "bench/roofline.h"

#include "model/model_family.h"
#include "model/weight_format.h"

/* Bytes per weight element of a linear layer: the packed values plus, per group, the f16 scale and the zero
 * point the engine keeps beside it (QB_ENGINE_GROUP_BYTES per group in its repacked layout). */
double qb_decode_weight_bytes(const qb_model_config *c, const qb_shard_plan *p) {
    const qb_model_family *fam = qb_model_family_of(c);
    const double H = c->hidden_size;
    double per_layer_params = 0, bias_values = 0; /* sums of integers: exact */
    for (int k = 0; k < fam->n_linears; k++) {
        qb_slice s;
        qb_linear_slice(c, p, k, &s);
        per_layer_params += (double)s.n_rows * (double)s.n_cols;
        if (s.has_bias) bias_values += (double)s.n_rows;
    }
    const double bias_and_norm_bytes = 2.0 * bias_values + 2.0 * fam->n_layer_norms * H;
    const double layers =
        c->num_layers * (per_layer_params * qb_format_engine_bytes_per_weight(c->quant, c->group_size) +
                         bias_and_norm_bytes);
    const double lm_head = (double)p->vocab_size * H * 2.0; /* never quantized in the Qwen2.5 releases */
    const double embed_row = H * 2.0, final_norm = H * 2.0;
    return layers + lm_head + embed_row + final_norm;
}

double qb_decode_kv_bytes(const qb_model_config *c, const qb_shard_plan *p, double positions) {
    return 2.0 * c->num_layers * p->kv_heads * (double)c->head_dim * 2.0 * positions;
}
