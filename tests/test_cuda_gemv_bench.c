/* test_cuda_gemv_bench.c - micro-benchmark (not a ctest test) of the kernels that decide decode speed, on the
 * Qwen2.5 shapes: the decode GEMV (each rows-per-warp variant) against cuBLAS, decode attention at several
 * context lengths, prefill attention and the cuBLASLt GEMM, next to the measured copy bandwidth.
 * Weights rotate over copies totalling >= 512 MiB so the 50 MB L2 never serves them; each number is the median
 * of 7 replays of a CUDA graph of 64 launches (launch gaps as in the engine's decode graph).
 *   test_cuda_gemv_bench            prints a table; exits 77 without a GPU
 */
#include <cublas_v2.h>

#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "attention_decode.cuh"
#include "attention_prefill.cuh"
#include "gemm.cuh"
#include "gemv.cuh"

#define REPS 64
#define ROUNDS 7

static cudaStream_t g_s;
static cublasHandle_t g_cublas;

/* Median seconds per launch of fn(ctx, i), i = 0..REPS-1, captured as one graph. */
static double time_graph(qb_bench_launch_fn fn, void *ctx) {
    return qb_bench_graph_seconds(g_s, fn, ctx, REPS, ROUNDS);
}

typedef struct {
    uint16_t **w;
    int copies, n, k, variant; /* variant 0 = cuBLAS */
    uint16_t *x, *y;
} gemv_ctx;

static int gemv_launch(void *c, int i) {
    gemv_ctx *g = c;
    const uint16_t *w = g->w[i % g->copies];
    if (g->variant > 0) return qb_launch_gemv_variant(w, g->x, g->n, g->k, g->y, NULL, g->variant, g_s);
    if (g->variant < 0) return qb_launch_gemv(w, g->x, g->n, g->k, g->y, NULL, g_s);
    float alpha = 1.f, beta = 0.f;
    cublasStatus_t st = cublasGemmEx(g_cublas, CUBLAS_OP_T, CUBLAS_OP_N, g->n, 1, g->k, &alpha, w, CUDA_R_16BF, g->k,
                                     g->x, CUDA_R_16BF, g->k, &beta, g->y, CUDA_R_16BF, g->n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : qb_errorf("cublasGemmEx: %d", (int)st);
}

static double g_copy_gbps;

static void bench_gemv(const char *model, const char *what, int n, int k) {
    size_t bytes = (size_t)n * k * 2;
    int copies = (int)((512u << 20) / bytes) + 1;
    if (copies > 64) copies = 64;
    gemv_ctx c = {malloc(copies * sizeof(uint16_t *)), copies, n, k, 0, NULL, NULL};
    uint16_t *h = malloc(bytes);
    fill_bf16(h, (size_t)n * k, 0.05f);
    for (int i = 0; i < copies; i++) {
        CK(cudaMalloc((void **)&c.w[i], bytes));
        h2d(c.w[i], h, bytes);
    }
    CK(cudaMalloc((void **)&c.x, (size_t)k * 2));
    h2d(c.x, h, (size_t)k * 2);
    CK(cudaMalloc((void **)&c.y, (size_t)n * 2));
    printf("%-5s %-8s N=%6d K=%6d %7.2f MB |", model, what, n, k, bytes / 1e6);
    static const int variants[5] = {-1, 1, 2, 4, 0};
    static const char *names[5] = {"dispatch", "r1", "r2", "r4", "cuBLAS"};
    for (int v = 0; v < 5; v++) {
        c.variant = variants[v];
        double t = time_graph(gemv_launch, &c);
        double gbps = bytes / t / 1e9;
        printf(" %s %6.1f us %5.0f GB/s %3.0f%% |", names[v], t * 1e6, gbps, 100 * gbps / g_copy_gbps);
    }
    printf("\n");
    for (int i = 0; i < copies; i++) cudaFree(c.w[i]);
    cudaFree(c.x);
    cudaFree(c.y);
    free(c.w);
    free(h);
}

typedef struct {
    uint16_t *q, *k, *v, *o;
    float *po, *pml;
    int *pos;
    int max_seq, len, hq, hkv, hd, chunk, n, start;
} attn_ctx;

static int attn_decode_launch(void *c, int i) {
    attn_ctx *a = c;
    (void)i;
    return qb_launch_attention_decode(a->q, a->k, a->v, a->max_seq, a->max_seq, a->pos, a->hq, a->hkv, a->hd, a->chunk,
                                      a->po, a->pml, a->o, g_s);
}

static int attn_prefill_launch(void *c, int i) {
    attn_ctx *a = c;
    (void)i;
    return qb_launch_attention_prefill(a->q, a->k, a->v, a->max_seq, a->n, a->start, a->hq, a->hkv, a->hd, a->o, g_s);
}

static void bench_attention(int hq, int hkv, int hd, int max_seq) {
    attn_ctx a = {0};
    a.max_seq = max_seq; a.hq = hq; a.hkv = hkv; a.hd = hd;
    size_t cache = (size_t)hkv * max_seq * hd * 2;
    int nmax = 4096;
    CK(cudaMalloc((void **)&a.k, cache));
    CK(cudaMalloc((void **)&a.v, cache));
    CK(cudaMalloc((void **)&a.q, (size_t)nmax * hq * hd * 2));
    CK(cudaMalloc((void **)&a.o, (size_t)nmax * hq * hd * 2));
    dev_set_bytes(a.k, 0x3c, cache);
    dev_set_bytes(a.v, 0x3c, cache);
    dev_set_bytes(a.q, 0x3c, (size_t)nmax * hq * hd * 2);
    CK(cudaMalloc((void **)&a.po, qb_attention_decode_workspace_floats(hq, hd, max_seq) * 4));
    CK(cudaMalloc((void **)&a.pml, (size_t)hq * ((max_seq + 63) / 64) * 8));
    CK(cudaMalloc((void **)&a.pos, 4));
    int lens[4] = {1024, 6144, 16384, 32768};
    for (int li = 0; li < 4; li++) {
        int len = lens[li] < max_seq ? lens[li] : max_seq, pos = len - 1;
        h2d(a.pos, &pos, 4);
        printf("attention_decode hq=%d hkv=%d hd=%d ctx=%6d |", hq, hkv, hd, len);
        for (int chunk = 64; chunk <= 1024; chunk *= 4) {
            a.chunk = chunk;
            double t = time_graph(attn_decode_launch, &a);
            double bytes = 2.0 * hkv * (double)len * hd * 2;
            printf(" chunk %4d: %6.1f us %5.0f GB/s |", chunk, t * 1e6, bytes / t / 1e9);
        }
        printf("\n");
    }
    int starts[2] = {0, max_seq - 4096};
    for (int si = 0; si < 2; si++) {
        a.n = 4096; a.start = starts[si];
        double t = time_graph(attn_prefill_launch, &a);
        /* causal FLOPs: 4 * hd * hq * sum over rows of visible keys */
        double keys = (double)a.n * a.start + (double)a.n * (a.n + 1) / 2;
        double flops = 4.0 * hd * hq * keys;
        printf("attention_prefill hq=%d hkv=%d hd=%d n=%d start=%d: %.3f ms, %.0f TFLOP/s\n", hq, hkv, hd, a.n, a.start,
               t * 1e3, flops / t / 1e12);
    }
    cudaFree(a.k); cudaFree(a.v); cudaFree(a.q); cudaFree(a.o); cudaFree(a.po); cudaFree(a.pml); cudaFree(a.pos);
}

typedef struct {
    qb_gemm *g;
    uint16_t *x, *w, *y;
    int m, n, k;
} gemm_ctx;

static int gemm_launch(void *c, int i) {
    gemm_ctx *g = c;
    (void)i;
    return qb_gemm_bf16(g->g, g->x, g->w, g->m, g->n, g->k, g->y, g_s);
}

static void bench_gemm(qb_gemm *gm, int m, int n, int k) {
    gemm_ctx c = {gm, NULL, NULL, NULL, m, n, k};
    CK(cudaMalloc((void **)&c.x, (size_t)m * k * 2));
    CK(cudaMalloc((void **)&c.w, (size_t)n * k * 2));
    CK(cudaMalloc((void **)&c.y, (size_t)m * n * 2));
    dev_set_bytes(c.x, 0x3c, (size_t)m * k * 2);
    dev_set_bytes(c.w, 0x3c, (size_t)n * k * 2);
    gemm_launch(&c, 0); /* plan outside the capture */
    CK(cudaStreamSynchronize(g_s));
    double t = time_graph(gemm_launch, &c);
    printf("gemm m=%d n=%d k=%d: %.3f ms, %.0f TFLOP/s\n", m, n, k, t * 1e3, 2.0 * m * n * k / t / 1e12);
    cudaFree(c.x); cudaFree(c.w); cudaFree(c.y);
}

int main(void) {
    qb_test_skip_without_gpu();
    CK(cudaStreamCreate(&g_s));
    if (cublasCreate(&g_cublas) != CUBLAS_STATUS_SUCCESS) { fprintf(stderr, "cublasCreate failed\n"); return 1; }
    cublasSetStream(g_cublas, g_s);
    void *cublas_ws;
    CK(cudaMalloc(&cublas_ws, 32u << 20));
    cublasSetWorkspace(g_cublas, cublas_ws, 32u << 20);
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    g_copy_gbps = qb_bench_copy_gbps(g_s, ROUNDS);
    printf("device %s, %d SMs, L2 %d MB; copy bandwidth (1 GiB D2D, read+write): %.0f GB/s\n", prop.name,
           prop.multiProcessorCount, prop.l2CacheSize >> 20, g_copy_gbps);
    /* 0.5B and 7B decode shapes: qkv, o, gate_up, down, lm_head */
    bench_gemv("0.5B", "qkv", 1152, 896);
    bench_gemv("0.5B", "o", 896, 896);
    bench_gemv("0.5B", "gate_up", 9728, 896);
    bench_gemv("0.5B", "down", 896, 4864);
    bench_gemv("0.5B", "lm_head", 151936, 896);
    bench_gemv("7B", "qkv", 4608, 3584);
    bench_gemv("7B", "o", 3584, 3584);
    bench_gemv("7B", "gate_up", 37888, 3584);
    bench_gemv("7B", "down", 3584, 18944);
    bench_gemv("7B", "lm_head", 152064, 3584);
    bench_gemv("72B", "down/8", 8192, 3696);
    bench_attention(28, 4, 128, 32768 + 2048);
    bench_attention(14, 2, 64, 32768 + 2048);
    void *ws;
    CK(cudaMalloc(&ws, 32u << 20));
    qb_gemm *gm;
    if (qb_gemm_create(ws, 32u << 20, &gm) != 0) { fprintf(stderr, "%s\n", qb_last_error()); return 1; }
    bench_gemm(gm, 4096, 4608, 3584);
    bench_gemm(gm, 4096, 37888, 3584);
    bench_gemm(gm, 4096, 3584, 18944);
    qb_gemm_destroy(gm);
    return 0;
}
