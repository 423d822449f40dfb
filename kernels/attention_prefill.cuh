/* attention_prefill.cuh - causal grouped-query attention for a chunk of n prompt tokens at positions
 * start .. start+n-1, flash style (online softmax, no score matrix), bf16 tensor cores (mma.sync m16n8k16).
 *   q (n, hq, hd) bf16 (rotated); k_cache, v_cache (hkv, max_seq, hd) bf16 of one layer holding positions
 *   0 .. start+n-1; out (n, hq, hd) bf16. hd 64 or 128; hq / hkv query heads share a kv head.
 * The query rows of one kv head's group, (token, head-in-group) flattened, are tiled together, so each
 * K/V tile is read once for the whole group.
 * qb_launch_attention_prefill picks by device and head_dim: on Hopper (sm_90) the wgmma kernels (wg at head_dim
 * 64, wgp at 128; built for sm_90a), elsewhere fa2 (128-row tiles, double-buffered K/V, mma.sync). The
 * environment can force one: QB_ATTN_PREFILL=old (the first 64-row single-buffered kernel), fa2, wg or wgp.
 */
#ifndef QB_KERNELS_ATTENTION_PREFILL_CUH
#define QB_KERNELS_ATTENTION_PREFILL_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int qb_launch_attention_prefill(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                int n, int start, int hq, int hkv, int hd, uint16_t *out, cudaStream_t stream);

/* Kernel choice for tests and benchmarks: DEFAULT follows QB_ATTN_PREFILL as above. */
enum { QB_ATTN_PREFILL_DEFAULT = 0, QB_ATTN_PREFILL_OLD = 1, QB_ATTN_PREFILL_FA2 = 2, QB_ATTN_PREFILL_WG = 3,
       QB_ATTN_PREFILL_WGP = 4 };
int qb_launch_attention_prefill_variant(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                        int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                        int variant, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
