/* test_cuda_bf16.h - bf16 helpers shared by the CUDA tests of the fused GEMVs (test_decode_fusion,
 * test_tp_exchange): a random bf16 weight matrix made on the device with its host copy, and bf16 rounding.
 * Header-only, after test_cuda_util.h (CK, dev_alloc_guarded).
 */
#ifndef QB_TEST_CUDA_BF16_H
#define QB_TEST_CUDA_BF16_H

#include "random_fill.cuh"
#include "test_cuda_util.h"

static inline float round_bf16(float v) { return qb_bf16_to_float(qb_float_to_bf16(v)); }

/* A random bf16 (n, k) matrix made on the device (random_init values), with its host copy. */
static inline uint16_t *make_weight(long n, long k, uint64_t id, uint16_t **host) {
    uint16_t *d = dev_alloc_guarded((size_t)n * k * 2);
    if (qb_launch_random_fill_bf16(d, n, k, 0, 0, k, 7, id, 0) != 0) {
        fprintf(stderr, "FATAL random fill: %s\n", qb_last_error());
        exit(1);
    }
    CK(cudaDeviceSynchronize());
    *host = malloc((size_t)n * k * 2);
    CK(cudaMemcpy(*host, d, (size_t)n * k * 2, cudaMemcpyDeviceToHost));
    return d;
}

#endif
