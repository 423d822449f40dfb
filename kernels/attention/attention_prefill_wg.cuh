/* attention_prefill_wg.cuh - internal to attention_prefill.cu: the Hopper wgmma prefill attention kernel
 * (attention_prefill_wg.cu), same arguments and checks as qb_launch_attention_prefill (done by the caller);
 * pipelined 0: the wg kernel (head_dim 64 only; refused at 128, where it is wrong), 1: the wgp kernel (S one tile
 * ahead; head_dim 64 and 128).
 */
#ifndef QB_KERNELS_ATTENTION_PREFILL_WG_CUH
#define QB_KERNELS_ATTENTION_PREFILL_WG_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
int qb_attn_prefill_wg_launch(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq, int n,
                              int start, int hq, int hkv, int hd, uint16_t *out, int pipelined, cudaStream_t stream);
#endif
