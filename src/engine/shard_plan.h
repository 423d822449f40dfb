/* shard_plan.h - what one tensor-parallel rank holds: pure arithmetic on the config and the TP size.
 *
 * Column-parallel (output rows split): q/k/v by whole heads, gate/up by rows of the intermediate size,
 * lm_head by vocabulary. Row-parallel (input columns split): o_proj and down_proj, whose outputs are
 * all-reduced. When there are fewer key/value heads than ranks, each rank holds the one kv head its query
 * heads use (TP must then be a multiple of num_kv_heads). Illegal sizes are refused here, naming the numbers.
 */
#ifndef QB_ENGINE_SHARD_PLAN_H
#define QB_ENGINE_SHARD_PLAN_H

#include "config/model_config.h"

typedef struct {
    int tp_size, tp_rank;
    int q_head_start, q_heads;    /* this rank's query heads [start, start+q_heads) */
    int kv_head_start, kv_heads;  /* this rank's key/value heads */
    int inter_start, inter_size;  /* rows of gate/up, columns of down */
    int vocab_start, vocab_size;  /* rows of lm_head (last rank may hold fewer) */
} qb_shard_plan;

int qb_shard_plan_make(const qb_model_config *c, int tp_size, int tp_rank, qb_shard_plan *out);
/* Is this TP size legal for the model (and its quantization groups)? -1 with a message if not. */
int qb_shard_plan_check(const qb_model_config *c, int tp_size);

#endif
