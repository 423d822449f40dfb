/* argmax.cuh - greedy choice over the logits, and the decode state that lives in device memory.
 * qb_launch_argmax: token = argmax(logits[n]) (ties -> smallest index, the rule of qb_ref_argmax); then
 *   *token_out = token; token_log[*step] = token; (*step)++; *pos += pos_advance. One block, so the state
 *   update is ordered after the reduction without a host round trip (a CUDA graph replays it as is).
 * qb_launch_set_int: *dst = value, on the stream.
 */
#ifndef QB_KERNELS_ARGMAX_CUH
#define QB_KERNELS_ARGMAX_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_argmax(const float *logits, int n, int32_t *token_out, int32_t *token_log, int *step, int *pos,
                     int pos_advance, cudaStream_t stream);
int qb_launch_set_int(int *dst, int value, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
