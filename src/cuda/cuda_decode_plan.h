/* cuda_decode_plan.h - what one decode token runs, layer by layer, decided once per engine.
 *
 * The choice functions of cuda_choices.c resolve the cell's options (fusion, layout, TP reduction, exchange, ...)
 * into the engine's fields; qb_cuda_decode_plan_build turns those into this plan: for each layer linear the kernel
 * family and what its prologue reads and its epilogue does, the norm / residual / reduction step around the
 * linears, and the head's steps. cuda_forward.c's one decode loop carries the plan out and decides nothing;
 * qb_cuda_decode_plan_describe writes it in words (qwenbench --explain).
 * The model is uniform, so the plan has two layer entries: layer 0 (it starts from the embedding: nothing to add,
 * no exchange point to sum) and every later layer.
 */
#ifndef QB_CUDA_DECODE_PLAN_H
#define QB_CUDA_DECODE_PLAN_H

#include <stddef.h>

/* The kernel family of a decode linear. */
typedef enum {
    QB_LK_GEMV = 0,         /* qb_launch_gemv: bf16, plain store (the tuned unfused GEMV) */
    QB_LK_GEMV_FUSED,       /* gemv.cuh's fused family (bf16) */
    QB_LK_GEMV_QUANT,       /* qb_launch_gemv_quant: packed rows, plain store */
    QB_LK_GEMV_QUANT_FUSED, /* gemv_quant_fused.cuh's family (rows or tiled) */
} qb_linear_kernel;

/* What the linear's prologue reads. */
typedef enum {
    QB_IN_VECTOR = 0,   /* the bf16 vector of the step before (xn, attn or act) */
    QB_IN_NORM,         /* RMSNorm of the fp32 residual, in every block */
    QB_IN_EXCHANGE_NORM /* RMSNorm of the residual + the partial sums at an exchange point (tp_exchange.cuh) */
} qb_linear_input;

/* What the linear's epilogue does with W . x. */
typedef enum {
    QB_OUT_STORE = 0,  /* bf16 store (q|k|v, gate|up: into `big`, then their own qkv_rope / silu_mul kernel;
                        * o_proj, down_proj: into `delta`) */
    QB_OUT_QKV_ROPE,   /* + bias, RoPE, KV-cache append */
    QB_OUT_SILU_MUL,   /* SiLU(gate) * up into act */
    QB_OUT_RESID_ADD,  /* added into the fp32 residual */
    QB_OUT_PUSH        /* partial sums pushed into every rank's exchange point */
} qb_linear_output;

typedef struct {
    qb_linear_kernel kernel;
    qb_linear_input input;
    qb_linear_output output;
} qb_linear_step;

/* A norm / residual / reduction step between the linears (xn = its output). */
typedef enum {
    QB_NORM_NONE = 0,       /* nothing here (a prologue or an epilogue does it) */
    QB_NORM_ONLY,           /* add_rmsnorm of the residual as it is */
    QB_NORM_ADD,            /* add_rmsnorm: residual += delta, then normalise */
    QB_NORM_ALLREDUCE_ADD,  /* qb_allreduce_add_rmsnorm_bf16: sum delta over the TP group, add, normalise */
    QB_NORM_EXCHANGE_SUM    /* qb_launch_tp_sum_rmsnorm: the last exchange point summed onto the residual */
} qb_norm_step;

enum { QB_PLAN_QKV = 0, QB_PLAN_O, QB_PLAN_GATE_UP, QB_PLAN_DOWN, QB_PLAN_LINEARS };

/* One layer of one decode token, in the model's order. */
typedef struct {
    qb_norm_step attn_norm;             /* before q|k|v (input norm) */
    qb_linear_step linear[QB_PLAN_LINEARS];
    qb_norm_step attn_residual;         /* after o_proj (residual, post-attention norm) */
    qb_norm_step mlp_residual;          /* after down_proj (residual, the next layer's input norm or the final) */
} qb_decode_layer_plan;

/* How the head picks the token. */
typedef enum {
    QB_ARGMAX_LOCAL = 0, /* one GPU: argmax over the whole vocabulary */
    QB_ARGMAX_TP         /* each shard's best packed as a key, max-reduced over the TP group */
} qb_argmax_step;

typedef struct {
    int built;
    int embed_f16;                    /* the embedding lookup reads an f16 table */
    qb_decode_layer_plan layer[2];    /* [0]: layer 0, [1]: every later layer */
    qb_norm_step head_norm;           /* the final norm of the decode head */
    int lm_head_f16;                  /* lm_head GEMV on an f16 table (else bf16 qb_launch_gemv) */
    qb_argmax_step argmax;
    int exchange;                     /* the linears push / sum at exchange points 2l (o_proj), 2l + 1 (down_proj) */
    int one_kernel_allreduce_norm;    /* QB_NORM_ALLREDUCE_ADD as one kernel (else all-reduce, then add_rmsnorm) */
} qb_decode_plan;

/* The plan of layer l. */
static inline const qb_decode_layer_plan *qb_decode_plan_layer(const qb_decode_plan *p, int l) {
    return &p->layer[l > 0];
}

const char *qb_linear_kernel_name(qb_linear_kernel k);
const char *qb_norm_step_name(qb_norm_step s);

#endif
