/* add_rmsnorm.cu - fused residual add + RMSNorm (see add_rmsnorm.cuh). One block per row; the row is
 * kept in registers between the sum of squares and the scaling (dim <= 16 * blockDim). */
#include "add_rmsnorm.cuh"
#include "common.cuh"

#define QB_NORM_THREADS 512
#define QB_NORM_PER_THREAD 16 /* dim up to 8192 */

__global__ void __launch_bounds__(QB_NORM_THREADS)
qb_add_rmsnorm_kernel(float *residual, const qb_bf16 *delta, const float *w, int dim, float eps, qb_bf16 *out) {
    __shared__ float warp_sums[QB_NORM_THREADS / 32];
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    size_t base = (size_t)blockIdx.x * dim;
    float v[QB_NORM_PER_THREAD];
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < QB_NORM_PER_THREAD; j++) {
        int i = threadIdx.x + j * QB_NORM_THREADS;
        v[j] = 0.f;
        if (i < dim) {
            float x = residual[base + i];
            if (delta) {
                x += __bfloat162float(delta[base + i]);
                residual[base + i] = x;
            }
            v[j] = x;
            ss = fmaf(x, x, ss);
        }
    }
    ss = qb_warp_sum(ss);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = threadIdx.x < QB_NORM_THREADS / 32 ? warp_sums[threadIdx.x] : 0.f;
        t = qb_warp_sum(t);
        if (threadIdx.x == 0) warp_sums[0] = t;
    }
    __syncthreads();
    float scale = rsqrtf(warp_sums[0] / (float)dim + eps);
#pragma unroll
    for (int j = 0; j < QB_NORM_PER_THREAD; j++) {
        int i = threadIdx.x + j * QB_NORM_THREADS;
        if (i < dim) out[base + i] = __float2bfloat16(v[j] * scale * w[i]);
    }
}

extern "C" int qb_launch_add_rmsnorm(float *residual, const uint16_t *delta, const float *w, int n, int dim,
                                     float eps, uint16_t *out, cudaStream_t stream) {
    if (n <= 0 || dim <= 0 || dim > QB_NORM_THREADS * QB_NORM_PER_THREAD)
        return qb_errorf("add_rmsnorm: unsupported sizes n=%d dim=%d (dim must be 1..%d)", n, dim,
                         QB_NORM_THREADS * QB_NORM_PER_THREAD);
    QB_LAUNCH("add_rmsnorm", qb_add_rmsnorm_kernel, dim3(n), dim3(QB_NORM_THREADS), 0, stream, residual,
              (const qb_bf16 *)delta, w, dim, eps, (qb_bf16 *)out);
    return 0;
}
