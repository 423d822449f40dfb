/* weights_quant.h - one rank's GPTQ / AWQ weights: allocation, random filling, checkpoint loading.
 *
 * A quantized qb_linear (fmt QB_WFMT_GPTQ or QB_WFMT_AWQ) holds this rank's slice in the checkpoint's own
 * packing (quant_pack.h), with local sizes K = in_features, N = out_features, g = group_size, pf = 32/bits:
 *   GPTQ: qweight [K/pf][N], qzeros [K/g][N/pf], scales f16 [K/g][N], g_idx [K] (local: k/g), bias float [N]
 *   AWQ:  qweight [K][N/8],  qzeros [K/g][N/8],  scales f16 [K/g][N], g_idx NULL,             bias float [N]
 * Column-parallel slices (q/k/v/gate/up) take whole packed words of N; row-parallel slices (o/down) take
 * whole groups of K; anything else is refused naming the sizes. Non-quantized tensors of a checkpoint keep
 * their dtype: embed_tokens / lm_head as F16 (or BF16) bits, norms and biases as float. Random quantized
 * weights keep a BF16 embedding and lm_head (same bytes as F16; the values of random_init.h).
 */
#ifndef QB_ENGINE_WEIGHTS_QUANT_H
#define QB_ENGINE_WEIGHTS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "io/checkpoint.h"

/* Allocate every buffer of this rank's quantized weights (uninitialised), shapes set. -1 on out of memory or
 * an illegal slice (the caller frees with qb_weights_free). */
int qb_weights_alloc_quant(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w);

/* Fill one quantized linear with the random rule of quant_pack.h; prefix = "model.layers.3.mlp.up_proj". */
void qb_linear_random_quant(qb_linear *lin, const char *prefix, const qb_slice *s, uint64_t seed, int threads);

/* Read this rank's slices of every tensor of a GPTQ or AWQ checkpoint into w (allocated by
 * qb_weights_alloc_quant), marking them used; qb_weights_load (weights_load.c) opens the checkpoint and does
 * the checks common to every format (unused tensors, finite values). */
int qb_weights_read_quant(qb_checkpoint *ck, const qb_model_config *c, const qb_shard_plan *p, qb_weights *w);
/* Read one layer's norms (the family's layer_norms, float, every format alike); in weights_load.c. */
int qb_weights_read_layer_norms(qb_checkpoint *ck, const qb_model_config *c, int layer, qb_layer_weights *l);

/* Packed bytes of one rank's quantized linear (qweight + qzeros + scales + g_idx + bias). */
size_t qb_linear_quant_bytes(const qb_model_config *c, const qb_slice *s);

#endif
