/* dense_f16.cuh - the f16 (not bf16) dense tensors of GPTQ / AWQ checkpoints on the GPU: the embedding lookup
 * and the lm_head decode GEMV, mirroring embedding.cuh and gemv.cuh with f16 weights (x and y as there: fp32
 * residual out of the lookup; bf16 x, bf16 or fp32 y for the GEMV). f16 -> fp32 is exact, so the results match
 * the CPU reference's qb_ref_embedding_f16 / qb_ref_matmul_f16 up to summation order.
 * GEMV requirements: K a multiple of 8, W and x 16-byte aligned; exactly one output non-NULL.
 */
#ifndef QB_KERNELS_DENSE_F16_CUH
#define QB_KERNELS_DENSE_F16_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_embedding_f16(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n, float *out,
                            cudaStream_t stream);
int qb_launch_gemv_f16(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                       cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
