/* gemv_quant.cu - decode GEMV and prefill dequantization for the repacked GPTQ / AWQ layout (gemv_quant.cuh).
 *
 * GEMV: the structure of gemv.cu. Block = 4 warps; warp w of block b owns rows (4b + w) * ROWS .. + ROWS. A
 * "piece" is 16 bytes of one row: 32 int4 or 16 int8 values of consecutive k, always inside one group. Lane l
 * takes pieces l, l + 32, ... of each of its rows, UNROLL pieces per batch, the next batch loading while the
 * current one is summed (the first before the PDL wait: weights do not depend on the previous kernel). x comes
 * through the L1 (__ldg), shared by the ROWS rows of the warp.
 * Dequantization in registers: a value q (4 or 8 bits) is moved by one byte permute into the low byte of the
 * float 2^23 (0x4B0000qq = 2^23 + q exactly); subtracting 2^23 + zero gives q - zero exactly. Per piece and row:
 * partial = sum_j (q_j - zero) * x_j in fp32 (4 chains), then acc += scale * partial.
 */
#include <cuda_fp16.h>

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

/* Not measured yet (no GPU where this was written): 2 rows per warp halves the x traffic through the L1 and the
 * bf16->fp32 conversions per weight; test_cuda_quant times 1, 2 and 4 on every shape - set the default from it. */
extern "C" int qb_launch_gemv_quant(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                    int bits, int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
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
