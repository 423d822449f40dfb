/* shard_plan.c - which heads, rows, columns and vocabulary rows one tensor-parallel rank holds
 * (see shard_plan.h and formats.md "Tensor-parallel constraints").
 *
 * Rules: num_attention_heads % tp == 0; key/value heads split evenly when kv_heads >= tp (kv_heads % tp == 0),
 * else replicated (tp % kv_heads == 0, each rank holds the one kv head its query heads use);
 * intermediate_size % tp == 0; vocabulary in chunks of ceil(vocab/tp) rows, every rank non-empty.
 * Quantized configs also need every row-parallel input slice (o_proj: q_heads*head_dim per rank, down_proj:
 * intermediate/tp) to hold whole quantization groups, and every column-parallel output slice to hold whole
 * packed words (32/bits values).
 */
#include "engine/shard_plan.h"

#include <string.h>

#include "model/weight_format.h"
#include "util/error.h"

#define QB_MAX_TP 1024

int qb_shard_plan_check(const qb_model_config *c, int tp) {
    if (tp < 1 || tp > QB_MAX_TP) return qb_errorf("tp %d: must be in [1, %d]", tp, QB_MAX_TP);
    if (c->num_heads % tp != 0)
        return qb_errorf("tp %d: num_attention_heads %d is not divisible by %d", tp, c->num_heads, tp);
    if (c->num_kv_heads >= tp) {
        if (c->num_kv_heads % tp != 0)
            return qb_errorf("tp %d: num_key_value_heads %d is not divisible by %d", tp, c->num_kv_heads, tp);
    } else if (tp % c->num_kv_heads != 0) {
        return qb_errorf("tp %d: more ranks than num_key_value_heads %d, so tp must be a multiple of %d", tp,
                         c->num_kv_heads, c->num_kv_heads);
    }
    if (c->intermediate_size % tp != 0)
        return qb_errorf("tp %d: intermediate_size %d is not divisible by %d", tp, c->intermediate_size, tp);
    long long chunk = ((long long)c->vocab_size + tp - 1) / tp;
    if (chunk * (tp - 1) >= c->vocab_size)
        return qb_errorf("tp %d: vocab_size %d in chunks of %lld leaves the last rank no rows", tp, c->vocab_size,
                         chunk);
    if (c->quant != QB_QUANT_BF16) {
        int g = c->group_size;
        const qb_weight_format_info *f = qb_format_info(c->quant);
        int per_word = f ? f->values_per_word : 8; /* the format table's packing */
        int o_in = c->num_heads / tp * c->head_dim;
        int down_in = c->intermediate_size / tp;
        int kv_local = c->num_kv_heads >= tp ? c->num_kv_heads / tp : 1;
        if (g <= 0) return qb_errorf("tp %d: quantized config without a group_size", tp);
        if (down_in % g != 0)
            return qb_errorf("tp %d: %s down_proj input slice intermediate_size/tp = %d/%d = %d is not a multiple "
                             "of group_size %d", tp, qb_quant_name(c->quant), c->intermediate_size, tp, down_in, g);
        if (o_in % g != 0)
            return qb_errorf("tp %d: %s o_proj input slice num_attention_heads*head_dim/tp = %d is not a multiple "
                             "of group_size %d", tp, qb_quant_name(c->quant), o_in, g);
        if (down_in % per_word != 0 || o_in % per_word != 0 || (c->num_heads / tp * c->head_dim) % per_word != 0 ||
            (kv_local * c->head_dim) % per_word != 0)
            return qb_errorf("tp %d: %s slices are not whole %d-value packed words", tp, qb_quant_name(c->quant),
                             per_word);
    }
    return 0;
}

int qb_shard_plan_make(const qb_model_config *c, int tp, int rank, qb_shard_plan *out) {
    QB_TRY(qb_shard_plan_check(c, tp));
    if (rank < 0 || rank >= tp) return qb_errorf("tp %d: rank %d is out of range [0, %d)", tp, rank, tp);
    qb_shard_plan p;
    memset(&p, 0, sizeof p);
    p.tp_size = tp;
    p.tp_rank = rank;
    p.q_heads = c->num_heads / tp;
    p.q_head_start = rank * p.q_heads;
    if (c->num_kv_heads >= tp) {
        p.kv_heads = c->num_kv_heads / tp;
        p.kv_head_start = rank * p.kv_heads;
    } else {
        int group = c->num_heads / c->num_kv_heads; /* query heads per kv head */
        p.kv_heads = 1;
        p.kv_head_start = p.q_head_start / group;
    }
    p.inter_size = c->intermediate_size / tp;
    p.inter_start = rank * p.inter_size;
    int chunk = (int)(((long long)c->vocab_size + tp - 1) / tp);
    p.vocab_start = rank * chunk;
    p.vocab_size = c->vocab_size - p.vocab_start < chunk ? c->vocab_size - p.vocab_start : chunk;
    *out = p;
    return 0;
}
