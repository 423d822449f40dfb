/* random_fill_quant.cu - random quantized weights in the repacked layout (see random_fill_quant.cuh).
 * One thread per 32-bit word of qweight (32/bits values of one row), then one thread per (row, group) of sz.
 */
#include "common.cuh"
#include "random_fill_quant.cuh"

#include "engine/quant_pack.h"

__global__ void qb_random_qweight_kernel(uint32_t *qweight, long total, int words_per_row, int bits, int awq,
                                         long n_full, long row0, long col0, uint64_t seed, uint64_t id) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (i >= total) return;
    long row = i / words_per_row;
    int w = (int)(i % words_per_row), pf = 32 / bits;
    uint64_t n = (uint64_t)(row0 + row);
    uint32_t word = 0;
    for (int j = 0; j < pf; j++) {
        uint64_t kk = (uint64_t)(col0 + (long)w * pf + j);
        word |= qb_random_quant_q(seed, id, kk * (uint64_t)n_full + n, bits, awq) << (bits * j);
    }
    qweight[i] = word;
}

__global__ void qb_random_sz_kernel(uint32_t *sz, long total, int groups, int bits, int awq, long n_full, long row0,
                                    long g0, uint64_t seed, uint64_t zid, uint64_t sid) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (i >= total) return;
    long row = i / groups;
    uint64_t g = (uint64_t)(g0 + i % groups), n = (uint64_t)(row0 + row), idx = g * (uint64_t)n_full + n;
    uint32_t zero = qb_random_quant_zero_stored(seed, zid, idx, bits, awq) + (awq ? 0u : 1u);
    sz[i] = (uint32_t)qb_random_quant_scale(seed, sid, idx, bits) | zero << 16;
}

extern "C" int qb_launch_random_fill_qmat(uint32_t *qweight, uint32_t *sz, int n, int k, int bits, int group_size,
                                          int awq, long n_full, long row0, long col0, uint64_t seed,
                                          uint64_t qweight_id, uint64_t qzeros_id, uint64_t scales_id,
                                          cudaStream_t stream) {
    if ((bits != 4 && bits != 8) || (awq && bits != 4) || n <= 0 || k <= 0 || group_size <= 0 || k % group_size ||
        group_size % (128 / bits) || col0 % group_size || row0 < 0 || row0 + n > n_full)
        return qb_errorf("random_fill_qmat: unsupported slice N=%d K=%d bits %d group %d rows [%ld, +%d) of %ld, "
                         "col0 %ld", n, k, bits, group_size, row0, n, n_full, col0);
    int words = k * bits / 32, groups = k / group_size;
    long total = (long)n * words;
    QB_LAUNCH("random_fill_qmat", qb_random_qweight_kernel, dim3((unsigned)((total + 255) / 256)), dim3(256), 0,
              stream, qweight, total, words, bits, awq, n_full, row0, col0, seed, qweight_id);
    total = (long)n * groups;
    QB_LAUNCH("random_fill_qmat", qb_random_sz_kernel, dim3((unsigned)((total + 255) / 256)), dim3(256), 0, stream,
              sz, total, groups, bits, awq, n_full, row0, col0 / group_size, seed, qzeros_id, scales_id);
    return 0;
}
