/* quant_tile.cuh - the tiled layout of a packed quantized linear (4 or 8 bits, repacked K-contiguous layout of
 * gemv_quant.cuh in, tiles out), read by the fused decode GEMVs (gemv_quant_fused.cuh) with 1 KiB contiguous per
 * warp and step instead of 16 separate 64-byte row pieces; and the prefill dequantization from it.
 *
 * A tile is the 16 rows the fused kernel gives one block at a time, by kind (engine/quant_tile_map.h: ROWS for
 * o_proj / down_proj, ROPE pairs for the fused q|k|v, gate/up pairs for the fused gate|up).
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

#include "engine/quant_tile_map.h" /* QB_TILE_*, qb_tile_row, qb_quant_tile_supported */
#ifdef __cplusplus
extern "C" {
#endif
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
