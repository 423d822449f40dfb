/* qkv_rope.cuh - after the fused q|k|v projection: add the bias, rotate q and k (RoPE, NeoX rotate_half form,
 * tables from engine/rope.h), write q for attention and append k, v to the layer's KV cache.
 *   qkv  (n, (hq + 2 hkv) * hd) bf16: q heads, then k heads, then v heads, as the projection wrote them
 *   bias ((hq + 2 hkv) * hd) fp32, or NULL
 *   row i is at position *start_pos + i (start_pos lives in device memory so a captured graph can replay it)
 *   cos_t, sin_t (max_pos, hd/2) fp32
 *   q_out (n, hq, hd) bf16;  k_cache, v_cache (hkv, max_seq, hd) bf16
 */
#ifndef QB_KERNELS_QKV_ROPE_CUH
#define QB_KERNELS_QKV_ROPE_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_qkv_rope(const uint16_t *qkv, const float *bias, int n, int hq, int hkv, int hd,
                       const int *start_pos, const float *cos_t, const float *sin_t, uint16_t *q_out,
                       uint16_t *k_cache, uint16_t *v_cache, int max_seq, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
