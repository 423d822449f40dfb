/* gemv_quant.cu - decode GEMV and prefill dequantization for the repacked GPTQ / AWQ layout (gemv_quant.cuh).
 *
 * Two GEMV kernels, both used by the measured rule (qb_gemv_quant_pick): the CUDA-core one below (8 bits at large N,
 * shapes the tensor-core kernel does not take), and the tensor-core one further down (4 bits, 8 bits at small N; its
 * own comment says how it works). Variants that lost (the cp.async tensor-core kernel, warps per tile "by shape",
 * the CUDA-core kernel for every shape) live in the kernel lab, dev/cuda/.
 *
 * CUDA-core GEMV: the structure of gemv.cu. Block = 4 warps; warp w of block b owns rows (4b + w) * ROWS .. + ROWS. A
 * "piece" is 16 bytes of one row: 32 int4 or 16 int8 values of consecutive k, always inside one group. Lane l
 * takes pieces l, l + 32, ... of each of its rows, UNROLL pieces per batch, the next batch loading while the
 * current one is summed (the first before the PDL wait: weights do not depend on the previous kernel). x comes
 * through the L1 (__ldg), shared by the ROWS rows of the warp.
 * Dequantization in registers: a value q (4 or 8 bits) is moved by one byte permute into the low byte of the
 * float 2^23 (0x4B0000qq = 2^23 + q exactly); subtracting 2^23 + zero gives q - zero exactly. Per piece and row:
 * partial = sum_j (q_j - zero) * x_j in fp32 (4 chains), then acc += scale * partial.
 */
#include <cuda_fp16.h>
#include <stdio.h>

#include "common.cuh"
#include "gemv_quant.cuh"
#include "gemv_quant_tc.cuh"

#define QB_QGEMV_WARPS 4
#define QB_QGEMV_UNROLL 2

/* sum_j (q_j - zero) * xf[j] over the 128/BITS values of one piece; zc = 2^23 + zero. */
template <int BITS>
__device__ __forceinline__ float qb_piece_dot(uint4 w, const float *xf, float zc) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
    float part[4];
#pragma unroll
    for (int wi = 0; wi < 4; wi++) {
        float s = 0.f;
        if (BITS == 4) {
            uint32_t lo = words[wi] & 0x0F0F0F0Fu, hi = (words[wi] >> 4) & 0x0F0F0F0Fu;
            const float *xw = xf + wi * 8; /* nibble 2b in byte b of lo, nibble 2b+1 in byte b of hi */
            s = fmaf(qb_byte_magic<0>(lo) - zc, xw[0], s);
            s = fmaf(qb_byte_magic<0>(hi) - zc, xw[1], s);
            s = fmaf(qb_byte_magic<1>(lo) - zc, xw[2], s);
            s = fmaf(qb_byte_magic<1>(hi) - zc, xw[3], s);
            s = fmaf(qb_byte_magic<2>(lo) - zc, xw[4], s);
            s = fmaf(qb_byte_magic<2>(hi) - zc, xw[5], s);
            s = fmaf(qb_byte_magic<3>(lo) - zc, xw[6], s);
            s = fmaf(qb_byte_magic<3>(hi) - zc, xw[7], s);
        } else {
            const float *xw = xf + wi * 4;
            s = fmaf(qb_byte_magic<0>(words[wi]) - zc, xw[0], s);
            s = fmaf(qb_byte_magic<1>(words[wi]) - zc, xw[1], s);
            s = fmaf(qb_byte_magic<2>(words[wi]) - zc, xw[2], s);
            s = fmaf(qb_byte_magic<3>(words[wi]) - zc, xw[3], s);
        }
        part[wi] = s;
    }
    return (part[0] + part[1]) + (part[2] + part[3]);
}

template <int BITS, int ROWS>
__global__ void __launch_bounds__(QB_QGEMV_WARPS * 32)
qb_gemv_quant_kernel(const uint4 *__restrict__ qw, const uint32_t *__restrict__ sz, const uint4 *__restrict__ x,
                     int n, int pieces, int groups, int pieces_per_group, qb_bf16 *y_bf16, float *y_f32) {
    constexpr int VPP = 128 / BITS; /* values per piece */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = (blockIdx.x * QB_QGEMV_WARPS + warp) * ROWS;
    const uint4 *wr[ROWS];
    const uint32_t *szr[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        int row = min(row0 + r, n - 1);
        wr[r] = qw + (size_t)row * pieces;
        szr[r] = sz + (size_t)row * groups;
    }
    uint4 wv[ROWS][QB_QGEMV_UNROLL];
    qb_rows_load<ROWS, QB_QGEMV_UNROLL>(wv, wr, lane, pieces); /* constant data: before the wait */
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (row0 >= n) return;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
    for (int base = lane; base < pieces; base += 32 * QB_QGEMV_UNROLL) {
        uint4 nv[ROWS][QB_QGEMV_UNROLL];
        qb_rows_load<ROWS, QB_QGEMV_UNROLL>(nv, wr, base + 32 * QB_QGEMV_UNROLL, pieces);
#pragma unroll
        for (int u = 0; u < QB_QGEMV_UNROLL; u++) {
            int p = base + 32 * u;
            if (p < pieces) {
                float xf[VPP];
#pragma unroll
                for (int i = 0; i < VPP / 8; i++) {
                    uint4 xv = __ldg(x + (size_t)p * (VPP / 8) + i);
                    const uint32_t xs[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
                    for (int h = 0; h < 4; h++) {
                        float2 f = qb_bf16x2_to_float2(xs[h]);
                        xf[i * 8 + 2 * h] = f.x;
                        xf[i * 8 + 2 * h + 1] = f.y;
                    }
                }
                int g = p / pieces_per_group;
#pragma unroll
                for (int r = 0; r < ROWS; r++) {
                    uint32_t s_z = __ldg(szr[r] + g);
                    float scale = __half2float(__ushort_as_half((unsigned short)(s_z & 0xffffu)));
                    float zc = QB_MAGIC + (float)(s_z >> 16);
                    acc[r] = fmaf(scale, qb_piece_dot<BITS>(wv[r][u], xf, zc), acc[r]);
                }
            }
        }
        qb_rows_advance(wv, nv);
    }
    qb_warp_rows_store<ROWS>(acc, lane, row0, n, y_bf16, y_f32);
}

template <int BITS, int ROWS>
static cudaError_t qb_gemv_quant_launch(const uint32_t *qw, const uint32_t *sz, const uint16_t *x, int n, int k,
                                        int group, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
    int pieces = k / (128 / BITS), rows_per_block = QB_QGEMV_WARPS * ROWS;
    int blocks = (n + rows_per_block - 1) / rows_per_block;
    return qb_launch_kernel(qb_gemv_quant_kernel<BITS, ROWS>, dim3(blocks), dim3(QB_QGEMV_WARPS * 32), 0, stream,
                            (const uint4 *)qw, sz, (const uint4 *)x, n, pieces, k / group, group / (128 / BITS),
                            (qb_bf16 *)y_bf16, y_f32);
}

static int qb_quant_check(const char *what, const void *qweight, const void *sz, int n, int k, int bits, int group) {
    if (bits != 4 && bits != 8) return qb_errorf("%s: bits %d not supported (4 or 8)", what, bits);
    int vpp = 128 / bits;
    if (n <= 0 || k <= 0 || group <= 0 || k % vpp || group % vpp || k % group)
        return qb_errorf("%s: unsupported shape N=%d K=%d group_size=%d (K and group_size multiples of %d, K of "
                         "group_size)", what, n, k, group, vpp);
    if (((uintptr_t)qweight & 15) || ((uintptr_t)sz & 3)) return qb_errorf("%s: qweight must be 16-byte aligned", what);
    return 0;
}

extern "C" int qb_launch_gemv_quant_variant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n,
                                            int k, int bits, int group_size, uint16_t *y_bf16, float *y_f32,
                                            int rows_per_warp, cudaStream_t stream) {
    QB_TRY(qb_quant_check("gemv_quant", qweight, sz, n, k, bits, group_size));
    if ((uintptr_t)x & 15) return qb_errorf("gemv_quant: x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv_quant: exactly one output (bf16 or fp32) expected");
    cudaError_t rc;
#define QB_QGEMV_CASE(B, R) rc = qb_gemv_quant_launch<B, R>(qweight, sz, x, n, k, group_size, y_bf16, y_f32, stream)
    if (bits == 4) {
        switch (rows_per_warp) {
        case 1: QB_QGEMV_CASE(4, 1); break;
        case 2: QB_QGEMV_CASE(4, 2); break;
        case 4: QB_QGEMV_CASE(4, 4); break;
        default: return qb_errorf("gemv_quant: rows_per_warp %d not in {1, 2, 4}", rows_per_warp);
        }
    } else {
        switch (rows_per_warp) {
        case 1: QB_QGEMV_CASE(8, 1); break;
        case 2: QB_QGEMV_CASE(8, 2); break;
        case 4: QB_QGEMV_CASE(8, 4); break;
        default: return qb_errorf("gemv_quant: rows_per_warp %d not in {1, 2, 4}", rows_per_warp);
        }
    }
#undef QB_QGEMV_CASE
    if (rc != cudaSuccess) return qb_errorf("gemv_quant: kernel launch failed: %s", cudaGetErrorString(rc));
    return 0;
}


/* What one lane reads for one step: the pieces of rows g and g + 8 and their scale | zero entries. */
struct qb_q4_tc_piece {
    uint4 wa, wb;
    uint32_t sza, szb;
};

/* Steps s0 + u * W (u < U); zeros past the last step. The scale / zero entries travel with the
 * weights (loaded a batch ahead) so no load waits inside a step except x (L1 / L2). */
template <int W, int U>
__device__ __forceinline__ void qb_q4_tc_load(qb_q4_tc_piece (&v)[U], const uint4 *wa, const uint4 *wb,
                                              const uint32_t *sza, const uint32_t *szb, int s0, int steps,
                                              int steps_per_group) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        int s = s0 + u * W;
        if (s < steps) {
            int gi = s / steps_per_group;
            v[u].wa = qb_load_stream16(wa + 4 * (size_t)s);
            v[u].wb = qb_load_stream16(wb + 4 * (size_t)s);
            v[u].sza = __ldg(sza + gi);
            v[u].szb = __ldg(szb + gi);
        } else {
            v[u].wa = v[u].wb = make_uint4(0, 0, 0, 0);
            v[u].sza = v[u].szb = 0;
        }
    }
}

template <int BITS, int W, int U, int GUARD>
__global__ void __launch_bounds__(W * 32)
qb_gemv_q_tc_kernel(const uint4 *__restrict__ qw, const uint32_t *__restrict__ sz, const uint4 *__restrict__ x,
                     int n, int steps, int groups, int steps_per_group, qb_bf16 *y_bf16, float *y_f32) {
    __shared__ float red[W][16];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int tile0 = blockIdx.x * 16;
    const int ra = min(tile0 + g, n - 1), rb = min(tile0 + g + 8, n - 1); /* rows past N: computed, not stored */
    const size_t pieces = (size_t)steps * 4;
    const uint4 *wa = qw + (size_t)ra * pieces + t, *wb = qw + (size_t)rb * pieces + t;
    const uint32_t *sza = sz + (size_t)ra * groups, *szb = sz + (size_t)rb * groups;
    constexpr int X16_PER_STEP = 64 / BITS; /* 16-byte pieces of x per step (128 or 64 values) */
    const uint4 *xt = x + (X16_PER_STEP / 4) * t;
    qb_q4_tc_piece cur[U];
    qb_q4_tc_load<W, U>(cur, wa, wb, sza, szb, warp, steps, steps_per_group); /* constant data: before the wait */
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    float acc_a = 0.f, acc_b = 0.f;
    for (int s0 = warp; s0 < steps; s0 += W * U) {
        qb_q4_tc_piece nxt[U];
        qb_q4_tc_load<W, U>(nxt, wa, wb, sza, szb, s0 + W * U, steps, steps_per_group);
        /* GUARD 0 (default): no branch per step, so the U steps' mma chains interleave; a step past the end has
         * zero weights, zero zero-point and scale 0 (adds exactly 0) and reads the last step's x (in bounds).
         * GUARD 1: steps past the end skipped (fewer registers, no interleaving across steps). */
#pragma unroll
        for (int u = 0; u < U; u++) {
            int s = s0 + u * W;
            if (GUARD && s >= steps) continue;
            const uint4 *xs = xt + X16_PER_STEP * (size_t)min(s, steps - 1);
            if (BITS == 4) qb_q4_tc_step(cur[u].wa, cur[u].wb, xs, cur[u].sza, cur[u].szb, acc_a, acc_b);
            else qb_q8_tc_step(cur[u].wa, cur[u].wb, xs, cur[u].sza, cur[u].szb, acc_a, acc_b);
        }
#pragma unroll
        for (int u = 0; u < U; u++) cur[u] = nxt[u];
    }
    /* lanes t = 0..3 of a group hold the same sums (identical columns of C) */
    if (W == 1) {
        if (t == 0) {
            int r0 = tile0 + g, r1 = tile0 + g + 8;
            if (y_f32) {
                if (r0 < n) y_f32[r0] = acc_a;
                if (r1 < n) y_f32[r1] = acc_b;
            } else {
                if (r0 < n) y_bf16[r0] = __float2bfloat16(acc_a);
                if (r1 < n) y_bf16[r1] = __float2bfloat16(acc_b);
            }
        }
        return;
    }
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

/* k per step: 128 at 4 bits, 64 at 8 (16 bytes per lane and row) */
extern "C" int qb_gemv_quant_tc_supported(int bits, int k, int group_size) {
    if (bits != 4 && bits != 8) return 0;
    int step_k = 512 / bits;
    return k > 0 && group_size > 0 && k % step_k == 0 && group_size % step_k == 0 && k % group_size == 0;
}

extern "C" int qb_launch_gemv_quant_tc_tuned(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n,
                                             int k, int bits, int group_size, uint16_t *y_bf16, float *y_f32,
                                             int warps, int unroll, int guarded, cudaStream_t stream) {
    QB_TRY(qb_quant_check("gemv_quant_tc", qweight, sz, n, k, bits, group_size));
    if (!qb_gemv_quant_tc_supported(bits, k, group_size))
        return qb_errorf("gemv_quant_tc: bits %d K %d group_size %d: needs 4 (8) bits, K and group_size multiples of "
                         "128 (64)", bits, k, group_size);
    if ((uintptr_t)x & 15) return qb_errorf("gemv_quant_tc: x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv_quant_tc: exactly one output (bf16 or fp32) expected");
    int step_k = 512 / bits, steps = k / step_k, groups = k / group_size, spg = group_size / step_k;
    if (!((unroll == 2 && (guarded == 0 || guarded == 1)) || (unroll == 4 && guarded == 0)))
        return qb_errorf("gemv_quant_tc: unroll %d guarded %d not one of (2, 0) (2, 1) (4, 0)", unroll, guarded);
    dim3 grid((unsigned)((n + 15) / 16));
    cudaError_t rc;
#define QB_TC_CASE(W, U, G)                                                                                    \
    rc = bits == 4 ? qb_launch_kernel(qb_gemv_q_tc_kernel<4, W, U, G>, grid, dim3(W * 32), 0, stream,              \
                                      (const uint4 *)qweight, sz, (const uint4 *)x, n, steps, groups, spg,          \
                                      (qb_bf16 *)y_bf16, y_f32)                                                     \
                   : qb_launch_kernel(qb_gemv_q_tc_kernel<8, W, U, G>, grid, dim3(W * 32), 0, stream,              \
                                      (const uint4 *)qweight, sz, (const uint4 *)x, n, steps, groups, spg,          \
                                      (qb_bf16 *)y_bf16, y_f32)
#define QB_TC_WARPS(U, G)                                                                                      \
    switch (warps) {                                                                                           \
    case 1: QB_TC_CASE(1, U, G); break;                                                                        \
    case 2: QB_TC_CASE(2, U, G); break;                                                                        \
    case 4: QB_TC_CASE(4, U, G); break;                                                                        \
    case 8: QB_TC_CASE(8, U, G); break;                                                                        \
    case 16: QB_TC_CASE(16, U, G); break;                                                                      \
    default: return qb_errorf("gemv_quant_tc: warps per tile %d not in {1, 2, 4, 8, 16}", warps);              \
    }
    if (unroll == 4) {
        QB_TC_WARPS(4, 0)
    } else if (guarded) {
        QB_TC_WARPS(2, 1)
    } else {
        QB_TC_WARPS(2, 0)
    }
#undef QB_TC_WARPS
#undef QB_TC_CASE
    if (rc != cudaSuccess) return qb_errorf("gemv_quant_tc: kernel launch failed: %s", cudaGetErrorString(rc));
    return 0;
}

/* Resident blocks per SM of the 4-bit tensor-core kernel with 8 warps per tile, unroll 2, unguarded (0) or
 * guarded (1); limited by registers (ptxas, sm_90a, CUDA 13: 100 and 80 per thread -> 2 and 3). Asked once, not
 * while `stream` is being captured into a graph (the engine captures its first decode step): then those numbers. */
static int qb_gq_q4_w8_blocks_per_sm(int guarded, cudaStream_t stream) {
    static int blocks[2];
    if (blocks[guarded] <= 0) {
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusActive;
        if (cudaStreamIsCapturing(stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
            (void)cudaGetLastError();
            return guarded ? 3 : 2;
        }
        int b = 0;
        cudaError_t rc = guarded ? cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, qb_gemv_q_tc_kernel<4, 8, 2, 1>,
                                                                                   256, 0)
                                 : cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, qb_gemv_q_tc_kernel<4, 8, 2, 0>,
                                                                                   256, 0);
        if (rc != cudaSuccess || b <= 0) {
            (void)cudaGetLastError();
            b = guarded ? 3 : 2;
        }
        blocks[guarded] = b;
    }
    return blocks[guarded];
}

/* The default kernel for a shape, by named conditions: on the H100's 7B and 72B-TP2 linears these choices were the
 * fastest of all variants or within noise of it (timings: docs/PERFORMANCE.md, "Measurements behind the rules in the
 * code", "Quantized decode GEMV: kernel and launch shape"):
 *  4 bits (tensor-core kernel, K and group_size multiples of 128): 8 warps per 16-row tile (fastest on every timed
 *    shape; halved while a warp would get no step of 128 k). Unroll 2, guarded (80 registers, 3 blocks per SM)
 *    when that takes fewer waves of blocks than unguarded (100 registers, 2 blocks per SM) - fewer waves win
 *    (7B qkv, gate_up) - else unguarded, whose interleaved steps are faster at equal waves (7B o_proj / down,
 *    72B-TP2 o_proj / down).
 *  8 bits: the CUDA-core kernel (2 rows per warp: N / 2 warps) unless it has fewer than 16 warps per SM
 *    (N < 32 x SMs: too few bytes in flight), then the tensor-core kernel with 16 warps per tile, unroll 4
 *    (7B o_proj, 7B down).
 * Writes warps / unroll / guarded of the tensor-core kernel and returns 1, or returns 0 for the CUDA-core kernel. */
static int qb_gemv_quant_pick(int n, int k, int bits, int group_size, cudaStream_t stream, int *warps, int *unroll,
                              int *guarded) {
    if (!qb_gemv_quant_tc_supported(bits, k, group_size)) return 0;
    const int sms = qb_device_sm_count(), steps = k / (512 / bits);
    if (bits == 8) {
        if ((long)n >= 32L * sms) return 0;
        int w = 16;
        while (w > 1 && steps < w) w >>= 1;
        *warps = w;
        *unroll = 4;
        *guarded = 0;
        return 1;
    }
    int w = 8;
    while (w > 1 && steps < w) w >>= 1;
    long tiles = (n + 15) / 16;
    int g = 0;
    if (w == 8) {
        long per_wave_u = (long)qb_gq_q4_w8_blocks_per_sm(0, stream) * sms;
        long per_wave_g = (long)qb_gq_q4_w8_blocks_per_sm(1, stream) * sms;
        g = (tiles + per_wave_g - 1) / per_wave_g < (tiles + per_wave_u - 1) / per_wave_u;
    }
    *warps = w;
    *unroll = 2;
    *guarded = g;
    return 1;
}

extern "C" int qb_gemv_quant_default_choice(int n, int k, int bits, int group_size, char *name, size_t name_len) {
    int w = 0, u = 2, g = 0;
    if (qb_gemv_quant_pick(n, k, bits, group_size, 0, &w, &u, &g))
        snprintf(name, name_len, "tc W%d U%d%s", w, u, g ? "g" : "");
    else
        snprintf(name, name_len, "cuda-core rows/warp 2");
    return 0;
}

extern "C" int qb_launch_gemv_quant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                    int bits, int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
    int w, u, g;
    if (qb_gemv_quant_pick(n, k, bits, group_size, stream, &w, &u, &g))
        return qb_launch_gemv_quant_tc_tuned(qweight, sz, x, n, k, bits, group_size, y_bf16, y_f32, w, u, g, stream);
    return qb_launch_gemv_quant_variant(qweight, sz, x, n, k, bits, group_size, y_bf16, y_f32, 2, stream);
}

/* One thread per piece: 16 bytes in, 128/BITS bf16 out. */
template <int BITS>
__global__ void qb_dequant_quant_kernel(const uint4 *__restrict__ qw, const uint32_t *__restrict__ sz, long total,
                                        int pieces, int groups, int pieces_per_group, qb_bf16 *__restrict__ out) {
    constexpr int VPP = 128 / BITS;
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (i >= total) return;
    long row = i / pieces;
    int p = (int)(i % pieces);
    uint4 w = qw[i];
    uint32_t s_z = sz[row * groups + p / pieces_per_group];
    __align__(16) qb_bf16 v[VPP];
    qb_dequant_piece<BITS>(w, s_z, v);
    uint4 *dst = (uint4 *)(out + i * VPP);
#pragma unroll
    for (int j = 0; j < VPP / 8; j++) dst[j] = ((const uint4 *)v)[j];
}

extern "C" int qb_launch_dequant_quant_bf16(const uint32_t *qweight, const uint32_t *sz, int n, int k, int bits,
                                            int group_size, uint16_t *w_out, cudaStream_t stream) {
    QB_TRY(qb_quant_check("dequant_quant_bf16", qweight, sz, n, k, bits, group_size));
    if ((uintptr_t)w_out & 15) return qb_errorf("dequant_quant_bf16: output must be 16-byte aligned");
    int vpp = 128 / bits, pieces = k / vpp;
    long total = (long)n * pieces;
    int threads = 256;
    long blocks = (total + threads - 1) / threads;
    if (bits == 4)
        QB_LAUNCH("dequant_quant_bf16", qb_dequant_quant_kernel<4>, dim3((unsigned)blocks), dim3(threads), 0, stream,
                  (const uint4 *)qweight, sz, total, pieces, k / group_size, group_size / vpp, (qb_bf16 *)w_out);
    else
        QB_LAUNCH("dequant_quant_bf16", qb_dequant_quant_kernel<8>, dim3((unsigned)blocks), dim3(threads), 0, stream,
                  (const uint4 *)qweight, sz, total, pieces, k / group_size, group_size / vpp, (qb_bf16 *)w_out);
    return 0;
}
