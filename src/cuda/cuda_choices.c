/* cuda_choices.c - every choice the CUDA engine makes, one named function per operation, in one place.
 *
 * Each function takes the cell's option (engine/engine_options.h: "auto" or a forced value) and the facts that
 * decide (format, GPU generation, shapes, TP size) and returns what runs. "auto" follows the rule written in the
 * function; the measurement behind each rule is the section of docs/PERFORMANCE.md named in its comment. A forced
 * value that cannot run for this cell is an error naming the option, so the cell is FAILED rather than measuring
 * something else. qb_cuda_choices_resolve applies them all when the engine is created; the decode plan
 * (cuda_decode_plan.c) is built from them and describes them (qb_cuda_choices_describe, the cell's engine_choices,
 * docs/RESULTS.md). Launch shapes inside one kernel family
 * (split K, warps per tile) stay with the kernel's launcher (e.g. qb_gemv_quant_pick in kernels/linear/gemv_quant.cu);
 * which kernel family runs is decided here only.
 */
#include <stdio.h>
#include <string.h>

#include "attention_prefill.cuh"
#include "comm/cuda/allreduce_ipc.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_engine.h"
#include "gemv_quant.cuh"
#include "quant_tile.cuh"
#include "util/error.h"

/* The fused quantized kernels take every layer linear at this width (tensor-core step: K and group size multiples
 * of 128 at 4 bits, 64 at 8; the normalised input needs H <= 8192), and every linear tiles. */
static int qb_cuda_quant_fused_shapes(const qb_cuda_engine *e) {
    int nq = e->hq * e->hd, b = e->quant_bits;
    return b && qb_gemv_quant_tc_supported(b, e->H, e->group_size) && qb_gemv_quant_tc_supported(b, nq, e->group_size) &&
           qb_gemv_quant_tc_supported(b, e->I, e->group_size) && e->H <= 8192;
}
static int qb_cuda_quant_shapes_tile(const qb_cuda_engine *e) {
    return qb_quant_tile_supported(QB_TILE_ROPE, e->n_qkv, e->hd, 0) && qb_quant_tile_supported(QB_TILE_ROWS, e->H, 0, 0) &&
           qb_quant_tile_supported(QB_TILE_SILU, 2 * e->I, 0, e->I);
}

/* Named condition of auto: 4 bits, and the fused quantized kernels take every layer linear. 8 bits stay on the
 * unfused GEMV (its CUDA-core kernel beat the fused tensor-core step on gate|up; --quant-layout tiled runs the
 * fused one for a measurement). PERFORMANCE.md, "Fused decode and the tiled 4-bit layout". */
int qb_cuda_quant_fusable(const qb_cuda_engine *e) { return e->quant_bits == 4 && qb_cuda_quant_fused_shapes(e); }

/* Packed layout. auto: tiled at 4 bits where the fused kernels take every linear and every shape tiles; rows, or
 * --decode-fusion none (the unfused GEMVs read rows): the row layout; tiled: tiled at 4 or 8 bits where the shapes
 * allow (qb_cuda_choices_resolve refuses the cell otherwise). PERFORMANCE.md, "Fused decode and the tiled 4-bit
 * layout". */
int qb_choose_quant_tiled(const qb_cuda_engine *e, const qb_engine_options *o) {
    int opt = o->v[QB_EOPT_QUANT_LAYOUT];
    if (opt == QB_LAYOUT_OPT_ROWS || o->v[QB_EOPT_DECODE_FUSION] == QB_FUSION_OPT_NONE) return 0;
    if (opt == QB_LAYOUT_OPT_TILED) return qb_cuda_quant_fused_shapes(e) && qb_cuda_quant_shapes_tile(e);
    return qb_cuda_quant_fusable(e) && qb_cuda_quant_shapes_tile(e);
}

/* Decode fusion. auto: the residual fusion (norms in the q|k|v and gate|up prologues, o_proj / down_proj adding
 * into the fp32 residual) at one GPU with hidden size <= 8192 (each block's prologue re-reads the 8 H bytes of
 * residual and norm weight); the epilogue fusions at tensor parallel (the all-reduce comes before the residual add)
 * and above 8192; quantized linears that the fused kernels cannot take run unfused. Tiled weights are read by the
 * fused kernels only, so they never run unfused. PERFORMANCE.md, "What changed since the first measurement"
 * (Decode fusion). */
int qb_choose_decode_fusion(const qb_cuda_engine *e, int tp, const qb_engine_options *o) {
    int opt = o->v[QB_EOPT_DECODE_FUSION];
    if (e->quant_tiled) return opt == QB_FUSION_OPT_EPILOGUES || tp > 1 || e->H > 8192 ? QB_FUSE_EPILOGUES
                                                                                      : QB_FUSE_RESIDUAL;
    if (opt == QB_FUSION_OPT_NONE || (e->quant_bits && (!qb_cuda_quant_fusable(e) || tp > 1))) return QB_FUSE_NONE;
    if (opt == QB_FUSION_OPT_EPILOGUES || tp > 1 || e->H > 8192) return QB_FUSE_EPILOGUES;
    return QB_FUSE_RESIDUAL;
}

/* All-reduce implementation. auto: the own one-shot kernel over CUDA IPC (qb_nccl_create falls back to NCCL across
 * nodes or beyond QB_AR_MAX_RANKS ranks). PERFORMANCE.md, "End to end, 7B input 1, by implementation". */
qb_allreduce_impl qb_choose_allreduce(const qb_engine_options *o) {
    return o->v[QB_EOPT_ALLREDUCE] == QB_ALLREDUCE_OPT_NCCL ? QB_AR_NCCL : QB_AR_IPC_ONESHOT;
}

/* Residual exchange in tensor-parallel decode. auto: tiled 4-bit weights, and bf16 linears except at TP2 above
 * hidden size 4096 (half-width GEMVs that large gain less from fewer kernels than the exchange costs); quantized
 * row-layout linears decode unfused at TP and keep the all-reduce. on: wherever it can run (the NCCL context opens
 * it only for ipc-oneshot on one node). Only the fused decode runs the exchange: none with --decode-fusion none
 * (call after e->fusion is chosen). PERFORMANCE.md, "The residual exchange: tensor-parallel decode
 * without all-reduce kernels". */
int qb_choose_tp_exchange(const qb_cuda_engine *e, int tp, const qb_engine_options *o) {
    int opt = o->v[QB_EOPT_TP_EXCHANGE];
    if (tp < 2 || opt == QB_ONOFF_OFF || e->fusion == QB_FUSE_NONE) return 0;
    if (opt == QB_ONOFF_ON) return 1;
    return e->quant_tiled || (!e->quant_bits && (e->H <= 4096 || tp >= 4));
}

/* All-reduce + add + RMSNorm where the exchange is off. auto: one kernel up to hidden size 2048, else the
 * all-reduce then add_rmsnorm. PERFORMANCE.md, "2 x H200 (this session's 2-GPU machines)". */
int qb_choose_allreduce_norm_one_kernel(int dim, const qb_engine_options *o) {
    int opt = o->v[QB_EOPT_ALLREDUCE_NORM];
    if (opt != QB_EOPT_AUTO) return opt == QB_AR_NORM_OPT_FUSED;
    return dim <= 2048;
}

/* Prefill attention. auto: the kernel's own rule, qb_attention_prefill_auto_variant (kernels/attention/attention_prefill.cu:
 * on Hopper wg at head_dim 64, wgp at 128; fa2 on other GPUs). PERFORMANCE.md, "What changed since the first
 * measurement" (Prefill attention). */
int qb_choose_attn_prefill(int head_dim, int cc_major, const qb_engine_options *o, int *variant) {
    switch (o->v[QB_EOPT_ATTN_PREFILL]) {
    case QB_ATTN_PREFILL_OPT_FA2: *variant = QB_ATTN_PREFILL_FA2; return 0;
    case QB_ATTN_PREFILL_OPT_WGP: *variant = QB_ATTN_PREFILL_WGP; break;
    case QB_ATTN_PREFILL_OPT_WG:
        if (head_dim != 64)
            return qb_errorf("--attn-prefill wg: head_dim %d unsupported (64 only; wgp or fa2)", head_dim);
        *variant = QB_ATTN_PREFILL_WG;
        break;
    default: *variant = qb_attention_prefill_auto_variant(head_dim, cc_major);
    }
    if (*variant != QB_ATTN_PREFILL_FA2 && cc_major != 9)
        return qb_errorf("--attn-prefill %s: needs a Hopper GPU (compute capability 9, this one has %d)",
                         *variant == QB_ATTN_PREFILL_WG ? "wg" : "wgp", cc_major);
    return 0;
}

/* A decode linear whose bf16 output is stored as is (o_proj / down_proj of the fused decode): the split-K fused
 * kernel of gemv.cuh where N is small (below 2112 rows), else qb_launch_gemv, tuned for the large shapes.
 * PERFORMANCE.md, "Decode fusion". */
int qb_choose_decode_store_fused(int n) { return n < 2112; }

/* Programmatic dependent launch. auto: on (every kernel's prologue overlaps the previous one's tail).
 * PERFORMANCE.md, "What changed since the first measurement". */
int qb_choose_pdl(const qb_engine_options *o) { return o->v[QB_EOPT_PDL] != QB_ONOFF_OFF; }

int qb_cuda_choices_resolve(qb_cuda_engine *e, int tp, int cc_major, const qb_engine_options *o) {
    e->opt = *o;
    e->quant_tiled = qb_choose_quant_tiled(e, o);
    e->fusion = qb_choose_decode_fusion(e, tp, o);
    e->ar_norm_one_kernel = qb_choose_allreduce_norm_one_kernel(e->H, o);
    e->pdl = qb_choose_pdl(o);
    /* a forced layout or fusion that this cell cannot run is refused, never measured as something else (a bf16
     * cell has no packed linears: the layout option does not apply to it) */
    if (o->v[QB_EOPT_QUANT_LAYOUT] == QB_LAYOUT_OPT_TILED && e->quant_bits && !e->quant_tiled)
        return qb_errorf("--quant-layout tiled: not possible for this cell (%s)",
                         o->v[QB_EOPT_DECODE_FUSION] == QB_FUSION_OPT_NONE
                             ? "--decode-fusion none reads the row layout"
                             : "a linear's shape does not tile or the fused kernels cannot take it");
    int fusion = o->v[QB_EOPT_DECODE_FUSION];
    if ((fusion == QB_FUSION_OPT_EPILOGUES && e->fusion != QB_FUSE_EPILOGUES) ||
        (fusion == QB_FUSION_OPT_NONE && e->fusion != QB_FUSE_NONE))
        return qb_errorf("--decode-fusion %s: not possible for this cell (%s%s; it would run %s)",
                         qb_engine_option_value_name(QB_EOPT_DECODE_FUSION, fusion),
                         e->quant_bits ? "quantized linears the fused kernels cannot take" : "bf16",
                         tp > 1 ? " at tensor parallel" : "",
                         e->fusion == QB_FUSE_NONE ? "none" : e->fusion == QB_FUSE_EPILOGUES ? "epilogues" : "residual");
    return qb_choose_attn_prefill(e->hd, cc_major, o, &e->attn_prefill);
}

int qb_cuda_choices_check_tp(const qb_cuda_engine *e, int tp, qb_allreduce_impl impl) {
    const qb_engine_options *o = &e->opt;
    if (tp < 2) return 0; /* the tensor-parallel options have nothing to act on at one GPU (tp_reduce=none) */
    if (o->v[QB_EOPT_ALLREDUCE] == QB_ALLREDUCE_OPT_IPC_ONESHOT && impl != QB_AR_IPC_ONESHOT)
        return qb_errorf("--allreduce ipc-oneshot: not possible here (the ranks span nodes or exceed %d)",
                         QB_AR_MAX_RANKS);
    if (o->v[QB_EOPT_TP_EXCHANGE] == QB_ONOFF_ON && !e->xchg_on)
        return qb_errorf("--tp-exchange on: not possible here (it needs --allreduce ipc-oneshot on one node and "
                         "bf16 or tiled 4-bit linears)");
    if (o->v[QB_EOPT_ALLREDUCE_NORM] == QB_AR_NORM_OPT_FUSED && !e->xchg_on &&
        (impl != QB_AR_IPC_ONESHOT || e->H > QB_IPC_NORM_MAX_DIM))
        return qb_errorf("--allreduce-norm fused: not possible here (it needs ipc-oneshot and hidden size <= %d)",
                         QB_IPC_NORM_MAX_DIM);
    return 0;
}

/* Named condition for the decode-attention split size: the largest power-of-two multiple of 64 (up to 2048)
 * that still gives splits x kv heads >= 120 blocks. Why: on the H100 the best chunk leaves about 128 blocks (one
 * round of the 132 SMs, the merge's partials then a small share of the KV bytes), e.g. 7B ctx 4096 -> 128,
 * 16384 -> 512, 32768 -> 1024, 65536 -> 2048; 14B/72B ctx 4096 -> 256; 0.5B ctx 32768 -> 512. 120 rather than
 * 128 so that contexts just under a power of two keep the larger chunk, which read faster there (timings:
 * docs/PERFORMANCE.md, "Measurements behind the rules in the code", "Decode attention: split size"). Splits
 * grow with the context, so the chunk never shrinks as it grows: each level serves one band of contexts. */
int qb_cuda_decode_chunk_for(const qb_cuda_engine *e, int context_len) {
    const int want_blocks = 120;
    int chunk = 64;
    for (int lv = 1; lv < QB_CUDA_DECODE_LEVELS; lv++) {
        int next = chunk * 2;
        long splits = (context_len + next - 1) / next;
        if (splits * e->hkv < want_blocks) break;
        chunk = next;
    }
    return chunk;
}
