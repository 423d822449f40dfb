/* test_decode_fusion.c - the fused decode GEMVs of kernels/linear/gemv.cu (used by cuda_forward.c under --decode-fusion)
 * against the CPU reference (engine/cpu_ops.h), and a micro-benchmark of one decoder layer's kernels, unfused vs
 * fused.
 * Correctness, on the seven Qwen2.5 sizes (configs/models, at TP1), tensor-parallel slices and awkward sizes:
 *   q|k|v GEMV + bias + RoPE + KV append (input x or the normalised residual): q, the cache row at the position,
 *     and every other cache row untouched;
 *   gate|up GEMV + SiLU*up (both inputs); o_proj / down_proj GEMV stored (bf16) and added to the fp32 residual;
 *   every K split (1, 2, 4, 8 warps per row) on the small shapes, and everywhere the default grid and a cap of
 *   one block per SM (more iterations per block: the prefetch of the next unit). Tolerance: relative L2 error 1e-2 (fp32 sums, bf16-rounded outputs, as test_cuda_kernels); NaN fails;
 *   sentinels after every output.
 * Benchmark (--bench): one layer's linears + norms (no attention, the same in both) for 0.5B, 1.5B, 3B and 7B:
 *   unfused (add_rmsnorm, GEMV, qkv_rope, GEMV, add_rmsnorm, GEMV, silu_mul, GEMV: 10 kernels a layer with
 *   attention's two), fused epilogues (8), fused residual (6); weights rotated over >= 512 MiB of copies, 32 layers
 *   per CUDA graph, median of 7 replays, PDL as in the engine.
 *   test_decode_fusion [--bench] [--quick]      exits 77 without a GPU, 1 on any failure
 */
#include <stdbool.h>

#include "test_cuda_bench.h"
#include "test_cuda_util.h"
#include "test_cuda_bf16.h"

#include "add_rmsnorm.cuh"
#include "config/model_config.h"
#include "engine/cpu_ops.h"
#include "gemv.cuh"
#include "qkv_rope.cuh"
#include "silu_mul.cuh"

typedef struct {
    char name[48];
    int H, I, hq, hkv, hd;
} shape;

static int g_threads = 16;
#define MAX_SEQ 8
#define POS 5
#define EPS 1e-6f

static void set_tuning(int ks, int bps) { qb_gemv_fused_tuning(ks, bps); }

/* q|k|v + bias + RoPE + cache append. */
static void test_qkv(const shape *s, const uint16_t *d_w, const uint16_t *w, const float *resid, const float *nw,
                     const int *ks_list, int n_ks) {
    int H = s->H, hd = s->hd, half = hd / 2, nh = s->hq + 2 * s->hkv, n = nh * hd;
    float *bias = malloc((size_t)n * 4), *cs = malloc(MAX_SEQ * half * 4), *sn = malloc(MAX_SEQ * half * 4);
    for (int i = 0; i < n; i++) bias[i] = round_bf16(rnd_uniform(-0.5f, 0.5f));
    for (int i = 0; i < MAX_SEQ * half; i++) {
        float a = rnd_uniform(-3.14f, 3.14f);
        cs[i] = cosf(a);
        sn[i] = sinf(a);
    }
    /* reference: x = bf16(rmsnorm(resid)), y = W x, then as qkv_rope.cu */
    float *x = malloc((size_t)H * 4), *y = malloc((size_t)n * 4);
    uint16_t *xb = malloc((size_t)H * 2);
    qb_ref_rmsnorm(resid, nw, 1, H, EPS, x);
    for (int i = 0; i < H; i++) { xb[i] = qb_float_to_bf16(x[i]); x[i] = qb_bf16_to_float(xb[i]); }
    qb_ref_matmul_bf16(x, w, NULL, 1, n, H, y, g_threads);
    float *rq = malloc((size_t)s->hq * hd * 4), *rk = malloc((size_t)s->hkv * hd * 4), *rv = malloc((size_t)s->hkv * hd * 4);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < half; i++) {
            int e0 = h * hd + i, e1 = e0 + half;
            float x0 = round_bf16(y[e0]), x1 = round_bf16(y[e1]);
            if (h < s->hq + s->hkv) {
                x0 = round_bf16(x0 + bias[e0]);
                x1 = round_bf16(x1 + bias[e1]);
                float c = cs[POS * half + i], sv = sn[POS * half + i];
                float *dst = h < s->hq ? rq + h * hd : rk + (h - s->hq) * hd;
                dst[i] = x0 * c - x1 * sv;
                dst[i + half] = x1 * c + x0 * sv;
            } else {
                float *dst = rv + (h - s->hq - s->hkv) * hd;
                dst[i] = x0 + bias[e0];
                dst[i + half] = x1 + bias[e1];
            }
        }
    float *d_bias = dev_upload(bias, (size_t)n * 4), *d_cs = dev_upload(cs, MAX_SEQ * half * 4),
          *d_sn = dev_upload(sn, MAX_SEQ * half * 4), *d_resid = dev_upload(resid, (size_t)H * 4),
          *d_nw = dev_upload(nw, (size_t)H * 4);
    uint16_t *d_x = dev_upload(xb, (size_t)H * 2);
    int pos = POS, *d_pos = dev_upload(&pos, sizeof pos);
    size_t qn = (size_t)s->hq * hd, cn = (size_t)s->hkv * MAX_SEQ * hd;
    uint16_t *d_q = dev_alloc_guarded(qn * 2), *d_k = dev_alloc_guarded(cn * 2), *d_v = dev_alloc_guarded(cn * 2);
    uint16_t *hq_b = malloc(qn * 2), *hk = malloc(cn * 2), *hv = malloc(cn * 2);
    float *got = malloc((qn > cn ? qn : cn) * 4), *ref_row = malloc((size_t)s->hkv * hd * 4);
    for (int mode = 0; mode < 2; mode++)
        for (int ki = 0; ki < n_ks; ki++)
            for (int cap = 0; cap < 2; cap++) {
                char what[160];
                snprintf(what, sizeof what, "qkv_rope %s H=%d heads=%d/%d hd=%d input=%s ksplit=%d cap=%d", s->name, H,
                         s->hq, s->hkv, hd, mode ? "norm" : "x", ks_list[ki], cap);
                dev_set_bytes(d_k, QB_SENTINEL_BYTE, cn * 2);
                dev_set_bytes(d_v, QB_SENTINEL_BYTE, cn * 2);
                set_tuning(ks_list[ki], cap ? 1 : 0);
                qb_gemv_input in = {.x = mode ? NULL : d_x, .resid = d_resid, .norm_w = d_nw, .eps = EPS};
                LAUNCH(qb_launch_gemv_qkv_rope(d_w, H, &in, d_bias, s->hq, s->hkv, hd, d_pos, d_cs, d_sn, d_q, d_k, d_v,
                                               MAX_SEQ, 0));
                set_tuning(0, 0);
                CK(cudaMemcpy(hq_b, d_q, qn * 2, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(hk, d_k, cn * 2, cudaMemcpyDeviceToHost));
                CK(cudaMemcpy(hv, d_v, cn * 2, cudaMemcpyDeviceToHost));
                dev_guard_ok(d_q, qn * 2, what);
                dev_guard_ok(d_k, cn * 2, what);
                dev_guard_ok(d_v, cn * 2, what);
                bf16_to_f32(hq_b, qn, got);
                int ok = check_close(what, got, rq, qn, 1e-2);
                for (int c = 0; c < 2 && ok; c++) {
                    const uint16_t *cache = c ? hv : hk;
                    for (int h = 0; h < s->hkv; h++)
                        for (int t = 0; t < MAX_SEQ; t++)
                            for (int d = 0; d < hd; d++) {
                                uint16_t b = cache[((size_t)h * MAX_SEQ + t) * hd + d];
                                if (t == POS) got[h * hd + d] = qb_bf16_to_float(b);
                                else if (b != 0xA5A5 && ok) {
                                    printf("FAIL %s: %s cache head %d position %d dim %d written (not the position)\n",
                                           what, c ? "v" : "k", h, t, d);
                                    g_failures++;
                                    ok = 0;
                                }
                            }
                    memcpy(ref_row, c ? rv : rk, (size_t)s->hkv * hd * 4);
                    if (ok) ok = check_close(what, got, ref_row, (size_t)s->hkv * hd, 1e-2);
                }
            }
    cudaFree(d_bias); cudaFree(d_cs); cudaFree(d_sn); cudaFree(d_resid); cudaFree(d_nw); cudaFree(d_x); cudaFree(d_pos);
    cudaFree(d_q); cudaFree(d_k); cudaFree(d_v);
    free(bias); free(cs); free(sn); free(x); free(y); free(xb); free(rq); free(rk); free(rv); free(hq_b); free(hk);
    free(hv); free(got); free(ref_row);
}

/* gate|up + SiLU*up. */
static void test_gate_up(const shape *s, const uint16_t *d_w, const uint16_t *w, const float *resid, const float *nw,
                         const int *ks_list, int n_ks) {
    int H = s->H, I = s->I;
    float *x = malloc((size_t)H * 4), *y = malloc((size_t)2 * I * 4), *g = malloc((size_t)I * 4),
          *u = malloc((size_t)I * 4), *ref = malloc((size_t)I * 4), *got = malloc((size_t)I * 4);
    uint16_t *xb = malloc((size_t)H * 2), *ob = malloc((size_t)I * 2);
    qb_ref_rmsnorm(resid, nw, 1, H, EPS, x);
    for (int i = 0; i < H; i++) { xb[i] = qb_float_to_bf16(x[i]); x[i] = qb_bf16_to_float(xb[i]); }
    qb_ref_matmul_bf16(x, w, NULL, 1, 2 * I, H, y, g_threads);
    for (int i = 0; i < I; i++) { g[i] = round_bf16(y[i]); u[i] = round_bf16(y[I + i]); }
    qb_ref_silu_mul(g, u, I, ref);
    float *d_resid = dev_upload(resid, (size_t)H * 4), *d_nw = dev_upload(nw, (size_t)H * 4);
    uint16_t *d_x = dev_upload(xb, (size_t)H * 2), *d_o = dev_alloc_guarded((size_t)I * 2);
    for (int mode = 0; mode < 2; mode++)
        for (int ki = 0; ki < n_ks; ki++)
            for (int cap = 0; cap < 2; cap++) {
                char what[160];
                snprintf(what, sizeof what, "gate_up_silu %s H=%d I=%d input=%s ksplit=%d cap=%d", s->name, H, I,
                         mode ? "norm" : "x", ks_list[ki], cap);
                set_tuning(ks_list[ki], cap ? 1 : 0);
                qb_gemv_input in = {.x = mode ? NULL : d_x, .resid = d_resid, .norm_w = d_nw, .eps = EPS};
                LAUNCH(qb_launch_gemv_gate_up_silu(d_w, I, H, &in, d_o, 0));
                set_tuning(0, 0);
                CK(cudaMemcpy(ob, d_o, (size_t)I * 2, cudaMemcpyDeviceToHost));
                dev_guard_ok(d_o, (size_t)I * 2, what);
                bf16_to_f32(ob, I, got);
                check_close(what, got, ref, I, 1e-2);
            }
    cudaFree(d_resid); cudaFree(d_nw); cudaFree(d_x); cudaFree(d_o);
    free(x); free(y); free(g); free(u); free(ref); free(got); free(xb); free(ob);
}

/* o_proj / down_proj shapes: y stored (bf16) and added to the fp32 residual. */
static void test_store_resid(const shape *s, const char *tag, const uint16_t *d_w, const uint16_t *w, int n, int k,
                             const int *ks_list, int n_ks) {
    uint16_t *xb = malloc((size_t)k * 2), *yb = malloc((size_t)n * 2);
    float *x = malloc((size_t)k * 4), *y = malloc((size_t)n * 4), *got = malloc((size_t)n * 4),
          *resid = malloc((size_t)n * 4), *after = malloc((size_t)n * 4);
    fill_bf16(xb, k, 1.f);
    bf16_to_f32(xb, k, x);
    qb_ref_matmul_bf16(x, w, NULL, 1, n, k, y, g_threads);
    for (int i = 0; i < n; i++) { y[i] = round_bf16(y[i]); resid[i] = rnd_uniform(-2, 2); }
    uint16_t *d_x = dev_upload(xb, (size_t)k * 2), *d_y = dev_alloc_guarded((size_t)n * 2);
    float *d_r = dev_alloc_guarded((size_t)n * 4);
    for (int run = 0; run < 2 * n_ks; run++) {
        int ki = run / 2, cap = run % 2;
        char what[160];
        qb_gemv_input in = {.x = d_x};
        set_tuning(ks_list[ki], cap);
        snprintf(what, sizeof what, "gemv_fused_store %s %s N=%d K=%d ksplit=%d cap=%d", s->name, tag, n, k,
                 ks_list[ki], cap);
        LAUNCH(qb_launch_gemv_fused_store(d_w, n, k, &in, d_y, 0));
        h2d(d_r, resid, (size_t)n * 4);
        LAUNCH(qb_launch_gemv_resid_add(d_w, n, k, &in, d_r, 0));
        set_tuning(0, 0);
        CK(cudaMemcpy(yb, d_y, (size_t)n * 2, cudaMemcpyDeviceToHost));
        dev_guard_ok(d_y, (size_t)n * 2, what);
        bf16_to_f32(yb, n, got);
        check_close(what, got, y, n, 1e-2);
        snprintf(what, sizeof what, "gemv_resid_add %s %s N=%d K=%d ksplit=%d cap=%d", s->name, tag, n, k,
                 ks_list[ki], cap);
        CK(cudaMemcpy(after, d_r, (size_t)n * 4, cudaMemcpyDeviceToHost));
        dev_guard_ok(d_r, (size_t)n * 4, what);
        for (int i = 0; i < n; i++) got[i] = after[i] - resid[i]; /* the added part */
        check_close(what, got, y, n, 1e-2);
    }
    cudaFree(d_x); cudaFree(d_y); cudaFree(d_r);
    free(xb); free(yb); free(x); free(y); free(got); free(resid); free(after);
}

static void test_shape(const shape *s, bool all_splits) {
    static const int auto_only[1] = {0}, splits[5] = {0, 1, 2, 4, 8};
    const int *ks = all_splits ? splits : auto_only;
    int n_ks = all_splits ? 5 : 1;
    int fails0 = g_failures;
    int H = s->H, I = s->I, nq = s->hq * s->hd, n_qkv = (s->hq + 2 * s->hkv) * s->hd;
    float *resid = malloc((size_t)H * 4), *nw = malloc((size_t)H * 4);
    for (int i = 0; i < H; i++) { resid[i] = rnd_uniform(-2, 2); nw[i] = rnd_uniform(0.9f, 1.1f); }
    uint16_t *w;
    uint16_t *d_w = make_weight(n_qkv, H, 101, &w);
    test_qkv(s, d_w, w, resid, nw, ks, n_ks);
    cudaFree(d_w); free(w);
    d_w = make_weight(2L * I, H, 102, &w);
    test_gate_up(s, d_w, w, resid, nw, ks, n_ks);
    cudaFree(d_w); free(w);
    d_w = make_weight(H, nq, 103, &w);
    test_store_resid(s, "o_proj", d_w, w, H, nq, ks, n_ks);
    cudaFree(d_w); free(w);
    d_w = make_weight(H, I, 104, &w);
    test_store_resid(s, "down_proj", d_w, w, H, I, ks, n_ks);
    cudaFree(d_w); free(w);
    free(resid); free(nw);
    printf("%s %-10s H=%5d I=%5d heads %2d/%d hd %3d%s\n", g_failures == fails0 ? "ok  " : "FAIL", s->name, H, I, s->hq,
           s->hkv, s->hd, all_splits ? " (every K split)" : "");
}

/* ---- benchmark ---- */

#define REPS 32
#define ROUNDS 7

static cudaStream_t g_s;

typedef struct {
    int H, I, hq, hkv, hd, n_qkv, nq, copies;
    uint16_t **wqkv, **wo, **wgu, **wdown;
    float *bias, *nw1, *nw2, *resid, *cs, *sn;
    uint16_t *xn, *delta, *big, *q, *attn, *act, *kc, *vc;
    int *pos;
    int variant; /* 0 unfused, 1 fused epilogues, 2 fused residual; 10+ single kernels */
} bench_layer;

static int layer_launch(void *ctx, int i) {
    bench_layer *b = ctx;
    int c = i % b->copies, H = b->H, I = b->I;
    cudaStream_t s = g_s;
    qb_gemv_input vx = {.x = b->xn}, n1 = {.resid = b->resid, .norm_w = b->nw1, .eps = EPS}, n2 = {.resid = b->resid, .norm_w = b->nw2, .eps = EPS};
    qb_gemv_input va = {.x = b->attn}, vact = {.x = b->act};
    switch (b->variant) {
    case 0:
        QB_TRY(qb_launch_add_rmsnorm(b->resid, b->delta, b->nw1, 1, H, EPS, b->xn, s));
        QB_TRY(qb_launch_gemv(b->wqkv[c], b->xn, b->n_qkv, H, b->big, NULL, s));
        QB_TRY(qb_launch_qkv_rope(b->big, b->bias, 1, b->hq, b->hkv, b->hd, b->pos, b->cs, b->sn, b->q, b->kc, b->vc,
                                  MAX_SEQ, s));
        QB_TRY(qb_launch_gemv(b->wo[c], b->attn, H, b->nq, b->delta, NULL, s));
        QB_TRY(qb_launch_add_rmsnorm(b->resid, b->delta, b->nw2, 1, H, EPS, b->xn, s));
        QB_TRY(qb_launch_gemv(b->wgu[c], b->xn, 2 * I, H, b->big, NULL, s));
        QB_TRY(qb_launch_silu_mul(b->big, 1, I, b->act, s));
        return qb_launch_gemv(b->wdown[c], b->act, H, I, b->delta, NULL, s);
    case 1:
        QB_TRY(qb_launch_add_rmsnorm(b->resid, b->delta, b->nw1, 1, H, EPS, b->xn, s));
        QB_TRY(qb_launch_gemv_qkv_rope(b->wqkv[c], H, &vx, b->bias, b->hq, b->hkv, b->hd, b->pos, b->cs, b->sn, b->q,
                                       b->kc, b->vc, MAX_SEQ, s));
        if (H < 2112) QB_TRY(qb_launch_gemv_fused_store(b->wo[c], H, b->nq, &va, b->delta, s));
        else QB_TRY(qb_launch_gemv(b->wo[c], b->attn, H, b->nq, b->delta, NULL, s));
        QB_TRY(qb_launch_add_rmsnorm(b->resid, b->delta, b->nw2, 1, H, EPS, b->xn, s));
        QB_TRY(qb_launch_gemv_gate_up_silu(b->wgu[c], I, H, &vx, b->act, s));
        if (H < 2112) return qb_launch_gemv_fused_store(b->wdown[c], H, I, &vact, b->delta, s);
        return qb_launch_gemv(b->wdown[c], b->act, H, I, b->delta, NULL, s);
    case 2:
        QB_TRY(qb_launch_gemv_qkv_rope(b->wqkv[c], H, &n1, b->bias, b->hq, b->hkv, b->hd, b->pos, b->cs, b->sn, b->q,
                                       b->kc, b->vc, MAX_SEQ, s));
        QB_TRY(qb_launch_gemv_resid_add(b->wo[c], H, b->nq, &va, b->resid, s));
        QB_TRY(qb_launch_gemv_gate_up_silu(b->wgu[c], I, H, &n2, b->act, s));
        return qb_launch_gemv_resid_add(b->wdown[c], H, I, &vact, b->resid, s);
    /* single kernels: 10 old down GEMV, 11 fused down store, 12 old gate_up GEMV, 13 fused gate_up+silu (x),
     * 14 fused gate_up+silu (norm), 15 old qkv GEMV, 16 fused qkv+rope (x), 17 fused qkv+rope (norm) */
    case 10: return qb_launch_gemv(b->wdown[c], b->act, H, I, b->delta, NULL, s);
    case 11: return qb_launch_gemv_fused_store(b->wdown[c], H, I, &vact, b->delta, s);
    case 12: return qb_launch_gemv(b->wgu[c], b->xn, 2 * I, H, b->big, NULL, s);
    case 13: return qb_launch_gemv_gate_up_silu(b->wgu[c], I, H, &vx, b->act, s);
    case 14: return qb_launch_gemv_gate_up_silu(b->wgu[c], I, H, &n2, b->act, s);
    case 15: return qb_launch_gemv(b->wqkv[c], b->xn, b->n_qkv, H, b->big, NULL, s);
    case 16:
        return qb_launch_gemv_qkv_rope(b->wqkv[c], H, &vx, b->bias, b->hq, b->hkv, b->hd, b->pos, b->cs, b->sn, b->q,
                                       b->kc, b->vc, MAX_SEQ, s);
    default:
        return qb_launch_gemv_qkv_rope(b->wqkv[c], H, &n1, b->bias, b->hq, b->hkv, b->hd, b->pos, b->cs, b->sn, b->q,
                                       b->kc, b->vc, MAX_SEQ, s);
    }
}

/* Median microseconds per repetition of the variant, REPS repetitions in one graph. */
static double time_layer(bench_layer *b, int variant) {
    b->variant = variant;
    return qb_bench_graph_seconds(g_s, layer_launch, b, REPS, ROUNDS) * 1e6;
}

static uint16_t *dev_fill(size_t n) {
    uint16_t *d;
    CK(cudaMalloc((void **)&d, n * 2 + 256));
    if (qb_launch_random_fill_bf16(d, 1, (long)n, 0, 0, (long)n, 3, n, 0) != 0) exit(1);
    return d;
}

static float *dev_const(size_t n, float v) {
    float *h = malloc(n * 4), *d;
    for (size_t i = 0; i < n; i++) h[i] = v;
    CK(cudaMalloc((void **)&d, n * 4));
    h2d(d, h, n * 4);
    free(h);
    return d;
}

static void bench_model(const shape *s) {
    bench_layer b = {0};
    b.H = s->H; b.I = s->I; b.hq = s->hq; b.hkv = s->hkv; b.hd = s->hd;
    b.n_qkv = (s->hq + 2 * s->hkv) * s->hd;
    b.nq = s->hq * s->hd;
    size_t layer_bytes = ((size_t)b.n_qkv * b.H + (size_t)b.H * b.nq + 2 * (size_t)b.I * b.H + (size_t)b.H * b.I) * 2;
    b.copies = (int)((512ull << 20) / layer_bytes) + 1;
    if (b.copies < 2) b.copies = 2;
    b.wqkv = malloc(b.copies * sizeof(void *));
    b.wo = malloc(b.copies * sizeof(void *));
    b.wgu = malloc(b.copies * sizeof(void *));
    b.wdown = malloc(b.copies * sizeof(void *));
    for (int c = 0; c < b.copies; c++) {
        b.wqkv[c] = dev_fill((size_t)b.n_qkv * b.H);
        b.wo[c] = dev_fill((size_t)b.H * b.nq);
        b.wgu[c] = dev_fill(2 * (size_t)b.I * b.H);
        b.wdown[c] = dev_fill((size_t)b.H * b.I);
    }
    b.bias = dev_const(b.n_qkv, 0.01f);
    b.nw1 = dev_const(b.H, 1.f);
    b.nw2 = dev_const(b.H, 1.f);
    b.resid = dev_const(b.H, 0.5f);
    b.cs = dev_const(MAX_SEQ * b.hd / 2, 0.6f);
    b.sn = dev_const(MAX_SEQ * b.hd / 2, 0.8f);
    b.xn = dev_fill(b.H);
    b.delta = dev_fill(b.H);
    b.big = dev_fill(b.n_qkv > 2 * b.I ? b.n_qkv : 2 * b.I);
    b.q = dev_fill(b.nq);
    b.attn = dev_fill(b.nq);
    b.act = dev_fill(b.I);
    b.kc = dev_fill((size_t)b.hkv * MAX_SEQ * b.hd);
    b.vc = dev_fill((size_t)b.hkv * MAX_SEQ * b.hd);
    int pos = POS;
    CK(cudaMalloc((void **)&b.pos, 4));
    h2d(b.pos, &pos, 4);
    CK(cudaDeviceSynchronize());
    double t0 = time_layer(&b, 0), t1 = time_layer(&b, 1), t2 = time_layer(&b, 2);
    printf("%-5s layer (no attention): unfused %6.1f us | fused epilogues %6.1f us | fused residual %6.1f us "
           "(%.2fx)\n", s->name, t0, t1, t2, t0 / (t1 < t2 ? t1 : t2));
    double k[8];
    for (int v = 0; v < 8; v++) k[v] = time_layer(&b, 10 + v);
    printf("      down %.1f -> %.1f us | gate_up %.1f -> %.1f (x) %.1f (norm) | qkv %.1f -> %.1f (x) %.1f (norm)\n",
           k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]);
    double ks[4], capx[4], capn[4];
    for (int i = 0; i < 4; i++) {
        qb_gemv_fused_tuning(1 << i, 0);
        ks[i] = time_layer(&b, 11);
        qb_gemv_fused_tuning(0, 1 << i);
        capx[i] = time_layer(&b, 13);
        capn[i] = time_layer(&b, 14);
    }
    qb_gemv_fused_tuning(0, 0);
    printf("      down by K split 1/2/4/8: %.1f %.1f %.1f %.1f | gate_up by blocks/SM 1/2/4/8: x %.1f %.1f %.1f %.1f, "
           "norm %.1f %.1f %.1f %.1f us\n", ks[0], ks[1], ks[2], ks[3], capx[0], capx[1], capx[2], capx[3], capn[0],
           capn[1], capn[2], capn[3]);
    for (int c = 0; c < b.copies; c++) { cudaFree(b.wqkv[c]); cudaFree(b.wo[c]); cudaFree(b.wgu[c]); cudaFree(b.wdown[c]); }
    free(b.wqkv); free(b.wo); free(b.wgu); free(b.wdown);
    cudaFree(b.bias); cudaFree(b.nw1); cudaFree(b.nw2); cudaFree(b.resid); cudaFree(b.cs); cudaFree(b.sn);
    cudaFree(b.xn); cudaFree(b.delta); cudaFree(b.big); cudaFree(b.q); cudaFree(b.attn); cudaFree(b.act);
    cudaFree(b.kc); cudaFree(b.vc); cudaFree(b.pos);
}

static int load_shape(const char *model, shape *s) {
    qb_model_config c;
    bool is_ckpt = false;
    char dir[512];
    if (qb_model_config_resolve(model, &c, &is_ckpt, dir, sizeof dir) != 0) {
        printf("FAIL config %s: %s\n", model, qb_last_error());
        g_failures++;
        return 0;
    }
    snprintf(s->name, sizeof s->name, "%s", model + strlen("qwen2.5-"));
    s->H = c.hidden_size;
    s->I = c.intermediate_size;
    s->hq = c.num_heads;
    s->hkv = c.num_kv_heads;
    s->hd = c.head_dim;
    return 1;
}

int main(int argc, char **argv) {
    bool bench = false, quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bench")) bench = true;
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else {
            fprintf(stderr, "usage: %s [--bench] [--quick]\n", argv[0]);
            return 2;
        }
    }
    qb_test_skip_without_gpu();
    static const char *models[7] = {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b",
                                    "qwen2.5-14b",  "qwen2.5-32b",  "qwen2.5-72b"};
    shape shapes[7];
    int n_models = quick ? 2 : 7;
    for (int m = 0; m < n_models; m++) {
        if (!load_shape(models[m], &shapes[m])) continue;
        test_shape(&shapes[m], m == 0);
    }
    static const shape awkward[] = {
        {"odd", 200, 136, 3, 1, 16},      /* K not a multiple of 32 pieces, odd pair counts */
        {"tiny", 8, 8, 1, 1, 8},          /* one 16-byte piece per row */
        {"fixture", 128, 384, 1, 1, 128}, /* the tied_hd128 fixture: 16 pieces per row, one head */
        {"wide", 2056, 1000, 4, 2, 32},   /* 257 pieces per row */
        {"7B/tp2", 3584, 9472, 14, 2, 128},
        {"72B/tp8", 8192, 3696, 8, 1, 128},
    };
    for (int a = 0; a < (int)(sizeof awkward / sizeof awkward[0]); a++) test_shape(&awkward[a], a < 4);
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
    if (bench && !g_failures) {
        CK(cudaStreamCreateWithFlags(&g_s, cudaStreamNonBlocking));
        for (int m = 0; m < 4; m++) bench_model(&shapes[m]);
        cudaStreamDestroy(g_s);
    }
    return g_failures ? 1 : 0;
}
