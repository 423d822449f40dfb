/* planner.c - per-rank GPU memory of a cell and the fewest GPUs that fit: the sums of the engine's own memory plan
 * (engine/memory_plan.h) at the engine's largest choices (see planner.h).
 */
#include "bench/planner.h"

#include <stdio.h>
#include <string.h>

#include "engine/memory_plan.h"
#include "engine/shard_plan.h"
#include "util/error.h"

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MAX_POSITIONS (1 << 24)

static const int CANDIDATE_TP[QB_PLAN_MAX_CANDIDATES] = {1, 2, 4, 8};

/* The engine's choices that change its memory, taken at their largest, since the planner runs before they are
 * resolved (src/cuda/cuda_choices.c): the tiled quantized layout (may need a tiling scratch; 4 bits by default, 8
 * bits under --quant-layout tiled, hidden size <= 8192), the one-shot IPC all-reduce (up to QB_AR_MAX_RANKS = 8 ranks) and the decode's residual
 * exchange (hidden sizes up to 8192, multiples of 8). */
static void worst_case_choices(const qb_model_config *c, int tp, qb_memory_plan_input *in) {
    in->quant_tiled = c->quant != QB_QUANT_BF16 && c->quant_bits > 0 && c->hidden_size <= 8192;
    in->ipc_oneshot = tp > 1 && tp <= 8;
    in->tp_exchange = in->ipc_oneshot && c->hidden_size <= 8192 && c->hidden_size % 8 == 0;
}

int qb_plan_rank_plan(const qb_model_config *c, int tp, int context_len, int gen_len, qb_memory_plan *out) {
    memset(out, 0, sizeof *out);
    if (context_len < 1 || gen_len < 0 || (long long)context_len + gen_len > MAX_POSITIONS)
        return qb_errorf("memory plan: context %d + generate %d: expected context >= 1, generate >= 0, sum <= %d",
                         context_len, gen_len, MAX_POSITIONS);
    qb_shard_plan p;
    QB_TRY(qb_shard_plan_make(c, tp, 0, &p));
    qb_memory_plan_input in = {.max_seq_len = context_len + gen_len, .max_prompt_len = context_len,
                               .gemm_workspace_bytes = QB_MEMORY_PLAN_GEMM_WORKSPACE_BYTES};
    worst_case_choices(c, tp, &in);
    return qb_memory_plan_make(c, &p, &in, out);
}

int qb_plan_rank_memory(const qb_model_config *c, int tp, int context_len, int gen_len, qb_rank_memory *out) {
    memset(out, 0, sizeof *out);
    qb_memory_plan plan;
    QB_TRY(qb_plan_rank_plan(c, tp, context_len, gen_len, &plan));
    out->tp = tp;
    out->weights_bytes = plan.region_bytes[QB_MEM_REGION_WEIGHTS];
    out->kv_cache_bytes = plan.region_bytes[QB_MEM_REGION_KV];
    out->workspace_bytes = plan.region_bytes[QB_MEM_REGION_WORKSPACE] + plan.region_bytes[QB_MEM_REGION_TEMPORARY];
    out->overhead_bytes = plan.region_bytes[QB_MEM_REGION_NCCL] + plan.region_bytes[QB_MEM_REGION_DECLARED];
    out->total_bytes = plan.total_bytes;
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
