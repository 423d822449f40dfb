/* dense_f16.cu - f16 embedding lookup and f16-weight decode GEMV (see dense_f16.cuh). The GEMV is gemv.cu's
 * one-row-per-warp structure (measured best there): lane l streams 16-byte pieces l, l+32, ... of the row,
 * UNROLL per batch with the next batch in flight, first batch before the PDL wait. */
#include <cuda_fp16.h>

#include "common.cuh"
#include "dense_f16.cuh"

#define QB_F16_WARPS 4
#define QB_F16_UNROLL 4

__global__ void qb_embedding_f16_kernel(const __half *table, int vocab, int hidden, const int32_t *tokens, float *out) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int row = blockIdx.x;
    int32_t tok = tokens[row];
    if (tok < 0 || tok >= vocab) tok = 0; /* never read outside the table */
    const __half *src = table + (size_t)tok * hidden;
    float *dst = out + (size_t)row * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = __half2float(src[i]);
}

extern "C" int qb_launch_embedding_f16(const uint16_t *table, int vocab, int hidden, const int32_t *tokens, int n,
                                       float *out, cudaStream_t stream) {
    if (n <= 0 || hidden <= 0 || vocab <= 0)
        return qb_errorf("embedding_f16: bad sizes n=%d hidden=%d vocab=%d", n, hidden, vocab);
    QB_LAUNCH("embedding_f16", qb_embedding_f16_kernel, dim3(n), dim3(256), 0, stream, (const __half *)table, vocab,
              hidden, tokens, out);
    return 0;
}

/* sum of the 8 products of 8 f16 weights and 8 bf16 inputs */
__device__ __forceinline__ float qb_dot8_f16_bf16(uint4 w, uint4 x) {
    const uint32_t ws[4] = {w.x, w.y, w.z, w.w}, xs[4] = {x.x, x.y, x.z, x.w};
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 wf = __half22float2(*reinterpret_cast<const __half2 *>(&ws[i]));
        float2 xf = qb_bf16x2_to_float2(xs[i]);
        s = fmaf(wf.x, xf.x, s);
        s = fmaf(wf.y, xf.y, s);
    }
    return s;
}

__global__ void __launch_bounds__(QB_F16_WARPS * 32)
qb_gemv_f16_kernel(const uint4 *__restrict__ w, const uint4 *__restrict__ x, int n, int k8, qb_bf16 *y_bf16,
                   float *y_f32) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row = blockIdx.x * QB_F16_WARPS + warp;
    const uint4 *wr = w + (size_t)min(row, n - 1) * k8;
    uint4 wv[QB_F16_UNROLL];
#pragma unroll
    for (int u = 0; u < QB_F16_UNROLL; u++) {
        int kk = lane + 32 * u;
        wv[u] = kk < k8 ? qb_load_stream16(wr + kk) : make_uint4(0, 0, 0, 0);
    }
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (row >= n) return;
    float acc = 0.f;
    for (int base = lane; base < k8; base += 32 * QB_F16_UNROLL) {
        uint4 nv[QB_F16_UNROLL], xv[QB_F16_UNROLL];
#pragma unroll
        for (int u = 0; u < QB_F16_UNROLL; u++) {
            int kk = base + 32 * u, nk = kk + 32 * QB_F16_UNROLL;
            xv[u] = kk < k8 ? __ldg(x + kk) : make_uint4(0, 0, 0, 0);
            nv[u] = nk < k8 ? qb_load_stream16(wr + nk) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < QB_F16_UNROLL; u++) acc += qb_dot8_f16_bf16(wv[u], xv[u]);
#pragma unroll
        for (int u = 0; u < QB_F16_UNROLL; u++) wv[u] = nv[u];
    }
    acc = qb_warp_sum(acc);
    if (lane == 0) {
        if (y_f32) y_f32[row] = acc;
        else y_bf16[row] = __float2bfloat16(acc);
    }
}

extern "C" int qb_launch_gemv_f16(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                                  cudaStream_t stream) {
    if (n <= 0 || k <= 0 || (k % 8) != 0)
        return qb_errorf("gemv_f16: unsupported shape N=%d K=%d (K must be a positive multiple of 8)", n, k);
    if (((uintptr_t)w | (uintptr_t)x) & 15) return qb_errorf("gemv_f16: W and x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv_f16: exactly one output (bf16 or fp32) expected");
    int blocks = (n + QB_F16_WARPS - 1) / QB_F16_WARPS;
    QB_LAUNCH("gemv_f16", qb_gemv_f16_kernel, dim3(blocks), dim3(QB_F16_WARPS * 32), 0, stream, (const uint4 *)w,
              (const uint4 *)x, n, k / 8, (qb_bf16 *)y_bf16, y_f32);
    return 0;
}
