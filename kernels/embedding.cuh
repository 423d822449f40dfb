/* embedding.cuh - token embedding lookup: residual (n, H) fp32 = table[tokens[i]] (table (vocab, H) bf16).
 * tokens is a device array (decode reads the token the previous step chose, inside a CUDA graph).
 */
#ifndef QB_KERNELS_EMBEDDING_CUH
#define QB_KERNELS_EMBEDDING_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_embedding(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n, float *out,
                        cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
