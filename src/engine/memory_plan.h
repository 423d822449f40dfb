/* memory_plan.h - the ONE memory plan of a CUDA engine rank: every piece of GPU memory a cell needs, by name and
 * byte size, computed once from the model config, this rank's shard plan, the lengths and the engine's choices.
 * Plain C (no CUDA header): the CUDA engine allocates from it (src/cuda/cuda_memory.c walks the plan and carves
 * its three regions; cuda_backend.c takes the NCCL delta's size from it; cuda_quant_tiles.c's temporary scratch
 * follows the rule of the temporary entry, checked by tests/test_memory_plan.c), and the planner
 * (src/bench/planner.c) predicts DOES_NOT_FIT from the same list, so the two cannot disagree.
 *
 * Entries, in the order the engine lays them out (each starts at a multiple of QB_MEMORY_PLAN_ALIGN within its
 * region; a run of per-layer entries repeats once per layer, layer-major):
 *   weights    embedding (all vocab_size rows, replicated: 2 bytes a value, bf16 or the checkpoint's f16),
 *              lm_head (this rank's vocabulary rows; none when tied: it aliases the embedding), final norm (fp32);
 *              per layer q|k|v, its fp32 bias, o_proj, gate|up, down_proj (bf16, or quantized: qweight bits/8 a
 *              value + sz one u32 per group and output row, engine/quant_repack.h), two RMSNorm weights (fp32).
 *   kv_cache   K then V, bf16 [layers][kv heads][max_seq_len][head_dim].
 *   workspace  one prefill chunk of min(max_prompt_len, QB_MEMORY_PLAN_PREFILL_CHUNK) rows of activations, logits,
 *              decode-attention partials, RoPE tables, token buffers, the GEMM (cuBLASLt) workspace and, for
 *              quantized prefill of more than one row, the bf16 dequantization scratch of the largest linear.
 *   nccl       tensor parallel only, beside the regions: the all-reduced delta (the NCCL context's reduction
 *              buffer), the argmax scratch (cuda_backend.c), the IPC regions of the one-shot all-reduce and of
 *              the decode's residual exchange (allreduce_ipc_setup.c, nccl_comm.c).
 *   temporary  the tiling scratch of the packed linears when neither the dequantization scratch nor the KV cache
 *              can hold the largest one (cuda_quant_tiles.c); held while the weights are in place.
 *   declared   what qwenbench does not allocate itself, as declared figures: the CUDA context, loaded kernels,
 *              cuBLAS handles and graphs (QB_MEMORY_PLAN_RUNTIME_BYTES) and NCCL's own buffers when tp > 1
 *              (QB_MEMORY_PLAN_NCCL_BYTES).
 */
#ifndef QB_ENGINE_MEMORY_PLAN_H
#define QB_ENGINE_MEMORY_PLAN_H

#include <stddef.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"

#define QB_MEMORY_PLAN_PREFILL_CHUNK 4096                  /* prompt rows per prefill pass */
#define QB_MEMORY_PLAN_ALIGN 256                           /* every tensor starts on this boundary */
#define QB_MEMORY_PLAN_DECODE_SPLIT 64                     /* smallest decode-attention split (partials' count) */
#define QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES ((size_t)32 << 20) /* the engine's cuBLASLt workspace */
#define QB_MEMORY_PLAN_RUNTIME_BYTES ((size_t)1536 << 20)  /* declared: CUDA context, kernels, cuBLAS, graphs */
#define QB_MEMORY_PLAN_NCCL_BYTES ((size_t)1024 << 20)     /* declared: NCCL's channels and buffers, tp > 1 */
#define QB_MEMORY_PLAN_IPC_ONESHOT_SLOT ((size_t)512 << 10) /* the one-shot all-reduce's largest reduction */
#define QB_MEMORY_PLAN_IPC_FLAG_BYTES ((size_t)4 * 8 * 32)  /* an IPC region's flags: u32 x ranks x blocks */
#define QB_MEMORY_PLAN_IPC_COUNTER_BYTES ((size_t)4 * (32 + 2)) /* an IPC region's counters */

typedef enum {
    /* weights */
    QB_MEM_EMBED, QB_MEM_LM_HEAD, QB_MEM_FINAL_NORM,
    QB_MEM_W_QKV, QB_MEM_Q_QKV_WEIGHT, QB_MEM_Q_QKV_SZ, QB_MEM_B_QKV,
    QB_MEM_W_O, QB_MEM_Q_O_WEIGHT, QB_MEM_Q_O_SZ,
    QB_MEM_W_GATE_UP, QB_MEM_Q_GATE_UP_WEIGHT, QB_MEM_Q_GATE_UP_SZ,
    QB_MEM_W_DOWN, QB_MEM_Q_DOWN_WEIGHT, QB_MEM_Q_DOWN_SZ,
    QB_MEM_NORM_IN, QB_MEM_NORM_POST,
    /* kv cache */
    QB_MEM_K_CACHE, QB_MEM_V_CACHE,
    /* workspace */
    QB_MEM_RESID, QB_MEM_RESID_ALT, QB_MEM_XN, QB_MEM_DELTA, QB_MEM_BIG, QB_MEM_Q, QB_MEM_ATTN, QB_MEM_ACT,
    QB_MEM_LOGITS, QB_MEM_PART_O, QB_MEM_PART_ML, QB_MEM_COS, QB_MEM_SIN, QB_MEM_STATE, QB_MEM_TOKEN,
    QB_MEM_TOKENS, QB_MEM_PROMPT, QB_MEM_GEMM_WORKSPACE, QB_MEM_WDQ,
    /* nccl */
    QB_MEM_TP_DELTA, QB_MEM_ARGMAX_LOCAL, QB_MEM_ARGMAX_KEY, QB_MEM_IPC_ONESHOT, QB_MEM_IPC_ONESHOT_COUNTERS,
    QB_MEM_IPC_EXCHANGE, QB_MEM_IPC_EXCHANGE_COUNTERS,
    /* temporary */
    QB_MEM_TILE_SCRATCH,
    /* declared */
    QB_MEM_CUDA_RUNTIME, QB_MEM_NCCL_INTERNAL,
    QB_MEM_ID_COUNT
} qb_mem_id;

typedef enum {
    QB_MEM_REGION_WEIGHTS, QB_MEM_REGION_KV, QB_MEM_REGION_WORKSPACE, /* the engine's three cudaMallocs */
    QB_MEM_REGION_NCCL, QB_MEM_REGION_TEMPORARY, QB_MEM_REGION_DECLARED,
    QB_MEM_REGION_COUNT
} qb_mem_region;

typedef struct {
    qb_mem_id id;
    const char *name;     /* "layer.q_proj|k_proj|v_proj", "kv.k_cache", ... */
    qb_mem_region region;
    int per_layer;        /* one instance per layer */
    size_t bytes;         /* of one instance */
} qb_mem_entry;

/* What the plan depends on besides the config and shard plan: the engine's lengths and choices. */
typedef struct {
    int max_seq_len;             /* KV capacity: prompt + generated positions */
    int max_prompt_len;          /* longest prefill (the workspace holds min(this, PREFILL_CHUNK) rows) */
    size_t gemm_workspace_bytes; /* the engine's: QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES */
    int quant_tiled;             /* quantized linears re-laid into tiles at load (may need a scratch) */
    int ipc_oneshot;             /* tp > 1: the one-shot IPC all-reduce's region is open */
    int tp_exchange;             /* tp > 1: the decode's residual exchange region is open */
} qb_memory_plan_input;

#define QB_MEMORY_PLAN_MAX_ENTRIES 64

typedef struct {
    qb_mem_entry entry[QB_MEMORY_PLAN_MAX_ENTRIES];
    int n_entries;
    int layers;
    int chunk_rows;                              /* prefill rows the workspace holds */
    size_t region_bytes[QB_MEM_REGION_COUNT];    /* the three engine regions: laid out with alignment */
    size_t total_bytes;                          /* sum of region_bytes */
} qb_memory_plan;

/* Prefill rows of the workspace for a longest prompt of max_prompt_len (<= 0 counts as 1). */
int qb_memory_plan_chunk_rows(int max_prompt_len);

/* Values of the rank's largest layer linear (the quantized prefill's bf16 dequantization scratch holds one). */
size_t qb_memory_plan_largest_linear(const qb_model_config *c, const qb_shard_plan *shard);

/* Build the plan of rank shard->tp_rank. -1 with one line when the lengths or the quantization are out of range. */
int qb_memory_plan_make(const qb_model_config *c, const qb_shard_plan *shard, const qb_memory_plan_input *in,
                        qb_memory_plan *out);

/* The entry of `id`, NULL when the plan has none (e.g. the lm_head of a tied model, the delta at TP1). */
const qb_mem_entry *qb_memory_plan_find(const qb_memory_plan *p, qb_mem_id id);
/* Bytes of one instance of `id` (0 when absent). */
size_t qb_memory_plan_bytes(const qb_memory_plan *p, qb_mem_id id);

/* Walk the layout of `region` in order: visit(ctx, entry, layer (-1 for once-only entries), offset in region).
 * Returns the region's bytes (the end of its last tensor). visit may be NULL. */
typedef void (*qb_memory_plan_visit)(void *ctx, const qb_mem_entry *e, int layer, size_t offset);
size_t qb_memory_plan_walk(const qb_memory_plan *p, qb_mem_region region, qb_memory_plan_visit visit, void *ctx);

const char *qb_mem_region_name(qb_mem_region r);

#endif
