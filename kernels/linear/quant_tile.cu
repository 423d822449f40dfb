/* quant_tile.cu - the row layout of packed quantized weights to the tiled layout of the fused decode GEMVs, and the
 * prefill dequantization from tiles (quant_tile.cuh). One thread per 16-byte piece or scale | zero entry; runs once
 * per linear at load time (the re-layout) or once per linear and prefill chunk (the dequantization).
 */
#include "common.cuh"
#include "gemv_quant_tc.cuh"
#include "quant_tile.cuh"

/* tiled piece d -> (tile, step, slot j, lane piece t) */
__device__ __forceinline__ void qb_tile_piece(long d, int steps, int &tile, int &step, int &j, int &t) {
    long per_tile = (long)steps * 64;
    tile = (int)(d / per_tile);
    int rem = (int)(d - (long)tile * per_tile);
    step = rem >> 6;
    int q = rem & 63, half = q >> 5;
    t = q & 3;
    j = ((q & 31) >> 2) + 8 * half;
}

__global__ void qb_quant_tile_w_kernel(const uint4 *__restrict__ src, long total, int steps, int kind, int hd,
                                       int inter, uint4 *__restrict__ dst) {
    long d = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= total) return;
    int tile, step, j, t;
    qb_tile_piece(d, steps, tile, step, j, t);
    int row = qb_tile_row(kind, tile, j, hd, inter);
    dst[d] = src[(long)row * steps * 4 + step * 4 + t];
}

__global__ void qb_quant_tile_sz_kernel(const uint32_t *__restrict__ src, long total, int groups, int kind, int hd,
                                        int inter, uint32_t *__restrict__ dst) {
    long d = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= total) return;
    long per_tile = (long)groups * 16;
    int tile = (int)(d / per_tile), rem = (int)(d - (long)tile * per_tile), group = rem >> 4, j = rem & 15;
    dst[d] = src[(long)qb_tile_row(kind, tile, j, hd, inter) * groups + group];
}

static int qb_tile_check(const char *what, int n, int k, int bits, int group, int kind, int hd, int inter) {
    if (bits != 4 && bits != 8) return qb_errorf("%s: bits %d not supported (4 or 8)", what, bits);
    int vpp = 128 / bits;
    if (k <= 0 || group <= 0 || k % vpp || group % vpp || k % group || (k / vpp) % 4)
        return qb_errorf("%s: unsupported K=%d group_size=%d for %d bits", what, k, group, bits);
    if (!qb_quant_tile_supported(kind, n, hd, inter))
        return qb_errorf("%s: N=%d cannot be tiled as kind %d (hd %d, inter %d)", what, n, kind, hd, inter);
    return 0;
}

extern "C" int qb_launch_quant_tile(const uint32_t *qw_rows, const uint32_t *sz_rows, int n, int k, int bits,
                                    int group_size, int kind, int hd, int inter, uint32_t *qw_tiles,
                                    uint32_t *sz_tiles, cudaStream_t stream) {
    QB_TRY(qb_tile_check("quant_tile", n, k, bits, group_size, kind, hd, inter));
    int steps = k / (512 / bits), groups = k / group_size;
    long total = (long)n * steps * 4;
    qb_quant_tile_w_kernel<<<(unsigned)((total + 255) / 256), 256, 0, stream>>>(
        (const uint4 *)qw_rows, total, steps, kind, hd, inter, (uint4 *)qw_tiles);
    QB_LAUNCH_CHECK("quant_tile");
    total = (long)n * groups;
    qb_quant_tile_sz_kernel<<<(unsigned)((total + 255) / 256), 256, 0, stream>>>(sz_rows, total, groups, kind, hd,
                                                                                 inter, sz_tiles);
    QB_LAUNCH_CHECK("quant_tile");
    return 0;
}

/* One thread per tiled piece: its 128/BITS values, dequantized as qb_dequant_quant_kernel (gemv_quant.cu) does,
 * into their place in the row-major bf16 matrix. */
template <int BITS>
__global__ void qb_dequant_tiled_kernel(const uint4 *__restrict__ qw, const uint32_t *__restrict__ sz, long total,
                                        int steps, int groups, int pieces_per_group, int kind, int hd, int inter,
                                        int k, qb_bf16 *__restrict__ out) {
    constexpr int VPP = 128 / BITS;
    long d = (long)blockIdx.x * blockDim.x + threadIdx.x;
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (d >= total) return;
    int tile, step, j, t;
    qb_tile_piece(d, steps, tile, step, j, t);
    int row = qb_tile_row(kind, tile, j, hd, inter), piece = step * 4 + t;
    uint4 w = qw[d];
    uint32_t s_z = sz[((long)tile * groups + piece / pieces_per_group) * 16 + j];
    __align__(16) qb_bf16 v[VPP];
    qb_dequant_piece<BITS>(w, s_z, v);
    uint4 *dst = (uint4 *)(out + (long)row * k + (long)piece * VPP);
#pragma unroll
    for (int q = 0; q < VPP / 8; q++) dst[q] = ((const uint4 *)v)[q];
}

extern "C" int qb_launch_dequant_quant_tiled_bf16(const uint32_t *qw_tiles, const uint32_t *sz_tiles, int n, int k,
                                                  int bits, int group_size, int kind, int hd, int inter,
                                                  uint16_t *w_out, cudaStream_t stream) {
    QB_TRY(qb_tile_check("dequant_quant_tiled", n, k, bits, group_size, kind, hd, inter));
    if (((uintptr_t)qw_tiles & 15) || ((uintptr_t)w_out & 15))
        return qb_errorf("dequant_quant_tiled: qweight and output must be 16-byte aligned");
    int vpp = 128 / bits, steps = k / (512 / bits), groups = k / group_size;
    long total = (long)n * steps * 4;
    unsigned blocks = (unsigned)((total + 255) / 256);
    if (bits == 4)
        QB_LAUNCH("dequant_quant_tiled", qb_dequant_tiled_kernel<4>, dim3(blocks), dim3(256), 0, stream,
                  (const uint4 *)qw_tiles, sz_tiles, total, steps, groups, group_size / vpp, kind, hd, inter, k,
                  (qb_bf16 *)w_out);
    else
        QB_LAUNCH("dequant_quant_tiled", qb_dequant_tiled_kernel<8>, dim3(blocks), dim3(256), 0, stream,
                  (const uint4 *)qw_tiles, sz_tiles, total, steps, groups, group_size / vpp, kind, hd, inter, k,
                  (qb_bf16 *)w_out);
    return 0;
}
