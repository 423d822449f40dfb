/* weights.h - one rank's share of a model's weights in host memory, and how they are made.
 *
 * Two sources, same shapes: a local Hugging Face checkpoint (safetensors, validated, only this rank's slices
 * read) or random weights (seeded, reproducible, never zeros; see random_init.h: each value is a pure function
 * of seed, tensor name and element index, so any slice, on the CPU or the GPU, is the same as the slice of the
 * full tensor). Dense matrices are row-major [out_features][in_features] as in the checkpoint; norms and
 * biases are held as float (exact for bf16 and f16 sources).
 */
#ifndef QB_ENGINE_WEIGHTS_H
#define QB_ENGINE_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "model/model_family.h" /* tensor names, qb_tensor_name */

typedef enum {
    QB_WFMT_BF16 = 0, /* dense bf16 [N][K] */
    QB_WFMT_F16,      /* dense f16  [N][K] (non-quantized tensors of GPTQ/AWQ checkpoints) */
    QB_WFMT_GPTQ,     /* AutoGPTQ v1 packing, bits 4 or 8 (quantized-formats issue) */
    QB_WFMT_AWQ,      /* AutoAWQ GEMM packing, 4 bits (quantized-formats issue) */
} qb_weight_format;

/* One linear layer, y[N] = W[N][K] x[K] (+ bias), this rank's slice. */
typedef struct {
    qb_weight_format fmt;
    int out_features;   /* N (this rank's) */
    int in_features;    /* K (this rank's) */
    uint16_t *w;        /* dense formats: [N][K] raw bf16/f16 bits */
    /* quantized formats, in the checkpoint's own packing (see ../shared/reference/formats.md) */
    int bits, group_size;
    int32_t *qweight, *qzeros, *g_idx;
    uint16_t *scales;   /* f16 bits [K/group][N] */
    float *bias;        /* [N] or NULL */
    int owns_w;         /* 0 when w aliases another tensor (tied lm_head) */
} qb_linear;

typedef struct {
    qb_linear q, k, v, o, gate, up, down;
    float *input_norm;      /* [H] */
    float *post_attn_norm;  /* [H] */
} qb_layer_weights;

typedef struct {
    qb_model_config cfg;
    qb_shard_plan plan;
    qb_weight_format embed_fmt; /* BF16 or F16 */
    uint16_t *embed;            /* [vocab][H], full on every rank */
    qb_linear lm_head;          /* this rank's vocabulary rows [plan.vocab_size][H]; aliases embed when tied */
    float *final_norm;          /* [H] */
    qb_layer_weights *layers;   /* [num_layers] */
    size_t host_bytes;          /* bytes held */
} qb_weights;

/* Random weights of the exact shapes for this rank (see random_init.h for the value rule). */
int qb_weights_random(const qb_model_config *c, const qb_shard_plan *p, uint64_t seed, qb_weights *out);
/* This rank's slices of a local checkpoint directory (validated against c). */
int qb_weights_load(const char *dir, const qb_model_config *c, const qb_shard_plan *p, qb_weights *out);
void qb_weights_free(qb_weights *w);
/* NaN / Inf anywhere in this rank's loaded weights (dense matrices, quantized scales, biases, norms)? 0 when
 * all are finite, else -1 with "DIR: TENSOR: element [r, c] of this rank's slice is not finite". The loaders
 * call it (weights_finite.c); random weights are finite by construction. */
int qb_weights_check_finite(const char *dir, const qb_weights *w);
/* Index of the first non-finite value (kernels/weights/nonfinite.cuh's rule), or -1. */
long long qb_first_nonfinite16(const uint16_t *v, size_t n, uint32_t exp_mask);
long long qb_first_nonfinite_f32(const float *v, size_t n);


#endif
