/* gemv_quant.cu - decode GEMV and prefill dequantization for the repacked GPTQ / AWQ layout (gemv_quant.cuh).
 *
 * Two GEMV kernels: the CUDA-core one below (8 bits, any group size, and QB_GEMV_QUANT=old), and the tensor-core
 * one further down (the default for 4 bits, for 8 bits with QB_GEMV_QUANT=tc; its own comment says how it works).
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
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "gemv_quant.cuh"

#define QB_QGEMV_WARPS 4
#define QB_QGEMV_UNROLL 2
#define QB_MAGIC_BITS 0x4B000000u
#define QB_MAGIC 8388608.0f

/* 2^23 + (byte b of src) as a float, exactly */
template <int B>
__device__ __forceinline__ float qb_byte_magic(uint32_t src) {
    return __uint_as_float(__byte_perm(src, QB_MAGIC_BITS, 0x7650u + B));
}

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

template <int ROWS>
__device__ __forceinline__ void qb_qgemv_load(uint4 (&wv)[ROWS][QB_QGEMV_UNROLL], const uint4 *const (&wr)[ROWS],
                                              int base, int pieces) {
#pragma unroll
    for (int u = 0; u < QB_QGEMV_UNROLL; u++) {
        int p = base + 32 * u;
#pragma unroll
        for (int r = 0; r < ROWS; r++) wv[r][u] = p < pieces ? qb_load_stream16(wr[r] + p) : make_uint4(0, 0, 0, 0);
    }
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
    qb_qgemv_load<ROWS>(wv, wr, lane, pieces); /* constant data: before the wait */
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (row0 >= n) return;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
    for (int base = lane; base < pieces; base += 32 * QB_QGEMV_UNROLL) {
        uint4 nv[ROWS][QB_QGEMV_UNROLL];
        qb_qgemv_load<ROWS>(nv, wr, base + 32 * QB_QGEMV_UNROLL, pieces);
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
#pragma unroll
        for (int u = 0; u < QB_QGEMV_UNROLL; u++)
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

/* ---- Tensor-core GEMV: the default for 4 bits (K, group_size multiples of 128); 8 bits with QB_GEMV_QUANT=tc ----
 * (described for 4 bits; the 8-bit step is described at qb_q8_tc_step)
 *
 * Why: the kernel above spends ~4 instructions per 4-bit weight (byte permute, subtract, FMA, x conversion) and
 * stays arithmetic-bound at about half the memory bandwidth. Here the products and their fp32 sums go to
 * mma.sync.m16n8k16 (bf16 in, fp32 accumulate): per 8 weights the CUDA cores only make 4 bf16 pairs
 * (3 shifts, 4 lop3, 4 bf16x2 FMAs), ~1.4 instructions per weight, so the packed weights stream at the
 * bandwidth. Same layout (quant_repack.h), same exactness: q - zero is exact in bf16, products exact, sums fp32.
 *
 * Mapping. A "step" is 128 consecutive k of 16 rows (one group, or part of one: group_size % 128 == 0). Warp
 * lane = 4 g + t: rows g and g + 8 of its 16-row tile, 16-byte piece t of the step (k 32t .. 32t + 31) of each.
 * Word i of the piece holds k = 32t + 8i + j at nibble j. One lop3 of (word >> 4m) with 0x000F000F | 0x43004300
 * makes the bf16 pair (128 + q[j=m], 128 + q[j=m+4]); one bf16x2 FMA (x 1, - (128 + zero)) gives the exact
 * pair (q - zero). mma (i, h), h = 0, 1, uses pairs m = 2h (k offsets 0 | 4, +2h) and m = 2h + 1 (1 | 5, +2h):
 *   A regs {row g pair 2h, row g+8 pair 2h, row g pair 2h+1, row g+8 pair 2h+1}
 *   (PTX fragment: reg0 row g cols 2t, 2t+1; reg1 row g+8 same cols; reg2 row g cols 2t+8, 2t+9; reg3 row g+8)
 *   B regs {(x[k0 + 2h], x[k0 + 2h + 4]), (x[k0 + 2h + 1], x[k0 + 2h + 5])}, k0 = 32t + 8i: the same k in
 *   the same half of the register as A; every thread gives the same x, so all 8 columns of C are the product
 *   and c0 / c2 are the sums of rows g / g + 8 over the 16 k of that mma. The permutation of k inside an mma is
 *   immaterial to a dot product as long as A and B agree, which they do by construction.
 * The 8 mmas of a step accumulate (two chains) from zero; then acc += scale * step sum (fp32). Warps of a
 * block split the steps of one 16-row tile (warp w: steps w, w + W, ...), summed in shared memory in a fixed
 * order at the end (deterministic). U steps per warp (2 by default, 4 in the tuning entry) are loaded together
 * with their scale / zero entries, the next batch while the current one is computed (the first before the PDL
 * wait); by default without a branch per step (see GUARD in the kernel).
 */
#define QB_TC_BF16_128 0x4300u    /* bf16 128.0: 128 + q for a nibble q OR'ed into the mantissa */
#define QB_TC_BF16X2_ONE 0x3F803F80u

/* (a & mask) | bits in one instruction */
__device__ __forceinline__ uint32_t qb_lop_and_or(uint32_t a, uint32_t mask, uint32_t bits) {
    uint32_t d;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(mask), "r"(bits));
    return d;
}

/* a * b + c on bf16 pairs, round to nearest (exact here: integers below 256) */
__device__ __forceinline__ uint32_t qb_bf16x2_fma(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t d;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

/* c += A . B, 16 x 16 bf16 by 16 x 8 bf16, fp32 accumulate */
__device__ __forceinline__ void qb_mma_bf16_16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                  uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* bf16 pair (q[m] - zero, q[m + 4] - zero) of a word of 8 nibbles; nz = bf16x2 of -(128 + zero) */
template <int M>
__device__ __forceinline__ uint32_t qb_q4_pair(uint32_t word, uint32_t nz) {
    uint32_t magic = qb_lop_and_or(word >> (4 * M), 0x000F000Fu, QB_TC_BF16_128 * 0x10001u);
    return qb_bf16x2_fma(magic, QB_TC_BF16X2_ONE, nz);
}

/* -(128 + zero) in both halves of a bf16x2, from an sz entry (zero < 128) */
__device__ __forceinline__ uint32_t qb_q4_neg_zero(uint32_t s_z) { return (0xC300u + (s_z >> 16)) * 0x10001u; }

__device__ __forceinline__ float qb_sz_scale(uint32_t s_z) {
    return __half2float(__ushort_as_half((unsigned short)(s_z & 0xffffu)));
}

/* One step: pieces wa (row g) and wb (row g + 8), x of the step for this lane at xs (4 x 16 bytes). */
__device__ __forceinline__ void qb_q4_tc_step(uint4 wa, uint4 wb, const uint4 *__restrict__ xs, uint32_t sza,
                                              uint32_t szb, float &acc_a, float &acc_b) {
    const uint32_t nza = qb_q4_neg_zero(sza), nzb = qb_q4_neg_zero(szb);
    const uint32_t wav[4] = {wa.x, wa.y, wa.z, wa.w}, wbv[4] = {wb.x, wb.y, wb.z, wb.w};
    float c0[4] = {0.f, 0.f, 0.f, 0.f}, c1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint4 xv = __ldg(xs + i); /* x[k0 .. k0 + 7] as pairs (0,1) (2,3) (4,5) (6,7) */
        uint32_t x04 = __byte_perm(xv.x, xv.z, 0x5410u), x15 = __byte_perm(xv.x, xv.z, 0x7632u);
        uint32_t x26 = __byte_perm(xv.y, xv.w, 0x5410u), x37 = __byte_perm(xv.y, xv.w, 0x7632u);
        uint32_t a = wav[i], b = wbv[i];
        qb_mma_bf16_16816(c0, qb_q4_pair<0>(a, nza), qb_q4_pair<0>(b, nzb), qb_q4_pair<1>(a, nza),
                          qb_q4_pair<1>(b, nzb), x04, x15);
        qb_mma_bf16_16816(c1, qb_q4_pair<2>(a, nza), qb_q4_pair<2>(b, nzb), qb_q4_pair<3>(a, nza),
                          qb_q4_pair<3>(b, nzb), x26, x37);
    }
    acc_a = fmaf(qb_sz_scale(sza), c0[0] + c1[0], acc_a);
    acc_b = fmaf(qb_sz_scale(szb), c0[2] + c1[2], acc_b);
}

/* 8 bits: a step is 64 consecutive k of 16 rows; lane 4 g + t: piece t (k 16t .. 16t + 15) of rows g, g + 8;
 * word m of a piece holds k = 16t + 4m + j at byte j. mma m uses word m: A {row g (q0, q1), row g+8 (q0, q1),
 * row g (q2, q3), row g+8 (q2, q3)} - zero, B {(x[k0], x[k0 + 1]), (x[k0 + 2], x[k0 + 3])}, k0 = 16t + 4m: the
 * x pairs are x's own words, no permute. A pair is made exactly in fp32 (byte permute into 2^23 + q, minus
 * 2^23 + zero: q - zero in [-256, 255]) and packed by one cvt to bf16x2 (exact: integers of magnitude <= 256). */
template <int B>
__device__ __forceinline__ uint32_t qb_q8_pair(uint32_t word, float zc) {
    float lo = qb_byte_magic<B>(word) - zc, hi = qb_byte_magic<B + 1>(word) - zc;
    uint32_t d;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo)); /* hi -> upper half, lo -> lower */
    return d;
}

__device__ __forceinline__ void qb_q8_tc_step(uint4 wa, uint4 wb, const uint4 *__restrict__ xs, uint32_t sza,
                                              uint32_t szb, float &acc_a, float &acc_b) {
    const float zca = QB_MAGIC + (float)(sza >> 16), zcb = QB_MAGIC + (float)(szb >> 16);
    const uint32_t wav[4] = {wa.x, wa.y, wa.z, wa.w}, wbv[4] = {wb.x, wb.y, wb.z, wb.w};
    const uint4 xv0 = __ldg(xs), xv1 = __ldg(xs + 1); /* x[16t .. 16t + 15] as pairs (0,1) (2,3) ... */
    const uint32_t xw[8] = {xv0.x, xv0.y, xv0.z, xv0.w, xv1.x, xv1.y, xv1.z, xv1.w};
    float c0[4] = {0.f, 0.f, 0.f, 0.f}, c1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int m = 0; m < 4; m++) {
        uint32_t a = wav[m], b = wbv[m];
        qb_mma_bf16_16816(m & 1 ? c1 : c0, qb_q8_pair<0>(a, zca), qb_q8_pair<0>(b, zcb), qb_q8_pair<2>(a, zca),
                          qb_q8_pair<2>(b, zcb), xw[2 * m], xw[2 * m + 1]);
    }
    acc_a = fmaf(qb_sz_scale(sza), c0[0] + c1[0], acc_a);
    acc_b = fmaf(qb_sz_scale(szb), c0[2] + c1[2], acc_b);
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

/* Warps per 16-row tile by shape: as many as keep the grid within ~31 resident warps per SM of an H100
 * (4096 warps) and give each warp at least two steps. */
static int qb_q_tc_auto_warps(int n, int steps) {
    long tiles = (n + 15) / 16;
    int w = 16;
    while (w > 1 && (tiles * w > 4096 || steps < 2 * w)) w >>= 1;
    return w;
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
    if (warps == 0) warps = qb_q_tc_auto_warps(n, steps);
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
    default: return qb_errorf("gemv_quant_tc: warps per tile %d not in {0 (by shape), 1, 2, 4, 8, 16}", warps); \
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

extern "C" int qb_launch_gemv_quant_tc(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                       int bits, int group_size, uint16_t *y_bf16, float *y_f32, int warps,
                                       cudaStream_t stream) {
    return qb_launch_gemv_quant_tc_tuned(qweight, sz, x, n, k, bits, group_size, y_bf16, y_f32, warps, 2, 0, stream);
}

/* QB_GEMV_QUANT in the environment (read once): "old" = the CUDA-core kernel for every shape, "tc" = the
 * tensor-core kernel for 8 bits too; unset or anything else: tensor cores for 4 bits, CUDA cores for 8. */
static int qb_gemv_quant_mode(void) { /* 0 default, 1 old, 2 tc */
    static int mode = -1;
    if (mode < 0) {
        const char *v = getenv("QB_GEMV_QUANT");
        mode = v && strcmp(v, "old") == 0 ? 1 : v && strcmp(v, "tc") == 0 ? 2 : 0;
    }
    return mode;
}

/* 4-bit weights with K and groups multiples of 128 (every Qwen2.5 GPTQ-Int4 / AWQ release): the tensor-core
 * kernel. 8-bit weights (the CUDA-core kernel measured at 70-89 % of the bandwidth on the large shapes; the
 * tensor-core one not yet measured), other group sizes or QB_GEMV_QUANT=old: the CUDA-core kernel with 2 rows per
 * warp; QB_GEMV_QUANT=tc: the tensor-core kernel for 8 bits as well. */
extern "C" int qb_launch_gemv_quant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                    int bits, int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
    int mode = qb_gemv_quant_mode();
    if (mode != 1 && (bits == 4 || mode == 2) && qb_gemv_quant_tc_supported(bits, k, group_size))
        return qb_launch_gemv_quant_tc(qweight, sz, x, n, k, bits, group_size, y_bf16, y_f32, 0, stream);
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
    float scale = __half2float(__ushort_as_half((unsigned short)(s_z & 0xffffu)));
    float zc = QB_MAGIC + (float)(s_z >> 16);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
    __align__(16) qb_bf16 v[VPP];
#pragma unroll
    for (int wi = 0; wi < 4; wi++) {
        if (BITS == 4) {
            uint32_t lo = words[wi] & 0x0F0F0F0Fu, hi = (words[wi] >> 4) & 0x0F0F0F0Fu;
            v[wi * 8 + 0] = __float2bfloat16((qb_byte_magic<0>(lo) - zc) * scale);
            v[wi * 8 + 1] = __float2bfloat16((qb_byte_magic<0>(hi) - zc) * scale);
            v[wi * 8 + 2] = __float2bfloat16((qb_byte_magic<1>(lo) - zc) * scale);
            v[wi * 8 + 3] = __float2bfloat16((qb_byte_magic<1>(hi) - zc) * scale);
            v[wi * 8 + 4] = __float2bfloat16((qb_byte_magic<2>(lo) - zc) * scale);
            v[wi * 8 + 5] = __float2bfloat16((qb_byte_magic<2>(hi) - zc) * scale);
            v[wi * 8 + 6] = __float2bfloat16((qb_byte_magic<3>(lo) - zc) * scale);
            v[wi * 8 + 7] = __float2bfloat16((qb_byte_magic<3>(hi) - zc) * scale);
        } else {
            v[wi * 4 + 0] = __float2bfloat16((qb_byte_magic<0>(words[wi]) - zc) * scale);
            v[wi * 4 + 1] = __float2bfloat16((qb_byte_magic<1>(words[wi]) - zc) * scale);
            v[wi * 4 + 2] = __float2bfloat16((qb_byte_magic<2>(words[wi]) - zc) * scale);
            v[wi * 4 + 3] = __float2bfloat16((qb_byte_magic<3>(words[wi]) - zc) * scale);
        }
    }
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
