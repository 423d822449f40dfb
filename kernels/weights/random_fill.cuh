/* random_fill.cuh - random weights made on the GPU with exactly the values of engine/random_init.h.
 * A (rows, cols) block of a full tensor with full_cols columns, starting at (row0, col0), is written densely to
 * dst: element (r, c) takes the value of full-tensor index (row0 + r) * full_cols + col0 + c, so a
 * tensor-parallel slice equals the slice of the whole tensor.
 *   _bf16: linear weights (bf16 bits);  _bias_f32: biases as float;  _norm_f32: norm weights (1 + U(-0.1, 0.1)).
 */
#ifndef QB_KERNELS_RANDOM_FILL_CUH
#define QB_KERNELS_RANDOM_FILL_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_random_fill_bf16(uint16_t *dst, long rows, long cols, long row0, long col0, long full_cols,
                               uint64_t seed, uint64_t tensor_id, cudaStream_t stream);
int qb_launch_random_fill_bias_f32(float *dst, long n, long start, uint64_t seed, uint64_t tensor_id,
                                   cudaStream_t stream);
int qb_launch_random_fill_norm_f32(float *dst, long n, uint64_t seed, uint64_t tensor_id, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
