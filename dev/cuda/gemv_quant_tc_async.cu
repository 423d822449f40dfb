/* gemv_quant_tc_async.cu - kernel lab: the tensor-core quantized decode GEMV with a cp.async pipeline (formerly
 * QB_GEMV_QUANT=async, qb_launch_gemv_quant_tc_async), moved out of the product: it won most shapes of the kernel
 * micro-benchmark (docs/PERFORMANCE.md: 4-bit 7B down 17.2 vs 19.5 us) but never ran inside the engine, so no
 * measurement there says where it should be picked. To return it needs an option, a rule and an engine measurement
 * (dev/README.md). The step arithmetic is the product's (kernels/linear/gemv_quant_tc.cuh); only the pipeline is the lab's.
 * Launcher: qb_lab_gemv_quant_tc_async (lab_kernels.h).
 *
 * The pipeline:
 * Same steps, lane mapping and arithmetic as the product's qb_gemv_q_tc_kernel (qb_q4_tc_step / qb_q8_tc_step), but the
 * weights and scale | zero entries travel global -> shared memory by cp.async (no registers held while in flight)
 * in a ring of D stages per warp: while step i is computed, steps i + 1 .. i + D - 1 are loading, i.e. D - 1 KiB
 * per warp in flight at all times (the register kernel: U KiB right after each batch, draining to 0). Each lane
 * copies and later reads only its own slots (lane-consecutive 16-byte slots: no bank conflicts), so no barrier is
 * needed inside the loop: cp.async.wait_group makes a thread's own copies visible to it. Warp w takes steps
 * w, w + W, ... exactly (no steps on zeros); the first D - 1 copies are issued before the PDL wait. */

#include <stdint.h>

#include "common.cuh"
#include "gemv_quant.cuh"
#include "gemv_quant_tc.cuh"
#include "lab_kernels.h"

/* One stage of one warp: 16-byte pieces of rows g (half 0) and g + 8 (half 1) of every lane, and their scale |
 * zero entries. */
template <int D>
struct qb_q_tc_ring {
    uint4 w[D][2][32];
    uint32_t s_z[D][2][32];
};

/* The lane's copies for its local step j (global step warp + j * W) into stage j % D, then one commit (an empty
 * group past the warp's last step keeps the group count uniform). */
template <int W, int D>
__device__ __forceinline__ void qb_q_tc_issue(qb_q_tc_ring<D> &ring, int j, int mine, int warp, int lane,
                                              const uint4 *wa, const uint4 *wb, const uint32_t *sza,
                                              const uint32_t *szb, int steps_per_group) {
    if (j < mine) {
        const int s = warp + j * W, st = j % D, gi = s / steps_per_group;
        qb_cp_async16(&ring.w[st][0][lane], wa + 4 * (size_t)s);
        qb_cp_async16(&ring.w[st][1][lane], wb + 4 * (size_t)s);
        qb_cp_async4(&ring.s_z[st][0][lane], sza + gi);
        qb_cp_async4(&ring.s_z[st][1][lane], szb + gi);
    }
    qb_cp_async_commit();
}

template <int BITS, int W, int D>
__global__ void __launch_bounds__(W * 32)
qb_gemv_q_tc_async_kernel(const uint4 *__restrict__ qw, const uint32_t *__restrict__ sz,
                           const uint4 *__restrict__ x, int n, int steps, int groups, int steps_per_group,
                           qb_bf16 *y_bf16, float *y_f32) {
    __shared__ qb_q_tc_ring<D> rings[W];
    __shared__ float red[W][16];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int tile0 = blockIdx.x * 16;
    const int ra = min(tile0 + g, n - 1), rb = min(tile0 + g + 8, n - 1); /* rows past N: computed, not stored */
    const size_t pieces = (size_t)steps * 4;
    const uint4 *wa = qw + (size_t)ra * pieces + t, *wb = qw + (size_t)rb * pieces + t;
    const uint32_t *sza = sz + (size_t)ra * groups, *szb = sz + (size_t)rb * groups;
    constexpr int X16_PER_STEP = 64 / BITS; /* 16-byte pieces of x per step (128 or 64 values) */
    const uint4 *xt = x + (X16_PER_STEP / 4) * t;
    const int mine = warp < steps ? (steps - 1 - warp) / W + 1 : 0; /* this warp's steps */
    qb_q_tc_ring<D> &ring = rings[warp];
#pragma unroll
    for (int j = 0; j < D - 1; j++) /* constant data: before the wait */
        qb_q_tc_issue<W, D>(ring, j, mine, warp, lane, wa, wb, sza, szb, steps_per_group);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    float acc_a = 0.f, acc_b = 0.f;
    int st = 0;
    for (int i = 0; i < mine; i++) {
        /* committed: D - 1 + i groups; group i (this step) done when at most D - 2 are pending */
        qb_cp_async_wait<D - 2>();
        const uint4 va = ring.w[st][0][lane], vb = ring.w[st][1][lane];
        const uint32_t sa = ring.s_z[st][0][lane], sb = ring.s_z[st][1][lane];
        /* refill the stage read in iteration i - 1 (its values are already in registers) */
        qb_q_tc_issue<W, D>(ring, i + D - 1, mine, warp, lane, wa, wb, sza, szb, steps_per_group);
        const uint4 *xs = xt + X16_PER_STEP * (size_t)(warp + i * W);
        if (BITS == 4) qb_q4_tc_step(va, vb, xs, sa, sb, acc_a, acc_b);
        else qb_q8_tc_step(va, vb, xs, sa, sb, acc_a, acc_b);
        st = st + 1 == D ? 0 : st + 1;
    }
    /* lanes t = 0..3 of a group hold the same sums (identical columns of C); warps summed in a fixed order */
    if (t == 0) {
        red[warp][g] = acc_a;
        red[warp][g + 8] = acc_b;
    }
    __syncthreads();
    if (threadIdx.x < 16) {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < W; w++) s += red[w][threadIdx.x];
        int row = tile0 + (int)threadIdx.x;
        if (row < n) {
            if (y_f32) y_f32[row] = s;
            else y_bf16[row] = __float2bfloat16(s);
        }
    }
}

extern "C" int qb_lab_gemv_quant_tc_async(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n,
                                             int k, int bits, int group_size, uint16_t *y_bf16, float *y_f32,
                                             int warps, int stages, cudaStream_t stream) {
    if (n <= 0) return qb_errorf("gemv_quant_tc_async: N %d must be positive", n);
    if (((uintptr_t)qweight & 15) || ((uintptr_t)sz & 3))
        return qb_errorf("gemv_quant_tc_async: qweight / sz must be 16- / 4-byte aligned");
    if (!qb_gemv_quant_tc_supported(bits, k, group_size))
        return qb_errorf("gemv_quant_tc_async: bits %d K %d group_size %d: needs 4 (8) bits, K and group_size "
                         "multiples of 128 (64)", bits, k, group_size);
    if ((uintptr_t)x & 15) return qb_errorf("gemv_quant_tc_async: x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL))
        return qb_errorf("gemv_quant_tc_async: exactly one output (bf16 or fp32) expected");
    int step_k = 512 / bits, steps = k / step_k, groups = k / group_size, spg = group_size / step_k;
    dim3 grid((unsigned)((n + 15) / 16));
    cudaError_t rc;
#define QB_TCA_CASE(W, D)                                                                                       \
    rc = bits == 4 ? qb_launch_kernel(qb_gemv_q_tc_async_kernel<4, W, D>, grid, dim3(W * 32), 0, stream,          \
                                      (const uint4 *)qweight, sz, (const uint4 *)x, n, steps, groups, spg,          \
                                      (qb_bf16 *)y_bf16, y_f32)                                                     \
                   : qb_launch_kernel(qb_gemv_q_tc_async_kernel<8, W, D>, grid, dim3(W * 32), 0, stream,          \
                                      (const uint4 *)qweight, sz, (const uint4 *)x, n, steps, groups, spg,          \
                                      (qb_bf16 *)y_bf16, y_f32)
    /* (warps, stages) with at most 40 KiB of ring per block (static shared memory stays under 48 KiB) */
    if (warps == 4 && stages == 4) QB_TCA_CASE(4, 4);
    else if (warps == 4 && stages == 8) QB_TCA_CASE(4, 8);
    else if (warps == 8 && stages == 2) QB_TCA_CASE(8, 2);
    else if (warps == 8 && stages == 3) QB_TCA_CASE(8, 3);
    else if (warps == 8 && stages == 4) QB_TCA_CASE(8, 4);
    else if (warps == 16 && stages == 2) QB_TCA_CASE(16, 2);
    else
        return qb_errorf("gemv_quant_tc_async: warps %d stages %d not one of (4, 4) (4, 8) (8, 2) (8, 3) (8, 4) "
                         "(16, 2)", warps, stages);
#undef QB_TCA_CASE
    if (rc != cudaSuccess) return qb_errorf("gemv_quant_tc_async: kernel launch failed: %s", cudaGetErrorString(rc));
    return 0;
}
