/* embedding.cu - token embedding lookup (see embedding.cuh). Out-of-range ids read row 0 rather than
 * outside the table (the harness validates ids; the kernel must never fault). */
#include "common.cuh"
#include "embedding.cuh"

__global__ void qb_embedding_kernel(const qb_bf16 *table, int vocab, int hidden, const int32_t *tokens, float *out) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int row = blockIdx.x;
    int32_t tok = tokens[row];
    if (tok < 0 || tok >= vocab) tok = 0;
    const qb_bf16 *src = table + (size_t)tok * hidden;
    float *dst = out + (size_t)row * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = __bfloat162float(src[i]);
}

extern "C" int qb_launch_embedding(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n,
                                   float *out, cudaStream_t stream) {
    if (n <= 0 || hidden <= 0) return qb_errorf("embedding: bad sizes n=%d hidden=%d", n, hidden);
    QB_LAUNCH("embedding", qb_embedding_kernel, dim3(n), dim3(256), 0, stream, (const qb_bf16 *)table, vocab, hidden,
              tokens, out);
    return 0;
}
