/* gemv_quant.cuh - decode GEMV y[N] = W[N][K] . x[K] on GPTQ-Int4/Int8 and AWQ weights, read in the
 * K-contiguous layout of src/engine/quant_repack.h (qb_qmat, made once at load time), and the dequantization
 * to dense bf16 used for prefill (then a bf16 GEMM).
 *
 * Layout: qweight [N][K*bits/32] u32 (row n, word w holds k = w*32/bits + j at bits [bits*j, +bits)); sz [N][K/group]
 * u32 = f16 scale | zero << 16; W = scale * (q - zero). x and y are bf16 bits (y_f32: fp32 output instead, e.g.
 * for logits); exactly one output is non-NULL. Arithmetic of the CUDA-core kernel: q - zero exact in fp32
 * (magic-number conversion), products and sums fp32, the scale applied once per 16-byte piece and row.
 * Requirements (all Qwen2.5 shapes at every legal TP): bits 4 or 8; K and group_size multiples of 128/bits (one
 * 16-byte piece), K a multiple of group_size; qweight, sz and x 16-byte / 4-byte / 16-byte aligned.
 * qb_launch_gemv_quant picks the kernel by a rule on N, K and the SM count (measured on an H100; the rule is
 * spelled out at qb_gemv_quant_pick in gemv_quant.cu): 4 bits with K and group_size multiples of 128 (all Qwen2.5
 * GPTQ-Int4 and AWQ releases): the tensor-core kernel, 8 warps per tile, unroll 2, guarded when that needs fewer
 * waves of blocks; 8 bits: the CUDA-core kernel with 2 rows per warp unless N < 32 x SMs, then the tensor-core
 * kernel with 16 warps per tile, unroll 4; other shapes: the CUDA-core kernel. No other choice is taken: the
 * variants that lost (the CUDA-core kernel for every shape, the tensor-core kernel with warps per tile by shape, the
 * cp.async tensor-core kernel) live in the kernel lab (dev/cuda/), which times them against this rule.
 * _variant forces the CUDA-core kernel with 1, 2 or 4 rows per warp (tests, benchmarks).
 * All return 0, or -1 with a qb_errorf message.
 */
#ifndef QB_KERNELS_GEMV_QUANT_CUH
#define QB_KERNELS_GEMV_QUANT_CUH
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_gemv_quant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k, int bits,
                         int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream);
int qb_launch_gemv_quant_variant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                 int bits, int group_size, uint16_t *y_bf16, float *y_f32, int rows_per_warp,
                                 cudaStream_t stream);
/* Tensor-core GEMV (mma.sync bf16 x bf16, fp32 sums; q - zero exact in bf16, exact products like the CUDA-core
 * kernel, the scale applied once per 128 (4 bits) or 64 (8 bits) values) with its tuning named: warps_per_tile 1, 2,
 * 4, 8, 16 warps splitting K of each tile of 16 rows; unroll = the number of steps (16 rows x 16 bytes per lane: 128
 * values at 4 bits, 64 at 8) each warp loads ahead, 2 or 4; guarded 1 = a branch skips steps past the end (fewer
 * registers; 0 computes them on zeros so the steps' mma chains interleave). Combinations: (2, 0), (2, 1), (4, 0).
 * Refuses what qb_gemv_quant_tc_supported does not hold (4 bits: K and group_size multiples of 128; 8 bits: of 64). */
int qb_gemv_quant_tc_supported(int bits, int k, int group_size);
int qb_launch_gemv_quant_tc_tuned(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                  int bits, int group_size, uint16_t *y_bf16, float *y_f32, int warps_per_tile,
                                  int unroll, int guarded, cudaStream_t stream);
/* Names in `name` the kernel qb_launch_gemv_quant runs for this shape (the rule), e.g. "tc W8 U2g" or
 * "cuda-core rows/warp 2" (benchmarks, logs). Returns 0. */
int qb_gemv_quant_default_choice(int n, int k, int bits, int group_size, char *name, size_t name_len);
/* w_out [N][K] bf16 bits = bf16(scale * (q - zero)) (round to nearest even; exact fp32 product first). */
int qb_launch_dequant_quant_bf16(const uint32_t *qweight, const uint32_t *sz, int n, int k, int bits, int group_size,
                                 uint16_t *w_out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
