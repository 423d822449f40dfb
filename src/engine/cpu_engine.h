/* cpu_engine.h - internal state of the CPU reference backend (cpu_backend.c) and its forward pass
 * (cpu_forward.c). Not a public interface: the harness sees only backend.h.
 *
 * All activations are fp32. KV cache: per layer (max_seq_len, kv_heads, head_dim) for keys and for values,
 * this rank's kv heads only. Workspace rows: max_prompt_len (prefill processes the whole prompt at once).
 */
#ifndef QB_ENGINE_CPU_ENGINE_H
#define QB_ENGINE_CPU_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "comm/dist.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"

typedef struct {
    qb_model_config cfg;
    qb_shard_plan plan;
    qb_dist *dist;
    qb_weights w;
    int threads, max_seq_len, max_prompt_len;
    int test_corrupt_argmax; /* test only, see backend.h */
    int seq_len;                 /* positions held in the KV cache */
    float *k_cache, *v_cache;    /* [layers][max_seq_len][kv_heads][hd] */
    float *cos_table, *sin_table; /* [max_seq_len][hd/2], attention factor included */
    /* workspace, rows = max_prompt_len */
    float *hidden;   /* residual stream (rows, H) */
    float *normed;   /* (rows, H) */
    float *q;        /* (rows, q_heads*hd) */
    float *attn;     /* (rows, q_heads*hd) */
    float *proj;     /* (rows, H): o_proj / down_proj partial sums, all-reduced in place */
    float *gate;     /* (rows, inter_local) */
    float *up;       /* (rows, inter_local) */
    float *logits;   /* (vocab_local) of the last row */
    int32_t *positions; /* (rows) */
    size_t kv_bytes, workspace_bytes;
} qb_cpu_engine;

/* Run tokens[n] at positions seq_len .. seq_len+n-1 through the model (KV cache appended, seq_len += n)
 * and leave this rank's vocabulary logits of the last row in e->logits. Collective over the TP group. */
int qb_cpu_forward(qb_cpu_engine *e, const int32_t *tokens, int n);
/* Greedy choice over the whole vocabulary from e->logits (local argmax, then across the TP group). */
int qb_cpu_pick_token(qb_cpu_engine *e, int32_t *token);

#endif
