/* test_cuda_attn_decode.c - the split-KV decode attention (kernels/attention/attention_decode.cuh): the split kernels against
 * the CPU reference (engine/cpu_ops.h), then timed. Built twice: the product test (test_cuda_attn_decode: the
 * product's tensor-core kernel "mma") and, with QB_LAB defined, the kernel lab's harness (dev/CMakeLists.txt:
 * dev_attention_decode), which adds the first, CUDA-core split kernel "old" of dev/cuda/attention_decode_old.cu.
 *   --check  correctness: head shapes of 0.5B (14,2,64), 7B (28,4,128), 14B/32B (40,8,128), 72B (64,8,128) and
 *            their TP2/TP4 slices (hq/tp, hkv/tp; 0.5B has no TP4: 2 kv heads), contexts 1 .. 131072, max_seq
 *            beyond the context, queries alternately mild and peaked (|q| <= 2 or 6). Each case
 *            runs the chunk the engine picks (src/cuda/cuda_forward.c) with the grid of the engine's level
 *            (len_cap) and of the whole cache, plus other chunks. Cache rows past the context hold NaN and the
 *            partial buffers are NaN-poisoned before each launch: any read of them shows as a NaN output.
 *            Sentinels after the output and both partial buffers catch out-of-bounds writes. The poison is written on
 *            the kernels' stream and the uploads are followed by a device sync (g_stream is non-blocking: it does
 *            not wait for the legacy stream's cudaMemset / pageable cudaMemcpy; at 074ce18 that race gave NaN
 *            outputs at context 131072). A failure prints DIAG lines (see diagnose()). hkv=8 shapes at 131072
 *            print their old / mma pass counts.
 *            Tolerance: relative L2 error 1e-2 (bf16 output rounding ~2e-3, the mma kernel's bf16 P ~2e-3).
 *   --bench  KV-cache read bandwidth, contexts 1024 .. 131072: each number is the median of 7 replays of a CUDA
 *            graph of >= 32 launches (split + combine) reading >= 512 MiB of caches in turn so the L2 never serves
 *            them: the mma kernel at every chunk (to tune the policy); in the lab also old vs mma in one process.
 *   --quick  fewer contexts and shapes (a smoke test).
 * No flag: --check. Prints "skipped: no GPU" and exits 77 (product test) or 0 (lab) where no GPU is visible;
 * non-zero on any failure.
 */
#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "attention_decode.cuh"
#include "cuda/cuda_engine.h"
#include "engine/cpu_ops.h"
#ifdef QB_LAB
#include "lab_kernels.h"
#endif

typedef int (*decode_launch_fn)(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                int len_cap, const int *pos, int hq, int hkv, int hd, int chunk, float *part_o,
                                float *part_ml, uint16_t *out, cudaStream_t stream);
/* The split kernels of this build: the product's first (the reference of the bench's speed-ups). */
static const struct {
    const char *name;
    decode_launch_fn launch;
} VARIANTS[] = {
    {"mma", qb_launch_attention_decode},
#ifdef QB_LAB
    {"old", qb_lab_attention_decode_old},
#endif
};
#define N_VARIANTS ((int)(sizeof VARIANTS / sizeof VARIANTS[0]))
#define VARIANT_MMA 0
#define VARIANT_OLD 1 /* lab only */

typedef struct {
    const char *name;
    int hq, hkv, hd;
} head_shape;

static const head_shape SHAPES[] = {
    {"0.5B", 14, 2, 64},      {"0.5B/tp2", 7, 1, 64}, {"7B", 28, 4, 128},        {"7B/tp2", 14, 2, 128},
    {"7B/tp4", 7, 1, 128},    {"14B,32B", 40, 8, 128}, {"14B,32B/tp2", 20, 4, 128}, {"14B,32B/tp4", 10, 2, 128},
    {"72B", 64, 8, 128},      {"72B/tp2", 32, 4, 128}, {"72B/tp4", 16, 2, 128},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))
static const int CONTEXTS[] = {1, 2, 63, 64, 65, 1000, 4097, 32768, 131072};
#define N_CONTEXTS ((int)(sizeof CONTEXTS / sizeof CONTEXTS[0]))
#define N_CHUNKS QB_CUDA_DECODE_LEVELS /* 64 << i */
#define BF16_NAN 0x7fc0u
#define TOLERANCE 1e-2

static int g_threads = 16;
static cudaStream_t g_stream;

/* The engine's choice for a context and the longest context of that level (its graph's grid), as
 * cuda_backend.c's levels do: only the fields the chooser reads are set. */
static int engine_chunk(const head_shape *s, int context) {
    static qb_cuda_engine e; /* large; zero but for the head counts */
    e.hq = s->hq;
    e.hkv = s->hkv;
    e.hd = s->hd;
    return qb_cuda_decode_chunk_for(&e, context);
}

/* The policy before the mma kernel (>= 2 x 132 blocks): the old kernel's baseline in the lab's benchmark. */
static int chunk_for_blocks(const head_shape *s, int context, int want_blocks) {
    int chunk = 64;
    for (int i = 1; i < N_CHUNKS; i++) {
        long splits = (context + 2L * chunk - 1) / (2L * chunk);
        if (splits * s->hkv < want_blocks) break;
        chunk *= 2;
    }
    return chunk;
}

static int engine_len_cap(const head_shape *s, int context, int max_seq) {
    int chunk = engine_chunk(s, context), cap = context;
    for (int len = context + 1; len <= max_seq; len++)
        if (engine_chunk(s, len) == chunk) cap = len;
    return cap;
}

/* Cheap reproducible values: bf16 of uniform [-scale, scale). */
static uint64_t g_lcg = 0x9e3779b97f4a7c15ull;
static void fill_fast(uint16_t *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        g_lcg = g_lcg * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((g_lcg >> 40) * (1.0 / 16777216.0)) * 2.f - 1.f;
        x[i] = qb_float_to_bf16(u * scale);
    }
}

typedef struct {
    const head_shape *s;
    int context, max_seq;
    uint16_t *d_k, *d_v, *d_q, *d_o;
    float *d_po, *d_pml;
    int *d_pos;
    size_t po_bytes, pml_bytes, o_bytes;
    float *ref, *got;
    uint16_t *ob;
} check_case;

/* Poison the partial buffers and the output ON THE KERNELS' STREAM (a plain cudaMemset runs on the legacy stream,
 * which g_stream, non-blocking, does not wait for: the poison could land after the kernels wrote), launch, wait,
 * copy the output back into c->ob / c->got. Returns 0, or -1 after printing why the launch failed. */
static int launch_and_read(check_case *c, int variant, int chunk, int len_cap, const char *what) {
    const head_shape *s = c->s;
    CK(cudaMemsetAsync(c->d_po, 0xff, c->po_bytes, g_stream));
    CK(cudaMemsetAsync(c->d_pml, 0xff, c->pml_bytes, g_stream));
    CK(cudaMemsetAsync(c->d_o, 0xff, c->o_bytes, g_stream));
    if (VARIANTS[variant].launch(c->d_q, c->d_k, c->d_v, c->max_seq, len_cap, c->d_pos, s->hq, s->hkv, s->hd, chunk,
                                 c->d_po, c->d_pml, c->d_o, g_stream) != 0) {
        printf("FAIL %s: %s\n", what, qb_last_error());
        return -1;
    }
    cudaError_t err = cudaStreamSynchronize(g_stream);
    if (err != cudaSuccess) {
        printf("FAIL %s: %s\n", what, cudaGetErrorString(err));
        exit(1); /* the context is unusable after a kernel fault */
    }
    CK(cudaMemcpy(c->ob, c->d_o, c->o_bytes, cudaMemcpyDeviceToHost));
    bf16_to_f32(c->ob, (size_t)s->hq * s->hd, c->got);
    return 0;
}

/* Relative L2 error of one head (inf where it holds a non-finite value). */
static double head_error(const check_case *c, int h, int *n_bad, int *first_bad) {
    int hd = c->s->hd;
    double num = 0, den = 0;
    *n_bad = 0;
    *first_bad = -1;
    for (int d = 0; d < hd; d++) {
        float g = c->got[(size_t)h * hd + d], r = c->ref[(size_t)h * hd + d];
        if (!isfinite(g)) {
            if (*first_bad < 0) *first_bad = d;
            (*n_bad)++;
            continue;
        }
        num += ((double)g - r) * ((double)g - r);
        den += (double)r * r;
    }
    if (*n_bad) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Non-finite values among the first rows (< T) of each kv head of a device cache; prints the first. */
static long scan_cache(const check_case *c, const uint16_t *d_cache, const char *name, const char *what) {
    const head_shape *s = c->s;
    size_t n = (size_t)s->hkv * c->max_seq * s->hd;
    uint16_t *h = malloc(n * 2);
    if (!h) return -1;
    CK(cudaMemcpy(h, d_cache, n * 2, cudaMemcpyDeviceToHost));
    long bad = 0;
    for (int kh = 0; kh < s->hkv; kh++)
        for (size_t i = 0; i < (size_t)c->context * s->hd; i++) {
            uint16_t b = h[(size_t)kh * c->max_seq * s->hd + i];
            if ((b & 0x7f80u) == 0x7f80u) {
                if (!bad)
                    printf("DIAG %s: %s cache non-finite 0x%04x at kv head %d row %zu dim %zu (inside the context)\n",
                           what, name, b, kh, i / s->hd, i % s->hd);
                bad++;
            }
        }
    free(h);
    return bad;
}

/* After a failed launch, what the next run needs to tell the cause at once: *pos as the kernels see it, which heads /
 * dims are bad and their raw bits (0xffff: the poison, i.e. never written or overwritten after the write), the
 * partial (m, l) and o of the first bad head per split among those the merge reads, the caches inside the context,
 * and whether the same launch fails again after a full device synchronisation (no: a race / stale memory). */
static void diagnose(check_case *c, int variant, int chunk, int len_cap, const char *what) {
    static int n_diagnosed = 0;
    if (++n_diagnosed > 4) {
        if (n_diagnosed == 5) printf("DIAG (no more diagnoses: 4 shown)\n");
        return;
    }
    const head_shape *s = c->s;
    int hq = s->hq, hd = s->hd, T = c->context;
    int n_splits = (len_cap + chunk - 1) / chunk, active = (T + chunk - 1) / chunk;
    if (active > n_splits) active = n_splits;
    int pos = -2;
    CK(cudaMemcpy(&pos, c->d_pos, sizeof pos, cudaMemcpyDeviceToHost));
    int bad_heads = 0, bad_values = 0, first_head = -1, worst = 0;
    double worst_err = -1;
    char heads[160] = "";
    for (int h = 0; h < hq; h++) {
        int n_bad, first_bad;
        double e = head_error(c, h, &n_bad, &first_bad);
        if (n_bad) {
            if (first_head < 0) first_head = h;
            bad_heads++;
            bad_values += n_bad;
            size_t used = strlen(heads);
            if (used < sizeof heads - 16) snprintf(heads + used, sizeof heads - used, " %d:%d", h, n_bad);
        } else if (e > worst_err) {
            worst_err = e;
            worst = h;
        }
    }
    printf("DIAG %s: *pos=%d (want %d), splits %d, merged %d; non-finite %d of %d values in %d of %d heads "
           "(head:count%s); worst finite head %d rel err %.3g\n",
           what, pos, T - 1, n_splits, active, bad_values, hq * hd, bad_heads, hq, heads[0] ? heads : " none",
           worst, worst_err);
    int h = first_head >= 0 ? first_head : worst;
    if (first_head >= 0) {
        int n_bad, first_bad;
        head_error(c, h, &n_bad, &first_bad);
        printf("DIAG %s: head %d first bad dim %d raw 0x%04x (0xffff = the output poison: not written, or poisoned "
               "after the write)\n", what, h, first_bad, c->ob[(size_t)h * hd + first_bad]);
    }
    size_t ml_n = c->pml_bytes / 4, o_n = c->po_bytes / 4;
    float *ml = malloc(ml_n * 4), *po = malloc(o_n * 4);
    if (ml && po) {
        CK(cudaMemcpy(ml, c->d_pml, c->pml_bytes, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(po, c->d_po, c->po_bytes, cudaMemcpyDeviceToHost));
        int bad_m = 0, bad_l = 0, zero_l = 0, bad_o = 0, first_m = -1, first_l = -1, first_o = -1, first_o_dim = -1;
        float m_max = -INFINITY;
        for (int sp = 0; sp < active; sp++) {
            float m = ml[((size_t)h * n_splits + sp) * 2], l = ml[((size_t)h * n_splits + sp) * 2 + 1];
            if (!isfinite(m)) { bad_m++; if (first_m < 0) first_m = sp; } else if (m > m_max) m_max = m;
            if (!isfinite(l)) { bad_l++; if (first_l < 0) first_l = sp; } else if (l <= 0) zero_l++;
            for (int d = 0; d < hd; d++)
                if (!isfinite(po[((size_t)h * n_splits + sp) * hd + d])) {
                    bad_o++;
                    if (first_o < 0) { first_o = sp; first_o_dim = d; }
                    break;
                }
        }
        uint32_t mbits = 0, lbits = 0;
        if (first_m >= 0) memcpy(&mbits, &ml[((size_t)h * n_splits + first_m) * 2], 4);
        if (first_l >= 0) memcpy(&lbits, &ml[((size_t)h * n_splits + first_l) * 2 + 1], 4);
        printf("DIAG %s: head %d partials of the %d merged splits: m non-finite in %d (first split %d 0x%08x), "
               "l non-finite in %d (first %d 0x%08x), l <= 0 in %d, o non-finite in %d (first split %d dim %d); "
               "max m %g (0xffffffff = the partial poison: split not run or poisoned after its write)\n",
               what, h, active, bad_m, first_m, mbits, bad_l, first_l, lbits, zero_l, bad_o, first_o, first_o_dim,
               m_max);
    }
    free(ml);
    free(po);
    if (n_diagnosed <= 2) {
        long bk = scan_cache(c, c->d_k, "K", what), bv = scan_cache(c, c->d_v, "V", what);
        printf("DIAG %s: non-finite cache values inside the context: K %ld, V %ld\n", what, bk, bv);
    }
    CK(cudaDeviceSynchronize());
    if (launch_and_read(c, variant, chunk, len_cap, what) == 0) {
        int n_bad_total = 0;
        double e_max = 0;
        for (int hh = 0; hh < hq; hh++) {
            int n_bad, first_bad;
            double e = head_error(c, hh, &n_bad, &first_bad);
            n_bad_total += n_bad;
            if (!n_bad && e > e_max) e_max = e;
        }
        printf("DIAG %s: relaunched after a device sync: %d non-finite values, worst finite head rel err %.3g (%s)\n",
               what, n_bad_total, e_max, n_bad_total || e_max > TOLERANCE ? "reproduces" : "now ok: a race or stale memory");
    }
}

/* One launch: poison partials and output, run, compare; returns 1 on success. */
static int run_one(check_case *c, int variant, int chunk, int len_cap) {
    const head_shape *s = c->s;
    char what[224];
    snprintf(what, sizeof what, "attention_decode[%s] %s hq=%d hkv=%d hd=%d context=%d max_seq=%d chunk=%d len_cap=%d",
             VARIANTS[variant].name, s->name, s->hq, s->hkv, s->hd, c->context, c->max_seq, chunk,
             len_cap);
    if (launch_and_read(c, variant, chunk, len_cap, what) != 0) {
        g_failures++;
        return 0;
    }
    int before = g_failures;
    int close = check_close(what, c->got, c->ref, (size_t)s->hq * s->hd, TOLERANCE);
    dev_guard_ok(c->d_o, c->o_bytes, what);
    dev_guard_ok(c->d_po, c->po_bytes, what);
    dev_guard_ok(c->d_pml, c->pml_bytes, what);
    if (!close) diagnose(c, variant, chunk, len_cap, what);
    return g_failures == before;
}

/* All runs of one (shape, context); returns the number of launches checked. */
static int check_shape_context(const head_shape *s, int context, float q_scale) {
    check_case c = {0};
    c.s = s;
    c.context = context;
    c.max_seq = context + 1 + (context % 97) + (context > 4096 ? 2048 : 40); /* always beyond the context */
    int hq = s->hq, hkv = s->hkv, hd = s->hd, T = context;
    size_t cache_n = (size_t)hkv * c.max_seq * hd, qn = (size_t)hq * hd;
    uint16_t *kc = malloc(cache_n * 2), *vc = malloc(cache_n * 2), *q = malloc(qn * 2);
    float *kr = malloc((size_t)T * hkv * hd * 4), *vr = malloc((size_t)T * hkv * hd * 4), *qf = malloc(qn * 4);
    c.ref = malloc(qn * 4);
    c.got = malloc(qn * 4);
    c.ob = malloc(qn * 2);
    if (!kc || !vc || !q || !kr || !vr || !qf || !c.ref || !c.got || !c.ob) {
        fprintf(stderr, "FATAL: host memory for context %d\n", context);
        exit(1);
    }
    fill_bf16(q, qn, q_scale);
    for (int h = 0; h < hkv; h++) {
        size_t row0 = (size_t)h * c.max_seq * hd;
        fill_fast(kc + row0, (size_t)T * hd, 2.f);
        fill_fast(vc + row0, (size_t)T * hd, 1.f);
        for (size_t i = (size_t)T * hd; i < (size_t)c.max_seq * hd; i++) kc[row0 + i] = vc[row0 + i] = BF16_NAN;
        for (int t = 0; t < T; t++)
            for (int d = 0; d < hd; d++) {
                kr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(kc[row0 + (size_t)t * hd + d]);
                vr[((size_t)t * hkv + h) * hd + d] = qb_bf16_to_float(vc[row0 + (size_t)t * hd + d]);
            }
    }
    bf16_to_f32(q, qn, qf);
    qb_ref_attention(qf, kr, vr, 1, T - 1, hq, hkv, hd, c.ref, g_threads);
    free(kr);
    free(vr);
    free(qf);

    c.d_k = dev_upload(kc, cache_n * 2);
    c.d_v = dev_upload(vc, cache_n * 2);
    c.d_q = dev_upload(q, qn * 2);
    c.o_bytes = qn * 2;
    c.d_o = dev_alloc_guarded(c.o_bytes);
    c.po_bytes = qb_attention_decode_workspace_floats(hq, hd, c.max_seq) * 4;
    c.pml_bytes = (size_t)hq * ((c.max_seq + 63) / 64) * 2 * 4; /* as src/cuda/cuda_memory.c */
    c.d_po = dev_alloc_guarded(c.po_bytes);
    c.d_pml = dev_alloc_guarded(c.pml_bytes);
    int pos = T - 1;
    c.d_pos = dev_upload(&pos, sizeof pos);
    /* cudaMemcpy from pageable memory may return before its DMA lands, and the guards' cudaMemset is asynchronous:
     * both run on the legacy stream, which the kernels' non-blocking g_stream does not wait for */
    CK(cudaDeviceSynchronize());
    free(kc);
    free(vc);
    free(q);

    int chunk = engine_chunk(s, T), cap = engine_len_cap(s, T, c.max_seq), runs = 0;
    int passed[N_VARIANTS], tried[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++) {
        int vi = v;
        passed[vi] = tried[vi] = 0;
        passed[vi] += run_one(&c, v, chunk, cap);
        passed[vi] += run_one(&c, v, chunk, c.max_seq);
        tried[vi] += 2;
        for (int i = 0; i < N_CHUNKS; i++) { /* every chunk where cheap, the extremes at long contexts */
            int other = 64 << i;
            if (other == chunk || (T > 4097 && i != 0 && i != N_CHUNKS - 1)) continue;
            passed[vi] += run_one(&c, v, other, T + (i % 2) * (c.max_seq - T)); /* tight grid and whole-cache grid */
            tried[vi]++;
        }
    }
    for (int vi = 0; vi < N_VARIANTS; vi++) runs += tried[vi];
    if (T >= 131072 && hkv == 8) { /* the shapes that failed at 074ce18 (a harness race, see launch_and_read) */
        printf("# check %s hq=%d hkv=%d context %d (engine chunk %d, len_cap %d):", s->name, hq, hkv, T, chunk, cap);
        for (int vi = 0; vi < N_VARIANTS; vi++) printf(" %s %d/%d ok", VARIANTS[vi].name, passed[vi], tried[vi]);
        printf("\n");
    }
    cudaFree(c.d_k); cudaFree(c.d_v); cudaFree(c.d_q); cudaFree(c.d_o); cudaFree(c.d_po); cudaFree(c.d_pml);
    cudaFree(c.d_pos);
    free(c.ref); free(c.got); free(c.ob);
    return runs;
}

static int run_check(int quick) {
    int n_shapes = quick ? 3 : N_SHAPES, n_ctx = quick ? 7 : N_CONTEXTS, runs = 0;
    for (int ci = 0; ci < n_ctx; ci++) {
        int before = g_failures, ctx_runs = 0;
        for (int si = 0; si < n_shapes; si++)
            ctx_runs += check_shape_context(&SHAPES[si], CONTEXTS[ci], (si + ci) % 2 ? 6.f : 2.f);
        runs += ctx_runs;
        printf("# check context %6d: %3d launches over %d head shapes, %s\n", CONTEXTS[ci], ctx_runs, n_shapes,
               g_failures == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    printf("# check: %d launches, %d failures (tolerance %.0e relative L2)\n", runs, g_failures, TOLERANCE);
    return g_failures == 0;
}

/* ---- bench ---- */
#define MIN_REPS 32 /* launches a graph; more where the caches are small, so a graph reads >= ROTATE_BYTES */
#define ROUNDS 7
#define POOL_BYTES ((size_t)1536 << 20)
#define ROTATE_BYTES ((size_t)512 << 20)

typedef struct {
    uint16_t *pool, *q, *o;
    float *po, *pml;
    int *pos;
    int layers, reps, max_seq, hq, hkv, hd, chunk, variant;
    size_t layer_elems; /* one layer's K then V */
} bench_ctx;

static int bench_launch(void *ctx, int i) {
    const bench_ctx *b = ctx;
    uint16_t *k = b->pool + (size_t)(i % b->layers) * b->layer_elems, *v = k + b->layer_elems / 2;
    return VARIANTS[b->variant].launch(b->q, k, v, b->max_seq, b->max_seq, b->pos, b->hq, b->hkv, b->hd, b->chunk,
                                       b->po, b->pml, b->o, g_stream);
}

static double time_graph(bench_ctx *b) {
    return qb_bench_graph_seconds(g_stream, bench_launch, b, b->reps, ROUNDS);
}

static void bench_shape(const head_shape *s, uint16_t *pool, const int *contexts, int n_ctx) {
    bench_ctx b = {0};
    b.pool = pool;
    b.hq = s->hq; b.hkv = s->hkv; b.hd = s->hd;
    int longest = contexts[n_ctx - 1];
    size_t qn = (size_t)s->hq * s->hd;
    CK(cudaMalloc((void **)&b.q, qn * 2));
    dev_set_bytes(b.q, 0x3c, qn * 2);
    CK(cudaMalloc((void **)&b.o, qn * 2));
    CK(cudaMalloc((void **)&b.po, qb_attention_decode_workspace_floats(s->hq, s->hd, longest) * 4));
    CK(cudaMalloc((void **)&b.pml, (size_t)s->hq * ((longest + 63) / 64) * 8));
    CK(cudaMalloc((void **)&b.pos, 4));
    for (int ci = 0; ci < n_ctx; ci++) {
        int ctx = contexts[ci], pos = ctx - 1;
        b.max_seq = ctx;
        b.layer_elems = 2 * (size_t)s->hkv * ctx * s->hd;
        size_t layer_bytes = b.layer_elems * 2;
        b.layers = (int)((ROTATE_BYTES + layer_bytes - 1) / layer_bytes);
        if (b.layers < 2) b.layers = 2;
        b.reps = b.layers > MIN_REPS ? b.layers : MIN_REPS;
        if ((size_t)b.layers * layer_bytes > POOL_BYTES) {
            printf("# %s context %d: cache %zu MB does not fit the pool twice, skipped\n", s->name, ctx,
                   layer_bytes >> 20);
            continue;
        }
        h2d(b.pos, &pos, 4);
        CK(cudaDeviceSynchronize()); /* legacy-stream copies / memsets done before g_stream reads them */
        double kv_bytes = (double)layer_bytes;
        int chunk = engine_chunk(s, ctx);
        double t_chunk[N_CHUNKS];
        b.variant = VARIANT_MMA;
        for (int i = 0; i < N_CHUNKS; i++) {
            b.chunk = 64 << i;
            t_chunk[i] = time_graph(&b);
        }
        double t_new = t_chunk[__builtin_ctz((unsigned)chunk) - 6];
        printf("%-11s ctx %6d |", s->name, ctx);
        if (N_VARIANTS > VARIANT_OLD) { /* the lab: the old kernel at its own chunk policy */
            b.variant = VARIANT_OLD;
            b.chunk = chunk_for_blocks(s, ctx, 2 * 132);
            double t_old = time_graph(&b);
            printf(" old c%-4d %7.1f us %5.0f GB/s | x%4.1f |", b.chunk, t_old * 1e6, kv_bytes / t_old / 1e9,
                   t_old / t_new);
        }
        printf(" mma c%-4d %7.1f us %5.0f GB/s | by chunk", chunk, t_new * 1e6, kv_bytes / t_new / 1e9);
        int best = 0;
        for (int i = 0; i < N_CHUNKS; i++) {
            printf(" %d:%.0f", 64 << i, kv_bytes / t_chunk[i] / 1e9);
            if (t_chunk[i] < t_chunk[best]) best = i;
        }
        printf(" best %d\n", 64 << best);
        fflush(stdout);
    }
    cudaFree(b.q); cudaFree(b.o); cudaFree(b.po); cudaFree(b.pml); cudaFree(b.pos);
}

static void run_bench(int quick) {
    uint16_t *pool;
    CK(cudaMalloc((void **)&pool, POOL_BYTES));
    dev_set_bytes(pool, 0x3c, POOL_BYTES); /* finite bf16 (0.0115); timing does not depend on values */
    CK(cudaDeviceSynchronize());
    static const int main_contexts[] = {1024, 4096, 16384, 30720, 32768, 65536, 129024, 131072};
    static const int other_contexts[] = {4096, 32768, 129024, 131072};
    static const int quick_contexts[] = {1024, 32768};
    printf("# KV read bandwidth (K + V bytes / time, split + combine kernels; old at the old chunk policy, mma at "
           "the engine's), median of %d graphs of >= %d launches reading >= %zu MiB\n", ROUNDS, MIN_REPS,
           ROTATE_BYTES >> 20);
    if (quick) {
        bench_shape(&SHAPES[2], pool, quick_contexts, 2);
    } else {
        bench_shape(&SHAPES[2], pool, main_contexts, (int)(sizeof main_contexts / sizeof main_contexts[0]));
        static const int others[] = {0, 5, 8};
        for (int i = 0; i < 3; i++)
            bench_shape(&SHAPES[others[i]], pool, other_contexts,
                        (int)(sizeof other_contexts / sizeof other_contexts[0]));
    }
    cudaFree(pool);
}

int main(int argc, char **argv) {
    int check = 0, bench = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) check = 1;
        else if (strcmp(argv[i], "--bench") == 0) bench = 1;
        else if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else {
            fprintf(stderr, "usage: %s [--check] [--bench] [--quick]: unknown argument '%s'\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (!check && !bench) check = 1;
#ifdef QB_LAB
    qb_lab_skip_without_gpu();
#endif
    qb_test_skip_without_gpu();
    CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    struct cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("# %s, %d SMs; split kernels:", prop.name, prop.multiProcessorCount);
    for (int vi = 0; vi < N_VARIANTS; vi++)
        printf(" %s%s", VARIANTS[vi].name, vi == VARIANT_MMA ? " (product)" : " (lab)");
    printf("\n");
    int ok = 1;
    if (check) ok = run_check(quick);
    if (bench) run_bench(quick);
    CK(cudaStreamDestroy(g_stream));
    if (!ok) printf("FAILED: %d checks\n", g_failures);
    return ok ? 0 : 1;
}
