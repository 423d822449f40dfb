/* test_cuda_quant.c - the quantized decode GEMV and the prefill dequantization (kernels/linear/gemv_quant.cuh) against
 * the CPU reference (engine/cpu_quant_ops.h), on the real Qwen2.5 shapes, for GPTQ-Int4, GPTQ-Int8 and AWQ;
 * then their speed next to the bf16 GEMV of the same shape.
 *
 * Run (GPU machine, from the repository root):
 *   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j --target test_cuda_quant \
 *     && ./build/tests/test_cuda_quant            (or: ctest --test-dir build -R cuda_quant --output-on-failure)
 * Prints "skipped: no GPU" and exits 77 without a GPU. QB_QUANT_TEST_QUICK=1: correctness only, no timing.
 *
 * Weights: random quantized weights of the engine's rule (weights_quant.h), repacked as at load time
 * (quant_repack.h); x: bf16 uniform [-1, 1).
 * Checks and tolerances:
 *   (each rows-per-warp variant of the CUDA-core kernel, and the dispatch qb_launch_gemv_quant the engine calls:
 *   the tensor-core kernel for 4 bits)
 *   fp32 output vs qb_ref_matmul_quant: relative L2 error <= 1e-5 (both are fp32 sums of exact products
 *     (q - z) * x, scaled once per 16-byte piece on the GPU and per weight on the CPU: only rounding order differs,
 *     ~sqrt(K) * 6e-8 of the row's magnitude);
 *   bf16 output: exactly the bf16 rounding of the same variant's fp32 output (one rounding at the end);
 *   dequantization to bf16: every element exactly bf16(scale * (q - zero)) (an exact fp32 product, rounded once);
 *   the fused decode GEMV's store (gemv_quant_fused.cuh) on the row layout and the tiled ones (quant_tile.cuh):
 *     bf16 output, relative L2 <= 4e-3;
 *   no write past the outputs (guard zones);
 *   f16 embedding lookup: exact; f16 lm_head GEMV (7B shape): relative L2 <= 1e-5 (fp32 sums of exact products);
 *   random quantized weights made on the GPU (random_fill_quant.cuh) for a TP slice: every word equal to the
 *     host's rule (weights_quant.h) repacked (quant_repack.h).
 * Timing: each kernel is replayed 64 times in a CUDA graph over copies of the weights totalling >= 512 MiB (the
 * 50 MB L2 never serves them); median of 7 replays. GB/s = bytes read (packed weights + scales/zeros + x) per
 * second; % of the measured device-to-device copy bandwidth (read + write bytes per second).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "engine/cpu_quant_ops.h"
#include "engine/quant_pack.h"
#include "engine/quant_repack.h"
#include "engine/weights_layout.h"
#include "engine/weights_quant.h"
#include "dense_f16.cuh"
#include "gemv_quant_fused.cuh"
#include "quant_tile.cuh"
#include "gemv.cuh"
#include "gemv_quant.cuh"
#include "random_fill_quant.cuh"

#define REPS 64
#define ROUNDS 7
#define ROTATE_BYTES (512ull << 20)
#define THREADS 16

typedef struct {
    const char *name;
    int n, k;
} shape;

static const shape k_shapes[] = {
    {"7B q_proj/o_proj", 3584, 3584},  {"7B k/v_proj", 512, 3584},     {"7B qkv fused", 4608, 3584},
    {"7B gate/up_proj", 18944, 3584},  {"7B gate_up fused", 37888, 3584}, {"7B down_proj", 3584, 18944},
    {"0.5B down_proj", 896, 4864},     {"72B TP2 o_proj", 8192, 4096},  {"72B TP2 gate/up", 14848, 8192},
    {"72B TP2 down_proj", 8192, 14848},
};

typedef struct {
    const char *name;
    qb_weight_format fmt;
    int bits;
} format;

static const format k_formats[] = {
    {"gptq-int4", QB_WFMT_GPTQ, 4}, {"gptq-int8", QB_WFMT_GPTQ, 8}, {"awq", QB_WFMT_AWQ, 4}};

static cudaStream_t g_s;

static void *host_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "FATAL: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static void free_linear(qb_linear *l) {
    free(l->qweight);
    free(l->qzeros);
    free(l->scales);
    free(l->g_idx);
}

/* Rows [row0, +n) x columns [col0, +k) of a random quantized linear [n_full][k_full] (group 128) named prefix. */
static void make_linear_slice(const format *f, int n, int k, long n_full, long k_full, long row0, long col0,
                              const char *prefix, qb_linear *l) {
    memset(l, 0, sizeof *l);
    int pf = 32 / f->bits, g = 128, awq = f->fmt == QB_WFMT_AWQ;
    l->fmt = f->fmt;
    l->bits = f->bits;
    l->group_size = g;
    l->out_features = n;
    l->in_features = k;
    l->qweight = host_alloc((size_t)n * k / (awq ? 8 : pf) * 4);
    l->qzeros = host_alloc((size_t)(k / g) * (n / (awq ? 8 : pf)) * 4);
    l->scales = host_alloc((size_t)(k / g) * n * 2);
    if (!awq) l->g_idx = host_alloc((size_t)k * 4);
    qb_slice s = {(uint64_t)n_full, (uint64_t)k_full, (uint64_t)row0, (uint64_t)n, (uint64_t)col0, (uint64_t)k, false};
    qb_linear_random_quant(l, prefix, &s, 7, THREADS);
}

/* A full (TP1) random quantized linear of shape [n][k]. */
static void make_linear(const format *f, int n, int k, qb_linear *l) {
    char name[96];
    snprintf(name, sizeof name, "test.%s.%dx%d", f->name, n, k);
    make_linear_slice(f, n, k, n, k, 0, 0, name, l);
}

/* Random weights made on the GPU (random_fill_quant.cuh) equal the host's, repacked, for a TP slice. */
static void check_random_fill(const format *f) {
    const int n = 512, k = 256;
    const long n_full = 1024, k_full = 512, row0 = 512, col0 = 256;
    const char *prefix = "model.layers.3.mlp.up_proj";
    qb_linear l;
    make_linear_slice(f, n, k, n_full, k_full, row0, col0, prefix, &l);
    qb_qmat m;
    if (qb_qmat_from_linear(&l, &m, THREADS) != 0) {
        printf("FAIL random fill %s: repack: %s\n", f->name, qb_last_error());
        g_failures++;
        free_linear(&l);
        return;
    }
    size_t qb = qb_qmat_qweight_bytes(&m), sb = qb_qmat_sz_bytes(&m);
    uint32_t *dq = dev_alloc_guarded(qb), *ds = dev_alloc_guarded(sb);
    char id[160];
    snprintf(id, sizeof id, "%s.qweight", prefix);
    uint64_t qid = qb_tensor_id(id);
    snprintf(id, sizeof id, "%s.qzeros", prefix);
    uint64_t zid = qb_tensor_id(id);
    snprintf(id, sizeof id, "%s.scales", prefix);
    uint64_t sid = qb_tensor_id(id);
    LAUNCH(qb_launch_random_fill_qmat(dq, ds, n, k, f->bits, 128, f->fmt == QB_WFMT_AWQ, n_full, row0, col0, 7, qid, zid,
                                      sid, g_s));
    uint32_t *hq = host_alloc(qb), *hs = host_alloc(sb);
    CK(cudaMemcpy(hq, dq, qb, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hs, ds, sb, cudaMemcpyDeviceToHost));
    char what[96];
    snprintf(what, sizeof what, "random fill %s qweight", f->name);
    dev_guard_ok(dq, qb, what);
    for (size_t i = 0; i < qb / 4; i++)
        if (hq[i] != m.qweight[i]) {
            printf("FAIL %s: word %zu = 0x%08x on the GPU, 0x%08x on the host (exact)\n", what, i, hq[i], m.qweight[i]);
            g_failures++;
            break;
        }
    snprintf(what, sizeof what, "random fill %s scales/zeros", f->name);
    dev_guard_ok(ds, sb, what);
    for (size_t i = 0; i < sb / 4; i++)
        if (hs[i] != m.sz[i]) {
            printf("FAIL %s: entry %zu = 0x%08x on the GPU, 0x%08x on the host (exact)\n", what, i, hs[i], m.sz[i]);
            g_failures++;
            break;
        }
    free(hq);
    free(hs);
    CK(cudaFree(dq));
    CK(cudaFree(ds));
    qb_qmat_free(&m);
    free_linear(&l);
}

typedef struct {
    const uint32_t *qw, *sz;
    size_t qw_stride, sz_stride; /* elements between copies */
    int copies;
    const uint16_t *x, *w_bf16;
    size_t w_stride;
    int n, k, bits, rpw;
    float *y;
    uint16_t *w_out; /* dequantization target */
} bench_ctx;

static int launch_dequant(void *ctx, int i) {
    bench_ctx *c = ctx;
    int j = i % c->copies;
    return qb_launch_dequant_quant_bf16(c->qw + j * c->qw_stride, c->sz + j * c->sz_stride, c->n, c->k, c->bits, 128,
                                        c->w_out, g_s);
}

static int launch_quant(void *ctx, int i) {
    bench_ctx *c = ctx;
    int j = i % c->copies;
    if (c->rpw == 0)
        return qb_launch_gemv_quant(c->qw + j * c->qw_stride, c->sz + j * c->sz_stride, c->x, c->n, c->k, c->bits, 128,
                                    NULL, c->y, g_s);
    return qb_launch_gemv_quant_variant(c->qw + j * c->qw_stride, c->sz + j * c->sz_stride, c->x, c->n, c->k, c->bits,
                                        128, NULL, c->y, c->rpw, g_s);
}

static double time_graph(qb_bench_launch_fn fn, bench_ctx *c) {
    return qb_bench_graph_seconds(g_s, fn, c, REPS, ROUNDS);
}

static int launch_bf16(void *ctx, int i) {
    bench_ctx *c = ctx;
    int j = i % c->copies;
    return qb_launch_gemv(c->w_bf16 + j * c->w_stride, c->x, c->n, c->k, NULL, c->y, g_s);
}

/* The fused decode GEMV's plain store (gemv_quant_fused.cuh) on the row layout and on the tiled one (by rows, and
 * by the fused matrices' pairings where the shape is one), against the CPU reference: bf16 output, so relative
 * L2 <= 4e-3 (one bf16 rounding of sums that differ from the reference's only in order). */
static void check_fused_store(const shape *sh, const format *f, const qb_linear *l, const uint32_t *d_qw,
                              const uint32_t *d_sz, const uint16_t *d_x, const float *ref) {
    const int n = sh->n, k = sh->k;
    if (!qb_gemv_quant_tc_supported(f->bits, k, 128)) return;
    (void)l;
    size_t qw_bytes = (size_t)n * k * f->bits / 8, sz_bytes = (size_t)n * (k / 128) * 4;
    uint32_t *t_qw = dev_alloc_guarded(qw_bytes), *t_sz = dev_alloc_guarded(sz_bytes);
    uint16_t *d_yb = dev_alloc_guarded((size_t)n * 2), *got_b = host_alloc((size_t)n * 2);
    float *got = host_alloc((size_t)n * 4);
    const int kinds[3] = {-1, QB_TILE_ROWS, !strcmp(sh->name, "7B qkv fused")       ? QB_TILE_ROPE
                                            : !strcmp(sh->name, "7B gate_up fused") ? QB_TILE_SILU
                                                                                    : -2};
    for (int v = 0; v < 3; v++) {
        if (kinds[v] == -2) continue;
        qb_gemv_qweights w = {d_qw, d_sz, f->bits, 128, 0, 0, 128, n / 2};
        if (kinds[v] >= 0) {
            LAUNCH(qb_launch_quant_tile(d_qw, d_sz, n, k, f->bits, 128, kinds[v], 128, n / 2, t_qw, t_sz, g_s));
            w.qweight = t_qw;
            w.sz = t_sz;
            w.tiled = 1;
            w.kind = kinds[v];
        }
        qb_gemv_input in = {.x = d_x};
        LAUNCH(qb_launch_gemv_quant_fused_store(&w, n, k, &in, d_yb, g_s));
        CK(cudaStreamSynchronize(g_s));
        CK(cudaMemcpy(got_b, d_yb, (size_t)n * 2, cudaMemcpyDeviceToHost));
        bf16_to_f32(got_b, (size_t)n, got);
        char what[160];
        snprintf(what, sizeof what, "%s %s [%d x %d] fused store, %s", sh->name, f->name, n, k,
                 kinds[v] < 0 ? "rows" : kinds[v] == QB_TILE_ROWS ? "tiled by rows"
                                     : kinds[v] == QB_TILE_ROPE ? "tiled by RoPE pairs" : "tiled by gate/up pairs");
        check_close(what, got, ref, (size_t)n, 4e-3);
        dev_guard_ok(d_yb, (size_t)n * 2, what);
        dev_guard_ok(t_qw, qw_bytes, what);
        dev_guard_ok(t_sz, sz_bytes, what);
    }
    free(got);
    free(got_b);
    CK(cudaFree(t_qw));
    CK(cudaFree(t_sz));
    CK(cudaFree(d_yb));
}

static void check_one(const shape *sh, const format *f, int timing, double copy_gbps) {
    const int n = sh->n, k = sh->k;
    char what[160];
    qb_linear l;
    make_linear(f, n, k, &l);
    qb_qmat m;
    if (qb_qmat_from_linear(&l, &m, THREADS) != 0) {
        printf("FAIL %s %s: repack: %s\n", sh->name, f->name, qb_last_error());
        g_failures++;
        free_linear(&l);
        return;
    }
    uint16_t *x = host_alloc((size_t)k * 2);
    float *xf = host_alloc((size_t)k * 4), *ref = host_alloc((size_t)n * 4), *got = host_alloc((size_t)n * 4);
    uint16_t *got_bf16 = host_alloc((size_t)n * 2);
    fill_bf16(x, (size_t)k, 1.0f);
    bf16_to_f32(x, (size_t)k, xf);
    qb_ref_matmul_quant(xf, &l, 1, ref, THREADS);

    size_t qw_bytes = qb_qmat_qweight_bytes(&m), sz_bytes = qb_qmat_sz_bytes(&m);
    uint32_t *d_qw = dev_upload(m.qweight, qw_bytes), *d_sz = dev_upload(m.sz, sz_bytes);
    uint16_t *d_x = dev_upload(x, (size_t)k * 2);
    float *d_y = dev_alloc_guarded((size_t)n * 4);
    uint16_t *d_yb = dev_alloc_guarded((size_t)n * 2);
    const int variants[3] = {1, 2, 4};
    for (int v = 0; v < 3; v++) {
        int rpw = variants[v];
        LAUNCH(qb_launch_gemv_quant_variant(d_qw, d_sz, d_x, n, k, f->bits, 128, NULL, d_y, rpw, g_s));
        LAUNCH(qb_launch_gemv_quant_variant(d_qw, d_sz, d_x, n, k, f->bits, 128, d_yb, NULL, rpw, g_s));
        CK(cudaMemcpy(got, d_y, (size_t)n * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(got_bf16, d_yb, (size_t)n * 2, cudaMemcpyDeviceToHost));
        snprintf(what, sizeof what, "%s %s [%d x %d] rows/warp %d fp32 output", sh->name, f->name, n, k, rpw);
        check_close(what, got, ref, (size_t)n, 1e-5);
        dev_guard_ok(d_y, (size_t)n * 4, what);
        snprintf(what, sizeof what, "%s %s [%d x %d] rows/warp %d bf16 output", sh->name, f->name, n, k, rpw);
        dev_guard_ok(d_yb, (size_t)n * 2, what);
        for (int i = 0; i < n; i++)
            if (got_bf16[i] != qb_float_to_bf16(got[i])) {
                printf("FAIL %s: y[%d] = 0x%04x, bf16 of the fp32 output %g is 0x%04x (exact)\n", what, i, got_bf16[i],
                       got[i], qb_float_to_bf16(got[i]));
                g_failures++;
                break;
            }
    }
    /* the dispatch (qb_launch_gemv_quant: the tensor-core kernel for 4 bits, QB_GEMV_QUANT=old the rows/warp 2
     * kernel), as the engine calls it: same tolerance */
    LAUNCH(qb_launch_gemv_quant(d_qw, d_sz, d_x, n, k, f->bits, 128, NULL, d_y, g_s));
    LAUNCH(qb_launch_gemv_quant(d_qw, d_sz, d_x, n, k, f->bits, 128, d_yb, NULL, g_s));
    CK(cudaMemcpy(got, d_y, (size_t)n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(got_bf16, d_yb, (size_t)n * 2, cudaMemcpyDeviceToHost));
    snprintf(what, sizeof what, "%s %s [%d x %d] dispatch fp32 output", sh->name, f->name, n, k);
    check_close(what, got, ref, (size_t)n, 1e-5);
    dev_guard_ok(d_y, (size_t)n * 4, what);
    snprintf(what, sizeof what, "%s %s [%d x %d] dispatch bf16 output", sh->name, f->name, n, k);
    dev_guard_ok(d_yb, (size_t)n * 2, what);
    for (int i = 0; i < n; i++)
        if (got_bf16[i] != qb_float_to_bf16(got[i])) {
            printf("FAIL %s: y[%d] = 0x%04x, bf16 of the fp32 output %g is 0x%04x (exact)\n", what, i, got_bf16[i],
                   got[i], qb_float_to_bf16(got[i]));
            g_failures++;
            break;
        }
    check_fused_store(sh, f, &l, d_qw, d_sz, d_x, ref);
    /* prefill dequantization */
    uint16_t *d_w = dev_alloc_guarded((size_t)n * k * 2);
    LAUNCH(qb_launch_dequant_quant_bf16(d_qw, d_sz, n, k, f->bits, 128, d_w, g_s));
    uint16_t *w = host_alloc((size_t)n * k * 2);
    CK(cudaMemcpy(w, d_w, (size_t)n * k * 2, cudaMemcpyDeviceToHost));
    snprintf(what, sizeof what, "%s %s [%d x %d] dequant to bf16", sh->name, f->name, n, k);
    dev_guard_ok(d_w, (size_t)n * k * 2, what);
    for (size_t i = 0; i < (size_t)n * k; i++) {
        uint16_t want = qb_float_to_bf16(qb_ref_dequant_at(&l, (int)(i / k), (int)(i % k)));
        if (w[i] != want) {
            printf("FAIL %s: W[%zu][%zu] = 0x%04x, want 0x%04x (exact)\n", what, i / k, i % k, w[i], want);
            g_failures++;
            break;
        }
    }
    free(w);
    CK(cudaFree(d_w));

    if (timing) {
        size_t per = qw_bytes + sz_bytes;
        int copies = (int)((ROTATE_BYTES + per - 1) / per);
        if (copies > 64) copies = 64;
        uint32_t *rq, *rs;
        CK(cudaMalloc((void **)&rq, qw_bytes * copies));
        CK(cudaMalloc((void **)&rs, sz_bytes * copies));
        for (int c = 0; c < copies; c++) {
            CK(cudaMemcpy((char *)rq + c * qw_bytes, d_qw, qw_bytes, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy((char *)rs + c * sz_bytes, d_sz, sz_bytes, cudaMemcpyDeviceToDevice));
        }
        size_t wb = (size_t)n * k * 2;
        int bcopies = (int)((ROTATE_BYTES + wb - 1) / wb);
        if (bcopies > 64) bcopies = 64;
        uint16_t *rw;
        CK(cudaMalloc((void **)&rw, wb * bcopies));
        dev_set_bytes(rw, 0, wb * bcopies);
        bench_ctx c = {rq, rs, qw_bytes / 4, sz_bytes / 4, copies, d_x, rw, wb / 2, n, k, f->bits, 1, d_y, rw};
        double bytes = (double)per + (double)k * 2;
        double best = 1e30;
        int best_rpw = 0;
        char line[384];
        int used = snprintf(line, sizeof line, "%-18s %-9s %6d x %-6d", sh->name, f->name, n, k);
        for (int v = 0; v < 3; v++) {
            c.rpw = variants[v];
            double t = time_graph(launch_quant, &c);
            used += snprintf(line + used, sizeof line - (size_t)used, " | rpw%d %7.2f us %5.0f GB/s %3.0f%%", c.rpw,
                             t * 1e6, bytes / t / 1e9, 100.0 * bytes / t / 1e9 / copy_gbps);
            if (t < best) best = t, best_rpw = c.rpw;
        }
        c.rpw = 0; /* the dispatch */
        double tq = time_graph(launch_quant, &c);
        used += snprintf(line + used, sizeof line - (size_t)used, " | dispatch %7.2f us %3.0f%%", tq * 1e6,
                         100.0 * bytes / tq / 1e9 / copy_gbps);
        double td = time_graph(launch_dequant, &c); /* reads the packed copies, writes one bf16 matrix */
        c.copies = bcopies;
        double tb = time_graph(launch_bf16, &c);
        printf("%s | bf16 gemv %7.2f us | best rpw%d: %.2fx bf16 | dequant to bf16 %7.1f us (%4.0f GB/s r+w)\n", line,
               tb * 1e6, best_rpw, tb / best, td * 1e6, ((double)per + (double)wb) / td / 1e9);
        CK(cudaFree(rq));
        CK(cudaFree(rs));
        CK(cudaFree(rw));
    }
    CK(cudaFree(d_qw));
    CK(cudaFree(d_sz));
    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
    CK(cudaFree(d_yb));
    free(x);
    free(xf);
    free(ref);
    free(got);
    free(got_bf16);
    qb_qmat_free(&m);
    free_linear(&l);
}

/* f16 embedding lookup (exact) and f16 lm_head GEMV (7B shape) vs the CPU reference; its time next to bf16. */
static void check_dense_f16(int timing, double copy_gbps) {
    const int V = 152064, H = 3584;
    size_t count = (size_t)V * H;
    uint16_t *w = host_alloc(count * 2), *x = host_alloc((size_t)H * 2);
    for (size_t i = 0; i < count; i++) w[i] = qb_float_to_f16(rnd_uniform(-0.0346f, 0.0346f));
    fill_bf16(x, (size_t)H, 1.0f);
    float *xf = host_alloc((size_t)H * 4), *ref = host_alloc((size_t)V * 4), *got = host_alloc((size_t)V * 4);
    bf16_to_f32(x, (size_t)H, xf);
    qb_ref_matmul_f16(xf, w, NULL, 1, V, H, ref, THREADS);
    uint16_t *d_w = dev_upload(w, count * 2), *d_x = dev_upload(x, (size_t)H * 2);
    float *d_y = dev_alloc_guarded((size_t)V * 4);
    LAUNCH(qb_launch_gemv_f16(d_w, d_x, V, H, NULL, d_y, g_s));
    CK(cudaMemcpy(got, d_y, (size_t)V * 4, cudaMemcpyDeviceToHost));
    check_close("gemv_f16 lm_head [152064 x 3584] fp32 output", got, ref, (size_t)V, 1e-5);
    dev_guard_ok(d_y, (size_t)V * 4, "gemv_f16 output");
    /* embedding: 3 tokens, the last out of range (reads row 0, never outside) */
    int32_t tokens[3] = {5, V - 1, V + 7}, safe[3] = {5, V - 1, 0};
    int32_t *d_t = dev_upload(tokens, sizeof tokens);
    float *d_e = dev_alloc_guarded((size_t)3 * H * 4), *e = host_alloc((size_t)3 * H * 4), *e_ref = host_alloc((size_t)3 * H * 4);
    LAUNCH(qb_launch_embedding_f16(d_w, V, H, d_t, 3, d_e, g_s));
    CK(cudaMemcpy(e, d_e, (size_t)3 * H * 4, cudaMemcpyDeviceToHost));
    qb_ref_embedding_f16(w, H, safe, 3, e_ref);
    if (memcmp(e, e_ref, (size_t)3 * H * 4) != 0) {
        printf("FAIL embedding_f16: rows differ from the reference (exact)\n");
        g_failures++;
    }
    dev_guard_ok(d_e, (size_t)3 * H * 4, "embedding_f16 output");
    if (timing) {
        cudaEvent_t a, b;
        CK(cudaEventCreate(&a));
        CK(cudaEventCreate(&b));
        double t[2];
        for (int which = 0; which < 2; which++) {
            float best = 1e30f;
            for (int r = 0; r < 7; r++) {
                CK(cudaEventRecord(a, g_s));
                if (which == 0) LAUNCH(qb_launch_gemv_f16(d_w, d_x, V, H, NULL, d_y, g_s));
                else LAUNCH(qb_launch_gemv(d_w, d_x, V, H, NULL, d_y, g_s)); /* same bytes read as bf16 */
                CK(cudaEventRecord(b, g_s));
                CK(cudaEventSynchronize(b));
                float ms;
                CK(cudaEventElapsedTime(&ms, a, b));
                if (ms < best) best = ms;
            }
            t[which] = best * 1e-3;
        }
        double bytes = (double)count * 2;
        printf("lm_head 7B f16 gemv %.1f us (%.0f GB/s, %.0f%% of copy), bf16 gemv %.1f us\n", t[0] * 1e6,
               bytes / t[0] / 1e9, 100.0 * bytes / t[0] / 1e9 / copy_gbps, t[1] * 1e6);
        CK(cudaEventDestroy(a));
        CK(cudaEventDestroy(b));
    }
    CK(cudaFree(d_w));
    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
    CK(cudaFree(d_t));
    CK(cudaFree(d_e));
    free(w);
    free(x);
    free(xf);
    free(ref);
    free(got);
    free(e);
    free(e_ref);
}

int main(void) {
    qb_test_skip_without_gpu();
    CK(cudaStreamCreateWithFlags(&g_s, cudaStreamNonBlocking));
    const char *quick = getenv("QB_QUANT_TEST_QUICK");
    int timing = !(quick && *quick == '1');
    double copy_gbps = timing ? qb_bench_copy_gbps(g_s, 5) : 0;
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("test_cuda_quant on %s; device copy bandwidth %.0f GB/s (read + write)\n", prop.name, copy_gbps);
    for (size_t f = 0; f < sizeof k_formats / sizeof *k_formats; f++) check_random_fill(&k_formats[f]);
    check_dense_f16(timing, copy_gbps);
    for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++)
        for (size_t f = 0; f < sizeof k_formats / sizeof *k_formats; f++) check_one(&k_shapes[s], &k_formats[f], timing, copy_gbps);
    /* refusals: a shape the layout cannot hold, a misaligned pointer */
    if (qb_launch_gemv_quant(NULL, NULL, NULL, 16, 100, 4, 128, NULL, (float *)16, g_s) == 0) {
        printf("FAIL refusal: K=100 accepted\n");
        g_failures++;
    }
    CK(cudaStreamDestroy(g_s));
    if (g_failures) {
        printf("test_cuda_quant: %d failures\n", g_failures);
        return 1;
    }
    printf("test_cuda_quant: passed\n");
    return 0;
}
