/* test_cpu_ops.c - every CPU reference op against a direct double-precision formula on small shapes, and
 * the threaded ops against their single-thread runs (which must agree bit for bit: threads only split
 * independent outputs). Run: ctest -R cpu_ops.
 *
 * Tolerance: the ops compute in fp32 and the formulas here in double, so the only difference is fp32
 * rounding: relative 1e-5 of the magnitude of the terms summed (K <= 300 terms of eps 6e-8 each, with
 * margin), absolute 1e-6 for values that are naturally O(1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_ops.h"
#include "engine/random_init.h"
#include "engine/rope.h"

static int g_failures;

static void check_close(const char *what, int index, double got, double want, double scale, double rel) {
    double tol = rel * (scale > 1.0 ? scale : 1.0);
    if (!(fabs(got - want) <= tol)) {
        if (g_failures < 20)
            fprintf(stderr, "FAIL %s[%d]: got %.9g want %.9g (|diff| %.3g > tol %.3g)\n", what, index, got, want,
                    fabs(got - want), tol);
        g_failures++;
    }
}

static float rnd(uint64_t *state) {
    *state += 1;
    return qb_random_unit(1234, 99, *state);
}

static void fill(float *x, size_t n, float scale, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rnd(s);
}

static void test_rmsnorm(void) {
    enum { N = 3, D = 96 };
    uint64_t s = 1;
    float x[N * D], w[D], out[N * D], res[N * D], res_copy[N * D], add[N * D];
    fill(x, N * D, 3.0f, &s);
    fill(w, D, 1.0f, &s);
    qb_ref_rmsnorm(x, w, N, D, 1e-6f, out);
    for (int i = 0; i < N; i++) {
        double ms = 0;
        for (int j = 0; j < D; j++) ms += (double)x[i * D + j] * x[i * D + j];
        double r = 1.0 / sqrt(ms / D + 1e-6);
        for (int j = 0; j < D; j++) check_close("rmsnorm", i * D + j, out[i * D + j], w[j] * x[i * D + j] * r, 1, 1e-5);
    }
    /* in place (out aliases x) gives the same */
    memcpy(res, x, sizeof x);
    qb_ref_rmsnorm(res, w, N, D, 1e-6f, res);
    for (int i = 0; i < N * D; i++) check_close("rmsnorm_in_place", i, res[i], out[i], 1, 0);
    /* fused add: residual += add, out = rmsnorm(residual) */
    fill(res, N * D, 1.0f, &s);
    fill(add, N * D, 1.0f, &s);
    memcpy(res_copy, res, sizeof res);
    qb_ref_add_rmsnorm(res, add, w, N, D, 1e-6f, out);
    for (int i = 0; i < N * D; i++) {
        res_copy[i] += add[i];
        check_close("add_rmsnorm.residual", i, res[i], res_copy[i], 1, 0);
    }
    float want[N * D];
    qb_ref_rmsnorm(res_copy, w, N, D, 1e-6f, want);
    for (int i = 0; i < N * D; i++) check_close("add_rmsnorm.out", i, out[i], want[i], 1, 0);
}

static void test_matmul(void) {
    enum { M = 5, N = 67, K = 300 };
    uint64_t s = 2;
    static float x[M * K], bias[N], y1[M * N], y4[M * N], w_f[N * K];
    static uint16_t w[N * K];
    fill(x, M * K, 2.0f, &s);
    fill(bias, N, 0.5f, &s);
    for (int i = 0; i < N * K; i++) {
        w[i] = qb_float_to_bf16(0.1f * rnd(&s));
        w_f[i] = qb_bf16_to_float(w[i]);
    }
    qb_ref_matmul_bf16(x, w, bias, M, N, K, y1, 1);
    qb_ref_matmul_bf16(x, w, bias, M, N, K, y4, 4);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double sum = bias[n], mag = fabs(bias[n]);
            for (int k = 0; k < K; k++) {
                sum += (double)x[m * K + k] * w_f[n * K + k];
                mag += fabs((double)x[m * K + k] * w_f[n * K + k]);
            }
            check_close("matmul", m * N + n, y1[m * N + n], sum, mag, 1e-5);
            check_close("matmul_threads4_vs_1", m * N + n, y4[m * N + n], y1[m * N + n], 1, 0);
        }
    /* a row computed alone (decode) equals the same row computed among others (prefill) */
    float single[N];
    for (int m = 0; m < M; m++) {
        qb_ref_matmul_bf16(x + m * K, w, bias, 1, N, K, single, 1);
        for (int n = 0; n < N; n++) check_close("matmul_row_alone_vs_in_block", m * N + n, single[n], y1[m * N + n], 1, 0);
    }
    /* no bias */
    qb_ref_matmul_bf16(x, w, NULL, M, N, K, y1, 3);
    for (int n = 0; n < N; n++) {
        double sum = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            sum += (double)x[k] * w_f[n * K + k];
            mag += fabs((double)x[k] * w_f[n * K + k]);
        }
        check_close("matmul_nobias", n, y1[n], sum, mag, 1e-5);
    }
}

static void test_rope(void) {
    qb_model_config c;
    memset(&c, 0, sizeof c);
    c.head_dim = 64;
    c.rope_theta = 10000.0;
    c.rope_type = QB_ROPE_DEFAULT;
    float inv[32], attn;
    qb_rope_inv_freq(&c, inv, &attn);
    check_close("rope.default.attention_factor", 0, attn, 1.0, 1, 0);
    for (int i = 0; i < 32; i++) check_close("rope.default.inv_freq", i, inv[i], pow(10000.0, -2.0 * i / 64), 1, 1e-6);

    float *cos_t, *sin_t;
    if (qb_rope_tables(&c, 40, &cos_t, &sin_t) != 0) {
        fprintf(stderr, "FAIL rope tables\n");
        g_failures++;
        return;
    }
    /* each (x[i], x[i+hd/2]) pair turns by angle pos*inv_freq[i]: compare with the complex product */
    enum { N = 3, H = 2, HD = 64 };
    uint64_t s = 3;
    float x[N * H * HD], orig[N * H * HD];
    int32_t pos[N] = {0, 7, 39};
    fill(x, N * H * HD, 1.0f, &s);
    memcpy(orig, x, sizeof x);
    qb_ref_rope(x, N, H, HD, pos, cos_t, sin_t);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < HD / 2; i++) {
                const float *o = orig + (n * H + h) * HD;
                const float *r = x + (n * H + h) * HD;
                double a = (double)pos[n] * pow(10000.0, -2.0 * i / HD);
                /* angle error: pos * 1 ulp of inv_freq, <= 40 * 6e-8 */
                check_close("rope.rotate.lo", i, r[i], o[i] * cos(a) - o[i + HD / 2] * sin(a), 1, 1e-5);
                check_close("rope.rotate.hi", i, r[i + HD / 2], o[i + HD / 2] * cos(a) + o[i] * sin(a), 1, 1e-5);
            }
    free(cos_t);
    free(sin_t);

    /* YaRN, factor 4, original 64, theta 10000, hd 64: correction dims floor(-3.3) -> clamped 0 .. ceil(8.4)=9.
     * At 0 the original frequency is kept, from 9 on it is divided by the factor, linear between. */
    c.rope_type = QB_ROPE_YARN;
    c.rope_factor = 4.0;
    c.rope_original_max_pos = 64;
    qb_rope_inv_freq(&c, inv, &attn);
    check_close("rope.yarn.attention_factor", 0, attn, 0.1 * log(4.0) + 1.0, 1, 1e-7);
    double low = fmax(floor(64 * log(64 / (32 * 2 * M_PI)) / (2 * log(10000.0))), 0.0);
    double high = ceil(64 * log(64 / (1 * 2 * M_PI)) / (2 * log(10000.0)));
    check_close("rope.yarn.low", 0, low, 0, 1, 0);
    check_close("rope.yarn.high", 0, high, 9, 1, 0);
    for (int i = 0; i < 32; i++) {
        double base = pow(10000.0, -2.0 * i / 64);
        double ramp = fmin(fmax((i - low) / (high - low), 0.0), 1.0);
        double want = base / 4.0 * ramp + base * (1.0 - ramp);
        check_close("rope.yarn.inv_freq", i, inv[i], want, 1, 1e-6 * base + 1e-9);
    }
    if (qb_rope_tables(&c, 4, &cos_t, &sin_t) == 0) {
        check_close("rope.yarn.cos0_is_attention_factor", 0, cos_t[0], attn, 1, 0);
        check_close("rope.yarn.sin0_is_zero", 0, sin_t[0], 0, 1, 0);
        free(cos_t);
        free(sin_t);
    }
}

static void test_attention(void) {
    enum { HQ = 6, HKV = 2, HD = 16, START = 5, N = 4, T = START + N };
    uint64_t s = 4;
    float q[N * HQ * HD], k[T * HKV * HD], v[T * HKV * HD], out1[N * HQ * HD], out3[N * HQ * HD];
    fill(q, sizeof q / sizeof *q, 2.0f, &s);
    fill(k, sizeof k / sizeof *k, 2.0f, &s);
    fill(v, sizeof v / sizeof *v, 1.0f, &s);
    qb_ref_attention(q, k, v, N, START, HQ, HKV, HD, out1, 1);
    qb_ref_attention(q, k, v, N, START, HQ, HKV, HD, out3, 3);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < HQ; h++) {
            int kvh = h / (HQ / HKV), len = START + i + 1;
            double sc[T], mx = -1e300, sum = 0;
            for (int t = 0; t < len; t++) {
                double d = 0;
                for (int e = 0; e < HD; e++) d += (double)q[(i * HQ + h) * HD + e] * k[(t * HKV + kvh) * HD + e];
                sc[t] = d / sqrt((double)HD);
                mx = fmax(mx, sc[t]);
            }
            for (int t = 0; t < len; t++) sum += exp(sc[t] - mx);
            for (int e = 0; e < HD; e++) {
                double o = 0;
                for (int t = 0; t < len; t++) o += exp(sc[t] - mx) / sum * v[(t * HKV + kvh) * HD + e];
                int idx = (i * HQ + h) * HD + e;
                check_close("attention", idx, out1[idx], o, 1, 1e-5);
                check_close("attention_threads3_vs_1", idx, out3[idx], out1[idx], 1, 0);
            }
        }
}

static void test_small_ops(void) {
    float g[5] = {-3.0f, -0.5f, 0.0f, 0.7f, 4.0f}, u[5] = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f}, o[5];
    qb_ref_silu_mul(g, u, 5, o);
    for (int i = 0; i < 5; i++) check_close("silu_mul", i, o[i], g[i] / (1.0 + exp(-(double)g[i])) * u[i], 1, 1e-6);

    float x[6] = {1.0f, 5.0f, -2.0f, 5.0f, 4.9f, 5.0f}, mv;
    int32_t a = qb_ref_argmax(x, 6, &mv);
    check_close("argmax.tie_smallest_index", 0, a, 1, 1, 0);
    check_close("argmax.value", 0, mv, 5.0, 1, 0);

    uint16_t table[3 * 4];
    for (int i = 0; i < 12; i++) table[i] = qb_float_to_bf16(0.25f * (float)i - 1.0f);
    int32_t tok[2] = {2, 0};
    float e[8];
    qb_ref_embedding(table, 4, tok, 2, e);
    for (int j = 0; j < 4; j++) {
        check_close("embedding.row0", j, e[j], 0.25 * (8 + j) - 1.0, 1, 0);
        check_close("embedding.row1", j, e[4 + j], 0.25 * j - 1.0, 1, 0);
    }
}

int main(void) {
    test_rmsnorm();
    test_matmul();
    test_rope();
    test_attention();
    test_small_ops();
    if (g_failures) {
        fprintf(stderr, "test_cpu_ops: %d mismatches\n", g_failures);
        return 1;
    }
    printf("test_cpu_ops: all checks passed\n");
    return 0;
}
