/* gemm.cuh - prefill matrix product through cuBLASLt: y (m, n) = x (m, k) . W^T, W (n, k) row-major as in the
 * checkpoint; bf16 operands and output, fp32 accumulation. The heuristic's choice is cached per shape.
 * A qb_gemm owns the cuBLASLt handle and its workspace (device bytes counted by the engine's plan).
 */
#ifndef QB_KERNELS_GEMM_CUH
#define QB_KERNELS_GEMM_CUH
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct qb_gemm qb_gemm;
/* workspace: device memory of workspace_bytes owned by the caller (may be NULL when workspace_bytes is 0). */
int qb_gemm_create(void *workspace, size_t workspace_bytes, qb_gemm **out);
void qb_gemm_destroy(qb_gemm *g);
int qb_gemm_bf16(qb_gemm *g, const uint16_t *x, const uint16_t *w, int m, int n, int k, uint16_t *y,
                 cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
