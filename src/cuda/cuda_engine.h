/* cuda_engine.h - the CUDA engine's state for one rank and its internal steps (not a public interface:
 * the harness sees only engine/backend.h).
 *
 * Device memory is planned up front in three regions, each one cudaMalloc: weights (fused per layer: q|k|v
 * rows in one matrix, gate|up in another, so decode launches one GEMV for each), the KV cache
 * (layers, kv heads, max_seq, hd) bf16, and the workspace (activations for one prefill chunk, logits, decode
 * attention partials, rope tables, decode state). Activations are bf16 between kernels, the residual stream
 * fp32, every accumulation fp32.
 * Quantized models (GPTQ-Int4/Int8, AWQ) hold each layer linear in the repacked layout of
 * engine/quant_repack.h (qweight + sz, the fused matrices again by concatenated rows) in place of the bf16
 * matrix; decode reads it with the quantized GEMV, prefill dequantizes one linear at a time into `wdq` (a
 * bf16 scratch of the layer's largest linear) for the bf16 GEMM. Checkpoint embeddings / lm_head may be f16.
 */
#ifndef QB_CUDA_ENGINE_H
#define QB_CUDA_ENGINE_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "cuda/cuda_decode_plan.h"
#include "comm/cuda/nccl_comm.h"
#include "engine/backend.h"
#include "engine/engine_options.h"
#include "engine/memory_plan.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "gemm.cuh"
#include "tp_exchange.cuh"

#define QB_CUDA_PREFILL_CHUNK 4096 /* prompt rows per prefill pass (bounds the workspace) */
#define QB_CUDA_DECODE_LEVELS 6    /* decode-attention split sizes 64 .. 2048: one captured graph each */

/* Decode fusion levels (qb_choose_decode_fusion, cuda_choices.c). */
enum { QB_FUSE_NONE = 0, QB_FUSE_EPILOGUES = 1, QB_FUSE_RESIDUAL = 2 };

/* One layer linear in the repacked quantized layout (NULL pointers for bf16 models); with quant_tiled set, in the
 * tiled layout of kernels/linear/quant_tile.cuh (kind: how its rows pair into tiles). */
typedef struct {
    uint32_t *qweight; /* [N][K * bits / 32] */
    uint32_t *sz;      /* [N][K / group]: f16 scale | zero << 16 */
    int kind;          /* QB_TILE_ROPE (q|k|v), QB_TILE_SILU (gate|up), QB_TILE_ROWS (o_proj, down_proj) */
} qb_cuda_qmat;

typedef struct {
    uint16_t *w_qkv;     /* [(hq + 2 hkv) hd][H] */
    float *b_qkv;        /* [(hq + 2 hkv) hd] */
    uint16_t *w_o;       /* [H][hq hd] */
    uint16_t *w_gate_up; /* [2 I][H]: gate rows then up rows */
    uint16_t *w_down;    /* [H][I] */
    float *norm_in, *norm_post; /* [H] */
    /* quantized models only (the bf16 pointers above are then NULL): same shapes and fusions */
    qb_cuda_qmat q_qkv, q_o, q_gate_up, q_down;
} qb_cuda_layer;

typedef struct {
    cudaGraphExec_t exec; /* NULL until first needed */
    int chunk;            /* decode-attention split size */
    int len_cap;          /* longest context this level serves */
} qb_cuda_graph_level;

typedef struct {
    qb_model_config cfg;
    qb_shard_plan plan;
    int device;
    int H, I, hq, hkv, hd, n_qkv, vocab_rows, vocab_full, layers;
    int max_seq, chunk_rows;
    int quant_bits, group_size, awq; /* quant_bits 0: bf16 layer linears */
    /* what the choice functions resolved the cell's options to (cuda_choices.c) */
    qb_engine_options opt;
    int quant_tiled;                 /* the packed linears are tiled (cuda_quant_tiles.c): decode fuses always */
    int fusion;                      /* QB_FUSE_NONE | QB_FUSE_EPILOGUES | QB_FUSE_RESIDUAL */
    int attn_prefill;                /* prefill attention kernel, QB_ATTN_PREFILL_FA2 | _WG | _WGP */
    int ar_norm_one_kernel;          /* TP without the exchange: all-reduce + add + RMSNorm in one kernel */
    int pdl;                         /* programmatic dependent launch */
    int embed_f16, lm_head_f16;      /* checkpoint tables stored as f16 (GPTQ / AWQ releases) */
    float eps;
    qb_decode_plan decode_plan;      /* what a decode token runs, from the choices above (cuda_decode_plan.c) */
    int test_corrupt_argmax; /* test build only (backend.h): report (token + 1) % vocab from the second token on */
    cudaStream_t stream;

    /* memory regions and accounting: the plan (engine/memory_plan.h) they are allocated from */
    qb_memory_plan mem;
    void *region[3];
    size_t region_bytes[3]; /* weights, kv cache, workspace */
    size_t peak_bytes, device_delta, device_total;

    /* weights */
    uint16_t *embed;   /* [vocab_full][H] */
    uint16_t *lm_head; /* [vocab_rows][H] (aliases embed rows when tied) */
    float *final_norm;
    qb_cuda_layer *layer;

    /* kv cache */
    uint16_t *k_cache, *v_cache; /* [layers][hkv][max_seq][hd] */

    /* workspace */
    float *resid;                 /* [chunk][H] */
    float *resid_alt;             /* [H], tensor parallel: the exchange decode alternates the residual with resid */
    uint16_t *xn, *delta;         /* [chunk][H] */
    uint16_t *big;                /* [chunk][max(n_qkv, 2I)] */
    uint16_t *q, *attn;           /* [chunk][hq hd] */
    uint16_t *act;                /* [chunk][I] */
    uint16_t *wdq;                /* quantized prefill: one dequantized layer linear, bf16 (NULL otherwise) */
    float *logits;                /* [vocab_rows] */
    float *part_o, *part_ml;      /* decode attention partials */
    float *cos_t, *sin_t;         /* [max_seq][hd/2] */
    int *state;                   /* [0] position of the next token, [1] tokens generated */
    int32_t *token;               /* the last chosen token */
    int32_t *tokens;              /* [max_seq] generated tokens */
    int32_t *prompt;              /* [chunk] */
    void *gemm_workspace;
    size_t gemm_workspace_bytes;
    qb_gemm *gemm;

    qb_cuda_graph_level levels[QB_CUDA_DECODE_LEVELS];
    qb_dist *dist;                /* the rank's distributed context (TP group) */
    struct qb_nccl *nc;           /* tensor parallel (tp_size > 1): all-reduce over the TP group; NULL at TP1 */
    qb_tp_exchange xchg;          /* TP decode's residual exchange (kernels/comm/tp_exchange.cuh) when xchg_on */
    int xchg_on;
    int32_t *local_best;          /* TP: this shard's argmax (index into its vocabulary rows) */
    uint64_t *argmax_key;         /* TP: packed (logit, global index), max-reduced over the group */
    float *logits_host;           /* TP: this shard's logits on the host, for the full-vocabulary gather */
    cudaEvent_t *events;
    int n_events;
} qb_cuda_engine;

/* cuda_memory.c: the engine's sizes from the config and this rank's shard plan (no CUDA call); make the memory
 * plan (e->mem, after the choices and the NCCL context), allocate its three regions and lay them out. */
void qb_cuda_engine_shapes(qb_cuda_engine *e, const qb_model_config *c, const qb_shard_plan *plan, int max_seq_len,
                           int max_prompt_len);
int qb_cuda_memory_plan(qb_cuda_engine *e);
/* Elements of the layer's largest linear (the quantized prefill's bf16 dequantization scratch holds one). */
size_t qb_cuda_largest_linear(const qb_cuda_engine *e);
void qb_cuda_memory_free(qb_cuda_engine *e);

/* cuda_weights.c: random weights made on the device, or a host qb_weights uploaded. */
int qb_cuda_weights_random(qb_cuda_engine *e, uint64_t seed);
int qb_cuda_weights_upload(qb_cuda_engine *e, const qb_weights *w);

/* cuda_quant_tiles.c: the load-time re-layout of every packed linear into tiles (when e->quant_tiled). */
int qb_cuda_quant_tile_weights(qb_cuda_engine *e);

/* cuda_choices.c: the named choice functions, one per operation (the rule and the measurement it rests on are at
 * each), and the whole resolution at engine creation (after the shapes; tp = tensor-parallel size, cc_major = the
 * GPU's compute capability). -1 when a forced option cannot run for this cell. */
int qb_cuda_quant_fusable(const qb_cuda_engine *e); /* the fused quantized GEMVs take every layer linear */
int qb_choose_quant_tiled(const qb_cuda_engine *e, const qb_engine_options *o);
int qb_choose_decode_fusion(const qb_cuda_engine *e, int tp, const qb_engine_options *o);
qb_allreduce_impl qb_choose_allreduce(const qb_engine_options *o);
int qb_choose_tp_exchange(const qb_cuda_engine *e, int tp, const qb_engine_options *o);
int qb_choose_allreduce_norm_one_kernel(int dim, const qb_engine_options *o);
int qb_choose_attn_prefill(int head_dim, int cc_major, const qb_engine_options *o, int *variant);
int qb_choose_pdl(const qb_engine_options *o);
int qb_choose_decode_store_fused(int n); /* bf16 decode store of n rows: 1 fused split-K kernel, 0 qb_launch_gemv */
int qb_cuda_choices_resolve(qb_cuda_engine *e, int tp, int cc_major, const qb_engine_options *o);
/* After the NCCL context and the exchange are open: a forced tensor-parallel option this job cannot honour
 * (impl: the all-reduce the context runs) is an error naming it. */
int qb_cuda_choices_check_tp(const qb_cuda_engine *e, int tp, qb_allreduce_impl impl);
/* "qkv=...;o=...;...": what runs for a cell of context_len input tokens (the cell's engine_choices; needs the decode
 * plan built). */
void qb_cuda_choices_describe(const qb_cuda_engine *e, int context_len, char *out, size_t cap);

/* cuda_decode_plan.c: the decode plan from the resolved choices (call once the engine's choices, TP context,
 * exchange and weights are settled: after qb_cuda_quant_tile_weights), and in words: one line per step
 * (qwenbench --explain). */
void qb_cuda_decode_plan_build(qb_cuda_engine *e);
void qb_cuda_decode_plan_describe(const qb_cuda_engine *e, int context_len, char *out, size_t cap);

/* kernels/pdl.cu: the process's programmatic-dependent-launch switch, set from e->pdl before the engine launches. */
void qb_pdl_set_enabled(int on);

/* cuda_forward.c: the forward passes (launches only, on e->stream), carrying out e->decode_plan (built first). */
int qb_cuda_prefill(qb_cuda_engine *e, const int32_t *prompt, int n_prompt);
int qb_cuda_decode_step(qb_cuda_engine *e, int chunk, int len_cap);
/* cuda_choices.c: the decode-attention split size for a context (a named rule like the other choices). */
int qb_cuda_decode_chunk_for(const qb_cuda_engine *e, int context_len);

#endif
