/* cuda_memory.c - the engine's device memory, allocated from the one memory plan (engine/memory_plan.h).
 *
 * qb_memory_plan_make lists every tensor with its byte size; the engine cudaMallocs the plan's three regions
 * (weights, KV cache, workspace) and walks each one to point its tensors at their 256-byte-aligned offsets. The
 * planner (src/bench/planner.c) predicts memory from the same plan, so the two agree by construction. A plan larger
 * than the free memory is refused before anything is allocated, with a message that starts "does not fit" (the
 * harness records such a cell as DOES_NOT_FIT). The engine's own accounting (the analogue of
 * torch.cuda.max_memory_allocated) is the sum of the regions, plus what cuda_backend.c / cuda_quant_tiles.c add
 * (the plan's TP delta and temporary tiling scratch). cudaMemGetInfo before and after gives the device's own view.
 * Quantized models take the repacked layer linears (qweight + sz) in place of the bf16 matrices, and, when a
 * prefill chunk has more than one row, the bf16 scratch `wdq` of the layer's largest linear at the end of the
 * workspace; the bf16 layout is unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "attention_decode.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "engine/memory_plan.h"
#include "quant_tile.cuh"

_Static_assert(QB_CUDA_PREFILL_CHUNK == QB_MEMORY_PLAN_PREFILL_CHUNK, "the plan's prefill chunk is the engine's");

void qb_cuda_engine_shapes(qb_cuda_engine *e, const qb_model_config *c, const qb_shard_plan *plan, int max_seq_len,
                           int max_prompt_len) {
    e->cfg = *c;
    e->plan = *plan;
    e->H = c->hidden_size;
    e->I = plan->inter_size;
    e->hq = plan->q_heads;
    e->hkv = plan->kv_heads;
    e->hd = c->head_dim;
    e->n_qkv = (e->hq + 2 * e->hkv) * e->hd;
    e->vocab_full = c->vocab_size;
    e->vocab_rows = plan->vocab_size;
    e->layers = c->num_layers;
    e->max_seq = max_seq_len;
    e->chunk_rows = qb_memory_plan_chunk_rows(max_prompt_len);
    e->quant_bits = c->quant != QB_QUANT_BF16 ? c->quant_bits : 0;
    e->group_size = c->group_size;
    e->awq = c->quant == QB_QUANT_AWQ;
    e->eps = (float)c->rms_norm_eps;
}

/* Elements of the layer's largest linear (the quantized prefill's dequantization scratch). */
size_t qb_cuda_largest_linear(const qb_cuda_engine *e) { return qb_memory_plan_largest_linear(&e->cfg, &e->plan); }

/* The plan's inputs from the engine's shapes and resolved choices (the NCCL context is open before the plan). */
static void qb_cuda_plan_input(const qb_cuda_engine *e, qb_memory_plan_input *in) {
    memset(in, 0, sizeof *in);
    in->max_seq_len = e->max_seq;
    in->max_prompt_len = e->chunk_rows; /* already min(max prompt, chunk): the plan computes the same rows */
    in->gemm_workspace_bytes = e->gemm_workspace_bytes;
    in->quant_tiled = e->quant_tiled;
    in->ipc_oneshot = e->nc && qb_nccl_impl(e->nc) == QB_AR_IPC_ONESHOT;
    in->tp_exchange = e->xchg_on;
}

static void qb_set_qmat_part(qb_cuda_qmat *m, int kind, int sz_part, void *p) {
    if (sz_part) m->sz = p;
    else m->qweight = p;
    m->kind = kind;
}

/* One tensor of the plan at its place in the region (base + offset): the engine's pointer for it. */
static void qb_place(void *ctx, const qb_mem_entry *t, int layer, size_t offset) {
    qb_cuda_engine *e = ctx;
    char *base = e->region[t->region];
    void *p = base + offset;
    qb_cuda_layer *L = layer >= 0 ? &e->layer[layer] : NULL;
    switch (t->id) {
    case QB_MEM_EMBED: e->embed = p; break;
    case QB_MEM_LM_HEAD: e->lm_head = p; break;
    case QB_MEM_FINAL_NORM: e->final_norm = p; break;
    case QB_MEM_W_QKV: L->w_qkv = p; break;
    case QB_MEM_Q_QKV_WEIGHT: qb_set_qmat_part(&L->q_qkv, QB_TILE_ROPE, 0, p); break;
    case QB_MEM_Q_QKV_SZ: qb_set_qmat_part(&L->q_qkv, QB_TILE_ROPE, 1, p); break;
    case QB_MEM_B_QKV: L->b_qkv = p; break;
    case QB_MEM_W_O: L->w_o = p; break;
    case QB_MEM_Q_O_WEIGHT: qb_set_qmat_part(&L->q_o, QB_TILE_ROWS, 0, p); break;
    case QB_MEM_Q_O_SZ: qb_set_qmat_part(&L->q_o, QB_TILE_ROWS, 1, p); break;
    case QB_MEM_W_GATE_UP: L->w_gate_up = p; break;
    case QB_MEM_Q_GATE_UP_WEIGHT: qb_set_qmat_part(&L->q_gate_up, QB_TILE_SILU, 0, p); break;
    case QB_MEM_Q_GATE_UP_SZ: qb_set_qmat_part(&L->q_gate_up, QB_TILE_SILU, 1, p); break;
    case QB_MEM_W_DOWN: L->w_down = p; break;
    case QB_MEM_Q_DOWN_WEIGHT: qb_set_qmat_part(&L->q_down, QB_TILE_ROWS, 0, p); break;
    case QB_MEM_Q_DOWN_SZ: qb_set_qmat_part(&L->q_down, QB_TILE_ROWS, 1, p); break;
    case QB_MEM_NORM_IN: L->norm_in = p; break;
    case QB_MEM_NORM_POST: L->norm_post = p; break;
    case QB_MEM_K_CACHE: e->k_cache = p; break;
    case QB_MEM_V_CACHE: e->v_cache = p; break;
    case QB_MEM_RESID: e->resid = p; break;
    case QB_MEM_RESID_ALT: e->resid_alt = p; break;
    case QB_MEM_XN: e->xn = p; break;
    case QB_MEM_DELTA: e->delta = p; break;
    case QB_MEM_BIG: e->big = p; break;
    case QB_MEM_Q: e->q = p; break;
    case QB_MEM_ATTN: e->attn = p; break;
    case QB_MEM_ACT: e->act = p; break;
    case QB_MEM_LOGITS: e->logits = p; break;
    case QB_MEM_PART_O: e->part_o = p; break;
    case QB_MEM_PART_ML: e->part_ml = p; break;
    case QB_MEM_COS: e->cos_t = p; break;
    case QB_MEM_SIN: e->sin_t = p; break;
    case QB_MEM_STATE: e->state = p; break;
    case QB_MEM_TOKEN: e->token = p; break;
    case QB_MEM_TOKENS: e->tokens = p; break;
    case QB_MEM_PROMPT: e->prompt = p; break;
    case QB_MEM_GEMM_WORKSPACE: e->gemm_workspace = p; break;
    case QB_MEM_WDQ: e->wdq = p; break;
    default: break; /* not in the engine's regions */
    }
}

int qb_cuda_memory_plan(qb_cuda_engine *e) {
    static const char *names[3] = {"weights", "KV cache", "workspace"};
    qb_memory_plan_input in;
    qb_cuda_plan_input(e, &in);
    QB_TRY(qb_memory_plan_make(&e->cfg, &e->plan, &in, &e->mem));
    /* the decode-attention partials: the plan's count must be the kernel's (kernels/attention/attention_decode.cu) */
    size_t part_o = qb_attention_decode_workspace_floats(e->hq, e->hd, e->max_seq) * sizeof(float);
    if (qb_memory_plan_bytes(&e->mem, QB_MEM_PART_O) != part_o)
        return qb_errorf("cuda: the memory plan's decode-attention partials (%zu bytes) differ from the kernel's "
                         "workspace (%zu bytes)", qb_memory_plan_bytes(&e->mem, QB_MEM_PART_O), part_o);
    size_t free0 = 0, total = 0;
    QB_CUDA_TRY(cudaMemGetInfo(&free0, &total));
    e->device_total = total;
    size_t need = 0;
    for (int r = 0; r < 3; r++) {
        e->region_bytes[r] = e->mem.region_bytes[r];
        need += e->region_bytes[r];
    }
    /* allocated after the regions: the TP delta (cuda_backend.c) and the tiling scratch (cuda_quant_tiles.c) */
    size_t later = qb_memory_plan_bytes(&e->mem, QB_MEM_TP_DELTA) + qb_memory_plan_bytes(&e->mem, QB_MEM_TILE_SCRATCH);
    if (need + later > free0)
        return qb_errorf("does not fit: the CUDA engine's plan needs %.2f GiB (weights %.2f, KV cache %.2f, "
                         "workspace %.2f, TP delta and tiling scratch %.2f) but the device has %.2f GiB free",
                         (need + later) / 1073741824.0, e->region_bytes[0] / 1073741824.0,
                         e->region_bytes[1] / 1073741824.0, e->region_bytes[2] / 1073741824.0,
                         later / 1073741824.0, free0 / 1073741824.0);
    for (int r = 0; r < 3; r++) {
        cudaError_t err = cudaMalloc(&e->region[r], e->region_bytes[r]);
        if (err != cudaSuccess)
            return qb_errorf("does not fit: cudaMalloc of the CUDA engine's %s region (%.2f GiB) failed: %s", names[r],
                             e->region_bytes[r] / 1073741824.0, cudaGetErrorString(err));
        qb_memory_plan_walk(&e->mem, (qb_mem_region)r, qb_place, e);
    }
    if (e->cfg.tie_word_embeddings) e->lm_head = e->embed + (size_t)e->plan.vocab_start * e->H;
    /* the KV cache starts as zeros: the prefill kernel zero-fills what it reads past the context anyway,
     * but no uninitialised bits should ever reach an FMA */
    QB_CUDA_TRY(cudaMemsetAsync(e->region[1], 0, e->region_bytes[1], e->stream));
    e->peak_bytes = need;
    size_t free1 = 0;
    QB_CUDA_TRY(cudaMemGetInfo(&free1, &total));
    e->device_delta = free0 > free1 ? free0 - free1 : 0;
    return 0;
}

void qb_cuda_memory_free(qb_cuda_engine *e) {
    for (int r = 0; r < 3; r++) {
        if (e->region[r]) cudaFree(e->region[r]);
        e->region[r] = NULL;
    }
}
