/* quant_tile.cuh - the tiled layout of a packed quantized linear (4 or 8 bits, repacked K-contiguous layout of
 * gemv_quant.cuh in, tiles out), read by the fused decode GEMVs (gemv_quant_fused.cuh) with 1 KiB contiguous per
 * warp and step instead of 16 separate 64-byte row pieces; and the prefill dequantization from it.
 *
 * A tile is the 16 rows the fused kernel gives one block at a time, by kind:
 *   QB_TILE_ROWS  rows 16 t .. 16 t + 15 (o_proj, down_proj: store / residual-add epilogues);
 *   QB_TILE_ROPE  slot j < 8: row of RoPE pair p = 8 t + j, slot j + 8 its partner (pair p: head h = p / (hd/2),
 *                 i = p % (hd/2); rows h hd + i and h hd + i + hd/2) (the fused q|k|v);
 *   QB_TILE_SILU  slot j < 8: gate row 8 t + j, slot j + 8: up row inter + 8 t + j (the fused gate|up).
 * qweight tiled: [tile][step][64] 16-byte pieces; piece (half, g, t) at 32 half + 4 g + t holds piece t of step
 *   `step` (the 512/bits values k = step * 512/bits + 128/bits * t ..) of slot g + 8 half's row, i.e. exactly what
 *   lane 4 g + t of the tensor-core step reads for rows g and g + 8.
 * sz tiled: [tile][group][16], entry j = sz[row of slot j][group].
 * Requirements (qb_quant_tile_supported; every Qwen2.5 shape): whole tiles (N a multiple of 16), K and group_size
 * as gemv_quant.cuh. Both return 0, or -1 with a qb_errorf message.
 */
#ifndef QB_KERNELS_QUANT_TILE_CUH
#define QB_KERNELS_QUANT_TILE_CUH
#include <cuda_runtime_api.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
enum { QB_TILE_ROWS = 0, QB_TILE_ROPE = 1, QB_TILE_SILU = 2 };

#ifdef __CUDACC__
#define QB_TILE_HD __host__ __device__
#else
#define QB_TILE_HD
#endif

/* The row of slot j (0..15) of tile t, for a kind (hd: head size for ROPE; inter: rows of gate for SILU). */
static inline QB_TILE_HD int qb_tile_row(int kind, int t, int j, int hd, int inter) {
    if (kind == QB_TILE_ROWS) return 16 * t + j;
    int pair = 8 * t + (j & 7), second = j >= 8;
    if (kind == QB_TILE_SILU) return pair + second * inter;
    int half = hd / 2, head = pair / half;
    return head * hd + (pair - head * half) + second * half;
}

/* Whether a linear of n rows can be tiled for this kind (and its hd / inter). */
int qb_quant_tile_supported(int kind, int n, int hd, int inter);

/* qw_rows / sz_rows (row layout) -> qw_tiles / sz_tiles (tiled); different buffers. */
int qb_launch_quant_tile(const uint32_t *qw_rows, const uint32_t *sz_rows, int n, int k, int bits, int group_size,
                         int kind, int hd, int inter, uint32_t *qw_tiles, uint32_t *sz_tiles, cudaStream_t stream);

/* w_out [N][K] bf16 bits from the tiled layout, the same numbers as qb_launch_dequant_quant_bf16 on the rows. */
int qb_launch_dequant_quant_tiled_bf16(const uint32_t *qw_tiles, const uint32_t *sz_tiles, int n, int k, int bits,
                                       int group_size, int kind, int hd, int inter, uint16_t *w_out,
                                       cudaStream_t stream);
#ifdef __cplusplus
}
#endif
#endif
