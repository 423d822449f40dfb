/* test_gemv_quant_tc_model.c - a host model of the 4-bit tensor-core GEMV of kernels/linear/gemv_quant.cu
 * (qb_gemv_q4_tc_kernel), run without a GPU: every lane's bit operations (lop3, bf16x2 FMA, byte permutes) as
 * the kernel writes them, the mma.sync.m16n8k16 operands placed into the 16 x 16 A and 16 x 8 B matrices by the
 * PTX ISA's fragment rules ("Matrix Fragments for mma.m16n8k16 with floating point type") and multiplied in
 * double, the per-step scale, the split of steps over W warps and the final sum. Checked against the direct
 * sum over k of scale * (q - zero) * x in double on the repacked layout (engine/quant_repack.h).
 *
 * What it proves, for 4 and 8 bits: the k mapping of A and B agree (every weight meets its own x exactly once),
 * the bf16 pairs are exactly q - zero (4 bits: q in [0, 15], zero in [0, 16]; 8 bits: q in [0, 255], zero in
 * [0, 256]), rows g and g + 8 land in c0 / c2, lanes
 * t = 0..3 of a group hold the same sums, and tiles with N not a multiple of 16 or groups of 256 work.
 * Tolerance: relative 1e-12 per output (double sums of exact products; only the order differs).
 * Also the stage / group bookkeeping of the cp.async variant (check_async_ring).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_pack.h"
#include "engine/random_init.h"

static int g_failures;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd32(void) {
    g_rng = qb_splitmix64(g_rng);
    return (uint32_t)(g_rng >> 32);
}

static float bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* exact float -> bf16 bits; records a failure if the value is not a bf16 */
static uint16_t float_to_bf16_exact(float f, const char *what) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (u & 0xffffu) {
        printf("FAIL %s: %g is not exact in bf16\n", what, (double)f);
        g_failures++;
    }
    return (uint16_t)(u >> 16);
}

/* PTX prmt / __byte_perm(x, y, s): bytes of {y, x} numbered 0..7 from x's low byte; result byte i = nibble i of s */
static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
    uint64_t v = (uint64_t)y << 32 | x;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= (uint32_t)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

static uint32_t lop_and_or(uint32_t a, uint32_t mask, uint32_t bits) { return (a & mask) | bits; }

static uint32_t bf16x2_fma(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r = 0;
    for (int h = 0; h < 2; h++) {
        float fa = bf16_to_float((uint16_t)(a >> (16 * h))), fb = bf16_to_float((uint16_t)(b >> (16 * h)));
        float fc = bf16_to_float((uint16_t)(c >> (16 * h)));
        r |= (uint32_t)float_to_bf16_exact(fa * fb + fc, "bf16x2 fma") << (16 * h);
    }
    return r;
}

static uint32_t q4_pair(uint32_t word, int m, uint32_t nz) {
    uint32_t magic = lop_and_or(word >> (4 * m), 0x000F000Fu, 0x4300u * 0x10001u);
    return bf16x2_fma(magic, 0x3F803F80u, nz);
}

static uint32_t q4_neg_zero(uint32_t s_z) { return (0xC300u + (s_z >> 16)) * 0x10001u; }

/* 8 bits: bytes B and B + 1 of word as (2^23 + q) - (2^23 + zero) in fp32, packed to bf16x2 (low = byte B) */
static uint32_t q8_pair(uint32_t word, int b, uint32_t s_z) {
    float zc = 8388608.0f + (float)(s_z >> 16);
    float lo = (8388608.0f + (float)((word >> (8 * b)) & 0xffu)) - zc;
    float hi = (8388608.0f + (float)((word >> (8 * b + 8)) & 0xffu)) - zc;
    return (uint32_t)float_to_bf16_exact(hi, "8-bit pair") << 16 | float_to_bf16_exact(lo, "8-bit pair");
}

/* mma.sync.m16n8k16.row.col bf16 -> f32 for a whole warp: a[lane][4], b[lane][2], c[lane][4] += A . B */
static void mma_16816(uint32_t a[32][4], uint32_t b[32][2], double c[32][4]) {
    double A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 8; i++) { /* element ai is half (i & 1) of register i / 2 */
            int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = bf16_to_float((uint16_t)(a[lane][i / 2] >> (16 * (i & 1))));
        }
        for (int i = 0; i < 4; i++) {
            int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][g] = bf16_to_float((uint16_t)(b[lane][i / 2] >> (16 * (i & 1))));
        }
    }
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        for (int i = 0; i < 4; i++) {
            int row = i < 2 ? g : g + 8, col = t * 2 + (i & 1);
            double s = 0;
            for (int kk = 0; kk < 16; kk++) s += A[row][kk] * B[kk][col];
            c[lane][i] += s;
        }
    }
}

/* One warp's step s of tile `tile` (the kernel's qb_q4_tc_step / qb_q8_tc_step for all 32 lanes); acc[lane][2]
 * += scaled sums. A step is 512 / bits values of k: piece 4 s + t of each row for lane t. */
static void model_step(const uint32_t *qw, const uint32_t *sz, const uint16_t *x, int n, int k, int bits, int group,
                       int tile, int s, double acc[32][2]) {
    int words = k * bits / 32, groups = k / group, step_k = 512 / bits;
    uint32_t wav[32][4], wbv[32][4], sza[32], szb[32];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane & 3;
        int ra = tile * 16 + g < n ? tile * 16 + g : n - 1, rb = tile * 16 + g + 8 < n ? tile * 16 + g + 8 : n - 1;
        for (int i = 0; i < 4; i++) { /* 16-byte piece 4 s + t of the row = words 16 s + 4 t + i */
            wav[lane][i] = qw[(size_t)ra * words + 16 * s + 4 * t + i];
            wbv[lane][i] = qw[(size_t)rb * words + 16 * s + 4 * t + i];
        }
        sza[lane] = sz[(size_t)ra * groups + s / (group / step_k)];
        szb[lane] = sz[(size_t)rb * groups + s / (group / step_k)];
    }
    double c0[32][4] = {{0}}, c1[32][4] = {{0}};
    for (int i = 0; i < 4; i++) {
        uint32_t a0[32][4], b0[32][2], a1[32][4], b1[32][2];
        for (int lane = 0; lane < 32; lane++) {
            int t = lane & 3;
            uint32_t a = wav[lane][i], b = wbv[lane][i];
            if (bits == 4) {
                uint32_t xw[4]; /* x pairs (0,1) (2,3) (4,5) (6,7) of the 16 bytes at k0 = 32 t + 8 i */
                memcpy(xw, x + 128 * s + 32 * t + 8 * i, sizeof xw);
                uint32_t nza = q4_neg_zero(sza[lane]), nzb = q4_neg_zero(szb[lane]);
                a0[lane][0] = q4_pair(a, 0, nza);
                a0[lane][1] = q4_pair(b, 0, nzb);
                a0[lane][2] = q4_pair(a, 1, nza);
                a0[lane][3] = q4_pair(b, 1, nzb);
                b0[lane][0] = byte_perm(xw[0], xw[2], 0x5410u);
                b0[lane][1] = byte_perm(xw[0], xw[2], 0x7632u);
                a1[lane][0] = q4_pair(a, 2, nza);
                a1[lane][1] = q4_pair(b, 2, nzb);
                a1[lane][2] = q4_pair(a, 3, nza);
                a1[lane][3] = q4_pair(b, 3, nzb);
                b1[lane][0] = byte_perm(xw[1], xw[3], 0x5410u);
                b1[lane][1] = byte_perm(xw[1], xw[3], 0x7632u);
            } else { /* word i = m: k0 = 16 t + 4 m; one mma, into chain i & 1 */
                uint32_t xw[2];
                memcpy(xw, x + 64 * s + 16 * t + 4 * i, sizeof xw);
                uint32_t(*ad)[4] = (i & 1) ? a1 : a0;
                uint32_t(*bd)[2] = (i & 1) ? b1 : b0;
                ad[lane][0] = q8_pair(a, 0, sza[lane]);
                ad[lane][1] = q8_pair(b, 0, szb[lane]);
                ad[lane][2] = q8_pair(a, 2, sza[lane]);
                ad[lane][3] = q8_pair(b, 2, szb[lane]);
                bd[lane][0] = xw[0];
                bd[lane][1] = xw[1];
            }
        }
        if (bits == 4) {
            mma_16816(a0, b0, c0);
            mma_16816(a1, b1, c1);
        } else if (i & 1) mma_16816(a1, b1, c1);
        else mma_16816(a0, b0, c0);
    }
    for (int lane = 0; lane < 32; lane++) {
        acc[lane][0] += qb_f16_to_float((uint16_t)(sza[lane] & 0xffffu)) * (c0[lane][0] + c1[lane][0]);
        acc[lane][1] += qb_f16_to_float((uint16_t)(szb[lane] & 0xffffu)) * (c0[lane][2] + c1[lane][2]);
        /* the other columns of C are the same sums */
        if (c0[lane][1] != c0[lane][0] || c1[lane][3] != c1[lane][2]) {
            printf("FAIL columns of C differ (lane %d)\n", lane);
            g_failures++;
        }
    }
}

/* The kernel for warps-per-tile W: y[n] (double); also checks lanes t = 0..3 agree. */
static void model_gemv(const uint32_t *qw, const uint32_t *sz, const uint16_t *x, int n, int k, int bits, int group,
                       int W, double *y) {
    int steps = k / (512 / bits), tiles = (n + 15) / 16;
    for (int tile = 0; tile < tiles; tile++) {
        double red[16][16] = {{0}};
        for (int w = 0; w < W; w++) {
            double acc[32][2] = {{0}};
            for (int s = w; s < steps; s += W) model_step(qw, sz, x, n, k, bits, group, tile, s, acc);
            for (int lane = 0; lane < 32; lane++) {
                int g = lane >> 2;
                if (acc[lane][0] != acc[lane & ~3][0] || acc[lane][1] != acc[lane & ~3][1]) {
                    printf("FAIL lanes of group %d differ\n", g);
                    g_failures++;
                }
                if ((lane & 3) == 0) red[w][g] = acc[lane][0], red[w][g + 8] = acc[lane][1];
            }
        }
        for (int r = 0; r < 16; r++) {
            double s = 0;
            for (int w = 0; w < W; w++) s += red[w][r];
            if (tile * 16 + r < n) y[tile * 16 + r] = s;
        }
    }
}

static void check_case(int n, int k, int bits, int group, int zmin, int zmax, int W) {
    int words = k * bits / 32, groups = k / group, per_word = 32 / bits;
    uint32_t mask = (1u << bits) - 1u;
    uint32_t *qw = malloc((size_t)n * words * 4), *sz = malloc((size_t)n * groups * 4);
    uint16_t *x = malloc((size_t)k * 2);
    double *y = malloc((size_t)n * 8);
    for (size_t i = 0; i < (size_t)n * words; i++) qw[i] = rnd32();
    for (size_t i = 0; i < (size_t)n * groups; i++) {
        uint32_t z = (uint32_t)zmin + rnd32() % (uint32_t)(zmax - zmin + 1);
        sz[i] = qb_float_to_f16(0.0346f / (float)(1 << (bits - 1)) * (0.75f + 0.5f * (float)(rnd32() >> 8) / 16777216.0f)) | z << 16;
    }
    for (int i = 0; i < k; i++) {
        float v = 2.0f * (float)(rnd32() >> 8) / 16777216.0f - 1.0f;
        uint32_t u;
        memcpy(&u, &v, 4);
        x[i] = (uint16_t)(u >> 16);
    }
    model_gemv(qw, sz, x, n, k, bits, group, W, y);
    for (int r = 0; r < n; r++) {
        double want = 0, mag = 0;
        for (int kk = 0; kk < k; kk++) {
            uint32_t e = sz[(size_t)r * groups + kk / group];
            int q = (int)((qw[(size_t)r * words + kk / per_word] >> (bits * (kk % per_word))) & mask), z = (int)(e >> 16);
            double term = (double)qb_f16_to_float((uint16_t)(e & 0xffffu)) * (q - z) * bf16_to_float(x[kk]);
            want += term;
            mag += fabs(term);
        }
        if (fabs(y[r] - want) > 1e-12 * mag) {
            printf("FAIL model %d bits N=%d K=%d group %d zeros [%d, %d] W=%d: y[%d] = %.17g, want %.17g (tol 1e-12 "
                   "x %g)\n", bits, n, k, group, zmin, zmax, W, r, y[r], want, mag);
            g_failures++;
            break;
        }
    }
    free(qw);
    free(sz);
    free(x);
    free(y);
}

/* The cp.async ring of qb_gemv_q_tc_async_kernel, modelled per warp (group counting as in the PTX ISA: wait_group
 * N returns when at most N of the thread's committed groups are pending): every step read from a stage is the
 * one its loop iteration expects, its group is complete when read, no stage is refilled before it was read, every
 * step of K is computed by exactly one warp, and no copy is still in flight at the end. */
static void check_async_ring(int W, int D, int steps) {
    int *covered = calloc((size_t)steps, sizeof *covered);
    int stage_step[16], stage_group[16], stage_read[16];
    char what[96];
    snprintf(what, sizeof what, "async ring W=%d D=%d steps=%d", W, D, steps);
    for (int warp = 0; warp < W && !g_failures; warp++) {
        const int mine = warp < steps ? (steps - 1 - warp) / W + 1 : 0; /* as in the kernel */
        int commits = 0, done = 0; /* groups committed; groups 0 .. done - 1 complete */
        for (int d = 0; d < D; d++) stage_step[d] = -1, stage_group[d] = -1, stage_read[d] = 1;
#define ISSUE(j)                                                                                              \
    do {                                                                                                      \
        if ((j) < mine) {                                                                                     \
            int st_ = (j) % D;                                                                                \
            if (!stage_read[st_]) {                                                                           \
                printf("FAIL %s warp %d: stage %d refilled with step %d before step %d was read\n", what, warp,  \
                       st_, (j), stage_step[st_]);                                                            \
                g_failures++;                                                                                 \
            }                                                                                                 \
            stage_step[st_] = (j), stage_group[st_] = commits, stage_read[st_] = 0;                           \
        }                                                                                                     \
        commits++;                                                                                            \
    } while (0)
        for (int j = 0; j < D - 1; j++) ISSUE(j);
        int st = 0;
        for (int i = 0; i < mine; i++) {
            if (commits - (D - 2) > done) done = commits - (D - 2); /* wait_group D - 2 */
            if (stage_step[st] != i || stage_group[st] >= done || stage_read[st]) {
                printf("FAIL %s warp %d iteration %d: stage %d holds step %d (group %d, %d complete, read %d)\n", what,
                       warp, i, st, stage_step[st], stage_group[st], done, stage_read[st]);
                g_failures++;
                break;
            }
            stage_read[st] = 1;
            ISSUE(i + D - 1);
            int s = warp + i * W;
            if (s >= steps || covered[s]++) {
                printf("FAIL %s warp %d: step %d computed twice or out of range\n", what, warp, s);
                g_failures++;
                break;
            }
            st = st + 1 == D ? 0 : st + 1;
        }
#undef ISSUE
        for (int d = 0; d < D; d++)
            if (!stage_read[d]) {
                printf("FAIL %s warp %d: step %d copied but never computed\n", what, warp, stage_step[d]);
                g_failures++;
            }
    }
    for (int s = 0; s < steps && !g_failures; s++)
        if (covered[s] != 1) {
            printf("FAIL %s: step %d computed %d times\n", what, s, covered[s]);
            g_failures++;
        }
    free(covered);
}

int main(void) {
    static const int rings[][2] = {{4, 4}, {4, 8}, {8, 2}, {8, 3}, {8, 4}, {16, 2}};
    for (size_t r = 0; r < sizeof rings / sizeof *rings; r++)
        for (int steps = 1; steps <= 160; steps++) check_async_ring(rings[r][0], rings[r][1], steps);
    check_case(32, 256, 4, 128, 1, 16, 1);  /* GPTQ-Int4 zeros (stored + 1), two steps, one warp */
    check_case(32, 512, 4, 128, 0, 15, 4);  /* AWQ zeros, steps split over 4 warps */
    check_case(40, 384, 4, 128, 0, 16, 2);  /* N not a multiple of 16: rows past N clamped, not stored */
    check_case(16, 1024, 4, 256, 0, 16, 8); /* groups of 256: two steps per group */
    check_case(16, 384, 4, 128, 8, 8, 16);  /* more warps than steps */
    check_case(32, 256, 8, 128, 1, 256, 1); /* GPTQ-Int8 zeros 1..256: two steps per group */
    check_case(40, 640, 8, 128, 0, 256, 4); /* 8 bits, N % 16 != 0, 10 steps over 4 warps */
    check_case(16, 192, 8, 64, 128, 128, 2); /* groups of 64 (one step each), symmetric zeros */
    if (g_failures) {
        printf("test_gemv_quant_tc_model: %d failures\n", g_failures);
        return 1;
    }
    printf("test_gemv_quant_tc_model: passed\n");
    return 0;
}
