/* quant_tile_map.h - which 16 rows of a packed quantized linear form one tile of the fused decode GEMVs
 * (kernels/linear/gemv_quant_fused.cuh): the rows an epilogue needs together. Plain C, callable from host and device
 * code; the tiled layout itself (what is stored where) is described in kernels/linear/quant_tile.cuh.
 *   QB_TILE_ROWS  slot j of tile t: row 16 t + j (o_proj, down_proj: store / residual-add epilogues);
 *   QB_TILE_ROPE  slot j < 8: first row of RoPE pair p = 8 t + j (head h = p / (hd/2), i = p % (hd/2): row
 *                 h hd + i), slot j + 8: its partner h hd + i + hd/2 (the fused q|k|v);
 *   QB_TILE_SILU  slot j < 8: gate row 8 t + j, slot j + 8: up row inter + 8 t + j (the fused gate|up).
 */
#ifndef QB_ENGINE_QUANT_TILE_MAP_H
#define QB_ENGINE_QUANT_TILE_MAP_H

enum { QB_TILE_ROWS = 0, QB_TILE_ROPE = 1, QB_TILE_SILU = 2 };

#ifdef __CUDACC__
#define QB_TILE_HD __host__ __device__
#else
#define QB_TILE_HD
#endif

/* The row of slot j (0..15) of tile t (hd: head size for ROPE; inter: gate rows for SILU). */
static inline QB_TILE_HD int qb_tile_row(int kind, int t, int j, int hd, int inter) {
    if (kind == QB_TILE_ROWS) return 16 * t + j;
    int pair = 8 * t + (j & 7), second = j >= 8;
    if (kind == QB_TILE_SILU) return pair + second * inter;
    int half = hd / 2, head = pair / half;
    return head * hd + (pair - head * half) + second * half;
}

/* Whether a linear of n rows is whole tiles of this kind (every Qwen2.5 shape at every legal TP is). */
static inline int qb_quant_tile_supported(int kind, int n, int hd, int inter) {
    if (n <= 0 || n % 16) return 0;
    if (kind == QB_TILE_ROPE) return hd > 0 && hd % 2 == 0 && n % hd == 0;
    if (kind == QB_TILE_SILU) return inter > 0 && n == 2 * inter && inter % 8 == 0;
    return kind == QB_TILE_ROWS;
}

#endif
