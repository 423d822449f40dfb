/* planner.c - per-rank GPU memory of a cell and the fewest GPUs that fit (see planner.h for every assumption).
 */
#include "bench/planner.h"

#include <stdio.h>
#include <string.h>

#include "engine/shard_plan.h"
#include "util/error.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MAX_POSITIONS (1 << 24)

static const int CANDIDATE_TP[QB_PLAN_MAX_CANDIDATES] = {1, 2, 4, 8};

static int is_quantized(const qb_model_config *c) { return c->quant != QB_QUANT_BF16 && c->quant_bits > 0; }

/* A K x N matrix (K inputs, N outputs) as the engine holds it: bf16, or the CUDA engine's repacked quantized
 * layout (engine/quant_repack.h: packed weights, and one u32 f16 scale | zero point per group and row). */
static size_t linear_bytes(const qb_model_config *c, size_t k, size_t n) {
    if (!is_quantized(c)) return k * n * 2;
    size_t bits = (size_t)c->quant_bits, g = c->group_size > 0 ? (size_t)c->group_size : 128;
    size_t groups = (k + g - 1) / g;
    size_t packed = k * n * bits / 8;         /* qweight */
    size_t scale_zero = groups * n * 4;       /* sz */
    return packed + scale_zero;
}

static size_t weight_bytes(const qb_model_config *c, const qb_shard_plan *p) {
    size_t H = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t nq = (size_t)p->q_heads * hd, nkv = (size_t)p->kv_heads * hd, inter = (size_t)p->inter_size;
    size_t n_qkv = nq + 2 * nkv;
    size_t per_layer = linear_bytes(c, H, n_qkv) + n_qkv * 4   /* q|k|v and their fp32 bias */
                       + linear_bytes(c, nq, H)                /* o_proj (row-parallel) */
                       + linear_bytes(c, H, 2 * inter)         /* gate|up (column-parallel) */
                       + linear_bytes(c, inter, H)             /* down_proj (row-parallel) */
                       + 2 * H * 4;                            /* two RMSNorm weights, fp32 */
    size_t table = 2; /* bf16, or fp16 in the quantized releases */
    size_t embed = (size_t)c->vocab_size * H * table;          /* replicated on every rank */
    size_t lm_head = c->tie_word_embeddings ? 0 : (size_t)p->vocab_size * H * table;
    return (size_t)c->num_layers * per_layer + embed + lm_head + H * 4;
}

static size_t kv_bytes(const qb_model_config *c, const qb_shard_plan *p, size_t positions) {
    return 2 * (size_t)c->num_layers * (size_t)p->kv_heads * (size_t)c->head_dim * positions * 2;
}

static size_t workspace_bytes(const qb_model_config *c, const qb_shard_plan *p, size_t context, size_t positions) {
    size_t H = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t nq = (size_t)p->q_heads * hd, nkv = (size_t)p->kv_heads * hd, inter = (size_t)p->inter_size;
    size_t rows = context < QB_PLAN_PREFILL_CHUNK ? context : QB_PLAN_PREFILL_CHUNK;
    if (rows < 1) rows = 1;
    size_t n_qkv = nq + 2 * nkv, big = n_qkv > 2 * inter ? n_qkv : 2 * inter;
    size_t splits = (positions + 63) / 64;
    size_t chunk = rows * H * 4          /* fp32 residual */
                   + 2 * rows * H * 2    /* normed input, delta */
                   + rows * big * 2      /* q|k|v or gate|up */
                   + 2 * rows * nq * 2   /* q, attention output */
                   + rows * inter * 2    /* activation */
                   + rows * 4;           /* prompt ids */
    if (is_quantized(c) && rows > 1) {   /* prefill: one layer linear dequantized to bf16 for the GEMM */
        size_t largest = n_qkv * H;
        if (nq * H > largest) largest = nq * H;
        if (2 * inter * H > largest) largest = 2 * inter * H;
        chunk += largest * 2;
    }
    size_t decode = (size_t)p->vocab_size * 4                 /* logits */
                    + (size_t)p->q_heads * splits * hd * 4    /* attention partial outputs */
                    + (size_t)p->q_heads * splits * 2 * 4     /* partial max / sum */
                    + 2 * positions * (hd / 2) * 4            /* cos, sin */
                    + positions * 4 + 64;                     /* generated tokens, state */
    return chunk + decode;
}

int qb_plan_rank_memory(const qb_model_config *c, int tp, int context_len, int gen_len, qb_rank_memory *out) {
    memset(out, 0, sizeof *out);
    if (context_len < 1 || gen_len < 0 || (long long)context_len + gen_len > MAX_POSITIONS)
        return qb_errorf("memory plan: context %d + generate %d: expected context >= 1, generate >= 0, sum <= %d",
                         context_len, gen_len, MAX_POSITIONS);
    qb_shard_plan p;
    QB_TRY(qb_shard_plan_make(c, tp, 0, &p));
    size_t positions = (size_t)context_len + (size_t)gen_len;
    out->tp = tp;
    out->weights_bytes = weight_bytes(c, &p);
    out->kv_cache_bytes = kv_bytes(c, &p, positions);
    out->workspace_bytes = workspace_bytes(c, &p, (size_t)context_len, positions);
    out->overhead_bytes = QB_PLAN_OVERHEAD_BYTES + (tp > 1 ? QB_PLAN_NCCL_BYTES : 0);
    out->total_bytes = out->weights_bytes + out->kv_cache_bytes + out->workspace_bytes + out->overhead_bytes;
    return 0;
}

void qb_plan_format(const qb_rank_memory *m, char *out, size_t cap) {
    snprintf(out, cap, "weights %.2f + KV %.2f + workspace %.2f + overhead %.2f = %.2f GiB", m->weights_bytes / GIB,
             m->kv_cache_bytes / GIB, m->workspace_bytes / GIB, m->overhead_bytes / GIB, m->total_bytes / GIB);
}

static size_t usable_bytes(size_t gpu_bytes) { return (size_t)((double)gpu_bytes * QB_PLAN_USABLE_FRACTION); }

static int does_not_fit(const qb_model_config *c, const qb_plan_request *req, const char *detail) {
    return qb_errorf("does not fit: %s %s, context %d + %d generated, GPU %.2f GiB (usable %.2f GiB at %.0f%%), "
                     "%d GPU%s: %s", c->name, qb_quant_name(c->quant), req->context_len, req->gen_len,
                     req->gpu_bytes / GIB, usable_bytes(req->gpu_bytes) / GIB, QB_PLAN_USABLE_FRACTION * 100,
                     req->gpus, req->gpus == 1 ? "" : "s", detail);
}

static int choose_forced(const qb_model_config *c, const qb_plan_request *req, qb_plan_result *out) {
    qb_rank_memory m;
    QB_TRY(qb_plan_rank_memory(c, req->forced_tp, req->context_len, req->gen_len, &m));
    out->n_candidates = 1;
    out->candidates[0] = m;
    if (req->forced_tp > req->gpus || req->gpus % req->forced_tp != 0)
        return qb_errorf("--tp %d: the job has %d GPU%s (tp must divide the number of ranks)", req->forced_tp,
                         req->gpus, req->gpus == 1 ? "" : "s");
    char numbers[256], detail[400];
    qb_plan_format(&m, numbers, sizeof numbers);
    if (m.total_bytes > usable_bytes(req->gpu_bytes)) {
        snprintf(detail, sizeof detail, "--tp %d needs %s per GPU", req->forced_tp, numbers);
        return does_not_fit(c, req, detail);
    }
    out->tp = req->forced_tp;
    out->chosen = m;
    return 0;
}

int qb_plan_choose_tp(const qb_model_config *c, const qb_plan_request *req, qb_plan_result *out) {
    memset(out, 0, sizeof *out);
    if (req->gpu_bytes == 0) return qb_errorf("memory plan: GPU memory size is 0");
    if (req->gpus < 1) return qb_errorf("memory plan: %d GPUs in the job", req->gpus);
    if (req->forced_tp < 0) return qb_errorf("--tp %d: must be positive (0 = choose)", req->forced_tp);
    if (req->forced_tp > 0) return choose_forced(c, req, out);

    char detail[800] = "";
    size_t usable = usable_bytes(req->gpu_bytes);
    for (int i = 0; i < QB_PLAN_MAX_CANDIDATES; i++) {
        int tp = CANDIDATE_TP[i];
        if (qb_shard_plan_check(c, tp) != 0) {
            size_t used = strlen(detail);
            snprintf(detail + used, sizeof detail - used, "%sTP%d not legal", used ? "; " : "", tp);
            continue;
        }
        qb_rank_memory m;
        QB_TRY(qb_plan_rank_memory(c, tp, req->context_len, req->gen_len, &m));
        out->candidates[out->n_candidates++] = m;
        int available = tp <= req->gpus && req->gpus % tp == 0;
        if (m.total_bytes <= usable && available) {
            out->tp = tp;
            out->chosen = m;
            return 0;
        }
        char numbers[160], entry[240];
        qb_plan_format(&m, numbers, sizeof numbers);
        if (m.total_bytes <= usable)
            snprintf(entry, sizeof entry, "TP%d would fit (%s) but the job has %d GPU%s", tp, numbers, req->gpus,
                     req->gpus == 1 ? "" : "s");
        else
            snprintf(entry, sizeof entry, "TP%d needs %s", tp, numbers);
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, "%s%s", used ? "; " : "", entry);
    }
    return does_not_fit(c, req, detail[0] ? detail : "no legal tensor-parallel size");
}
