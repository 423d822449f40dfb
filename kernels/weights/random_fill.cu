/* random_fill.cu - on-device random weights (see random_fill.cuh and engine/random_init.h). */
#include "common.cuh"
#include "engine/random_init.h"
#include "random_fill.cuh"

#define QB_FILL_BLOCKS (132 * 8)

__global__ void qb_fill_bf16_kernel(uint16_t *dst, long rows, long cols, long row0, long col0, long full_cols,
                                    uint64_t seed, uint64_t tensor_id) {
    long total = rows * cols;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        long r = i / cols, c = i - r * cols;
        uint64_t index = (uint64_t)((row0 + r) * full_cols + col0 + c);
        dst[i] = qb_random_weight_bf16(seed, tensor_id, index);
    }
}

__global__ void qb_fill_bias_kernel(float *dst, long n, long start, uint64_t seed, uint64_t tensor_id) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        dst[i] = qb_bf16_to_float(qb_random_weight_bf16(seed, tensor_id, (uint64_t)(start + i)));
}

__global__ void qb_fill_norm_kernel(float *dst, long n, uint64_t seed, uint64_t tensor_id) {
    /* qb_random_norm's 1 + s*u with the multiply and add rounded separately, as the host computes it (nvcc
     * would otherwise fuse them into one FMA and differ from the CPU in the last bit) */
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float u = qb_random_unit(seed, tensor_id, (uint64_t)i);
        dst[i] = qb_bf16_to_float(qb_float_to_bf16(__fadd_rn(1.0f, __fmul_rn(QB_RANDOM_NORM_SCALE, u))));
    }
}

static int qb_fill_blocks(long n) {
    long b = (n + 255) / 256;
    return (int)(b < QB_FILL_BLOCKS ? (b < 1 ? 1 : b) : QB_FILL_BLOCKS);
}

extern "C" int qb_launch_random_fill_bf16(uint16_t *dst, long rows, long cols, long row0, long col0,
                                          long full_cols, uint64_t seed, uint64_t tensor_id, cudaStream_t stream) {
    if (rows <= 0 || cols <= 0 || col0 + cols > full_cols)
        return qb_errorf("random_fill_bf16: bad block rows=%ld cols=%ld col0=%ld full_cols=%ld", rows, cols, col0,
                         full_cols);
    qb_fill_bf16_kernel<<<qb_fill_blocks(rows * cols), 256, 0, stream>>>(dst, rows, cols, row0, col0, full_cols,
                                                                          seed, tensor_id);
    QB_LAUNCH_CHECK("random_fill_bf16");
    return 0;
}

extern "C" int qb_launch_random_fill_bias_f32(float *dst, long n, long start, uint64_t seed, uint64_t tensor_id,
                                              cudaStream_t stream) {
    if (n <= 0) return qb_errorf("random_fill_bias: bad length %ld", n);
    qb_fill_bias_kernel<<<qb_fill_blocks(n), 256, 0, stream>>>(dst, n, start, seed, tensor_id);
    QB_LAUNCH_CHECK("random_fill_bias");
    return 0;
}

extern "C" int qb_launch_random_fill_norm_f32(float *dst, long n, uint64_t seed, uint64_t tensor_id,
                                              cudaStream_t stream) {
    if (n <= 0) return qb_errorf("random_fill_norm: bad length %ld", n);
    qb_fill_norm_kernel<<<qb_fill_blocks(n), 256, 0, stream>>>(dst, n, seed, tensor_id);
    QB_LAUNCH_CHECK("random_fill_norm");
    return 0;
}
