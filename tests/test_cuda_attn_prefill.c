/* test_cuda_attn_prefill.c - the prefill attention kernels (kernels/attention/attention_prefill.cuh): correctness against
 * the CPU reference (engine/cpu_ops.h) and a micro-benchmark, every kernel variant in the same process.
 * Built twice: the product test (test_cuda_attn_prefill: fa2, wg at head_dim 64, wgp) and, with QB_LAB defined,
 * the kernel lab's harness (dev/CMakeLists.txt: dev_attention_prefill, adding the lab's variants old and wg128 of
 * dev/cuda/; wg128 is known wrong and runs only when named).
 *   CPU-only (before the GPU checks, also without a GPU): the automatic rule qb_attention_prefill_auto_variant and
 *     the refusals (wg at head_dim 128, an unknown variant) of qb_launch_attention_prefill_variant.
 *   check: Qwen2.5 head shapes (0.5B 14/2/64, 1.5B 12/2/128, 7B 28/4/128, 72B 64/8/128 and tensor-parallel
 *     slices, plus multi-head 4/4/64) at n = 1 .. 300 with start 0 and > 0, and longer chunks (n up to 4096,
 *     start up to 126976) where the CPU checks a subsample of query rows. Per variant it fails on a relative L2
 *     error above 2e-2 over the checked rows or 4e-2 in any one (row, head) vector, on any non-finite output
 *     (the output is pre-filled with NaN, so a row never written fails too), on a K/V read past start+n-1
 *     (cache positions past it hold NaN) and on a write past the output (sentinels).
 *   bench: causal TFLOP/s (4 * hd * hq * visible keys summed over rows) of each variant at n = 4096, 8192,
 *     16384, 32768 (start 0) and n = 4096 at start 126976 (the last 4096-row chunk of a 131072-token prompt),
 *     median of 5 replays of a CUDA graph, buffers rotating over >= 512 MiB; then each variant's output is
 *     compared with the first variant's on sampled rows (same tolerances).
 *   A variant runs only at the head dims it takes (wg: 64, wg128: 128); the others are skipped for it.
 * Usage: test_cuda_attn_prefill [--check] [--bench] [--variants fa2,wg,wgp]
 *        dev_attention_prefill  [--check] [--bench] [--variants fa2,old,wg,wgp,wg128]
 *   neither --check nor --bench: both; variants default fa2 (+ wg, wgp on Hopper) in the product test, fa2,old in
 *   the lab (the first is the bench's reference and speed-up base). Without a GPU: exits 77 (product test) or 0
 *   (lab), printing "skipped: no GPU"; 1 on a failure.
 */
#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "attention_prefill.cuh"
#include "engine/cpu_ops.h"
#ifdef QB_LAB
#include "lab_kernels.h"
#endif

typedef int (*prefill_launch_fn)(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                 int n, int start, int hq, int hkv, int hd, uint16_t *out, cudaStream_t stream);

#define PRODUCT_VARIANT(NAME, ID)                                                                                  \
    static int launch_##NAME(const uint16_t *q, const uint16_t *k, const uint16_t *v, int max_seq, int n,          \
                             int start, int hq, int hkv, int hd, uint16_t *out, cudaStream_t stream) {             \
        return qb_launch_attention_prefill_variant(q, k, v, max_seq, n, start, hq, hkv, hd, out, ID, stream);      \
    }
PRODUCT_VARIANT(fa2, QB_ATTN_PREFILL_FA2)
PRODUCT_VARIANT(wg, QB_ATTN_PREFILL_WG)
PRODUCT_VARIANT(wgp, QB_ATTN_PREFILL_WGP)

/* Every variant this build knows: name, launcher, head dims it takes (bit 0: 64, bit 1: 128). wg, wgp and wg128
 * need an sm_90 GPU (their launchers refuse others). */
typedef struct {
    const char *name;
    prefill_launch_fn launch;
    int hd_mask;
} prefill_variant;
#define HD64 1
#define HD128 2
static const prefill_variant KNOWN[] = {
    {"fa2", launch_fa2, HD64 | HD128},
    {"wg", launch_wg, HD64},
    {"wgp", launch_wgp, HD64 | HD128},
#ifdef QB_LAB
    {"old", qb_lab_attention_prefill_old, HD64 | HD128},
    {"wg128", qb_lab_attention_prefill_wg128, HD128}, /* known wrong: errors up to 0.95 relative */
#endif
};
#define N_KNOWN ((int)(sizeof KNOWN / sizeof KNOWN[0]))

#define MAX_VARIANTS 5
static int g_n_variants = 0; /* the variants under test (indices into KNOWN), from --variants or the default */
static int g_variants[MAX_VARIANTS];
static const char *g_variant_names[MAX_VARIANTS];

static int variant_takes(int vi, int hd) { return (KNOWN[g_variants[vi]].hd_mask & (hd == 64 ? HD64 : HD128)) != 0; }
#define TOL_ALL 2e-2
#define TOL_ROW 4e-2
#define NAN_BF16 0xFFFFu

typedef struct {
    const char *name;
    int hq, hkv, hd;
} head_shape;

static const head_shape SHAPES[] = {
    {"0.5B", 14, 2, 64},     {"0.5B/tp2", 7, 1, 64}, {"1.5B", 12, 2, 128},   {"7B", 28, 4, 128},
    {"7B/tp2", 14, 2, 128},  {"7B/tp4", 7, 1, 128},  {"72B", 64, 8, 128},    {"72B/tp8", 8, 1, 128},
    {"mha", 4, 4, 64},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))
static const int g_threads = 16;
static double g_worst[MAX_VARIANTS];

/* Relative L2 error of got vs ref over m values (ref norm floored so near-zero vectors do not explode). */
static double rel_err(const float *got, const float *ref, size_t m) {
    double num = 0, den = 0;
    for (size_t i = 0; i < m; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double floor_den = 1e-6 * (double)m;
    return sqrt(num / (den > floor_den ? den : floor_den));
}

/* got/ref hold rows x (hq*hd): overall tolerance, per (row, head) tolerance, finiteness. 1 if fine. */
static int compare_rows(const char *what, const float *got, const float *ref, int rows, const int *row_ids, int hq,
                        int hd, int vi) {
    size_t m = (size_t)rows * hq * hd;
    for (size_t i = 0; i < m; i++)
        if (!isfinite(got[i])) {
            printf("FAIL %s %s: non-finite output %g at row %d head %d dim %d\n", what, g_variant_names[vi], got[i],
                   row_ids[i / ((size_t)hq * hd)], (int)(i / hd % hq), (int)(i % hd));
            return 0;
        }
    double all = rel_err(got, ref, m);
    if (all > g_worst[vi]) g_worst[vi] = all;
    if (all > TOL_ALL) {
        printf("FAIL %s %s: relative L2 error %.3g > %.3g over %d rows\n", what, g_variant_names[vi], all, TOL_ALL,
               rows);
    }
    int shown = 0, ok = all <= TOL_ALL;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < hq; h++) {
            size_t o = ((size_t)r * hq + h) * hd;
            double e = rel_err(got + o, ref + o, (size_t)hd);
            if (e > TOL_ROW) {
                ok = 0;
                if (shown++ < 4)
                    printf("FAIL %s %s: row %d head %d relative error %.3g > %.3g (got[0] %.5g ref[0] %.5g)\n", what,
                           g_variant_names[vi], row_ids[r], h, e, TOL_ROW, got[o], ref[o]);
            }
        }
    return ok;
}

/* One (shape, n, start): the CPU reference on all rows (n <= max_rows) or a subsample, each variant on the GPU. */
static void check_case(const head_shape *s, int n, int start, int max_rows) {
    char what[128];
    snprintf(what, sizeof what, "attention_prefill %s n=%d start=%d", s->name, n, start);
    int hq = s->hq, hkv = s->hkv, hd = s->hd, T = start + n, max_seq = T + 67;
    size_t cache_n = (size_t)hkv * max_seq * hd, qn = (size_t)n * hq * hd, row_n = (size_t)hq * hd;
    uint16_t *kc = malloc(cache_n * 2), *vc = malloc(cache_n * 2), *q = malloc(qn * 2), *ob = malloc(qn * 2);
    float *kr = malloc((size_t)T * hkv * hd * 4), *vr = malloc((size_t)T * hkv * hd * 4), *qf = malloc(qn * 4);
    if (!kc || !vc || !q || !ob || !kr || !vr || !qf) { fprintf(stderr, "FATAL: host memory for %s\n", what); exit(1); }
    for (int h = 0; h < hkv; h++)
        for (int t = 0; t < max_seq; t++) {
            uint16_t *kp = kc + ((size_t)h * max_seq + t) * hd, *vp = vc + ((size_t)h * max_seq + t) * hd;
            if (t < T) {
                fill_bf16(kp, (size_t)hd, 2.f);
                fill_bf16(vp, (size_t)hd, 1.f);
                for (int d = 0; d < hd; d++) {
                    kr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(kp[d]);
                    vr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(vp[d]);
                }
            } else { /* past the chunk: a kernel that reads these gets NaN */
                for (int d = 0; d < hd; d++) kp[d] = vp[d] = NAN_BF16;
            }
        }
    fill_bf16(q, qn, 2.f);
    bf16_to_f32(q, qn, qf);

    /* rows to check: all, or the first 8, the last 8 and evenly spread ones */
    int rows = n <= max_rows ? n : max_rows;
    int *row_ids = malloc((size_t)rows * sizeof *row_ids);
    float *ref = malloc((size_t)rows * row_n * 4), *got = malloc((size_t)rows * row_n * 4);
    if (rows == n) {
        for (int r = 0; r < n; r++) row_ids[r] = r;
        qb_ref_attention(qf, kr, vr, n, start, hq, hkv, hd, ref, g_threads);
    } else {
        for (int r = 0; r < rows; r++) {
            if (r < 8) row_ids[r] = r;
            else if (r >= rows - 8) row_ids[r] = n - (rows - r);
            else row_ids[r] = 8 + (int)((long)(r - 8) * (n - 16) / (rows - 16));
            int i = row_ids[r];
            qb_ref_attention(qf + (size_t)i * row_n, kr, vr, 1, start + i, hq, hkv, hd, ref + (size_t)r * row_n,
                             g_threads);
        }
    }

    uint16_t *d_k = dev_upload(kc, cache_n * 2), *d_v = dev_upload(vc, cache_n * 2), *d_q = dev_upload(q, qn * 2);
    uint16_t *d_o = dev_alloc_guarded(qn * 2);
    for (int vi = 0; vi < g_n_variants; vi++) {
        if (!variant_takes(vi, hd)) continue;
        dev_set_bytes(d_o, 0xFF, qn * 2); /* NaN: a row the kernel never writes fails the check */
        LAUNCH(KNOWN[g_variants[vi]].launch(d_q, d_k, d_v, max_seq, n, start, hq, hkv, hd, d_o, 0));
        CK(cudaMemcpy(ob, d_o, qn * 2, cudaMemcpyDeviceToHost));
        int ok = dev_guard_ok(d_o, qn * 2, what);
        for (size_t i = 0; i < qn && ok; i++)
            if (!isfinite(qb_bf16_to_float(ob[i]))) {
                printf("FAIL %s %s: non-finite output at token %zu head %zu dim %zu\n", what, g_variant_names[vi],
                       i / row_n, i / hd % hq, i % hd);
                ok = 0;
            }
        for (int r = 0; r < rows && ok; r++)
            bf16_to_f32(ob + (size_t)row_ids[r] * row_n, row_n, got + (size_t)r * row_n);
        if (ok) ok = compare_rows(what, got, ref, rows, row_ids, hq, hd, vi);
        if (!ok) g_failures++;
    }
    cudaFree(d_k); cudaFree(d_v); cudaFree(d_q); cudaFree(d_o);
    free(kc); free(vc); free(q); free(ob); free(kr); free(vr); free(qf); free(row_ids); free(ref); free(got);
}

static void run_checks(void) {
    static const int small[][2] = {{1, 0},   {1, 17},  {2, 0},    {7, 3},   {63, 0},  {64, 0},   {65, 1},
                                   {127, 0}, {128, 0}, {129, 63}, {200, 37}, {300, 0}, {300, 1000}};
    int n_small = (int)(sizeof small / sizeof small[0]);
    for (int si = 0; si < N_SHAPES; si++) {
        int before = g_failures;
        for (int c = 0; c < n_small; c++) check_case(&SHAPES[si], small[c][0], small[c][1], 64);
        printf("check %-9s hq=%2d hkv=%d hd=%3d: n 1..300, start 0..1000 (%d cases) %s\n", SHAPES[si].name,
               SHAPES[si].hq, SHAPES[si].hkv, SHAPES[si].hd, n_small, g_failures == before ? "ok" : "FAILED");
    }
    /* longer chunks, rows subsampled: many key tiles, several row tiles per kv head, the engine's chunk shape */
    int before = g_failures;
    check_case(&SHAPES[3], 2048, 0, 40);       /* 7B */
    check_case(&SHAPES[0], 2048, 0, 40);       /* 0.5B */
    check_case(&SHAPES[7], 1000, 3001, 32);    /* 72B/tp8 */
    check_case(&SHAPES[6], 333, 4444, 24);     /* 72B */
    check_case(&SHAPES[1], 1537, 777, 32);     /* 0.5B/tp2 */
    check_case(&SHAPES[5], 4096, 126976, 20);  /* 7B/tp4: last chunk of a 131072-token prompt */
    printf("check long chunks (n 333..4096, start up to 126976, rows subsampled): %s\n",
           g_failures == before ? "ok" : "FAILED");
    for (int vi = 0; vi < g_n_variants; vi++)
        printf("check worst relative L2 error %s: %.3g (tolerance %.3g)\n", g_variant_names[vi], g_worst[vi], TOL_ALL);
}

/* ---- benchmark ----------------------------------------------------------------------------------------- */

#define ROUNDS 5
static cudaStream_t g_s;

typedef struct {
    uint16_t **q, **k, **v, **o;
    int copies, max_seq, n, start, hq, hkv, hd, variant;
} bench_ctx;

static int bench_launch(void *ctx, int i) {
    const bench_ctx *c = ctx;
    int j = i % c->copies;
    return KNOWN[c->variant].launch(c->q[j], c->k[j], c->v[j], c->max_seq, c->n, c->start, c->hq, c->hkv, c->hd,
                                    c->o[j], g_s);
}

/* Median seconds per launch over ROUNDS replays of a graph of reps launches, after one eager launch (as before:
 * any per-kernel setup of the launcher happens outside the capture). */
static double time_graph(bench_ctx *c, int reps) {
    if (bench_launch(c, 0) != 0) { fprintf(stderr, "FATAL launch: %s\n", qb_last_error()); exit(1); }
    CK(cudaStreamSynchronize(g_s));
    return qb_bench_graph_seconds(g_s, bench_launch, c, reps, ROUNDS);
}

/* Device buffer of count bf16 values U(-scale, scale), from a 16 Mi-value host pattern. */
static uint16_t *dev_random(size_t count, float scale) {
    static uint16_t *pattern[2];
    static float pattern_scale[2];
    const size_t PAT = (size_t)1 << 24;
    int slot = scale > 1.5f ? 0 : 1;
    if (!pattern[slot] || pattern_scale[slot] != scale) {
        free(pattern[slot]);
        pattern[slot] = malloc(PAT * 2);
        if (!pattern[slot]) { fprintf(stderr, "FATAL: host memory\n"); exit(1); }
        fill_bf16(pattern[slot], PAT, scale);
        pattern_scale[slot] = scale;
    }
    uint16_t *d;
    CK(cudaMalloc((void **)&d, count * 2));
    const size_t half = PAT / 2;
    for (size_t off = 0, piece = 0; off < count; off += half, piece++) {
        size_t m = count - off < half ? count - off : half;
        size_t shift = (piece * 7919) % half; /* repeated pieces start at different places of the pattern */
        h2d(d + off, pattern[slot] + shift, m * 2);
    }
    return d;
}

/* Compare variant vi's output (copy 0) with the first variant's (ref_out) on 48 sampled tokens. */
static int bench_cross_check(const char *what, const bench_ctx *c, const uint16_t *ref_out, int vi) {
    int rows = 48, hq = c->hq, hd = c->hd;
    size_t row_n = (size_t)hq * hd;
    uint16_t *a = malloc(row_n * 2), *b = malloc(row_n * 2);
    float *got = malloc((size_t)rows * row_n * 4), *ref = malloc((size_t)rows * row_n * 4);
    int *ids = malloc(rows * sizeof *ids);
    for (int r = 0; r < rows; r++) {
        int t = r < 4 ? r : r >= rows - 4 ? c->n - (rows - r) : (int)((long)(r - 4) * (c->n - 8) / (rows - 8)) + 4;
        ids[r] = t;
        CK(cudaMemcpy(a, c->o[0] + (size_t)t * row_n, row_n * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(b, ref_out + (size_t)t * row_n, row_n * 2, cudaMemcpyDeviceToHost));
        bf16_to_f32(a, row_n, got + (size_t)r * row_n);
        bf16_to_f32(b, row_n, ref + (size_t)r * row_n);
    }
    int ok = compare_rows(what, got, ref, rows, ids, hq, hd, vi);
    free(a); free(b); free(got); free(ref); free(ids);
    return ok;
}

static void bench_shape(const head_shape *s) {
    static const int cases[][2] = {{4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {4096, 126976}};
    for (int ci = 0; ci < 5; ci++) {
        bench_ctx c = {0};
        c.n = cases[ci][0];
        c.start = cases[ci][1];
        c.max_seq = c.start + c.n;
        c.hq = s->hq; c.hkv = s->hkv; c.hd = s->hd;
        size_t qn = (size_t)c.n * c.hq * c.hd, cache_n = (size_t)c.hkv * c.max_seq * c.hd;
        size_t set_bytes = (qn * 2 + cache_n * 2) * 2;
        c.copies = (int)(((size_t)512 << 20) / set_bytes) + 1;
        if (c.copies > 32) c.copies = 32;
        c.q = calloc(c.copies, sizeof *c.q); c.k = calloc(c.copies, sizeof *c.k);
        c.v = calloc(c.copies, sizeof *c.v); c.o = calloc(c.copies, sizeof *c.o);
        for (int i = 0; i < c.copies; i++) {
            c.q[i] = dev_random(qn, 2.f);
            c.k[i] = dev_random(cache_n, 2.f);
            c.v[i] = dev_random(cache_n, 1.f);
            CK(cudaMalloc((void **)&c.o[i], qn * 2));
        }
        uint16_t *ref_out;
        CK(cudaMalloc((void **)&ref_out, qn * 2));
        double keys = (double)c.n * c.start + (double)c.n * (c.n + 1) / 2;
        double flops = 4.0 * c.hd * c.hq * keys;
        int reps = (int)(0.03 / (flops / 250e12));
        if (reps < 2) reps = 2;
        if (reps > 64) reps = 64;
        printf("%-8s %2d/%d/%3d n=%5d start=%6d |", s->name, c.hq, c.hkv, c.hd, c.n, c.start);
        double t_ref = 0;
        int ref_vi = -1; /* the first variant that takes this head_dim: the reference and speed-up base */
        for (int vi = 0; vi < g_n_variants; vi++) {
            if (!variant_takes(vi, c.hd)) {
                printf(" %s n/a at hd %d |", g_variant_names[vi], c.hd);
                continue;
            }
            c.variant = g_variants[vi];
            double t = time_graph(&c, reps);
            if (ref_vi < 0) {
                ref_vi = vi;
                t_ref = t;
                CK(cudaMemcpy(ref_out, c.o[0], qn * 2, cudaMemcpyDeviceToDevice));
                dev_set_bytes(c.o[0], 0xFF, qn * 2);
                printf(" %s %8.3f ms %4.0f TF/s |", g_variant_names[vi], t * 1e3, flops / t / 1e12);
                continue;
            }
            dev_set_bytes(c.o[0], 0xFF, qn * 2);
            if (bench_launch(&c, 0) != 0) { fprintf(stderr, "FATAL launch: %s\n", qb_last_error()); exit(1); }
            CK(cudaStreamSynchronize(g_s));
            char what[96];
            snprintf(what, sizeof what, "bench %s n=%d start=%d vs %s", s->name, c.n, c.start, g_variant_names[ref_vi]);
            if (!bench_cross_check(what, &c, ref_out, vi)) g_failures++;
            printf(" %s %8.3f ms %4.0f TF/s x%.2f |", g_variant_names[vi], t * 1e3, flops / t / 1e12, t_ref / t);
        }
        printf("\n");
        fflush(stdout);
        for (int i = 0; i < c.copies; i++) { cudaFree(c.q[i]); cudaFree(c.k[i]); cudaFree(c.v[i]); cudaFree(c.o[i]); }
        cudaFree(ref_out);
        free(c.q); free(c.k); free(c.v); free(c.o);
    }
}

static void run_bench(void) {
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("bench on %s (%d SMs): causal TFLOP/s = 4*hd*hq*(visible keys summed over rows) / time; xN = speed-up "
           "over the first variant that takes the head_dim (%s)\n", prop.name, prop.multiProcessorCount,
           g_variant_names[0]);
    CK(cudaStreamCreate(&g_s));
    bench_shape(&SHAPES[3]); /* 7B */
    bench_shape(&SHAPES[0]); /* 0.5B */
    bench_shape(&SHAPES[7]); /* 72B/tp8 */
    CK(cudaStreamDestroy(g_s));
}

/* "fa2,wg" -> g_variants; 0, or -1 with a message naming the bad entry. */
static int parse_variants(const char *list) {
    g_n_variants = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int k = 0; k < N_KNOWN; k++)
            if (strlen(KNOWN[k].name) == len && strncmp(p, KNOWN[k].name, len) == 0) found = k;
        if (found < 0 || g_n_variants == MAX_VARIANTS) {
            fprintf(stderr, "--variants: unknown or too many entries in '%s' (known:", list);
            for (int k = 0; k < N_KNOWN; k++) fprintf(stderr, " %s", KNOWN[k].name);
            fprintf(stderr, ")\n");
            return -1;
        }
        g_variants[g_n_variants] = found;
        g_variant_names[g_n_variants++] = KNOWN[found].name;
        p += len;
        if (*p == ',') p++;
    }
    if (g_n_variants == 0) { fprintf(stderr, "--variants: empty list\n"); return -1; }
    return 0;
}

/* Without --variants: the product's kernels this device runs (fa2; wg, wgp on Hopper), or the lab's comparison. */
static void default_variants(void) {
#ifdef QB_LAB
    (void)parse_variants("fa2,old");
#else
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    (void)parse_variants(prop.major == 9 ? "fa2,wg,wgp" : "fa2");
#endif
}

/* The host side of the product's choice, no GPU needed: the automatic rule and the refusals. Failures counted. */
static void check_rule_and_refusals(void) {
    static const struct { int hd, cc, want; } rule[] = {
        {64, 9, QB_ATTN_PREFILL_WG}, {128, 9, QB_ATTN_PREFILL_WGP}, {64, 8, QB_ATTN_PREFILL_FA2},
        {128, 8, QB_ATTN_PREFILL_FA2}, {128, 10, QB_ATTN_PREFILL_FA2}, {64, 0, QB_ATTN_PREFILL_FA2},
    };
    for (size_t i = 0; i < sizeof rule / sizeof rule[0]; i++) {
        int got = qb_attention_prefill_auto_variant(rule[i].hd, rule[i].cc);
        if (got != rule[i].want) {
            printf("FAIL auto rule: head_dim %d compute capability %d -> variant %d, want %d\n", rule[i].hd,
                   rule[i].cc, got, rule[i].want);
            g_failures++;
        }
    }
    /* refused before any device work: no pointers needed */
    static const struct { int hd, variant; const char *what; } refused[] = {
        {128, QB_ATTN_PREFILL_WG, "wg at head_dim 128"}, {64, 1, "variant 1 (the old kernel, now in the lab)"},
        {64, 99, "variant 99"}, {96, QB_ATTN_PREFILL_FA2, "head_dim 96"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = qb_launch_attention_prefill_variant(NULL, NULL, NULL, 64, 8, 0, 14, 2, refused[i].hd, NULL,
                                                     refused[i].variant, 0);
        if (rc != -1 || !*qb_last_error()) {
            printf("FAIL refusal: %s was accepted (rc %d)\n", refused[i].what, rc);
            g_failures++;
        } else {
            printf("refused as expected: %s: %s\n", refused[i].what, qb_last_error());
        }
    }
}

int main(int argc, char **argv) {
    int check = 0, bench = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) check = 1;
        else if (strcmp(argv[i], "--bench") == 0) bench = 1;
        else if (strcmp(argv[i], "--variants") == 0 && i + 1 < argc) {
            if (parse_variants(argv[++i]) != 0) return 2;
        } else {
            fprintf(stderr, "usage: %s [--check] [--bench] [--variants name,...]\n", argv[0]);
            return 2;
        }
    }
    if (!check && !bench) check = bench = 1;
    (void)check_close; /* test_cuda_util.h's metric; this test uses its own per-row one */
    check_rule_and_refusals();
    if (g_failures) {
        printf("FAILED: %d host-side check(s)\n", g_failures);
        return 1;
    }
#ifdef QB_LAB
    qb_lab_skip_without_gpu();
#endif
    qb_test_skip_without_gpu();
    if (g_n_variants == 0) default_variants();
    if (check) run_checks();
    if (bench) run_bench();
    if (g_failures) {
        printf("FAILED: %d case(s)\n", g_failures);
        return 1;
    }
    printf("all attention_prefill checks passed\n");
    return 0;
}
