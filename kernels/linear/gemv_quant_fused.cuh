/* gemv_quant_fused.cuh - the fused decode GEMVs of gemv.cuh (normalising prologue; store, residual-add,
 * bias + RoPE + KV append and SiLU * up epilogues) for GPTQ / AWQ weights in the repacked layout of gemv_quant.cuh.
 * Same inputs (qb_gemv_input), same outputs and the same arithmetic around the product as the bf16 ones, so the
 * quantized decode runs the 6 kernels a layer of the bf16 one (cuda_forward.c); the product is the tensor-core
 * step of gemv_quant_tc.cuh (exact q - zero, fp32 sums), fed by a cp.async ring. The weights may be in the row
 * layout or the tiled one (quant_tile.cuh: 1 KiB contiguous per warp and step, faster on every timed shape:
 * docs/PERFORMANCE.md, "Fused decode and the tiled 4-bit layout").
 * Requirements: qb_gemv_quant_tc_supported(bits, k, group_size); the normalised input needs k <= 8192; RoPE needs
 * an even hd. All return 0, or -1 with a qb_errorf message.
 */
#ifndef QB_KERNELS_GEMV_QUANT_FUSED_CUH
#define QB_KERNELS_GEMV_QUANT_FUSED_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "gemv.cuh"

#ifdef __cplusplus
extern "C" {
#endif
/* The packed weights of one linear: qweight [n][k*bits/32] u32, sz [n][k/group_size] in the row layout of
 * gemv_quant.cuh (tiled 0), or in the tiled layout of quant_tile.cuh (tiled 1; its kind must be the one the
 * kernel's epilogue pairs rows by: ROPE for q|k|v, SILU for gate|up, ROWS for store and residual add). */
typedef struct {
    const uint32_t *qweight, *sz;
    int bits, group_size, tiled;
    int kind, hd, inter; /* tiled: QB_TILE_* and its hd / inter (the store maps slots to rows by them) */
} qb_gemv_qweights;

/* y[n] (bf16) = W . x (tiled weights of any kind: rows stored where they belong) */
int qb_launch_gemv_quant_fused_store(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in, uint16_t *y,
                                     cudaStream_t stream);
/* resid[n] += bf16(W . x) */
int qb_launch_gemv_quant_resid_add(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in, float *resid,
                                   cudaStream_t stream);
/* The row-parallel linear at tensor parallel: pushed into exchange point `point` (as qb_launch_gemv_tp_push) */
int qb_launch_gemv_quant_tp_push(const qb_gemv_qweights *w, int n, int k, const qb_gemv_input *in,
                                 const qb_tp_exchange *tp, int point, cudaStream_t stream);
/* as qb_launch_gemv_qkv_rope (gemv.cuh) */
int qb_launch_gemv_quant_qkv_rope(const qb_gemv_qweights *w, int k, const qb_gemv_input *in, const float *bias,
                                  int hq, int hkv, int hd, const int *pos, const float *cos_t, const float *sin_t,
                                  uint16_t *q_out, uint16_t *k_cache, uint16_t *v_cache, int max_seq,
                                  cudaStream_t stream);
/* as qb_launch_gemv_gate_up_silu (gemv.cuh): W has 2 * inter rows, gate then up */
int qb_launch_gemv_quant_gate_up_silu(const qb_gemv_qweights *w, int inter, int k, const qb_gemv_input *in,
                                      uint16_t *act, cudaStream_t stream);
/* Benchmarks and tests: the cp.async stages per warp (2, 3 or 4, lowered where the block would pass 48 KiB of shared
 * memory; 0 = the most that fit) and the grid cap in blocks per SM (0 = what the occupancy calculator allows). */
void qb_gemv_quant_fused_tuning(int stages, int blocks_per_sm);
/* Asks the occupancy calculator for every kernel variant now: call it before capturing a CUDA graph that launches
 * these kernels (a launch inside a capture that finds no answer assumes 2 blocks per SM). */
void qb_gemv_quant_fused_prepare(void);

#ifdef __cplusplus
}
#endif
#endif
