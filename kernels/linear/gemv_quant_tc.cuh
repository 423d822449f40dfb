/* gemv_quant_tc.cuh - device helpers of the tensor-core quantized GEMVs, shared by gemv_quant.cu (the plain
 * decode GEMV) and gemv_quant_fused.cu (the fused decode GEMVs): exact q - zero pairs in bf16, the mma.sync step
 * of 16 rows, and the cp.async primitives. Device code only; included by .cu files after common.cuh.
 */
#ifndef QB_KERNELS_GEMV_QUANT_TC_CUH
#define QB_KERNELS_GEMV_QUANT_TC_CUH

#include <cuda_fp16.h>

#include "common.cuh"

#define QB_MAGIC_BITS 0x4B000000u
#define QB_MAGIC 8388608.0f

/* 2^23 + (byte b of src) as a float, exactly */
template <int B>
__device__ __forceinline__ float qb_byte_magic(uint32_t src) {
    return __uint_as_float(__byte_perm(src, QB_MAGIC_BITS, 0x7650u + B));
}

/* The 128/BITS values of one 16-byte piece as bf16: bf16(scale * (q - zero)), q - zero exact in fp32 (magic
 * number), the product exact, one rounding (the prefill dequantizations of gemv_quant.cu and quant_tile.cu). */
template <int BITS>
__device__ __forceinline__ void qb_dequant_piece(uint4 w, uint32_t s_z, qb_bf16 *v) {
    float scale = __half2float(__ushort_as_half((unsigned short)(s_z & 0xffffu)));
    float zc = QB_MAGIC + (float)(s_z >> 16);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
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
}

/* x of a step: XS 0 = global memory through the read-only path, 1 = shared memory (a normalised input). */
template <int XS>
__device__ __forceinline__ uint4 qb_q_ldx(const uint4 *p) { return XS ? *p : __ldg(p); }

/* ---- Tensor-core GEMV: the default for 4 bits (K, group_size multiples of 128); 8 bits at small N (the rule) ----
 * (described for 4 bits; the 8-bit step is described at qb_q8_tc_step)
 *
 * Why: the CUDA-core kernel of gemv_quant.cu spends ~4 instructions per 4-bit weight (byte permute, subtract,
 * FMA, x conversion) and stays arithmetic-bound at about half the memory bandwidth. Here the products and their
 * fp32 sums go to mma.sync.m16n8k16 (bf16 in, fp32 accumulate): per 8 weights the CUDA cores only make 4 bf16 pairs
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
template <int XS = 0>
__device__ __forceinline__ void qb_q4_tc_step(uint4 wa, uint4 wb, const uint4 *__restrict__ xs, uint32_t sza,
                                              uint32_t szb, float &acc_a, float &acc_b) {
    const uint32_t nza = qb_q4_neg_zero(sza), nzb = qb_q4_neg_zero(szb);
    const uint32_t wav[4] = {wa.x, wa.y, wa.z, wa.w}, wbv[4] = {wb.x, wb.y, wb.z, wb.w};
    float c0[4] = {0.f, 0.f, 0.f, 0.f}, c1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        uint4 xv = qb_q_ldx<XS>(xs + i); /* x[k0 .. k0 + 7] as pairs (0,1) (2,3) (4,5) (6,7) */
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

template <int XS = 0>
__device__ __forceinline__ void qb_q8_tc_step(uint4 wa, uint4 wb, const uint4 *__restrict__ xs, uint32_t sza,
                                              uint32_t szb, float &acc_a, float &acc_b) {
    const float zca = QB_MAGIC + (float)(sza >> 16), zcb = QB_MAGIC + (float)(szb >> 16);
    const uint32_t wav[4] = {wa.x, wa.y, wa.z, wa.w}, wbv[4] = {wb.x, wb.y, wb.z, wb.w};
    const uint4 xv0 = qb_q_ldx<XS>(xs), xv1 = qb_q_ldx<XS>(xs + 1); /* x[16t .. 16t + 15] as pairs (0,1) (2,3) ... */
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

/* cp.async: 16 bytes (L2 only) or 4 bytes global -> shared; commit a group; wait until at most PENDING groups
 * of this thread are in flight. */
__device__ __forceinline__ void qb_cp_async16(void *smem, const void *gmem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void qb_cp_async4(void *smem, const void *gmem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void qb_cp_async_commit(void) { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void qb_cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;" ::"n"(PENDING) : "memory");
}

#endif
