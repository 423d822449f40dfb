/* attention_prefill_wg.cu - prefill attention on Hopper warpgroup MMA (wgmma, sm_90a): the "wg" and "wgp"
 * variants of attention_prefill.cuh (the variant argument, or the automatic rule on sm_90). The kernels themselves
 * live in attention_prefill_wg_kernels.cuh (shared with the kernel lab); this file instantiates what the product
 * runs: wg at head_dim 64, wgp at 64 and 128. wg at head_dim 128 fails the checks (errors up to 0.95 relative,
 * docs/PERFORMANCE.md) and lives in the lab (dev/cuda/attention_prefill_wg128.cu); here it is refused.
 * Block: 2 warpgroups (256 threads), 128 query rows of one kv head's group (64 per warpgroup), 128-key K/V tiles
 * double-buffered in shared memory by cp.async, one __syncthreads per tile (as the fa2 kernel).
 *   S = Q K^T: wgmma m64n128k16 per 16 head dims, A = Q fragments held in registers (ldmatrix once from a padded
 *     Q tile), B = the K tile in the canonical K-major 128-byte-swizzled layout (descriptor).
 *   O += P V: wgmma m64n{hd}k16 per 16 keys, A = P re-packed from the S accumulators (bf16), B = the V tile in
 *     the same physical layout read as N-major (transposed) 128-byte-swizzled.
 * K/V tile layout: head dims split into 64-wide column blocks; block cb holds 128 key rows of 128 bytes; the
 * 16-byte chunk c of key row r sits at chunk c ^ (r % 8) (the hardware's 128-byte swizzle, tiles 1024-aligned).
 * Softmax, causal masking and the 1-D longest-first grid as in the fa2 kernel; a warpgroup skips a key tile
 * wholly in its future. wg runs S, softmax and P.V of a tile one after the other; wgp keeps S one tile ahead so
 * the softmax of tile j+1 overlaps P.V of tile j (see its kernel). sm_90a only: elsewhere the kernels trap and
 * the launcher refuses.
 */
#include "attention_prefill_wg.cuh"
#include "attention_prefill_wg_kernels.cuh"

int qb_attn_prefill_wg_launch(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq, int n,
                              int start, int hq, int hkv, int hd, uint16_t *out, int pipelined, cudaStream_t stream) {
    if (pipelined && hd == 128)
        return qb_apw_launch<128, 1>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    if (pipelined && hd == 64)
        return qb_apw_launch<64, 1>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    if (!pipelined && hd == 64)
        return qb_apw_launch<64, 0>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    if (!pipelined && hd == 128)
        return qb_errorf("attention_prefill (wg): head_dim 128 refused (the wg kernel is wrong there; wgp or fa2 "
                         "run it)");
    return qb_errorf("attention_prefill (wg): head_dim %d unsupported (64 or 128)", hd);
}
