/* add_rmsnorm.cuh - residual add fused with RMSNorm, per row of (n, dim):
 *   residual (fp32) += delta (bf16, or NULL for none);  out (bf16) = residual * rsqrt(mean(residual^2)+eps) * w.
 * Matches qb_ref_add_rmsnorm (fp32 arithmetic) up to the bf16 rounding of delta and out.
 */
#ifndef QB_KERNELS_ADD_RMSNORM_CUH
#define QB_KERNELS_ADD_RMSNORM_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_add_rmsnorm(float *residual, const uint16_t *delta, const float *w, int n, int dim, float eps,
                          uint16_t *out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
