/* roofline.h - the physical floor of batch-1 decode: bytes each rank must read per generated token.
 *
 * Per decode step a rank reads its whole weight shard once (every linear layer's slice, its lm_head rows, the
 * norms; one embedding row) and the KV cache of every position so far (2 x layers x its kv heads x head_dim x
 * 2 bytes x positions). time per token >= bytes / copy bandwidth. A cell whose measured decode speed implies
 * more bandwidth than the card's measured copy bandwidth is faster than the hardware allows: INVALID.
 */
#ifndef QB_BENCH_ROOFLINE_H
#define QB_BENCH_ROOFLINE_H

#include "config/model_config.h"

/* Below this many bytes per token, caches can serve the working set and the floor is no limit. */
#define QB_ROOFLINE_MIN_BYTES (256.0 * 1048576.0)
#include "engine/shard_plan.h"

/* Bytes of weights one rank reads per decode step (bf16 or the quantized layout's packed bytes + scales). */
double qb_decode_weight_bytes(const qb_model_config *c, const qb_shard_plan *p);
/* Bytes of KV cache one rank reads per decode step with `positions` cached tokens (bf16 cache). */
double qb_decode_kv_bytes(const qb_model_config *c, const qb_shard_plan *p, double positions);

#endif
