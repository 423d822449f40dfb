/* test_cuda_kernels.c - every CUDA kernel against the CPU reference (engine/cpu_ops.h) on the dimensions of
 * all seven Qwen2.5 sizes plus awkward sizes. Fails on any NaN, on an out-of-bounds write (sentinels after
 * every output) and on a relative L2 error above the tolerance stated per check:
 *   exact ops (embedding, random fill, argmax): equality;
 *   fp32 arithmetic with bf16-rounded output (norm, silu, rope, GEMV/GEMM): 1e-2 (bf16 has 8 bits of mantissa);
 *   attention (bf16 P in the prefill kernel's P.V product): 2e-2.
 * Prints "skipped: no GPU" and exits 77 where no GPU is visible.
 * Run: ctest -R cuda_kernels   (or ./test_cuda_kernels [--quick])
 */
#include "test_cuda_util.h"

#include "add_rmsnorm.cuh"
#include "argmax.cuh"
#include "attention_decode.cuh"
#include "attention_prefill.cuh"
#include "embedding.cuh"
#include "engine/cpu_ops.h"
#include "engine/weights.h"
#include "gemm.cuh"
#include "gemv.cuh"
#include "nonfinite.cuh"
#include "qkv_rope.cuh"
#include "random_fill.cuh"
#include "silu_mul.cuh"

typedef struct {
    const char *name;
    int H, I, hq, hkv, hd, V;
} shape;

static const shape SHAPES[] = {
    {"0.5B", 896, 4864, 14, 2, 64, 151936},    {"1.5B", 1536, 8960, 12, 2, 128, 151936},
    {"3B", 2048, 11008, 16, 2, 128, 151936},   {"7B", 3584, 18944, 28, 4, 128, 152064},
    {"14B", 5120, 13824, 40, 8, 128, 152064},  {"32B", 5120, 27648, 40, 8, 128, 152064},
    {"72B", 8192, 29568, 64, 8, 128, 152064},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))
static int g_threads = 16;

static void test_embedding(void) {
    int vocab = 3001, H = 896, n = 9;
    uint16_t *table = malloc((size_t)vocab * H * 2);
    fill_bf16(table, (size_t)vocab * H, 1.f);
    int32_t tok[9] = {0, 1, 3000, 17, 17, 2999, 5, 1234, 42};
    float *ref = malloc((size_t)n * H * 4), *got = malloc((size_t)n * H * 4);
    qb_ref_embedding(table, H, tok, n, ref);
    void *d_table = dev_upload(table, (size_t)vocab * H * 2), *d_tok = dev_upload(tok, sizeof tok);
    float *d_out = dev_alloc_guarded((size_t)n * H * 4);
    LAUNCH(qb_launch_embedding(d_table, vocab, H, d_tok, n, d_out, 0));
    CK(cudaMemcpy(got, d_out, (size_t)n * H * 4, cudaMemcpyDeviceToHost));
    dev_guard_ok(d_out, (size_t)n * H * 4, "embedding");
    if (memcmp(got, ref, (size_t)n * H * 4) != 0) { printf("FAIL embedding: not exact\n"); g_failures++; }
    cudaFree(d_table); cudaFree(d_tok); cudaFree(d_out);
    free(table); free(ref); free(got);
}

static void test_add_rmsnorm(int dim, int n, int with_delta) {
    char what[96];
    snprintf(what, sizeof what, "add_rmsnorm dim=%d n=%d delta=%d", dim, n, with_delta);
    size_t cnt = (size_t)n * dim;
    float *res = malloc(cnt * 4), *w = malloc((size_t)dim * 4), *xd = malloc(cnt * 4);
    uint16_t *delta = malloc(cnt * 2), *out_b = malloc(cnt * 2);
    float *ref_out = malloc(cnt * 4), *got_out = malloc(cnt * 4), *got_res = malloc(cnt * 4);
    for (size_t i = 0; i < cnt; i++) res[i] = rnd_uniform(-2, 2);
    for (int i = 0; i < dim; i++) w[i] = rnd_uniform(0.9f, 1.1f);
    fill_bf16(delta, cnt, 1.f);
    bf16_to_f32(delta, cnt, xd);
    if (!with_delta) memset(xd, 0, cnt * 4);
    float *d_res = dev_upload(res, cnt * 4), *d_w = dev_upload(w, (size_t)dim * 4);
    uint16_t *d_delta = dev_upload(delta, cnt * 2), *d_out = dev_alloc_guarded(cnt * 2);
    LAUNCH(qb_launch_add_rmsnorm(d_res, with_delta ? d_delta : NULL, d_w, n, dim, 1e-6f, d_out, 0));
    qb_ref_add_rmsnorm(res, xd, w, n, dim, 1e-6f, ref_out);
    CK(cudaMemcpy(out_b, d_out, cnt * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(got_res, d_res, cnt * 4, cudaMemcpyDeviceToHost));
    bf16_to_f32(out_b, cnt, got_out);
    dev_guard_ok(d_out, cnt * 2, what);
    dev_guard_ok(d_res, cnt * 4, what);
    check_close(what, got_res, res, cnt, 1e-6);
    check_close(what, got_out, ref_out, cnt, 1e-2);
    cudaFree(d_res); cudaFree(d_w); cudaFree(d_delta); cudaFree(d_out);
    free(res); free(w); free(xd); free(delta); free(out_b); free(ref_out); free(got_out); free(got_res);
}

/* y = x W^T through the GEMV (m == 1, every variant) or the cuBLASLt GEMM (m > 1). */
static void test_matmul(const char *tag, int m, int N, int K, qb_gemm *gemm) {
    char what[128];
    size_t wn = (size_t)N * K;
    uint16_t *w = malloc(wn * 2), *x = malloc((size_t)m * K * 2), *yb = malloc((size_t)m * N * 2);
    float *xf = malloc((size_t)m * K * 4), *ref = malloc((size_t)m * N * 4), *got = malloc((size_t)m * N * 4);
    fill_bf16(w, wn, 0.05f);
    fill_bf16(x, (size_t)m * K, 1.f);
    bf16_to_f32(x, (size_t)m * K, xf);
    qb_ref_matmul_bf16(xf, w, NULL, m, N, K, ref, g_threads);
    uint16_t *d_w = dev_upload(w, wn * 2), *d_x = dev_upload(x, (size_t)m * K * 2);
    if (m == 1) {
        static const int variants[3] = {1, 2, 4};
        for (int v = 0; v < 3; v++) {
            uint16_t *d_y = dev_alloc_guarded((size_t)N * 2);
            float *d_yf = dev_alloc_guarded((size_t)N * 4);
            snprintf(what, sizeof what, "gemv %s N=%d K=%d rows/warp=%d bf16-out", tag, N, K, variants[v]);
            LAUNCH(qb_launch_gemv_variant(d_w, d_x, N, K, d_y, NULL, variants[v], 0));
            CK(cudaMemcpy(yb, d_y, (size_t)N * 2, cudaMemcpyDeviceToHost));
            bf16_to_f32(yb, N, got);
            dev_guard_ok(d_y, (size_t)N * 2, what);
            check_close(what, got, ref, N, 1e-2);
            snprintf(what, sizeof what, "gemv %s N=%d K=%d rows/warp=%d f32-out", tag, N, K, variants[v]);
            LAUNCH(qb_launch_gemv_variant(d_w, d_x, N, K, NULL, d_yf, variants[v], 0));
            CK(cudaMemcpy(got, d_yf, (size_t)N * 4, cudaMemcpyDeviceToHost));
            dev_guard_ok(d_yf, (size_t)N * 4, what);
            check_close(what, got, ref, N, 1e-4);
            cudaFree(d_y); cudaFree(d_yf);
        }
    } else {
        uint16_t *d_y = dev_alloc_guarded((size_t)m * N * 2);
        snprintf(what, sizeof what, "gemm %s m=%d N=%d K=%d", tag, m, N, K);
        LAUNCH(qb_gemm_bf16(gemm, d_x, d_w, m, N, K, d_y, 0));
        CK(cudaMemcpy(yb, d_y, (size_t)m * N * 2, cudaMemcpyDeviceToHost));
        bf16_to_f32(yb, (size_t)m * N, got);
        dev_guard_ok(d_y, (size_t)m * N * 2, what);
        check_close(what, got, ref, (size_t)m * N, 1e-2);
        cudaFree(d_y);
    }
    cudaFree(d_w); cudaFree(d_x);
    free(w); free(x); free(yb); free(xf); free(ref); free(got);
}

static void test_silu_mul(int n, int I) {
    char what[64];
    snprintf(what, sizeof what, "silu_mul n=%d I=%d", n, I);
    size_t cnt = (size_t)n * 2 * I;
    uint16_t *gu = malloc(cnt * 2), *ob = malloc((size_t)n * I * 2);
    float *g = malloc((size_t)n * I * 4), *u = malloc((size_t)n * I * 4), *ref = malloc((size_t)n * I * 4),
          *got = malloc((size_t)n * I * 4);
    fill_bf16(gu, cnt, 4.f);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < I; i++) {
            g[(size_t)r * I + i] = qb_bf16_to_float(gu[(size_t)r * 2 * I + i]);
            u[(size_t)r * I + i] = qb_bf16_to_float(gu[(size_t)r * 2 * I + I + i]);
        }
    qb_ref_silu_mul(g, u, n * I, ref);
    uint16_t *d_gu = dev_upload(gu, cnt * 2), *d_o = dev_alloc_guarded((size_t)n * I * 2);
    LAUNCH(qb_launch_silu_mul(d_gu, n, I, d_o, 0));
    CK(cudaMemcpy(ob, d_o, (size_t)n * I * 2, cudaMemcpyDeviceToHost));
    bf16_to_f32(ob, (size_t)n * I, got);
    dev_guard_ok(d_o, (size_t)n * I * 2, what);
    check_close(what, got, ref, (size_t)n * I, 1e-2);
    cudaFree(d_gu); cudaFree(d_o);
    free(gu); free(ob); free(g); free(u); free(ref); free(got);
}

/* bias + RoPE + cache append vs qb_ref_rope on bias-added, bf16-rounded inputs. */
static void test_qkv_rope(const shape *s, int n, int start) {
    char what[96];
    int hq = s->hq, hkv = s->hkv, hd = s->hd, half = hd / 2, width = (hq + 2 * hkv) * hd, max_seq = start + n + 3;
    uint16_t *qkv = malloc((size_t)n * width * 2);
    float *bias = malloc((size_t)width * 4), *cos_t = malloc((size_t)max_seq * half * 4),
          *sin_t = malloc((size_t)max_seq * half * 4);
    fill_bf16(qkv, (size_t)n * width, 2.f);
    for (int i = 0; i < width; i++) bias[i] = qb_bf16_to_float(qb_float_to_bf16(rnd_uniform(-0.5f, 0.5f)));
    for (int p = 0; p < max_seq; p++)
        for (int i = 0; i < half; i++) {
            float a = p * powf(1e6f, -2.f * i / hd);
            cos_t[p * half + i] = cosf(a);
            sin_t[p * half + i] = sinf(a);
        }
    /* reference */
    float *rq = malloc((size_t)n * hq * hd * 4), *rk = malloc((size_t)n * hkv * hd * 4),
          *rv = malloc((size_t)n * hkv * hd * 4);
    int32_t *pos = malloc((size_t)n * 4);
    for (int r = 0; r < n; r++) {
        pos[r] = start + r;
        for (int e = 0; e < width; e++) {
            float x = qb_bf16_to_float(qkv[(size_t)r * width + e]) + bias[e];
            x = qb_bf16_to_float(qb_float_to_bf16(x));
            if (e < hq * hd) rq[(size_t)r * hq * hd + e] = x;
            else if (e < (hq + hkv) * hd) rk[(size_t)r * hkv * hd + e - hq * hd] = x;
            else rv[(size_t)r * hkv * hd + e - (hq + hkv) * hd] = x;
        }
    }
    qb_ref_rope(rq, n, hq, hd, pos, cos_t, sin_t);
    qb_ref_rope(rk, n, hkv, hd, pos, cos_t, sin_t);
    size_t cache_n = (size_t)hkv * max_seq * hd;
    uint16_t *d_qkv = dev_upload(qkv, (size_t)n * width * 2), *d_q = dev_alloc_guarded((size_t)n * hq * hd * 2);
    uint16_t *d_k = dev_alloc_guarded(cache_n * 2), *d_v = dev_alloc_guarded(cache_n * 2);
    dev_set_bytes(d_k, 0, cache_n * 2);
    dev_set_bytes(d_v, 0, cache_n * 2);
    float *d_bias = dev_upload(bias, (size_t)width * 4), *d_cos = dev_upload(cos_t, (size_t)max_seq * half * 4),
          *d_sin = dev_upload(sin_t, (size_t)max_seq * half * 4);
    int *d_start = dev_upload(&start, sizeof start);
    LAUNCH(qb_launch_qkv_rope(d_qkv, d_bias, n, hq, hkv, hd, d_start, d_cos, d_sin, d_q, d_k, d_v, max_seq, 0));
    uint16_t *hq_b = malloc((size_t)n * hq * hd * 2), *hk = malloc(cache_n * 2), *hv = malloc(cache_n * 2);
    CK(cudaMemcpy(hq_b, d_q, (size_t)n * hq * hd * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hk, d_k, cache_n * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hv, d_v, cache_n * 2, cudaMemcpyDeviceToHost));
    float *got = malloc((size_t)n * hq * hd * 4), *gk = malloc((size_t)n * hkv * hd * 4),
          *gv = malloc((size_t)n * hkv * hd * 4);
    bf16_to_f32(hq_b, (size_t)n * hq * hd, got);
    for (int r = 0; r < n; r++)
        for (int h = 0; h < hkv; h++)
            for (int d = 0; d < hd; d++) {
                size_t c = ((size_t)h * max_seq + start + r) * hd + d, o = ((size_t)r * hkv + h) * hd + d;
                gk[o] = qb_bf16_to_float(hk[c]);
                gv[o] = qb_bf16_to_float(hv[c]);
            }
    snprintf(what, sizeof what, "qkv_rope %s n=%d start=%d q", s->name, n, start);
    check_close(what, got, rq, (size_t)n * hq * hd, 1e-2);
    dev_guard_ok(d_q, (size_t)n * hq * hd * 2, what);
    snprintf(what, sizeof what, "qkv_rope %s n=%d start=%d k", s->name, n, start);
    check_close(what, gk, rk, (size_t)n * hkv * hd, 1e-2);
    dev_guard_ok(d_k, cache_n * 2, what);
    snprintf(what, sizeof what, "qkv_rope %s n=%d start=%d v", s->name, n, start);
    check_close(what, gv, rv, (size_t)n * hkv * hd, 1e-2);
    dev_guard_ok(d_v, cache_n * 2, what);
    cudaFree(d_qkv); cudaFree(d_q); cudaFree(d_k); cudaFree(d_v); cudaFree(d_bias); cudaFree(d_cos);
    cudaFree(d_sin); cudaFree(d_start);
    free(qkv); free(bias); free(cos_t); free(sin_t); free(rq); free(rk); free(rv); free(pos); free(hq_b); free(hk);
    free(hv); free(got); free(gk); free(gv);
}

/* Attention: decode (n == 1, query at position len-1) or prefill (n rows at start .. start+n-1). */
static void test_attention(const shape *s, int n, int start, int decode_chunk) {
    char what[128];
    int hq = s->hq, hkv = s->hkv, hd = s->hd, T = start + n, max_seq = T + 5;
    size_t cache_n = (size_t)hkv * max_seq * hd, qn = (size_t)n * hq * hd;
    uint16_t *kc = malloc(cache_n * 2), *vc = malloc(cache_n * 2), *q = malloc(qn * 2), *ob = malloc(qn * 2);
    fill_bf16(kc, cache_n, 2.f);
    fill_bf16(vc, cache_n, 1.f);
    fill_bf16(q, qn, 2.f);
    float *kr = malloc((size_t)T * hkv * hd * 4), *vr = malloc((size_t)T * hkv * hd * 4), *qf = malloc(qn * 4),
          *ref = malloc(qn * 4), *got = malloc(qn * 4);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < hkv; h++)
            for (int d = 0; d < hd; d++) {
                kr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(kc[((size_t)h * max_seq + t) * hd + d]);
                vr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(vc[((size_t)h * max_seq + t) * hd + d]);
            }
    bf16_to_f32(q, qn, qf);
    qb_ref_attention(qf, kr, vr, n, start, hq, hkv, hd, ref, g_threads);
    uint16_t *d_k = dev_upload(kc, cache_n * 2), *d_v = dev_upload(vc, cache_n * 2), *d_q = dev_upload(q, qn * 2);
    uint16_t *d_o = dev_alloc_guarded(qn * 2);
    if (decode_chunk > 0) {
        int pos = start;
        int *d_pos = dev_upload(&pos, sizeof pos);
        float *d_po = dev_alloc_guarded(qb_attention_decode_workspace_floats(hq, hd, max_seq) * 4);
        float *d_pml = dev_alloc_guarded((size_t)hq * ((max_seq + 63) / 64) * 2 * 4);
        LAUNCH(qb_launch_attention_decode(d_q, d_k, d_v, max_seq, max_seq, d_pos, hq, hkv, hd, decode_chunk, d_po,
                                          d_pml, d_o, 0));
        snprintf(what, sizeof what, "attention_decode %s len=%d chunk=%d", s->name, T, decode_chunk);
        cudaFree(d_pos); cudaFree(d_po); cudaFree(d_pml);
    } else {
        LAUNCH(qb_launch_attention_prefill(d_q, d_k, d_v, max_seq, n, start, hq, hkv, hd, d_o, 0));
        snprintf(what, sizeof what, "attention_prefill %s n=%d start=%d", s->name, n, start);
    }
    CK(cudaMemcpy(ob, d_o, qn * 2, cudaMemcpyDeviceToHost));
    bf16_to_f32(ob, qn, got);
    dev_guard_ok(d_o, qn * 2, what);
    check_close(what, got, ref, qn, 2e-2);
    cudaFree(d_k); cudaFree(d_v); cudaFree(d_q); cudaFree(d_o);
    free(kc); free(vc); free(q); free(ob); free(kr); free(vr); free(qf); free(ref); free(got);
}

static void test_argmax(int n) {
    float *x = malloc((size_t)n * 4);
    for (int i = 0; i < n; i++) x[i] = rnd_uniform(-10, 10);
    x[n / 3] = 11.f; /* tie: the smaller index must win */
    x[n - 1] = 11.f;
    float mv;
    int32_t ref = qb_ref_argmax(x, n, &mv);
    float *d_x = dev_upload(x, (size_t)n * 4);
    int state[4] = {5, 2, 0, 0};
    int *d_state = dev_upload(state, sizeof state);
    int32_t *d_tok = dev_alloc_guarded(4), *d_log = dev_alloc_guarded(16);
    dev_set_bytes(d_log, 0, 16);
    LAUNCH(qb_launch_argmax(d_x, n, d_tok, d_log, d_state + 1, d_state, 3, 0));
    int32_t tok, log[4];
    CK(cudaMemcpy(&tok, d_tok, 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(log, d_log, 16, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(state, d_state, sizeof state, cudaMemcpyDeviceToHost));
    if (tok != ref || log[2] != ref || state[0] != 8 || state[1] != 3) {
        printf("FAIL argmax n=%d: got %d (log %d, pos %d, step %d), want %d (pos 8, step 3)\n", n, tok, log[2], state[0],
               state[1], ref);
        g_failures++;
    }
    dev_guard_ok(d_tok, 4, "argmax token");
    dev_guard_ok(d_log, 16, "argmax log");
    cudaFree(d_x); cudaFree(d_state); cudaFree(d_tok); cudaFree(d_log);
    free(x);
}

static void test_random_fill(void) {
    long rows = 37, cols = 100, row0 = 5, col0 = 20, full = 300;
    uint64_t seed = 99, id = qb_tensor_id("model.layers.3.mlp.down_proj.weight");
    uint16_t *d = dev_alloc_guarded((size_t)rows * cols * 2), *h = malloc((size_t)rows * cols * 2);
    LAUNCH(qb_launch_random_fill_bf16(d, rows, cols, row0, col0, full, seed, id, 0));
    CK(cudaMemcpy(h, d, (size_t)rows * cols * 2, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < cols; c++)
            if (h[r * cols + c] != qb_random_weight_bf16(seed, id, (uint64_t)((row0 + r) * full + col0 + c))) bad++;
    float *dn = dev_alloc_guarded(100 * 4), hn[100];
    LAUNCH(qb_launch_random_fill_norm_f32(dn, 100, seed, id, 0));
    CK(cudaMemcpy(hn, dn, sizeof hn, cudaMemcpyDeviceToHost));
    for (int i = 0; i < 100; i++)
        if (hn[i] != qb_random_norm(seed, id, (uint64_t)i)) bad++;
    if (bad) { printf("FAIL random_fill: %d values differ from random_init.h\n", bad); g_failures++; }
    dev_guard_ok(d, (size_t)rows * cols * 2, "random_fill");
    dev_guard_ok(dn, 100 * 4, "random_fill_norm");
    cudaFree(d); cudaFree(dn); free(h);
}

/* The device's first non-finite index against the host pass (engine/weights_finite.c) on a real tensor size
 * (7B's embedding when not quick: 545 M bf16 values), clean and with NaN / Inf / f16 Inf planted; f32 too. */
static void test_nonfinite(size_t n, int quick_f32) {
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(0x3c00u + (i * 2654435761u >> 20) % 0x300u); /* finite */
    void *d = dev_upload(h, n * 2);
    unsigned long long *d_first, first;
    CK(cudaMalloc((void **)&d_first, sizeof first));
    const size_t plant[] = {n - 1, n / 2 + 3, 4097, 0};
    const uint16_t bits[] = {0x7f80u, 0xffc1u, 0x7fffu, 0xff80u};
    for (int k = -1; k < 4; k++) {
        if (k >= 0) { h[plant[k]] = bits[k]; h2d((uint16_t *)d + plant[k], &bits[k], 2); }
        first = QB_NONFINITE_NONE;
        h2d(d_first, &first, sizeof first);
        LAUNCH(qb_launch_first_nonfinite(d, n, 2, QB_BF16_EXP_MASK, d_first, 0));
        CK(cudaMemcpy(&first, d_first, sizeof first, cudaMemcpyDeviceToHost));
        long long ref = qb_first_nonfinite16(h, n, QB_BF16_EXP_MASK);
        if ((ref < 0 && first != QB_NONFINITE_NONE) || (ref >= 0 && first != (unsigned long long)ref)) {
            printf("FAIL nonfinite bf16 n=%zu plant %d: device %llu, host %lld\n", n, k, first, ref);
            g_failures++;
        }
    }
    cudaFree(d);
    free(h);
    size_t nf = quick_f32 ? 1000003 : 50000017;
    float *f = malloc(nf * 4);
    for (size_t i = 0; i < nf; i++) f[i] = (float)(i % 1000) * 1e-3f - 0.5f;
    f[nf - 5] = 1e38f * 10.f; /* overflows to Inf */
    f[nf / 3] = nanf("");
    void *df = dev_upload(f, nf * 4);
    first = QB_NONFINITE_NONE;
    h2d(d_first, &first, sizeof first);
    LAUNCH(qb_launch_first_nonfinite(df, nf, 4, QB_F32_EXP_MASK, d_first, 0));
    CK(cudaMemcpy(&first, d_first, sizeof first, cudaMemcpyDeviceToHost));
    long long ref = qb_first_nonfinite_f32(f, nf);
    if (ref != (long long)(nf / 3) || first != (unsigned long long)ref) {
        printf("FAIL nonfinite f32 n=%zu: device %llu, host %lld\n", nf, first, ref);
        g_failures++;
    }
    cudaFree(df); cudaFree(d_first); free(f);
}

int main(int argc, char **argv) {
    qb_test_skip_without_gpu();
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    void *ws;
    CK(cudaMalloc(&ws, 32u << 20));
    qb_gemm *gemm;
    if (qb_gemm_create(ws, 32u << 20, &gemm) != 0) { printf("FAIL gemm create: %s\n", qb_last_error()); return 1; }

    test_embedding();
    test_random_fill();
    test_argmax(152064);
    test_argmax(7);
    test_nonfinite(quick ? 3000017 : (size_t)152064 * 3584, quick);
    printf("ok nonfinite\n");
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *s = &SHAPES[i];
        test_add_rmsnorm(s->H, 3, 1);
        test_silu_mul(2, s->I);
        test_qkv_rope(s, 5, 7);
        int nq = s->hq * s->hd, nqkv = (s->hq + 2 * s->hkv) * s->hd;
        test_matmul(s->name, 1, nqkv, s->H, gemm);
        test_matmul(s->name, 1, s->H, nq, gemm);
        test_matmul(s->name, 1, 2 * s->I, s->H, gemm);
        test_matmul(s->name, 1, s->H, s->I, gemm);
        if (!quick && (i == 0 || i == 3)) test_matmul(s->name, 1, s->V, s->H, gemm);
        test_matmul(s->name, 7, nqkv, s->H, gemm);
        test_matmul(s->name, 5, s->H, s->I, gemm);
        test_attention(s, 1, 0, 64);
        test_attention(s, 1, 64, 64);
        test_attention(s, 1, 1000, 64);
        test_attention(s, 1, 1000, 256);
        if (!quick) test_attention(s, 1, 5000, 128);
        test_attention(s, 1, 17, 0); /* prefill of a single row */
        test_attention(s, 37, 0, 0);
        test_attention(s, 130, 45, 0);
        if (!quick && i < 4) test_attention(s, 300, 0, 0);
        printf("ok %s shapes\n", s->name);
        fflush(stdout);
    }
    /* awkward sizes */
    test_add_rmsnorm(8, 1, 0);
    test_add_rmsnorm(1000, 4, 1);
    test_add_rmsnorm(8192, 2, 1);
    test_silu_mul(3, 1);
    test_silu_mul(1, 999);
    test_matmul("awkward", 1, 1, 8, gemm);
    test_matmul("awkward", 1, 7, 24, gemm);
    test_matmul("awkward", 1, 1001, 1000, gemm);
    test_matmul("awkward", 1, 33, 4104, gemm);
    test_matmul("awkward", 3, 1001, 1000, gemm);
    {
        shape odd = {"odd-group-3", 384, 1000, 6, 2, 64, 1000};
        test_qkv_rope(&odd, 3, 0);
        test_attention(&odd, 1, 200, 64);
        test_attention(&odd, 67, 3, 0);
        shape mha = {"mha-hd128", 512, 1000, 4, 4, 128, 1000};
        test_attention(&mha, 1, 129, 64);
        test_attention(&mha, 65, 63, 0);
    }
    qb_gemm_destroy(gemm);
    cudaFree(ws);
    if (g_failures) {
        printf("%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all CUDA kernel checks passed\n");
    return 0;
}
