/* random_fill_quant.cuh - random GPTQ / AWQ weights made on the GPU directly in the repacked layout of the
 * decode kernels (gemv_quant.cuh, engine/quant_repack.h), with exactly the values of engine/quant_pack.h: the
 * same matrix as qb_linear_random_quant + qb_qmat_from_linear on the host, for this rank's slice.
 * The slice is rows [row0, row0 + n) (output features) x columns [col0, col0 + k) (input features) of the full
 * [n_full][k_full] logical matrix; ids are qb_tensor_id("<prefix>.qweight"), ".qzeros", ".scales"
 * (prefix e.g. "model.layers.3.mlp.up_proj"); awq selects AWQ's zero-point rule and q range.
 * Requirements as gemv_quant.cuh (k, group multiples of 32/bits * 4; col0 a multiple of group).
 */
#ifndef QB_KERNELS_RANDOM_FILL_QUANT_CUH
#define QB_KERNELS_RANDOM_FILL_QUANT_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_random_fill_qmat(uint32_t *qweight, uint32_t *sz, int n, int k, int bits, int group_size, int awq,
                               long n_full, long row0, long col0, uint64_t seed, uint64_t qweight_id,
                               uint64_t qzeros_id, uint64_t scales_id, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
