/* quant_repack.h - the one quantized layout the CUDA decode kernels read (kernels/linear/gemv_quant.cuh), made at
 * load time from a GPTQ or AWQ linear.
 *
 * Why one layout of our own: both checkpoint layouts put consecutive OUTPUT columns next to each other
 * (GPTQ packs along K but stores [K/pf][N]; AWQ packs along N), so a batch-1 GEMV reading them coalesced must
 * split K over many threads and blocks and reduce across blocks. Transposed to K-contiguous rows, a quantized
 * matrix is read exactly like the bf16 one: one warp streams its rows with 16-byte loads and sums with a warp
 * shuffle, no cross-block reduction, any N fills the GPU (the structure that reads bf16 weights near the
 * copy bandwidth: docs/PERFORMANCE.md, "GEMV dispatch"). The repacking is a transpose of 32-bit words for GPTQ and a
 * nibble reorder for AWQ.
 *
 *   qweight [N][K*bits/32] u32: row n, word w holds k = w*(32/bits) + j at bits [bits*j, +bits), LSB first
 *           (for GPTQ this is exactly the checkpoint's word qweight[w][n]);
 *   sz      [N][K/group] u32: f16 scale bits | true zero point << 16 (GPTQ: stored + 1, up to 256; AWQ: stored).
 *   W[n][k] = scale * (q - zero), as everywhere (quant_pack.h).
 */
#ifndef QB_ENGINE_QUANT_REPACK_H
#define QB_ENGINE_QUANT_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/weights.h"

typedef struct {
    int n, k, bits, group_size;
    uint32_t *qweight; /* [n][k*bits/32] */
    uint32_t *sz;      /* [n][k/group_size] */
} qb_qmat;

/* Repack a GPTQ (g_idx = k/group) or AWQ linear into out (host memory, malloc'd); threads as cpu_threads.h. */
int qb_qmat_from_linear(const qb_linear *l, qb_qmat *out, int threads);
void qb_qmat_free(qb_qmat *m);
size_t qb_qmat_qweight_bytes(const qb_qmat *m);
size_t qb_qmat_sz_bytes(const qb_qmat *m);
/* W[n][k] of the repacked matrix (tests). */
float qb_qmat_dequant_at(const qb_qmat *m, int n, int k);

#endif
