/* argmax_tp.cuh - the greedy choice across vocabulary shards (tensor parallel), in one 8-byte reduction.
 * qb_launch_argmax_pack: key = (order(logits[*local]) << 32) | ~(index_base + *local), so that the largest key
 *   over the ranks (an all-reduce max on uint64) is the largest logit, ties going to the smallest global index
 *   (the rule of qb_ref_argmax); order(f) = f >= 0 ? bits(f) | 0x80000000 : ~bits(f).
 * qb_launch_argmax_unpack: token = ~(uint32)key; then the decode-state update of qb_launch_argmax
 *   (*token_out = token; token_log[*step] = token; (*step)++; *pos += pos_advance).
 */
#ifndef QB_KERNELS_ARGMAX_TP_CUH
#define QB_KERNELS_ARGMAX_TP_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_argmax_pack(const float *logits, const int32_t *local, int index_base, uint64_t *key,
                          cudaStream_t stream);
int qb_launch_argmax_unpack(const uint64_t *key, int32_t *token_out, int32_t *token_log, int *step, int *pos,
                            int pos_advance, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
