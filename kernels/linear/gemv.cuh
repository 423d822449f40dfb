/* gemv.cuh - the decode matrix-vector product y[N] = W[N][K] . x[K] for bf16 weights, fp32 accumulation.
 * The decode step is bound by reading W once: each thread streams 16-byte pieces of ROWS rows at a time,
 * several in flight, x is read through the L1. Output bf16 (y_bf16) or fp32 (y_f32, for logits); exactly one
 * of the two is non-NULL. K must be a multiple of 8 and W, x 16-byte aligned (all Qwen2.5 shapes are).
 * qb_launch_gemv picks the variant by shape; qb_launch_gemv_variant lets benchmarks and tests force one
 * (rows_per_warp 1, 2 or 4).
 */
#ifndef QB_KERNELS_GEMV_CUH
#define QB_KERNELS_GEMV_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "tp_exchange.cuh"
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                   cudaStream_t stream);
int qb_launch_gemv_variant(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                           int rows_per_warp, cudaStream_t stream);

/* ---- Fused decode GEMVs (one token; bf16 weights; the kernels behind QB_DECODE_FUSION, see cuda_forward.c) ----
 * One kernel reads W once and does around it what separate kernels did before:
 *   input (qb_gemv_input): the bf16 vector x[k], or (x NULL) RMSNorm of the fp32 residual computed by every block
 *     in its prologue: x = bf16(resid * rsqrt(mean(resid^2) + eps) * norm_w) (same arithmetic as add_rmsnorm;
 *     each block sums the squares in the same order, so all blocks use the same scale; k <= 8192);
 *   epilogue: store y (bf16), add y to the fp32 residual (resid[i] += bf16(y[i]), one thread per element, so no
 *     block ever reads a residual element another block writes), bias + RoPE + KV-cache append of the fused
 *     q|k|v projection (as qkv_rope.cuh), or SiLU(gate) * up of the fused gate|up projection (as silu_mul.cuh).
 * A warp owns a pair of rows where the epilogue needs both (RoPE: i and i + hd/2 of a head; SiLU: gate j and up
 * j), and small shapes split each row over 2-8 warps of a block (summed in shared memory, fixed order) so more
 * SMs pull bytes. Results match the unfused kernels up to the order of fp32 sums. */
typedef struct {
    const uint16_t *x;    /* bf16 [k], or NULL: normalise the residual below */
    const float *resid;   /* fp32 [k] residual stream (read only) */
    const float *norm_w;  /* fp32 [k] RMSNorm weight */
    float eps;
    /* tensor parallel (x NULL, tp set): normalise resid + the partial sums exchanged at point tp_point
     * (tp_exchange.cuh); block 0 writes that sum, the new residual, to resid_next (not resid: other blocks read it) */
    const qb_tp_exchange *tp;
    int tp_point;
    float *resid_next;
} qb_gemv_input;

/* y[n] (bf16) = W . x */
int qb_launch_gemv_fused_store(const uint16_t *w, int n, int k, const qb_gemv_input *in, uint16_t *y,
                               cudaStream_t stream);
/* resid[n] += bf16(W . x) */
int qb_launch_gemv_resid_add(const uint16_t *w, int n, int k, const qb_gemv_input *in, float *resid,
                             cudaStream_t stream);
/* The row-parallel linear at tensor parallel: y = W . x pushed (fp32) into this rank's slot of exchange point
 * `point` on every rank (tp_exchange.cuh); the next fused GEMV's input sums it. */
int qb_launch_gemv_tp_push(const uint16_t *w, int n, int k, const qb_gemv_input *in, const qb_tp_exchange *tp,
                           int point, cudaStream_t stream);
/* W: (hq + 2 hkv) * hd rows (q heads, k heads, v heads); then exactly qb_launch_qkv_rope for one row at position
 * *pos: bias (fp32 or NULL), RoPE of q and k, q -> q_out (hq, hd), k and v -> the caches (hkv, max_seq, hd). */
int qb_launch_gemv_qkv_rope(const uint16_t *w, int k, const qb_gemv_input *in, const float *bias, int hq, int hkv,
                            int hd, const int *pos, const float *cos_t, const float *sin_t, uint16_t *q_out,
                            uint16_t *k_cache, uint16_t *v_cache, int max_seq, cudaStream_t stream);
/* W: 2 * inter rows (gate, then up); act[inter] = bf16(silu(bf16(gate)) * bf16(up)). */
int qb_launch_gemv_gate_up_silu(const uint16_t *w, int inter, int k, const qb_gemv_input *in, uint16_t *act,
                                cudaStream_t stream);
/* Benchmarks and tests: force the K split (1, 2, 4 or 8 warps per row; 0 = by shape) and the grid cap (blocks per
 * SM; 0 = default 2), for every later fused launch of the process. */
void qb_gemv_fused_tuning(int k_split, int blocks_per_sm);
#ifdef __cplusplus
}
#endif
#endif
