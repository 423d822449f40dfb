/* silu_mul.cuh - SiLU-gated MLP activation: out (n, I) = silu(gu[:, 0:I]) * gu[:, I:2I], bf16 in and out,
 * fp32 arithmetic (gu is the fused gate|up projection output, row stride 2I).
 */
#ifndef QB_KERNELS_SILU_MUL_CUH
#define QB_KERNELS_SILU_MUL_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_silu_mul(const uint16_t *gate_up, int n, int inter, uint16_t *out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
