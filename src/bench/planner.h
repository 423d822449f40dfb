/* planner.h - how much GPU memory one tensor-parallel rank needs for a cell, and the fewest GPUs that fit.
 *
 * No GPU needed: the numbers are the sums of the CUDA engine's own memory plan (engine/memory_plan.h, the list the
 * engine allocates from) for rank 0 (the largest vocabulary chunk) at max_seq_len = context_len + gen_len and a
 * longest prefill of context_len rows, with the engine's choices that change memory taken at their largest (the
 * tiled quantized layout, the one-shot IPC all-reduce, the decode's residual exchange):
 *   weights    the plan's weights region: the rank's shard (engine/shard_plan.h), the embedding table REPLICATED,
 *              biases and norms fp32, BF16 matrices 2 bytes a value, GPTQ/AWQ matrices repacked (bits/8 a value +
 *              one u32 scale | zero point per group and output row), 256-byte aligned tensors.
 *   kv_cache   the plan's KV region: K and V in bf16, every layer, the rank's kv heads.
 *   workspace  the plan's workspace region (one prefill chunk of min(context_len, QB_PLAN_PREFILL_CHUNK) rows of
 *              activations, logits, decode-attention partials, RoPE tables, token buffers, the 32 MiB GEMM
 *              workspace, the quantized prefill's dequantization scratch) + the temporary tiling scratch if any.
 *   overhead   the plan's NCCL-context entries (tp > 1: the all-reduced delta, the IPC regions of the one-shot
 *              all-reduce and of the decode's residual exchange) + its declared entries: QB_PLAN_OVERHEAD_BYTES
 *              (CUDA context and loaded kernels, cuBLAS/cuBLASLt handles, CUDA graphs) and QB_PLAN_NCCL_BYTES when
 *              tp > 1 (NCCL's channel buffers).
 * A cell fits at tp when total <= QB_PLAN_USABLE_FRACTION x the GPU's memory (the rest: allocator granularity,
 * driver reservations, fragmentation). GPU memory = what cudaMemGetInfo reports as total.
 */
#ifndef QB_BENCH_PLANNER_H
#define QB_BENCH_PLANNER_H

#include <stddef.h>

#include "config/model_config.h"
#include "engine/memory_plan.h"

#define QB_PLAN_PREFILL_CHUNK QB_MEMORY_PLAN_PREFILL_CHUNK
#define QB_PLAN_OVERHEAD_BYTES QB_MEMORY_PLAN_RUNTIME_BYTES /* 1.5 GiB */
#define QB_PLAN_NCCL_BYTES QB_MEMORY_PLAN_NCCL_BYTES         /* 1 GiB, only when tp > 1 */
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
/* The memory plan behind it (every named entry). Same errors. */
int qb_plan_rank_plan(const qb_model_config *c, int tp, int context_len, int gen_len, qb_memory_plan *out);

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
