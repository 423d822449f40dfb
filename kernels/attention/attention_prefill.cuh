/* attention_prefill.cuh - causal grouped-query attention for a chunk of n prompt tokens at positions
 * start .. start+n-1, flash style (online softmax, no score matrix), bf16 tensor cores (mma.sync m16n8k16).
 *   q (n, hq, hd) bf16 (rotated); k_cache, v_cache (hkv, max_seq, hd) bf16 of one layer holding positions
 *   0 .. start+n-1; out (n, hq, hd) bf16. hd 64 or 128; hq / hkv query heads share a kv head.
 * The query rows of one kv head's group, (token, head-in-group) flattened, are tiled together, so each
 * K/V tile is read once for the whole group.
 * qb_launch_attention_prefill picks by device and head_dim (qb_attention_prefill_auto_variant): on Hopper (sm_90)
 * the wgmma kernels (wg at head_dim 64, wgp at 128; built for sm_90a), elsewhere fa2 (128-row tiles,
 * double-buffered K/V, mma.sync). Kernels that lost or are wrong (the first 64-row kernel, wg at head_dim 128)
 * live in the kernel lab (dev/cuda/), never in the product.
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

/* Kernel choice (tests, benchmarks, the engine's options): DEFAULT = qb_attention_prefill_auto_variant for this
 * device; WG is refused (-1 with a message) at head_dim 128, where it is wrong. */
enum { QB_ATTN_PREFILL_DEFAULT = 0, QB_ATTN_PREFILL_FA2 = 2, QB_ATTN_PREFILL_WG = 3, QB_ATTN_PREFILL_WGP = 4 };
int qb_launch_attention_prefill_variant(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                        int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                        int variant, cudaStream_t stream);
/* The automatic rule, a pure function (no device query): the variant for head_dim hd on a GPU of compute capability
 * cc_major - WG at 64 and WGP at 128 on Hopper (9), FA2 elsewhere (measured: docs/PERFORMANCE.md). */
int qb_attention_prefill_auto_variant(int hd, int cc_major);
#ifdef __cplusplus
}
#endif
#endif
