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
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                   cudaStream_t stream);
int qb_launch_gemv_variant(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                           int rows_per_warp, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
