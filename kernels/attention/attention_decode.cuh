/* attention_decode.cuh - one query token against the KV cache, split over the cache ("flash decoding").
 *   q (hq, hd) bf16 (rotated); k_cache, v_cache (hkv, max_seq, hd) bf16 of one layer; the query is at position
 *   *pos (device memory), so keys 0 .. *pos are attended. out (hq, hd) bf16.
 * Block (split s, kv head h) reads keys [s*chunk, (s+1)*chunk) of head h ONCE for all the query heads of its
 * group, keeping an online softmax; a second kernel merges the splits. The grid covers len_cap keys (a graph
 * replays it unchanged as the context grows); splits past the context (*pos + 1) return at once.
 * The split kernel runs on the tensor cores (per-warp online softmax, no block barrier per tile); the first, CUDA-core
 * split kernel lost (slower on every measured shape: docs/PERFORMANCE.md, "Decode attention") and lives in the
 * kernel lab (dev/cuda/).
 * chunk: multiple of 64; the host picks it by context length (smaller chunks -> more blocks).
 * Workspace: part_o of qb_attention_decode_workspace_floats() floats, part_ml of hq * ceil(max_seq/64) * 2.
 */
#ifndef QB_KERNELS_ATTENTION_DECODE_CUH
#define QB_KERNELS_ATTENTION_DECODE_CUH
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
size_t qb_attention_decode_workspace_floats(int hq, int hd, int max_seq);
int qb_launch_attention_decode(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                               int len_cap, const int *pos, int hq, int hkv, int hd, int chunk, float *part_o, float *part_ml,
                               uint16_t *out, cudaStream_t stream);

/* The merge alone: the splits' partial (o, m, l) of part_o / part_ml (n_splits splits of chunk keys, the layout the
 * split kernel writes) into out (hq, hd) bf16. For split kernels outside this file (the kernel lab's). */
int qb_launch_attention_decode_combine(const float *part_o, const float *part_ml, int n_splits, int chunk,
                                       const int *pos, int hq, int hd, uint16_t *out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
