/* test_cuda_gemv_quant_bench.c - the quantized decode GEMV (kernels/linear/gemv_quant.cuh): the tensor-core kernel and
 * the CUDA-core ("old") kernel against a double-precision reference, then old vs new speed, on the Qwen2.5
 * 7B shapes and the 72B shapes of a TP2 shard, for GPTQ-Int4, AWQ and GPTQ-Int8 (repacked layout of
 * engine/quant_repack.h, made directly here: random words, random scales and zero points).
 * Built twice: the product test (test_cuda_gemv_quant_bench: the kernels the product holds) and, with QB_LAB
 * defined, the kernel lab's harness (dev/CMakeLists.txt: dev_gemv_quant), which adds the lab's variants of
 * dev/cuda/: the tensor-core kernel with warps per tile by shape ("tc", formerly QB_GEMV_QUANT=tc) and the cp.async
 * tensor-core kernel ("async").
 *
 *   test_cuda_gemv_quant_bench [--check-only]     exits 77 without a GPU, 1 on any failed check
 *   dev_gemv_quant [--check-only]                 the same, but exits 0 without a GPU
 *
 * Checks, every shape, format and kernel (old = the CUDA-core kernel at rows/warp 2, the dispatch
 * qb_launch_gemv_quant, the register-pipelined tensor-core kernel with 1, 2, 4, 8, 16 warps per tile, loading 2 or 4
 * steps ahead, and with 2 also the per-step branch "g"; in the lab also that kernel with warps per tile by shape and
 * the cp.async tensor-core kernel with (warps, stages) (4, 4) (4, 8) (8, 2) (8, 3) (8, 4) (16, 2)):
 *   fp32 output vs the double sum of scale * (q - zero) * x: relative L2 error <= 1e-5 (both kernels sum exact
 *     products in fp32; only the order and the point where the scale is applied differ), every value finite
 *     (the output is filled with NaN before each launch, so a row never written fails);
 *   bf16 output: exactly the bf16 rounding of the same kernel's fp32 output;
 *   no write past either output (sentinel guard zones).
 *   Zero points cover the whole legal range (GPTQ 4-bit: stored + 1 = 1..16, AWQ 0..15, GPTQ 8-bit 1..256);
 *   x is bf16 uniform [-1, 1) with two outliers (+60, -45) like Qwen's activations. Extra shapes for the
 *   edges: N not a multiple of 16, the 0.5B qkv, groups of 256.
 * Timing (not with --check-only): each kernel replayed 64 times in a CUDA graph over copies of the weights
 * totalling >= 512 MiB (the 50 MB L2 never serves them), median of 7 replays. GB/s counts the bytes read
 * (packed weights + scales/zeros + x); % is of the measured device-to-device copy bandwidth (read + write).
 * Columns: old (CUDA-core, rows/warp 2), new (the dispatch, with the kernel it chose), reg (fastest register-
 * pipelined tensor-core variant), async (lab: fastest cp.async variant), BEST (fastest of all of these, in the lab
 * for 8 bits also the tensor-core kernel by shape), bf16 (qb_launch_gemv on the same shape). AWQ: old and new
 * only (same kernels and speed as GPTQ-Int4). Summary per format: the dispatch's choice per 7B linear and the four
 * 7B linears summed over 28 layers ("7B linears per token") for the default, old, best of all, bf16.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "engine/quant_pack.h"
#include "gemv.cuh"
#include "gemv_quant.cuh"
#ifdef QB_LAB
#include "lab_kernels.h"
#endif

#define REPS 64
#define ROUNDS 7
#define ROTATE_BYTES (512ull << 20)
#define TOL 1e-5

typedef struct {
    const char *name;
    int n, k, group, timed, is_7b;
} shape;

static const shape k_shapes[] = {
    {"7B qkv", 4608, 3584, 128, 1, 1},        {"7B o_proj", 3584, 3584, 128, 1, 1},
    {"7B gate_up", 37888, 3584, 128, 1, 1},   {"7B down", 3584, 18944, 128, 1, 1},
    {"72B/2 qkv", 5120, 8192, 128, 1, 0},     {"72B/2 o_proj", 8192, 4096, 128, 1, 0},
    {"72B/2 gate_up", 29696, 8192, 128, 1, 0}, {"72B/2 down", 8192, 14848, 128, 1, 0},
    {"0.5B qkv", 1152, 896, 128, 0, 0},       {"N%16 != 0", 1000, 1024, 128, 0, 0},
    {"group 256", 2064, 4096, 256, 0, 0},
};

typedef struct {
    const char *name;
    int bits, zmin, zmax;
} format;

static const format k_formats[] = {{"gptq-int4", 4, 1, 16}, {"awq", 4, 0, 15}, {"gptq-int8", 8, 1, 256}};

/* kernel selectors: 0 dispatch, -1 old with 2 rows per warp, 1..999 tensor-core kernel with W = sel % 100 warps
 * per tile and U = sel / 100 steps loaded ahead (0 = the default 2; 2 = 2 with the per-step branch, "guarded"),
 * 2000 + 100 D + W: the cp.async tensor-core kernel, W warps per tile, a ring of D stages per warp */
#define SEL_DISPATCH 0
#define SEL_OLD -1
#define SEL_TC_AUTO 1000 /* lab: tensor-core kernel, warps per tile by shape */
#define SEL_ASYNC0 2000  /* lab */
static const int k_tc_warps[] = {1, 2, 4, 8, 16, 201, 202, 204, 208, 216, 401, 402, 404, 408, 416,
#ifdef QB_LAB
                                 2404, 2804, 2208, 2308, 2408, 2216
#endif
};
#define SEL_IS_ASYNC(sel) ((sel) >= SEL_ASYNC0)
#define SEL_ASYNC_STAGES(sel) ((sel) / 100 - 20)

static cudaStream_t g_s;
static double g_max_rel_new, g_max_rel_old;
static int g_checks;

static uint64_t g_state = 0x243F6A8885A308D3ull;
static uint32_t rnd32(void) {
    g_state = qb_splitmix64(g_state);
    return (uint32_t)(g_state >> 32);
}

static void *host_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "FATAL: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static int launch_sel(int sel, const uint32_t *qw, const uint32_t *sz, const uint16_t *x, int n, int k, int bits,
                      int group, uint16_t *yb, float *yf) {
    if (sel == SEL_OLD) return qb_launch_gemv_quant_variant(qw, sz, x, n, k, bits, group, yb, yf, 2, g_s);
    if (sel == SEL_DISPATCH) return qb_launch_gemv_quant(qw, sz, x, n, k, bits, group, yb, yf, g_s);
#ifdef QB_LAB
    if (sel == SEL_TC_AUTO) return qb_lab_gemv_quant_tc_by_shape(qw, sz, x, n, k, bits, group, yb, yf, g_s);
    if (SEL_IS_ASYNC(sel))
        return qb_lab_gemv_quant_tc_async(qw, sz, x, n, k, bits, group, yb, yf, sel % 100, SEL_ASYNC_STAGES(sel), g_s);
#endif
    return qb_launch_gemv_quant_tc_tuned(qw, sz, x, n, k, bits, group, yb, yf, sel % 100, sel / 100 == 4 ? 4 : 2,
                                         sel / 100 == 2, g_s);
}

static void sel_name(int sel, char *buf, size_t len) {
    if (sel == SEL_OLD) snprintf(buf, len, "old rows/warp 2");
    else if (sel == SEL_DISPATCH) snprintf(buf, len, "dispatch");
    else if (sel == SEL_TC_AUTO) snprintf(buf, len, "tensor-core by shape");
    else if (SEL_IS_ASYNC(sel)) snprintf(buf, len, "tensor-core cp.async W=%d D=%d", sel % 100, SEL_ASYNC_STAGES(sel));
    else snprintf(buf, len, "tensor-core W=%d U=%d%s", sel % 100, sel / 100 == 4 ? 4 : 2, sel / 100 == 2 ? " guarded" : "");
}

/* short name for the tables: old, new, tc, W8 U2g, aW8 D4 */
static void sel_label(int sel, char *buf, size_t len) {
    if (sel == SEL_OLD) snprintf(buf, len, "old");
    else if (sel == SEL_DISPATCH) snprintf(buf, len, "new");
    else if (sel == SEL_TC_AUTO) snprintf(buf, len, "tc");
    else if (SEL_IS_ASYNC(sel)) snprintf(buf, len, "aW%d D%d", sel % 100, SEL_ASYNC_STAGES(sel));
    else snprintf(buf, len, "W%d U%d%s", sel % 100, sel / 100 == 4 ? 4 : 2, sel / 100 == 2 ? "g" : "");
}

static double rel_l2(const float *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* One kernel on one case: fp32 and bf16 outputs against the reference; returns 1 if all good. */
static int check_kernel(int sel, const char *what, const uint32_t *d_qw, const uint32_t *d_sz, const uint16_t *d_x,
                        int n, int k, int bits, int group, const double *ref, const float *ref_f, float *d_y,
                        uint16_t *d_yb, float *got, uint16_t *got_b) {
    char name[48], msg[256];
    sel_name(sel, name, sizeof name);
    snprintf(msg, sizeof msg, "%s [%d x %d] %s", what, n, k, name);
    dev_set_bytes(d_y, 0xFF, (size_t)n * 4); /* NaN: a row never written fails */
    dev_set_bytes(d_yb, 0xFF, (size_t)n * 2);
    LAUNCH(launch_sel(sel, d_qw, d_sz, d_x, n, k, bits, group, NULL, d_y));
    LAUNCH(launch_sel(sel, d_qw, d_sz, d_x, n, k, bits, group, d_yb, NULL));
    CK(cudaMemcpy(got, d_y, (size_t)n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(got_b, d_yb, (size_t)n * 2, cudaMemcpyDeviceToHost));
    int before = g_failures;
    g_checks++;
    for (int i = 0; i < n; i++)
        if (!isfinite(got[i])) {
            printf("FAIL %s: y[%d] = %g not finite (never written?), reference %g\n", msg, i, got[i], ref[i]);
            g_failures++;
            break;
        }
    double rel = rel_l2(got, ref, (size_t)n);
    check_close(msg, got, ref_f, (size_t)n, TOL); /* prints the first mismatches */
    if (sel == SEL_OLD) {
        if (rel > g_max_rel_old) g_max_rel_old = rel;
    } else if (rel > g_max_rel_new) g_max_rel_new = rel;
    for (int i = 0; i < n; i++)
        if (got_b[i] != qb_float_to_bf16(got[i])) {
            printf("FAIL %s: bf16 y[%d] = 0x%04x, bf16 of the fp32 output %g is 0x%04x (exact)\n", msg, i, got_b[i],
                   got[i], qb_float_to_bf16(got[i]));
            g_failures++;
            break;
        }
    dev_guard_ok(d_y, (size_t)n * 4, msg);
    dev_guard_ok(d_yb, (size_t)n * 2, msg);
    return g_failures == before;
}

typedef struct {
    const uint32_t *qw, *sz;
    size_t qw_stride, sz_stride; /* u32 elements between copies */
    const uint16_t *w_bf16;
    size_t w_stride;
    int copies, n, k, bits, group, sel;
    const uint16_t *x;
    uint16_t *y;
} bench_ctx;

static int launch_bf16(void *ctx, int i) {
    const bench_ctx *c = ctx;
    return qb_launch_gemv(c->w_bf16 + (i % c->copies) * c->w_stride, c->x, c->n, c->k, c->y, NULL, g_s);
}

static int launch_quant(void *ctx, int i) {
    const bench_ctx *c = ctx;
    int j = i % c->copies;
    return launch_sel(c->sel, c->qw + j * c->qw_stride, c->sz + j * c->sz_stride, c->x, c->n, c->k, c->bits, c->group,
                      c->y, NULL);
}

/* median seconds per launch; bf16 != 0: the bf16 GEMV on w_bf16 copies */
static double time_graph(bench_ctx *c, int bf16) {
    return qb_bench_graph_seconds(g_s, bf16 ? launch_bf16 : launch_quant, c, REPS, ROUNDS);
}

/* bf16 GEMV time of a shape (random-free: weights memset; time does not depend on the values) */
static double time_bf16(int n, int k, const uint16_t *d_x, uint16_t *d_y) {
    size_t wb = (size_t)n * k * 2;
    int copies = (int)((ROTATE_BYTES + wb - 1) / wb);
    if (copies > 64) copies = 64;
    uint16_t *rw;
    CK(cudaMalloc((void **)&rw, wb * copies));
    dev_set_bytes(rw, 0x3c, wb * copies);
    bench_ctx c = {0};
    c.w_bf16 = rw;
    c.w_stride = wb / 2;
    c.copies = copies;
    c.n = n;
    c.k = k;
    c.x = d_x;
    c.y = d_y;
    double t = time_graph(&c, 1);
    CK(cudaFree(rw));
    return t;
}

/* per-format sums over the 7B linears (one layer) for the summary: old, the dispatch (the default), the best
 * register tensor-core variant, the best cp.async variant, the best of all, bf16; the dispatch's choice per shape */
static double g_sum_old[3], g_sum_new[3], g_sum_reg[3], g_sum_async[3], g_sum_best[3], g_sum_bf16;
static double g_pct_min[3] = {1e9, 1e9, 1e9}, g_pct_max[3];
static char g_choices[3][256];

static void run_case(const shape *sh, int fi, int timing, double copy_gbps, double *bf16_time) {
    const format *f = &k_formats[fi];
    const int n = sh->n, k = sh->k, group = sh->group, bits = f->bits;
    const int words = k * bits / 32, groups = k / group;
    char what[96];
    snprintf(what, sizeof what, "%s %s", sh->name, f->name);
    size_t qw_bytes = (size_t)n * words * 4, sz_bytes = (size_t)n * groups * 4;
    uint32_t *qw = host_alloc(qw_bytes), *sz = host_alloc(sz_bytes);
    uint16_t *x = host_alloc((size_t)k * 2);
    for (size_t i = 0; i < (size_t)n * words; i++) qw[i] = rnd32();
    float scale_base = 0.0346f / (float)(1 << (bits - 1));
    for (size_t i = 0; i < (size_t)n * groups; i++) {
        uint32_t z = (uint32_t)f->zmin + rnd32() % (uint32_t)(f->zmax - f->zmin + 1);
        float u = (float)(rnd32() >> 8) / 16777216.0f;
        sz[i] = qb_float_to_f16(scale_base * (0.75f + 0.5f * u)) | z << 16;
    }
    fill_bf16(x, (size_t)k, 1.0f);
    x[17 % k] = qb_float_to_bf16(60.0f);
    x[k - 5] = qb_float_to_bf16(-45.0f);
    /* reference: per group, exact integer-weighted sums in double, then scaled */
    double *ref = host_alloc((size_t)n * 8), *xd = host_alloc((size_t)k * 8);
    float *xf = host_alloc((size_t)k * 4), *ref_f = host_alloc((size_t)n * 4);
    bf16_to_f32(x, (size_t)k, xf);
    for (int i = 0; i < k; i++) xd[i] = xf[i];
    const int per_word = 32 / bits;
    const uint32_t mask = (1u << bits) - 1u;
    for (int r = 0; r < n; r++) {
        const uint32_t *row = qw + (size_t)r * words;
        double y = 0;
        for (int gi = 0; gi < groups; gi++) {
            uint32_t e = sz[(size_t)r * groups + gi];
            double zf = (double)(e >> 16), s = 0;
            for (int w = gi * group / per_word; w < (gi + 1) * group / per_word; w++) {
                uint32_t word = row[w];
                const double *xw = xd + (size_t)w * per_word;
                for (int j = 0; j < per_word; j++) s += ((double)((word >> (bits * j)) & mask) - zf) * xw[j];
            }
            y += (double)qb_f16_to_float((uint16_t)(e & 0xffffu)) * s;
        }
        ref[r] = y;
        ref_f[r] = (float)y;
    }
    uint32_t *d_qw = dev_upload(qw, qw_bytes), *d_sz = dev_upload(sz, sz_bytes);
    uint16_t *d_x = dev_upload(x, (size_t)k * 2);
    float *d_y = dev_alloc_guarded((size_t)n * 4), *got = host_alloc((size_t)n * 4);
    uint16_t *d_yb = dev_alloc_guarded((size_t)n * 2), *got_b = host_alloc((size_t)n * 2);

    int ok = check_kernel(SEL_OLD, what, d_qw, d_sz, d_x, n, k, bits, group, ref, ref_f, d_y, d_yb, got, got_b);
    ok &= check_kernel(SEL_DISPATCH, what, d_qw, d_sz, d_x, n, k, bits, group, ref, ref_f, d_y, d_yb, got, got_b);
    int tc = qb_gemv_quant_tc_supported(bits, k, group);
    if (tc) {
#ifdef QB_LAB
        ok &= check_kernel(SEL_TC_AUTO, what, d_qw, d_sz, d_x, n, k, bits, group, ref, ref_f, d_y, d_yb, got, got_b);
#endif
        for (size_t w = 0; w < sizeof k_tc_warps / sizeof *k_tc_warps; w++)
            ok &= check_kernel(k_tc_warps[w], what, d_qw, d_sz, d_x, n, k, bits, group, ref, ref_f, d_y, d_yb, got, got_b);
    } else {
        printf("FAIL %s: the tensor-core kernel does not take this shape\n", what);
        g_failures++;
    }

    if (timing && sh->timed && ok) {
        int copies = (int)((ROTATE_BYTES + qw_bytes + sz_bytes - 1) / (qw_bytes + sz_bytes));
        if (copies > 64) copies = 64;
        uint32_t *rq, *rs;
        CK(cudaMalloc((void **)&rq, qw_bytes * copies));
        CK(cudaMalloc((void **)&rs, sz_bytes * copies));
        for (int c = 0; c < copies; c++) {
            CK(cudaMemcpy((char *)rq + c * qw_bytes, d_qw, qw_bytes, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy((char *)rs + c * sz_bytes, d_sz, sz_bytes, cudaMemcpyDeviceToDevice));
        }
        bench_ctx c = {rq, rs, qw_bytes / 4, sz_bytes / 4, NULL, 0, copies, n, k, bits, group, 0, d_x, d_yb};
        double bytes = (double)qw_bytes + (double)sz_bytes + (double)k * 2;
#define PCT(t) (100 * bytes / (t) / 1e9 / copy_gbps)
        c.sel = SEL_OLD;
        double t_old = time_graph(&c, 0);
        c.sel = SEL_DISPATCH;
        double t_new = time_graph(&c, 0);
        char choice[48], lab[24], cols[160] = "";
        qb_gemv_quant_default_choice(n, k, bits, group, choice, sizeof choice);
        /* best of all: old, the dispatch, and (not for AWQ, whose speed is the 4-bit one) every tensor-core variant */
        double t_best = t_new, t_reg = 0, t_async = 0;
        int s_best = SEL_DISPATCH, s_reg = 0, s_async = 0;
        if (t_old < t_best) t_best = t_old, s_best = SEL_OLD;
        if (tc && fi != 1) {
            t_reg = 1e30;
#ifdef QB_LAB
            t_async = 1e30;
            if (bits == 8) { /* the lab's tensor-core kernel by shape (formerly QB_GEMV_QUANT=tc) for 8 bits */
                c.sel = SEL_TC_AUTO;
                double t = time_graph(&c, 0);
                if (t < t_best) t_best = t, s_best = SEL_TC_AUTO;
            }
#endif
            for (size_t w = 0; w < sizeof k_tc_warps / sizeof *k_tc_warps; w++) {
                c.sel = k_tc_warps[w];
                double t = time_graph(&c, 0);
                if (SEL_IS_ASYNC(c.sel)) {
                    if (t < t_async) t_async = t, s_async = c.sel;
                } else if (t < t_reg) t_reg = t, s_reg = c.sel;
                if (t < t_best) t_best = t, s_best = c.sel;
            }
            char l1[24], l2[24];
            sel_label(s_reg, l1, sizeof l1);
            sel_label(s_async, l2, sizeof l2);
            size_t used = (size_t)snprintf(cols, sizeof cols, " | reg %-7s %5.1f %3.0f%%", l1, t_reg * 1e6, PCT(t_reg));
            if (t_async > 0) /* the lab only */
                snprintf(cols + used, sizeof cols - used, " | async %-6s %5.1f %3.0f%%", l2, t_async * 1e6,
                         PCT(t_async));
        }
        sel_label(s_best, lab, sizeof lab);
        if (*bf16_time <= 0) *bf16_time = time_bf16(n, k, d_x, d_yb);
        double pct_new = PCT(t_new);
        printf("%-13s %-9s %5dx%-5d | old %5.1f us %3.0f%% | new %-11s %5.1f us %3.0f%% %4.2fx old%s | BEST %-7s %5.1f "
               "%3.0f%% | bf16 %5.1f\n",
               sh->name, f->name, n, k, t_old * 1e6, PCT(t_old), choice, t_new * 1e6, pct_new, t_old / t_new, cols,
               lab, t_best * 1e6, PCT(t_best), *bf16_time * 1e6);
#undef PCT
        if (pct_new < g_pct_min[fi]) g_pct_min[fi] = pct_new;
        if (pct_new > g_pct_max[fi]) g_pct_max[fi] = pct_new;
        if (sh->is_7b) {
            g_sum_old[fi] += t_old;
            g_sum_new[fi] += t_new;
            g_sum_reg[fi] += t_reg;
            g_sum_async[fi] += t_async;
            g_sum_best[fi] += t_best;
            if (fi == 0) g_sum_bf16 += *bf16_time;
            size_t used = strlen(g_choices[fi]);
            snprintf(g_choices[fi] + used, sizeof g_choices[fi] - used, "%s%s %s", used ? ", " : "", sh->name + 3, choice);
        }
        CK(cudaFree(rq));
        CK(cudaFree(rs));
    }
    CK(cudaFree(d_qw));
    CK(cudaFree(d_sz));
    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
    CK(cudaFree(d_yb));
    free(qw);
    free(sz);
    free(x);
    free(ref);
    free(xd);
    free(xf);
    free(ref_f);
    free(got);
    free(got_b);
}

int main(int argc, char **argv) {
    int timing = !(argc > 1 && strcmp(argv[1], "--check-only") == 0);
#ifdef QB_LAB
    qb_lab_skip_without_gpu();
#endif
    qb_test_skip_without_gpu();
    CK(cudaStreamCreateWithFlags(&g_s, cudaStreamNonBlocking));
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    double copy_gbps = timing ? qb_bench_copy_gbps(g_s, 5) : 0;
    printf("gemv_quant bench on %s (%d SMs); copy bandwidth %.0f GB/s (read + write); old = CUDA-core rows/warp 2, "
           "new = qb_launch_gemv_quant (its choice named), reg = best register-pipelined tensor-core variant (W warps per tile, "
           "U unroll, g guarded), async (lab) = best cp.async tensor-core variant (W warps, D stages), "
           "BEST = fastest of all\n",
           prop.name, prop.multiProcessorCount, copy_gbps);
    for (size_t s = 0; s < sizeof k_shapes / sizeof *k_shapes; s++) {
        double bf16_time = 0;
        for (int f = 0; f < 3; f++) run_case(&k_shapes[s], f, timing, copy_gbps, &bf16_time);
    }
    printf("correctness: %d kernel runs checked, max relative L2 error new %.2g, old %.2g (tolerance %.0e); %s\n",
           g_checks, g_max_rel_new, g_max_rel_old, TOL, g_failures ? "FAILED" : "all passed");
    if (timing) {
        for (int f = 0; f < 3; f++) {
            printf("%-9s: new %3.0f-%3.0f%% of copy bandwidth on the timed shapes; default = %s\n", k_formats[f].name,
                   g_pct_min[f], g_pct_max[f], g_choices[f]);
            printf("%-9s: 7B linears per token (28 layers): default %.3f ms (%.2fx bf16, %.2fx old) | old %.3f | "
                   "best of all %.3f",
                   k_formats[f].name, 28 * g_sum_new[f] * 1e3, g_sum_new[f] > 0 ? g_sum_bf16 / g_sum_new[f] : 0,
                   g_sum_new[f] > 0 ? g_sum_old[f] / g_sum_new[f] : 0, 28 * g_sum_old[f] * 1e3, 28 * g_sum_best[f] * 1e3);
            if (g_sum_reg[f] > 0) printf(" | best reg-tc %.3f", 28 * g_sum_reg[f] * 1e3);
            if (g_sum_async[f] > 0) printf(" | best async (lab) %.3f", 28 * g_sum_async[f] * 1e3);
            printf(" | bf16 %.3f ms\n", 28 * g_sum_bf16 * 1e3);
        }
    }
    CK(cudaStreamDestroy(g_s));
    if (g_failures) {
        printf("test_cuda_gemv_quant_bench: %d failures\n", g_failures);
        return 1;
    }
    printf("test_cuda_gemv_quant_bench: passed\n");
    return 0;
}
