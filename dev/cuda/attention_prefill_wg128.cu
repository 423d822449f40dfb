/* attention_prefill_wg128.cu - kernel lab: the Hopper wgmma "wg" prefill attention kernel at head_dim 128, moved
 * out of the product because it is wrong there (relative errors up to 0.95 against the CPU reference,
 * docs/PERFORMANCE.md); the product keeps wg at head_dim 64 and runs wgp (S one tile ahead) at 128.
 * The device code is the product's (kernels/attention/attention_prefill_wg_kernels.cuh); only this instantiation is the
 * lab's. Launcher: qb_lab_attention_prefill_wg128 (lab_kernels.h), arguments as qb_launch_attention_prefill;
 * needs an sm_90 GPU.
 */
#include "attention_prefill_wg_kernels.cuh"
#include "lab_kernels.h"

extern "C" int qb_lab_attention_prefill_wg128(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                              int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                              cudaStream_t stream) {
    if (n <= 0 || start < 0 || start + n > max_seq)
        return qb_errorf("attention_prefill (wg128, lab): positions %d..%d outside the cache (%d)", start,
                         start + n - 1, max_seq);
    if (hkv <= 0 || hq % hkv != 0) return qb_errorf("attention_prefill (wg128, lab): heads q=%d kv=%d", hq, hkv);
    if (hd != 128) return qb_errorf("attention_prefill (wg128, lab): head_dim %d (this variant is head_dim 128)", hd);
    return qb_apw_launch<128, 0>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
}
