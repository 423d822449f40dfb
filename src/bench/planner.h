/* planner.h - how much GPU memory one tensor-parallel rank needs for a cell, and the fewest GPUs that fit.
 *
 * Pure arithmetic on the model config (no GPU needed), following the CUDA engine's memory plan
 * (src/cuda/cuda_memory.c), per rank at tensor-parallel size tp:
 *   weights    the rank's shard (engine/shard_plan.h): q/k/v rows of its heads, o_proj columns, gate/up rows and
 *              down columns of its slice of the intermediate size, its lm_head vocabulary rows; the embedding
 *              table is REPLICATED (every rank holds all vocab_size rows); biases and norms in fp32 (as the
 *              engine keeps them). BF16 matrices 2 bytes a value; GPTQ/AWQ matrices as the CUDA engine repacks
 *              them (engine/quant_repack.h: bits/8 a value + one u32 fp16 scale | zero point per group of
 *              group_size and output row), their embedding and lm_head fp16.
 *   kv_cache   K and V in bf16 for context_len + gen_len positions, every layer, the rank's kv heads (one when
 *              there are fewer kv heads than ranks: replicated).
 *   workspace  the engine's activations for ONE prefill chunk of min(context_len, QB_PLAN_PREFILL_CHUNK) rows
 *              (chunked prefill: the prompt is processed 4096 rows at a time, so the workspace does not grow with
 *              the context): fp32 residual, bf16 normed input, delta, qkv|gate-up buffer, q, attention output,
 *              activation (quantized models with more than one row: + the layer's largest linear dequantized
 *              to bf16 for the prefill GEMM); plus fp32 logits of its vocabulary rows, decode-attention partials (splits of 64
 *              positions, the worst case), RoPE tables and token buffers.
 *   overhead   fixed: QB_PLAN_OVERHEAD_BYTES (CUDA context and loaded kernels, cuBLAS/cuBLASLt handles and
 *              workspace, CUDA graphs) + QB_PLAN_NCCL_BYTES when tp > 1 (NCCL channel buffers, reduction
 *              buffers, the IPC regions of the one-shot all-reduce and of the decode's residual exchange: the
 *              latter 2 x layers x ranks x 4 x hidden size, 42 MB for 72B at TP8).
 * A cell fits at tp when total <= QB_PLAN_USABLE_FRACTION x the GPU's memory (the rest: allocator granularity,
 * driver reservations, fragmentation). GPU memory = what cudaMemGetInfo reports as total.
 */
#ifndef QB_BENCH_PLANNER_H
#define QB_BENCH_PLANNER_H

#include <stddef.h>

#include "config/model_config.h"

#define QB_PLAN_PREFILL_CHUNK 4096
#define QB_PLAN_OVERHEAD_BYTES ((size_t)1536 << 20) /* 1.5 GiB */
#define QB_PLAN_NCCL_BYTES ((size_t)1024 << 20)     /* 1 GiB, only when tp > 1 */
#define QB_PLAN_USABLE_FRACTION 0.97
#define QB_PLAN_MAX_CANDIDATES 4                    /* tp 1, 2, 4, 8 */

typedef struct {
    int tp;
    size_t weights_bytes, kv_cache_bytes, workspace_bytes, overhead_bytes;
    size_t total_bytes;
} qb_rank_memory;

/* Memory one rank needs (the rank holding the most: rank 0, with the largest vocabulary chunk).
 * -1 if tp is not legal for the model (qb_shard_plan_check's message) or the lengths are out of range. */
int qb_plan_rank_memory(const qb_model_config *c, int tp, int context_len, int gen_len, qb_rank_memory *out);

typedef struct {
    int context_len, gen_len;
    size_t gpu_bytes;  /* memory of one GPU (cudaMemGetInfo total) */
    int gpus;          /* GPUs in the job (world size): tp must divide it */
    int forced_tp;     /* > 0: only this size (--tp); 0: the smallest that fits */
} qb_plan_request;

typedef struct {
    int tp;                                     /* chosen size; 0 when nothing fits */
    qb_rank_memory chosen;
    int n_candidates;                           /* what was computed, for reports */
    qb_rank_memory candidates[QB_PLAN_MAX_CANDIDATES];
} qb_plan_result;

/* Choose the smallest legal tp among 1, 2, 4, 8 (<= gpus, dividing gpus) whose per-rank memory fits.
 * When none fits: -1 with a message starting "does not fit:" that gives the numbers of every size tried
 * (the runner records the cell as DOES_NOT_FIT). Other errors (bad request): -1 with another message. */
int qb_plan_choose_tp(const qb_model_config *c, const qb_plan_request *req, qb_plan_result *out);

/* "weights 67.10 + KV 5.00 + workspace 0.71 + overhead 2.50 = 75.31 GiB" */
void qb_plan_format(const qb_rank_memory *m, char *out, size_t cap);

#endif
