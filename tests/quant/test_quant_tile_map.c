/* test_quant_tile_map.c - the tiles of the fused quantized decode GEMVs (engine/quant_tile_map.h), without a GPU:
 * for every Qwen2.5 size (configs/models) at every TP size its heads and intermediate size allow, each linear is
 * whole tiles of its kind, every tiling is a permutation of the rows (no row twice, none left out), and the pairs
 * a tile puts in slots j and j + 8 are the ones the epilogues need together: RoPE rows i and i + hd/2 of one head
 * (q, k and v heads alike), SiLU gate j with up j. Also the refusals (rows that are not whole tiles).
 *   test_quant_tile_map      exits 1 on any failure
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/quant_tile_map.h"
#include "util/error.h"

static int g_failures;

static void fail(const char *what) {
    printf("FAIL %s\n", what);
    g_failures++;
}

/* kind over n rows: every slot's row in range, each row exactly once, pairs as the epilogue needs them. */
static void check_tiling(const char *label, int kind, int n, int hd, int inter) {
    char what[256];
    if (!qb_quant_tile_supported(kind, n, hd, inter)) {
        snprintf(what, sizeof what, "%s: kind %d over %d rows (hd %d, inter %d) not supported", label, kind, n, hd,
                 inter);
        fail(what);
        return;
    }
    unsigned char *seen = calloc((size_t)n, 1);
    for (int t = 0; t < n / 16; t++)
        for (int j = 0; j < 16; j++) {
            int r = qb_tile_row(kind, t, j, hd, inter);
            if (r < 0 || r >= n || seen[r]) {
                snprintf(what, sizeof what, "%s: kind %d tile %d slot %d -> row %d (out of range or twice)", label,
                         kind, t, j, r);
                fail(what);
                free(seen);
                return;
            }
            seen[r] = 1;
            if (j >= 8) {
                int a = qb_tile_row(kind, t, j - 8, hd, inter);
                int ok = kind == QB_TILE_ROWS ? r == a + 8
                         : kind == QB_TILE_SILU ? r == a + inter && a < inter
                                                : r == a + hd / 2 && a / hd == r / hd && a % hd < hd / 2;
                if (!ok) {
                    snprintf(what, sizeof what, "%s: kind %d tile %d pairs rows %d and %d", label, kind, t, a, r);
                    fail(what);
                    free(seen);
                    return;
                }
            }
        }
    free(seen); /* n rows seen once each: n / 16 tiles x 16 slots with no repeat */
}

int main(void) {
    static const char *models[] = {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b",
                                   "qwen2.5-14b",  "qwen2.5-32b",  "qwen2.5-72b"};
    int checked = 0;
    for (size_t m = 0; m < sizeof models / sizeof *models; m++) {
        qb_model_config c;
        bool is_ckpt = false;
        char dir[512];
        if (qb_model_config_resolve(models[m], &c, &is_ckpt, dir, sizeof dir) != 0) {
            printf("FAIL config %s: %s\n", models[m], qb_last_error());
            g_failures++;
            continue;
        }
        for (int tp = 1; tp <= 8; tp *= 2) {
            if (c.num_kv_heads % tp || c.num_heads % tp || c.intermediate_size % tp) continue;
            int hq = c.num_heads / tp, hkv = c.num_kv_heads / tp, hd = c.head_dim, I = c.intermediate_size / tp;
            if (I % 8) continue; /* not tileable at this TP (no Qwen2.5 size at a legal TP) */
            char label[96];
            snprintf(label, sizeof label, "%s TP%d", models[m], tp);
            check_tiling(label, QB_TILE_ROPE, (hq + 2 * hkv) * hd, hd, 0);
            check_tiling(label, QB_TILE_SILU, 2 * I, 0, I);
            check_tiling(label, QB_TILE_ROWS, c.hidden_size, 0, 0);
            checked++;
        }
    }
    /* the fixtures' and the tests' small shapes */
    check_tiling("gqa_untied q|k|v", QB_TILE_ROPE, (4 + 2 * 2) * 64, 64, 0);
    check_tiling("tied_hd128 q|k|v", QB_TILE_ROPE, 3 * 128, 128, 0);
    check_tiling("small gate|up", QB_TILE_SILU, 2 * 384, 0, 384);
    /* refusals: rows that are not whole tiles */
    if (qb_quant_tile_supported(QB_TILE_ROWS, 200, 0, 0)) fail("200 rows accepted as tiles of 16");
    if (qb_quant_tile_supported(QB_TILE_SILU, 2 * 196, 0, 196)) fail("gate|up of 196 accepted (pairs of 8)");
    if (qb_quant_tile_supported(QB_TILE_SILU, 2 * 384, 0, 400)) fail("gate|up rows != 2 inter accepted");
    if (qb_quant_tile_supported(QB_TILE_ROPE, 3 * 100, 100, 0) && (3 * 100) % 16) fail("300 rows accepted");
    if (qb_quant_tile_supported(QB_TILE_ROPE, 480, 0, 0)) fail("RoPE tiles without a head size accepted");
    if (g_failures) {
        printf("test_quant_tile_map: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_quant_tile_map: %d model/TP sizes and the small shapes tiled correctly\n", checked);
    return 0;
}
