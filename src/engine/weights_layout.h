/* weights_layout.h - where one rank's slice of each linear layer sits in the full (unsharded) tensor.
 *
 * The one description of slicing shared by random weights, the checkpoint loader and any backend that fills
 * or loads weights itself (e.g. random weights generated on the GPU with random_init.h): element (r, c) of
 * this rank's [n_rows][n_cols] block is element (row0 + r, col0 + c) of the full [rows][cols] tensor, whose
 * flat index (row0 + r) * cols + col0 + c is the index random_init.h hashes. A bias covers rows
 * [row0, row0 + n_rows) of the full [rows] vector.
 */
#ifndef QB_ENGINE_WEIGHTS_LAYOUT_H
#define QB_ENGINE_WEIGHTS_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/weights.h"
#include "model/model_family.h" /* QB_LIN_*, qb_linear_suffix, qb_slice, qb_linear_slice */

/* &l->q ... &l->down by QB_LIN_* index. */
qb_linear *qb_layer_linear(qb_layer_weights *l, int which);

/* Allocate every buffer of this rank's BF16 weights (uninitialised), shapes set; -1 on out of memory
 * (the caller frees with qb_weights_free). */
int qb_weights_alloc(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w);
/* Allocates one linear of its format: lin = linear `which` of layer `layer`, s its slice on this rank. */
typedef int (*qb_linear_alloc_fn)(const qb_model_config *c, const qb_slice *s, int layer, int which, qb_weights *w,
                                  qb_linear *lin);
/* What every format shares: config and plan, the layer array, embedding, final norm, lm_head (aliasing the
 * embedding when tied) and the layer norms; then every layer's linears, in order, by the format's
 * alloc_linear. */
int qb_weights_alloc_common(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w,
                            qb_linear_alloc_fn alloc_linear);
/* malloc counted in w->host_bytes; NULL with a message naming what on failure. */
void *qb_weights_alloc_bytes(qb_weights *w, size_t bytes, const char *what);

/* Host bytes qb_weights_random / qb_weights_load hold for this rank (BF16 matrices, float norms and biases),
 * for memory planning. */
size_t qb_weights_rank_bytes(const qb_model_config *c, const qb_shard_plan *p);

#endif
