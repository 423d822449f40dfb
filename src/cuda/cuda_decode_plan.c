/* cuda_decode_plan.c - the decode plan (cuda_decode_plan.h) from what cuda_choices.c resolved, and in words.
 *
 * Three shapes of decode come out of the choices, each a setting of the same per-layer steps:
 *   unfused (fusion none): a norm kernel, the plain GEMVs storing into big / delta, qkv_rope and silu_mul kernels;
 *   fused epilogues: q|k|v GEMV + bias + RoPE + cache append, gate|up GEMV + SiLU * up; at one GPU with the
 *     residual fusion also the norms in the q|k|v / gate|up prologues and o_proj / down_proj adding into the fp32
 *     residual (no norm kernel left);
 *   tensor parallel: after o_proj and down_proj one step all-reduces delta, adds and normalises with the next norm
 *     weight; with the residual exchange the row-parallel GEMVs push their partial sums instead and the next GEMV
 *     (or the head) sums them in its prologue.
 * This file decides nothing new: every rule here is the dispatch cuda_forward.c had, written once as data.
 * qb_cuda_choices_describe writes the choices and the plan's kernels as the cell's engine_choices string.
 */
#include <stdio.h>
#include <string.h>

#include "attention_prefill.cuh"
#include "comm/cuda/allreduce_ipc.h"
#include "cuda/cuda_engine.h"
#include "gemv_quant.cuh"

const char *qb_linear_kernel_name(qb_linear_kernel k) {
    switch (k) {
    case QB_LK_GEMV: return "gemv";
    case QB_LK_GEMV_FUSED: return "gemv-fused";
    case QB_LK_GEMV_QUANT: return "gemv-quant";
    case QB_LK_GEMV_QUANT_FUSED: return "gemv-quant-fused";
    }
    return "?";
}

const char *qb_norm_step_name(qb_norm_step s) {
    switch (s) {
    case QB_NORM_NONE: return "none";
    case QB_NORM_ONLY: return "rmsnorm";
    case QB_NORM_ADD: return "add+rmsnorm";
    case QB_NORM_ALLREDUCE_ADD: return "allreduce+add+rmsnorm";
    case QB_NORM_EXCHANGE_SUM: return "exchange-sum+rmsnorm";
    }
    return "?";
}

static const char *input_name(qb_linear_input in) {
    return in == QB_IN_NORM ? "rmsnorm(resid)" : in == QB_IN_EXCHANGE_NORM ? "rmsnorm(resid+exchange)" : "vector";
}

static const char *output_name(qb_linear_output out) {
    switch (out) {
    case QB_OUT_STORE: return "store";
    case QB_OUT_QKV_ROPE: return "bias+rope+kv-append";
    case QB_OUT_SILU_MUL: return "silu*up";
    case QB_OUT_RESID_ADD: return "resid-add";
    case QB_OUT_PUSH: return "exchange-push";
    }
    return "?";
}

/* A plain-store decode linear of n rows outside the unfused sequence: the packed weights' fused kernel, or for
 * bf16 the rule of qb_choose_decode_store_fused (split-K fused kernel for small N, the tuned GEMV above). */
static qb_linear_kernel store_kernel(const qb_cuda_engine *e, int n) {
    if (e->quant_bits) return QB_LK_GEMV_QUANT_FUSED;
    return qb_choose_decode_store_fused(n) ? QB_LK_GEMV_FUSED : QB_LK_GEMV;
}

/* The unfused sequence's linear (one row): tiled packed weights are read by the fused kernel only. */
static qb_linear_kernel unfused_kernel(const qb_cuda_engine *e) {
    if (!e->quant_bits) return QB_LK_GEMV;
    return e->quant_tiled ? QB_LK_GEMV_QUANT_FUSED : QB_LK_GEMV_QUANT;
}

static void plan_unfused(const qb_cuda_engine *e, int first, qb_decode_layer_plan *L) {
    qb_linear_kernel k = unfused_kernel(e);
    for (int i = 0; i < QB_PLAN_LINEARS; i++) L->linear[i] = (qb_linear_step){k, QB_IN_VECTOR, QB_OUT_STORE};
    L->attn_norm = first ? QB_NORM_ONLY : e->nc ? QB_NORM_NONE : QB_NORM_ADD;
    L->attn_residual = e->nc ? QB_NORM_ALLREDUCE_ADD : QB_NORM_ADD;
    L->mlp_residual = e->nc ? QB_NORM_ALLREDUCE_ADD : QB_NORM_NONE; /* one GPU: added by the next norm */
}

static void plan_fused(const qb_cuda_engine *e, int first, qb_decode_layer_plan *L) {
    qb_linear_kernel fused = e->quant_bits ? QB_LK_GEMV_QUANT_FUSED : QB_LK_GEMV_FUSED;
    if (e->fusion == QB_FUSE_RESIDUAL) {
        L->attn_norm = L->attn_residual = L->mlp_residual = QB_NORM_NONE;
        L->linear[QB_PLAN_QKV] = (qb_linear_step){fused, QB_IN_NORM, QB_OUT_QKV_ROPE};
        L->linear[QB_PLAN_O] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_RESID_ADD};
        L->linear[QB_PLAN_GATE_UP] = (qb_linear_step){fused, QB_IN_NORM, QB_OUT_SILU_MUL};
        L->linear[QB_PLAN_DOWN] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_RESID_ADD};
        return;
    }
    L->attn_norm = first ? QB_NORM_ONLY : e->nc ? QB_NORM_NONE : QB_NORM_ADD;
    L->linear[QB_PLAN_QKV] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_QKV_ROPE};
    L->linear[QB_PLAN_O] = (qb_linear_step){store_kernel(e, e->H), QB_IN_VECTOR, QB_OUT_STORE};
    L->attn_residual = e->nc ? QB_NORM_ALLREDUCE_ADD : QB_NORM_ADD;
    L->linear[QB_PLAN_GATE_UP] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_SILU_MUL};
    L->linear[QB_PLAN_DOWN] = (qb_linear_step){store_kernel(e, e->H), QB_IN_VECTOR, QB_OUT_STORE};
    L->mlp_residual = e->nc ? QB_NORM_ALLREDUCE_ADD : QB_NORM_NONE;
}

static void plan_exchange(const qb_cuda_engine *e, int first, qb_decode_layer_plan *L) {
    qb_linear_kernel fused = e->quant_bits ? QB_LK_GEMV_QUANT_FUSED : QB_LK_GEMV_FUSED;
    L->attn_norm = L->attn_residual = L->mlp_residual = QB_NORM_NONE;
    L->linear[QB_PLAN_QKV] = (qb_linear_step){fused, first ? QB_IN_NORM : QB_IN_EXCHANGE_NORM, QB_OUT_QKV_ROPE};
    L->linear[QB_PLAN_O] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_PUSH};
    L->linear[QB_PLAN_GATE_UP] = (qb_linear_step){fused, QB_IN_EXCHANGE_NORM, QB_OUT_SILU_MUL};
    L->linear[QB_PLAN_DOWN] = (qb_linear_step){fused, QB_IN_VECTOR, QB_OUT_PUSH};
}

void qb_cuda_decode_plan_build(qb_cuda_engine *e) {
    qb_decode_plan *p = &e->decode_plan;
    memset(p, 0, sizeof *p);
    p->exchange = e->fusion != QB_FUSE_NONE && e->nc && e->xchg_on;
    for (int first = 1, i = 0; i < 2; i++, first = 0) {
        if (p->exchange) plan_exchange(e, first, &p->layer[i]);
        else if (e->fusion != QB_FUSE_NONE) plan_fused(e, first, &p->layer[i]);
        else plan_unfused(e, first, &p->layer[i]);
    }
    /* the head's final norm: the residual fusion leaves resid complete; tensor parallel leaves xn normalised by the
     * last all-reduce (or sums the last exchange point); else down_proj's delta is still to add */
    p->head_norm = p->exchange ? QB_NORM_EXCHANGE_SUM
                   : e->fusion == QB_FUSE_RESIDUAL ? QB_NORM_ONLY
                   : e->nc ? QB_NORM_NONE
                           : QB_NORM_ADD;
    p->embed_f16 = e->embed_f16;
    p->lm_head_f16 = e->lm_head_f16;
    p->argmax = e->nc ? QB_ARGMAX_TP : QB_ARGMAX_LOCAL;
    p->one_kernel_allreduce_norm = e->ar_norm_one_kernel;
    p->built = 1;
}

/* "qkv=gemv-fused(vector -> bias+rope+kv-append)" */
/* Where the tensor-parallel reduction of the decode step goes, in words: [0] the engine_choices form, [1] the
 * --explain form. */
static const char *tp_reduce_name(const qb_cuda_engine *e, int long_form) {
    static const char *const names[][2] = {
        {"none", "none"},
        {"exchange", "exchange (points 2l: o_proj, 2l+1: down_proj)"},
        {"ipc-oneshot+norm", "ipc-oneshot, all-reduce+add+norm in one kernel"},
        {"ipc-oneshot", "ipc-oneshot, then add_rmsnorm"},
        {"nccl", "nccl, then add_rmsnorm"},
    };
    const qb_decode_plan *p = &e->decode_plan;
    int k = !e->nc ? 0 : p->exchange ? 1 : qb_nccl_impl(e->nc) != QB_AR_IPC_ONESHOT ? 4
          : p->one_kernel_allreduce_norm ? 2 : 3;
    return names[k][long_form];
}

/* The prefill attention kernel's name (QB_ATTN_PREFILL_*). */
static const char *prefill_attention_name(const qb_cuda_engine *e) {
    static const char *const names[] = {"?", "?", "fa2", "wg", "wgp"};
    return e->attn_prefill >= 0 && e->attn_prefill <= QB_ATTN_PREFILL_WGP ? names[e->attn_prefill] : names[0];
}

static size_t describe_linear(const qb_cuda_engine *e, const char *name, const qb_linear_step *s, char *out,
                              size_t cap) {
    const char *tiled = e->quant_tiled && s->kernel == QB_LK_GEMV_QUANT_FUSED ? "-tiled" : "";
    int n = snprintf(out, cap, " %s=%s%s(%s -> %s)", name, qb_linear_kernel_name(s->kernel), tiled,
                     input_name(s->input), output_name(s->output));
    return n < 0 ? 0 : (size_t)n;
}

void qb_cuda_decode_plan_describe(const qb_cuda_engine *e, int context_len, char *out, size_t cap) {
    static const char *const names[QB_PLAN_LINEARS] = {"qkv", "o", "gate_up", "down"};
    const qb_decode_plan *p = &e->decode_plan;
    size_t len = 0;
#define PUT(...)                                                                                                      \
    do {                                                                                                              \
        if (len < cap) {                                                                                              \
            int n_ = snprintf(out + len, cap - len, __VA_ARGS__);                                                     \
            if (n_ > 0) len += (size_t)n_;                                                                            \
        }                                                                                                             \
    } while (0)
    out[0] = '\0';
    if (!p->built) {
        PUT("decode plan: not built");
        return;
    }
    PUT("decode (one token): embedding %s -> resid\n", p->embed_f16 ? "f16" : "bf16");
    for (int i = 0; i < 2 && i < e->layers; i++) {
        const qb_decode_layer_plan *L = &p->layer[i];
        if (i == 0) PUT("  layer 0:");
        else if (e->layers == 2) PUT("  layer 1:");
        else PUT("  layers 1..%d:", e->layers - 1);
        PUT(" input_norm=%s", qb_norm_step_name(L->attn_norm));
        len += len < cap ? describe_linear(e, names[QB_PLAN_QKV], &L->linear[QB_PLAN_QKV], out + len, cap - len) : 0;
        if (L->linear[QB_PLAN_QKV].output == QB_OUT_STORE) PUT(" qkv_rope");
        PUT(" attention=decode(mma, chunk %d)", qb_cuda_decode_chunk_for(e, context_len));
        len += len < cap ? describe_linear(e, names[QB_PLAN_O], &L->linear[QB_PLAN_O], out + len, cap - len) : 0;
        PUT(" residual=%s", qb_norm_step_name(L->attn_residual));
        len += len < cap ? describe_linear(e, names[QB_PLAN_GATE_UP], &L->linear[QB_PLAN_GATE_UP], out + len,
                                           cap - len) : 0;
        if (L->linear[QB_PLAN_GATE_UP].output == QB_OUT_STORE) PUT(" silu_mul");
        len += len < cap ? describe_linear(e, names[QB_PLAN_DOWN], &L->linear[QB_PLAN_DOWN], out + len, cap - len) : 0;
        PUT(" residual=%s\n", qb_norm_step_name(L->mlp_residual));
    }
    PUT("  head: final_norm=%s lm_head=%s argmax=%s\n", qb_norm_step_name(p->head_norm),
        p->lm_head_f16 ? "gemv-f16" : "gemv", p->argmax == QB_ARGMAX_TP ? "tp(shard best, max all-reduce)" : "local");
    PUT("  tp_reduce: %s\n", tp_reduce_name(e, 1));
    const char *prefill_linear = e->chunk_rows > 1 ? (e->quant_bits ? "dequantize+gemm" : "gemm")
                                 : !e->quant_bits ? "gemv" : e->quant_tiled ? "gemv-quant-fused-tiled" : "gemv-quant";
    PUT("prefill (chunks of %d rows), each layer: add+rmsnorm, qkv=%s, qkv_rope, attention=%s, o=%s, %sadd+rmsnorm, "
        "gate_up=%s, silu_mul, down=%s%s; head: add+rmsnorm of the last row, as decode's\n",
        e->chunk_rows, prefill_linear, prefill_attention_name(e), prefill_linear, e->nc ? "all-reduce, " : "",
        prefill_linear, prefill_linear, e->nc ? ", all-reduce" : "");
    PUT("pdl=%s graphs=on", e->pdl ? "on" : "off");
#undef PUT
}

/* The kernel a decode linear of n rows x k runs, from the plan, in words. */
static void linear_kernel(const qb_cuda_engine *e, const qb_linear_step *s, int n, int k, char *out, size_t cap) {
    if (s->kernel == QB_LK_GEMV_QUANT_FUSED) {
        snprintf(out, cap, "gemv-quant-fused%s", e->quant_tiled ? "-tiled" : "");
    } else if (s->kernel == QB_LK_GEMV_QUANT) {
        char name[48];
        qb_gemv_quant_default_choice(n, k, e->quant_bits, e->group_size, name, sizeof name);
        snprintf(out, cap, "gemv-quant(%s)", name);
    } else {
        snprintf(out, cap, "%s", qb_linear_kernel_name(s->kernel));
    }
}

void qb_cuda_choices_describe(const qb_cuda_engine *e, int context_len, char *out, size_t cap) {
    static const char *const fusion_names[] = {"none", "epilogues", "residual"};
    char qkv[64], o_proj[64], gate_up[64], down[64];
    int nq = e->hq * e->hd;
    const qb_linear_step *lin = qb_decode_plan_layer(&e->decode_plan, 0)->linear;
    linear_kernel(e, &lin[QB_PLAN_QKV], e->n_qkv, e->H, qkv, sizeof qkv);
    linear_kernel(e, &lin[QB_PLAN_O], e->H, nq, o_proj, sizeof o_proj);
    linear_kernel(e, &lin[QB_PLAN_GATE_UP], 2 * e->I, e->H, gate_up, sizeof gate_up);
    linear_kernel(e, &lin[QB_PLAN_DOWN], e->H, e->I, down, sizeof down);
    snprintf(out, cap,
             "qkv=%s;o=%s;gate_up=%s;down=%s;lm_head=%s;attn_prefill=%s;attn_decode=mma;decode_chunk=%d;"
             "prefill_chunk=%d;tp_reduce=%s;fusion=%s;layout=%s;pdl=%s;graphs=on",
             qkv, o_proj, gate_up, down, e->lm_head_f16 ? "gemv-f16" : "gemv", prefill_attention_name(e),
             qb_cuda_decode_chunk_for(e, context_len), e->chunk_rows, tp_reduce_name(e, 0), fusion_names[e->fusion],
             !e->quant_bits ? "bf16" : e->quant_tiled ? "tiled" : "rows", e->pdl ? "on" : "off");
}
