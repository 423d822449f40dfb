/* cuda_memory.c - the engine's device memory, planned before anything is allocated.
 *
 * Every tensor is a 256-byte-aligned slice of one of three regions (weights, KV cache, workspace). The layout
 * function runs twice: first with no base address to measure each region, then over the allocations to set
 * the pointers. A plan larger than the free memory is refused before anything is allocated, with a message that
 * starts "does not fit" (the harness records such a cell as DOES_NOT_FIT). The engine's own accounting (the analogue of torch.cuda.max_memory_allocated) is the sum of
 * the regions: nothing is allocated later. cudaMemGetInfo before and after gives the device's own view.
 * Quantized models take the repacked layer linears (qweight + sz) in place of the bf16 matrices, and, when a
 * prefill chunk has more than one row, the bf16 scratch `wdq` of the layer's largest linear at the end of the
 * workspace; the bf16 layout is unchanged. src/bench/planner.c mirrors these sizes.
 */
#include <stdlib.h>
#include <string.h>

#include "attention_decode.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "quant_tile.cuh"

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
    int chunk = max_prompt_len > 0 ? max_prompt_len : 1;
    e->chunk_rows = chunk < QB_CUDA_PREFILL_CHUNK ? chunk : QB_CUDA_PREFILL_CHUNK;
    e->quant_bits = c->quant != QB_QUANT_BF16 ? c->quant_bits : 0;
    e->group_size = c->group_size;
    e->awq = c->quant == QB_QUANT_AWQ;
    e->eps = (float)c->rms_norm_eps;
}

typedef struct {
    char *base;
    size_t used;
} qb_arena;

static void *qb_take(qb_arena *a, size_t bytes) {
    size_t off = (a->used + 255) & ~(size_t)255;
    a->used = off + bytes;
    return a->base ? a->base + off : NULL;
}

#define QB_BF16_BYTES 2

/* A repacked quantized [n][k] matrix: qweight k * bits / 32 words per row, sz one word per group and row. */
static void qb_take_qmat(qb_cuda_engine *e, qb_arena *a, size_t n, size_t k, int kind, qb_cuda_qmat *m) {
    m->qweight = qb_take(a, n * (k * (size_t)e->quant_bits / 32) * sizeof(uint32_t));
    m->sz = qb_take(a, n * (k / (size_t)e->group_size) * sizeof(uint32_t));
    m->kind = kind;
}

static void qb_layout_layer_quant(qb_cuda_engine *e, qb_arena *a, qb_cuda_layer *L) {
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd;
    qb_take_qmat(e, a, (size_t)e->n_qkv, H, QB_TILE_ROPE, &L->q_qkv);
    L->b_qkv = qb_take(a, (size_t)e->n_qkv * sizeof(float));
    qb_take_qmat(e, a, H, nq, QB_TILE_ROWS, &L->q_o);
    qb_take_qmat(e, a, 2 * I, H, QB_TILE_SILU, &L->q_gate_up);
    qb_take_qmat(e, a, H, I, QB_TILE_ROWS, &L->q_down);
    L->norm_in = qb_take(a, H * sizeof(float));
    L->norm_post = qb_take(a, H * sizeof(float));
}

/* Elements of the layer's largest linear (the quantized prefill's dequantization scratch). */
size_t qb_cuda_largest_linear(const qb_cuda_engine *e) {
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd;
    size_t sizes[4] = {(size_t)e->n_qkv * H, H * nq, 2 * I * H, H * I}, best = 0;
    for (int i = 0; i < 4; i++) best = sizes[i] > best ? sizes[i] : best;
    return best;
}

static void qb_layout_weights(qb_cuda_engine *e, qb_arena *a) {
    size_t H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd;
    e->embed = qb_take(a, (size_t)e->vocab_full * H * QB_BF16_BYTES);
    if (e->cfg.tie_word_embeddings)
        e->lm_head = e->embed ? e->embed + (size_t)e->plan.vocab_start * H : NULL;
    else
        e->lm_head = qb_take(a, (size_t)e->vocab_rows * H * QB_BF16_BYTES);
    e->final_norm = qb_take(a, H * sizeof(float));
    for (int l = 0; l < e->layers; l++) {
        qb_cuda_layer *L = &e->layer[l];
        if (e->quant_bits) {
            qb_layout_layer_quant(e, a, L);
            continue;
        }
        L->w_qkv = qb_take(a, (size_t)e->n_qkv * H * QB_BF16_BYTES);
        L->b_qkv = qb_take(a, (size_t)e->n_qkv * sizeof(float));
        L->w_o = qb_take(a, H * nq * QB_BF16_BYTES);
        L->w_gate_up = qb_take(a, 2 * I * H * QB_BF16_BYTES);
        L->w_down = qb_take(a, H * I * QB_BF16_BYTES);
        L->norm_in = qb_take(a, H * sizeof(float));
        L->norm_post = qb_take(a, H * sizeof(float));
    }
}

static void qb_layout_kv(qb_cuda_engine *e, qb_arena *a) {
    size_t per = (size_t)e->layers * e->hkv * e->max_seq * e->hd * QB_BF16_BYTES;
    e->k_cache = qb_take(a, per);
    e->v_cache = qb_take(a, per);
}

static void qb_layout_workspace(qb_cuda_engine *e, qb_arena *a) {
    size_t C = (size_t)e->chunk_rows, H = (size_t)e->H, I = (size_t)e->I, nq = (size_t)e->hq * e->hd;
    size_t big = (size_t)e->n_qkv > 2 * I ? (size_t)e->n_qkv : 2 * I;
    e->resid = qb_take(a, C * H * sizeof(float));
    e->resid_alt = e->nc ? qb_take(a, H * sizeof(float)) : NULL;
    e->xn = qb_take(a, C * H * QB_BF16_BYTES);
    /* tensor parallel: delta comes from the NCCL context (qb_cuda_setup), so that the implementation chosen
     * owns it (the symmetric path needs an NCCL-registered window) */
    if (!e->nc) e->delta = qb_take(a, C * H * QB_BF16_BYTES);
    e->big = qb_take(a, C * big * QB_BF16_BYTES);
    e->q = qb_take(a, C * nq * QB_BF16_BYTES);
    e->attn = qb_take(a, C * nq * QB_BF16_BYTES);
    e->act = qb_take(a, C * I * QB_BF16_BYTES);
    e->logits = qb_take(a, (size_t)e->vocab_rows * sizeof(float));
    e->part_o = qb_take(a, qb_attention_decode_workspace_floats(e->hq, e->hd, e->max_seq) * sizeof(float));
    e->part_ml = qb_take(a, (size_t)e->hq * ((e->max_seq + 63) / 64) * 2 * sizeof(float));
    e->cos_t = qb_take(a, (size_t)e->max_seq * (e->hd / 2) * sizeof(float));
    e->sin_t = qb_take(a, (size_t)e->max_seq * (e->hd / 2) * sizeof(float));
    e->state = qb_take(a, 4 * sizeof(int));
    e->token = qb_take(a, sizeof(int32_t));
    e->tokens = qb_take(a, (size_t)e->max_seq * sizeof(int32_t));
    e->prompt = qb_take(a, C * sizeof(int32_t));
    e->gemm_workspace = qb_take(a, e->gemm_workspace_bytes);
    e->wdq = e->quant_bits && e->chunk_rows > 1 ? qb_take(a, qb_cuda_largest_linear(e) * QB_BF16_BYTES) : NULL;
}

static void qb_layout(qb_cuda_engine *e, int region, char *base, size_t *bytes) {
    qb_arena a = {base, 0};
    if (region == 0) qb_layout_weights(e, &a);
    else if (region == 1) qb_layout_kv(e, &a);
    else qb_layout_workspace(e, &a);
    *bytes = a.used;
}

int qb_cuda_memory_plan(qb_cuda_engine *e) {
    static const char *names[3] = {"weights", "KV cache", "workspace"};
    size_t free0 = 0, total = 0;
    QB_CUDA_TRY(cudaMemGetInfo(&free0, &total));
    e->device_total = total;
    size_t need = 0;
    for (int r = 0; r < 3; r++) {
        qb_layout(e, r, NULL, &e->region_bytes[r]);
        need += e->region_bytes[r];
    }
    if (need > free0)
        return qb_errorf("does not fit: the CUDA engine's plan needs %.2f GiB (weights %.2f, KV cache %.2f, workspace %.2f) but the "
                         "device has %.2f GiB free",
                         need / 1073741824.0, e->region_bytes[0] / 1073741824.0, e->region_bytes[1] / 1073741824.0,
                         e->region_bytes[2] / 1073741824.0, free0 / 1073741824.0);
    for (int r = 0; r < 3; r++) {
        cudaError_t err = cudaMalloc(&e->region[r], e->region_bytes[r]);
        if (err != cudaSuccess)
            return qb_errorf("does not fit: cudaMalloc of the CUDA engine's %s region (%.2f GiB) failed: %s", names[r],
                             e->region_bytes[r] / 1073741824.0, cudaGetErrorString(err));
        size_t check = 0;
        qb_layout(e, r, e->region[r], &check);
    }
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
