/* nonfinite.cu - the first NaN / Inf of a device buffer (see nonfinite.cuh): a grid-stride loop, each hit
 * lowers the recorded index with atomicMin. Memory-bound; a 15 GB model takes milliseconds. */
#include <cuda_runtime.h>
#include <stdio.h>

#include "nonfinite.cuh"
extern "C" {
#include "util/error.h"
}

template <typename T>
__global__ void qb_first_nonfinite_kernel(const T *data, size_t n, uint32_t exp_mask, unsigned long long *first) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        if (qb_bits_nonfinite((uint32_t)data[i], exp_mask)) atomicMin(first, (unsigned long long)i);
}

extern "C" int qb_launch_first_nonfinite(const void *data, size_t n, int elem_bytes, uint32_t exp_mask,
                                         unsigned long long *d_first, void *stream) {
    if (n == 0) return 0;
    if (!data || !d_first || (elem_bytes != 2 && elem_bytes != 4))
        return qb_errorf("nonfinite check: bad arguments (%zu elements of %d bytes)", n, elem_bytes);
    const int threads = 256;
    size_t want = (n + threads - 1) / threads;
    int blocks = want > 4096 ? 4096 : (int)want;
    cudaStream_t s = (cudaStream_t)stream;
    if (elem_bytes == 2)
        qb_first_nonfinite_kernel<<<blocks, threads, 0, s>>>((const uint16_t *)data, n, exp_mask, d_first);
    else
        qb_first_nonfinite_kernel<<<blocks, threads, 0, s>>>((const uint32_t *)data, n, exp_mask, d_first);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return qb_errorf("nonfinite check: launch failed: %s", cudaGetErrorString(err));
    return 0;
}
