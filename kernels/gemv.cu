/* gemv.cu - decode GEMV for bf16 weights (see gemv.cuh).
 * Block = 4 warps; warp w of block b owns rows (4b + w) * ROWS .. + ROWS. Lane l reads 16-byte pieces
 * l, l+32, ... of each of its rows, UNROLL pieces per row per batch, the next batch loading while the current
 * one is summed; the first batch is loaded before the PDL wait (weights do not depend on the previous kernel).
 */
#include "common.cuh"
#include "gemv.cuh"

#define QB_GEMV_WARPS 4
#define QB_GEMV_UNROLL 4

template <int ROWS>
__device__ __forceinline__ void qb_gemv_load_w(uint4 (&wv)[ROWS][QB_GEMV_UNROLL], const uint4 *const (&wr)[ROWS],
                                               int base, int k8) {
#pragma unroll
    for (int u = 0; u < QB_GEMV_UNROLL; u++) {
        int kk = base + 32 * u;
#pragma unroll
        for (int r = 0; r < ROWS; r++) wv[r][u] = kk < k8 ? qb_load_stream16(wr[r] + kk) : make_uint4(0, 0, 0, 0);
    }
}

template <int ROWS>
__global__ void __launch_bounds__(QB_GEMV_WARPS * 32)
qb_gemv_kernel(const uint4 *__restrict__ w, const uint4 *__restrict__ x, int n, int k8, qb_bf16 *y_bf16,
               float *y_f32) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = (blockIdx.x * QB_GEMV_WARPS + warp) * ROWS;
    const uint4 *wr[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) wr[r] = w + (size_t)min(row0 + r, n - 1) * k8;
    /* the first weights are constant data: fetch them while the previous kernel finishes (PDL) */
    uint4 wv[ROWS][QB_GEMV_UNROLL];
    qb_gemv_load_w<ROWS>(wv, wr, lane, k8);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (row0 >= n) return;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
    for (int base = lane; base < k8; base += 32 * QB_GEMV_UNROLL) {
        uint4 xv[QB_GEMV_UNROLL], nv[ROWS][QB_GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++) {
            int kk = base + 32 * u;
            xv[u] = kk < k8 ? __ldg(x + kk) : make_uint4(0, 0, 0, 0);
        }
        /* next batch in flight while this one is summed */
        qb_gemv_load_w<ROWS>(nv, wr, base + 32 * QB_GEMV_UNROLL, k8);
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < ROWS; r++) acc[r] += qb_dot8(wv[r][u], xv[u]);
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < ROWS; r++) wv[r][u] = nv[r][u];
    }
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = qb_warp_sum(acc[r]);
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            if (row0 + r < n) {
                if (y_f32) y_f32[row0 + r] = acc[r];
                else y_bf16[row0 + r] = __float2bfloat16(acc[r]);
            }
        }
    }
}

template <int ROWS>
static cudaError_t qb_gemv_launch(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                           cudaStream_t stream) {
    int rows_per_block = QB_GEMV_WARPS * ROWS;
    int blocks = (n + rows_per_block - 1) / rows_per_block;
    return qb_launch_kernel(qb_gemv_kernel<ROWS>, dim3(blocks), dim3(QB_GEMV_WARPS * 32), 0, stream, (const uint4 *)w,
                            (const uint4 *)x, n, k / 8, (qb_bf16 *)y_bf16, y_f32);
}

extern "C" int qb_launch_gemv_variant(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16,
                                      float *y_f32, int rows_per_warp, cudaStream_t stream) {
    if (n <= 0 || k <= 0 || (k % 8) != 0)
        return qb_errorf("gemv: unsupported shape N=%d K=%d (K must be a positive multiple of 8)", n, k);
    if (((uintptr_t)w | (uintptr_t)x) & 15) return qb_errorf("gemv: W and x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv: exactly one output (bf16 or fp32) expected");
    cudaError_t rc;
    switch (rows_per_warp) {
    case 1: rc = qb_gemv_launch<1>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 2: rc = qb_gemv_launch<2>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 4: rc = qb_gemv_launch<4>(w, x, n, k, y_bf16, y_f32, stream); break;
    default: return qb_errorf("gemv: rows_per_warp %d not in {1, 2, 4}", rows_per_warp);
    }
    if (rc != cudaSuccess) return qb_errorf("gemv: kernel launch failed: %s", cudaGetErrorString(rc));
    return 0;
}

/* Named conditions, from test_cuda_gemv_bench on H100 (2026-11-25, PDL on, inside CUDA graphs, median of 7):
 *   many rows (N >= 8192: the grid at one row per warp already fills the chip): 1 row per warp
 *     (7B gate_up 88.2 us = 103% of copy bandwidth vs 89.1 at 2 rows; lm_head 105%; 72B/8 down 22.2 vs 23.1 us);
 *   mid-size N with long rows (N >= 2112, i.e. >= one 4-warp block per SM at 4 rows): 4 rows per warp when
 *     K >= 8192 (7B down 46.6 us = 97% vs 53.3 at 1 row), 2 rows when K >= 2048 (7B qkv 12.4 vs 13.1 us,
 *     o_proj 10.1 vs 11.5 us): more bytes in flight per warp where the grid alone leaves the chip half empty;
 *   small N (the 0.5B shapes): 1 row per warp (fewer blocks than SMs otherwise; down 5.8 vs 6.3 us).
 * cuBLAS (cublasGemmEx, n = 1) was slower on every shape measured. */
extern "C" int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                              cudaStream_t stream) {
    int rows = 1;
    if (n < 8192 && n >= 2112) {
        if (k >= 8192) rows = 4;
        else if (k >= 2048) rows = 2;
    }
    return qb_launch_gemv_variant(w, x, n, k, y_bf16, y_f32, rows, stream);
}
