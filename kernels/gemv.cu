/* gemv.cu - decode GEMV for bf16 weights (see gemv.cuh).
 * Block = 4 warps; warp w of block b owns rows (4b + w) * ROWS .. + ROWS. Lane l reads 16-byte pieces
 * l, l+32, ... of each of its rows, UNROLL pieces per row in flight before the first FMA.
 */
#include "common.cuh"
#include "gemv.cuh"

#define QB_GEMV_WARPS 4
#define QB_GEMV_UNROLL 4

template <int ROWS>
__global__ void __launch_bounds__(QB_GEMV_WARPS * 32)
qb_gemv_kernel(const uint4 *__restrict__ w, const uint4 *__restrict__ x, int n, int k8, qb_bf16 *y_bf16,
               float *y_f32) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = (blockIdx.x * QB_GEMV_WARPS + warp) * ROWS;
    if (row0 >= n) return;
    const uint4 *wr[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) wr[r] = w + (size_t)min(row0 + r, n - 1) * k8;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
    for (int base = lane; base < k8; base += 32 * QB_GEMV_UNROLL) {
        uint4 wv[ROWS][QB_GEMV_UNROLL], xv[QB_GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++) {
            int kk = base + 32 * u;
            if (kk < k8) {
                xv[u] = __ldg(x + kk);
#pragma unroll
                for (int r = 0; r < ROWS; r++) wv[r][u] = qb_load_stream16(wr[r] + kk);
            } else {
                xv[u] = make_uint4(0, 0, 0, 0);
#pragma unroll
                for (int r = 0; r < ROWS; r++) wv[r][u] = make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < ROWS; r++) acc[r] += qb_dot8(wv[r][u], xv[u]);
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
static void qb_gemv_launch(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                           cudaStream_t stream) {
    int rows_per_block = QB_GEMV_WARPS * ROWS;
    int blocks = (n + rows_per_block - 1) / rows_per_block;
    qb_gemv_kernel<ROWS><<<blocks, QB_GEMV_WARPS * 32, 0, stream>>>((const uint4 *)w, (const uint4 *)x, n, k / 8,
                                                                     (qb_bf16 *)y_bf16, y_f32);
}

extern "C" int qb_launch_gemv_variant(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16,
                                      float *y_f32, int rows_per_warp, cudaStream_t stream) {
    if (n <= 0 || k <= 0 || (k % 8) != 0)
        return qb_errorf("gemv: unsupported shape N=%d K=%d (K must be a positive multiple of 8)", n, k);
    if (((uintptr_t)w | (uintptr_t)x) & 15) return qb_errorf("gemv: W and x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv: exactly one output (bf16 or fp32) expected");
    switch (rows_per_warp) {
    case 1: qb_gemv_launch<1>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 2: qb_gemv_launch<2>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 4: qb_gemv_launch<4>(w, x, n, k, y_bf16, y_f32, stream); break;
    default: return qb_errorf("gemv: rows_per_warp %d not in {1, 2, 4}", rows_per_warp);
    }
    QB_LAUNCH_CHECK("gemv");
    return 0;
}

/* Named conditions: enough blocks to cover the SMs several times over -> 2 rows per warp (more bytes in
 * flight per thread); small N -> 1 row per warp so every SM still gets work. */
extern "C" int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                              cudaStream_t stream) {
    const int sm_count_guess = 132;
    int blocks_at_two_rows = (n + QB_GEMV_WARPS * 2 - 1) / (QB_GEMV_WARPS * 2);
    int rows = blocks_at_two_rows >= 4 * sm_count_guess ? 2 : 1;
    return qb_launch_gemv_variant(w, x, n, k, y_bf16, y_f32, rows, stream);
}
