/* memory_plan.c - the one list of a CUDA engine rank's GPU memory (see memory_plan.h for every entry and who reads
 * the plan). Pure arithmetic on the config, the shard plan and the engine's lengths and choices.
 */
#include "engine/memory_plan.h"

#include <string.h>

#include "model/weight_format.h"
#include "util/error.h"

#define BF16_BYTES 2
#define F32_BYTES 4
#define MAX_POSITIONS (1 << 24)

static size_t align_up(size_t bytes) {
    return (bytes + QB_MEMORY_PLAN_ALIGN - 1) & ~(size_t)(QB_MEMORY_PLAN_ALIGN - 1);
}

int qb_memory_plan_chunk_rows(int max_prompt_len) {
    int rows = max_prompt_len > 0 ? max_prompt_len : 1;
    return rows < QB_MEMORY_PLAN_PREFILL_CHUNK ? rows : QB_MEMORY_PLAN_PREFILL_CHUNK;
}

static void add(qb_memory_plan *p, qb_mem_id id, const char *name, qb_mem_region region, int per_layer,
                size_t bytes) {
    if (p->n_entries >= QB_MEMORY_PLAN_MAX_ENTRIES) return; /* cannot happen: fewer ids than entries */
    p->entry[p->n_entries++] = (qb_mem_entry){id, name, region, per_layer, bytes};
}

typedef struct {
    int bits, group;
} quant_shape;

/* A repacked quantized [n][k] linear (engine/quant_repack.h): k * bits / 32 words a row, one sz word per group. */
static size_t qweight_bytes(quant_shape q, size_t n, size_t k) { return qb_engine_qweight_bytes(q.bits, n, k); }
static size_t sz_bytes(quant_shape q, size_t n, size_t k) { return qb_engine_sz_bytes(n, k, (size_t)q.group); }

static void add_linear(qb_memory_plan *p, quant_shape q, size_t n, size_t k, qb_mem_id bf16_id, const char *bf16_name,
                       const char *q_weight_name, const char *q_sz_name) {
    if (!q.bits) {
        add(p, bf16_id, bf16_name, QB_MEM_REGION_WEIGHTS, 1, n * k * BF16_BYTES);
        return;
    }
    /* the ids of a linear's quantized pair follow its bf16 id (memory_plan.h) */
    add(p, (qb_mem_id)(bf16_id + 1), q_weight_name, QB_MEM_REGION_WEIGHTS, 1, qweight_bytes(q, n, k));
    add(p, (qb_mem_id)(bf16_id + 2), q_sz_name, QB_MEM_REGION_WEIGHTS, 1, sz_bytes(q, n, k));
}

static void add_weights(qb_memory_plan *p, const qb_model_config *c, const qb_shard_plan *s, quant_shape q) {
    size_t H = (size_t)c->hidden_size, I = (size_t)s->inter_size, nq = (size_t)s->q_heads * c->head_dim;
    size_t n_qkv = nq + 2 * (size_t)s->kv_heads * c->head_dim;
    add(p, QB_MEM_EMBED, "embed_tokens (replicated)", QB_MEM_REGION_WEIGHTS, 0, (size_t)c->vocab_size * H * BF16_BYTES);
    if (!c->tie_word_embeddings)
        add(p, QB_MEM_LM_HEAD, "lm_head (rank's vocabulary rows)", QB_MEM_REGION_WEIGHTS, 0,
            (size_t)s->vocab_size * H * BF16_BYTES);
    add(p, QB_MEM_FINAL_NORM, "final norm", QB_MEM_REGION_WEIGHTS, 0, H * F32_BYTES);
    add_linear(p, q, n_qkv, H, QB_MEM_W_QKV, "layer q|k|v", "layer q|k|v qweight", "layer q|k|v scale|zero");
    add(p, QB_MEM_B_QKV, "layer q|k|v bias", QB_MEM_REGION_WEIGHTS, 1, n_qkv * F32_BYTES);
    add_linear(p, q, H, nq, QB_MEM_W_O, "layer o_proj", "layer o_proj qweight", "layer o_proj scale|zero");
    add_linear(p, q, 2 * I, H, QB_MEM_W_GATE_UP, "layer gate|up", "layer gate|up qweight", "layer gate|up scale|zero");
    add_linear(p, q, H, I, QB_MEM_W_DOWN, "layer down_proj", "layer down_proj qweight", "layer down_proj scale|zero");
    add(p, QB_MEM_NORM_IN, "layer input norm", QB_MEM_REGION_WEIGHTS, 1, H * F32_BYTES);
    add(p, QB_MEM_NORM_POST, "layer post-attention norm", QB_MEM_REGION_WEIGHTS, 1, H * F32_BYTES);
}

size_t qb_memory_plan_largest_linear(const qb_model_config *c, const qb_shard_plan *s) {
    size_t H = (size_t)c->hidden_size, I = (size_t)s->inter_size, nq = (size_t)s->q_heads * c->head_dim;
    size_t n_qkv = nq + 2 * (size_t)s->kv_heads * c->head_dim;
    size_t sizes[4] = {n_qkv * H, H * nq, 2 * I * H, H * I}, best = 0;
    for (int i = 0; i < 4; i++) best = sizes[i] > best ? sizes[i] : best;
    return best;
}

static void add_workspace(qb_memory_plan *p, const qb_model_config *c, const qb_shard_plan *s,
                          const qb_memory_plan_input *in, quant_shape q) {
    size_t C = (size_t)p->chunk_rows, H = (size_t)c->hidden_size, I = (size_t)s->inter_size;
    size_t hd = (size_t)c->head_dim, nq = (size_t)s->q_heads * hd, n_qkv = nq + 2 * (size_t)s->kv_heads * hd;
    size_t big = n_qkv > 2 * I ? n_qkv : 2 * I, seq = (size_t)in->max_seq_len;
    size_t splits = (seq + QB_MEMORY_PLAN_DECODE_SPLIT - 1) / QB_MEMORY_PLAN_DECODE_SPLIT;
    int tp = s->tp_size > 1;
    const qb_mem_region W = QB_MEM_REGION_WORKSPACE;
    add(p, QB_MEM_RESID, "residual (fp32, chunk rows)", W, 0, C * H * F32_BYTES);
    if (tp) add(p, QB_MEM_RESID_ALT, "alternate decode residual (fp32)", W, 0, H * F32_BYTES);
    add(p, QB_MEM_XN, "normed input (chunk rows)", W, 0, C * H * BF16_BYTES);
    if (!tp) add(p, QB_MEM_DELTA, "o_proj/down_proj output (chunk rows)", W, 0, C * H * BF16_BYTES);
    add(p, QB_MEM_BIG, "q|k|v or gate|up output (chunk rows)", W, 0, C * big * BF16_BYTES);
    add(p, QB_MEM_Q, "rotated q (chunk rows)", W, 0, C * nq * BF16_BYTES);
    add(p, QB_MEM_ATTN, "attention output (chunk rows)", W, 0, C * nq * BF16_BYTES);
    add(p, QB_MEM_ACT, "SiLU activation (chunk rows)", W, 0, C * I * BF16_BYTES);
    add(p, QB_MEM_LOGITS, "logits (fp32, rank's vocabulary rows)", W, 0, (size_t)s->vocab_size * F32_BYTES);
    add(p, QB_MEM_PART_O, "decode-attention partial outputs", W, 0, (size_t)s->q_heads * splits * hd * F32_BYTES);
    add(p, QB_MEM_PART_ML, "decode-attention partial max|sum", W, 0, (size_t)s->q_heads * splits * 2 * F32_BYTES);
    add(p, QB_MEM_COS, "RoPE cos table", W, 0, seq * (hd / 2) * F32_BYTES);
    add(p, QB_MEM_SIN, "RoPE sin table", W, 0, seq * (hd / 2) * F32_BYTES);
    add(p, QB_MEM_STATE, "decode state", W, 0, 4 * sizeof(int));
    add(p, QB_MEM_TOKEN, "last token", W, 0, sizeof(int));
    add(p, QB_MEM_TOKENS, "generated tokens", W, 0, seq * sizeof(int));
    add(p, QB_MEM_PROMPT, "prompt chunk ids", W, 0, C * sizeof(int));
    add(p, QB_MEM_GEMM_WORKSPACE, "GEMM (cuBLASLt) workspace", W, 0, in->gemm_workspace_bytes);
    if (q.bits && C > 1)
        add(p, QB_MEM_WDQ, "prefill dequantized linear (bf16)", W, 0,
            qb_memory_plan_largest_linear(c, s) * BF16_BYTES);
}

static void add_nccl(qb_memory_plan *p, const qb_model_config *c, const qb_shard_plan *s,
                     const qb_memory_plan_input *in) {
    if (s->tp_size <= 1) return;
    const qb_mem_region N = QB_MEM_REGION_NCCL;
    size_t ranks = (size_t)s->tp_size;
    add(p, QB_MEM_TP_DELTA, "o_proj/down_proj output, all-reduced (chunk rows)", N, 0,
        (size_t)p->chunk_rows * (size_t)c->hidden_size * BF16_BYTES);
    add(p, QB_MEM_ARGMAX_LOCAL, "argmax: shard's best", N, 0, sizeof(int));
    add(p, QB_MEM_ARGMAX_KEY, "argmax: reduced key", N, 0, 8);
    if (in->ipc_oneshot) { /* allreduce_ipc_setup.c: two halves of ranks slots, then the flags */
        add(p, QB_MEM_IPC_ONESHOT, "one-shot all-reduce IPC region", N, 0,
            2 * ranks * align_up(QB_MEMORY_PLAN_IPC_ONESHOT_SLOT) + QB_MEMORY_PLAN_IPC_FLAG_BYTES);
        add(p, QB_MEM_IPC_ONESHOT_COUNTERS, "one-shot all-reduce counters", N, 0, QB_MEMORY_PLAN_IPC_COUNTER_BYTES);
    }
    if (in->ipc_oneshot && in->tp_exchange) { /* nccl_comm.c: 2 x layers points, each ranks x an aligned row */
        size_t half_points = (size_t)(2 * c->num_layers + 1) / 2;
        size_t slot = align_up(half_points * align_up((size_t)c->hidden_size * F32_BYTES));
        add(p, QB_MEM_IPC_EXCHANGE, "decode residual exchange IPC region", N, 0,
            2 * ranks * slot + QB_MEMORY_PLAN_IPC_FLAG_BYTES);
        add(p, QB_MEM_IPC_EXCHANGE_COUNTERS, "decode residual exchange counters", N, 0,
            QB_MEMORY_PLAN_IPC_COUNTER_BYTES);
    }
}

/* cuda_quant_tiles.c: each packed linear is copied to a scratch (qweight, then sz at the next aligned offset) and
 * permuted back; the scratch is the dequantization scratch when it holds the largest, else the KV cache when it
 * does, else a temporary allocation. */
static void add_tile_scratch(qb_memory_plan *p, const qb_model_config *c, const qb_shard_plan *s, quant_shape q) {
    size_t H = (size_t)c->hidden_size, I = (size_t)s->inter_size, nq = (size_t)s->q_heads * c->head_dim;
    size_t n_qkv = nq + 2 * (size_t)s->kv_heads * c->head_dim;
    size_t n[4] = {n_qkv, H, 2 * I, H}, k[4] = {H, nq, H, I}, need = 0;
    for (int i = 0; i < 4; i++) {
        size_t bytes = align_up(n[i] * k[i] * (size_t)q.bits / 8) + sz_bytes(q, n[i], k[i]);
        need = bytes > need ? bytes : need;
    }
    int wdq_holds = qb_memory_plan_bytes(p, QB_MEM_WDQ) >= need;
    int kv_holds = p->region_bytes[QB_MEM_REGION_KV] >= need;
    if (!wdq_holds && !kv_holds)
        add(p, QB_MEM_TILE_SCRATCH, "tiling scratch (while loading)", QB_MEM_REGION_TEMPORARY, 0, need);
}

int qb_memory_plan_make(const qb_model_config *c, const qb_shard_plan *shard, const qb_memory_plan_input *in,
                        qb_memory_plan *out) {
    memset(out, 0, sizeof *out);
    if (in->max_seq_len < 1 || in->max_seq_len > MAX_POSITIONS)
        return qb_errorf("memory plan: %d positions: expected 1 .. %d", in->max_seq_len, MAX_POSITIONS);
    quant_shape q = {0, 0};
    if (c->quant != QB_QUANT_BF16 && c->quant_bits > 0) {
        if (c->group_size <= 0)
            return qb_errorf("memory plan: %s group_size %d must be positive", qb_quant_name(c->quant), c->group_size);
        q = (quant_shape){c->quant_bits, c->group_size};
    }
    out->layers = c->num_layers;
    out->chunk_rows = qb_memory_plan_chunk_rows(in->max_prompt_len);
    add_weights(out, c, shard, q);
    size_t kv = (size_t)c->num_layers * shard->kv_heads * (size_t)in->max_seq_len * c->head_dim * BF16_BYTES;
    add(out, QB_MEM_K_CACHE, "K cache", QB_MEM_REGION_KV, 0, kv);
    add(out, QB_MEM_V_CACHE, "V cache", QB_MEM_REGION_KV, 0, kv);
    add_workspace(out, c, shard, in, q);
    add_nccl(out, c, shard, in);
    out->region_bytes[QB_MEM_REGION_KV] = qb_memory_plan_walk(out, QB_MEM_REGION_KV, NULL, NULL);
    if (q.bits && in->quant_tiled) add_tile_scratch(out, c, shard, q);
    add(out, QB_MEM_CUDA_RUNTIME, "CUDA context, kernels, cuBLAS handles, graphs (declared)", QB_MEM_REGION_DECLARED,
        0, QB_MEMORY_PLAN_RUNTIME_BYTES);
    if (shard->tp_size > 1)
        add(out, QB_MEM_NCCL_INTERNAL, "NCCL channels and buffers (declared)", QB_MEM_REGION_DECLARED, 0,
            QB_MEMORY_PLAN_NCCL_BYTES);
    for (int r = 0; r < QB_MEM_REGION_COUNT; r++) {
        out->region_bytes[r] = qb_memory_plan_walk(out, (qb_mem_region)r, NULL, NULL);
        out->total_bytes += out->region_bytes[r];
    }
    return 0;
}

const qb_mem_entry *qb_memory_plan_find(const qb_memory_plan *p, qb_mem_id id) {
    for (int i = 0; i < p->n_entries; i++)
        if (p->entry[i].id == id) return &p->entry[i];
    return NULL;
}

size_t qb_memory_plan_bytes(const qb_memory_plan *p, qb_mem_id id) {
    const qb_mem_entry *e = qb_memory_plan_find(p, id);
    return e ? e->bytes : 0;
}

static int is_engine_region(qb_mem_region r) { return r <= QB_MEM_REGION_WORKSPACE; }

/* One tensor: the engine's three regions are arenas (each tensor at the next aligned offset), the others separate
 * allocations whose bytes add up. */
static void place(const qb_memory_plan *p, const qb_mem_entry *e, int layer, size_t *used, qb_memory_plan_visit visit,
                  void *ctx) {
    (void)p;
    size_t off = is_engine_region(e->region) ? align_up(*used) : *used;
    if (visit) visit(ctx, e, layer, off);
    *used = off + e->bytes;
}

size_t qb_memory_plan_walk(const qb_memory_plan *p, qb_mem_region region, qb_memory_plan_visit visit, void *ctx) {
    size_t used = 0;
    int i = 0;
    while (i < p->n_entries) {
        const qb_mem_entry *e = &p->entry[i];
        if (e->region != region) {
            i++;
            continue;
        }
        if (!e->per_layer) {
            place(p, e, -1, &used, visit, ctx);
            i++;
            continue;
        }
        int end = i; /* a run of per-layer entries of this region repeats layer-major */
        while (end < p->n_entries && p->entry[end].per_layer && p->entry[end].region == region) end++;
        for (int l = 0; l < p->layers; l++)
            for (int j = i; j < end; j++) place(p, &p->entry[j], l, &used, visit, ctx);
        i = end;
    }
    return used;
}

const char *qb_mem_region_name(qb_mem_region r) {
    static const char *names[QB_MEM_REGION_COUNT] = {"weights", "KV cache", "workspace", "NCCL context",
                                                     "temporary", "declared"};
    return r >= 0 && r < QB_MEM_REGION_COUNT ? names[r] : "?";
}
