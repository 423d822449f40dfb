/* test_decode_fusion_quant.c - the fused decode GEMVs on GPTQ / AWQ weights (kernels/linear/gemv_quant_fused.cuh, used by
 * cuda_forward.c for quantized models) against the unfused kernel sequence they replace, which the other quantized
 * tests check against the CPU reference:
 *   q|k|v + bias + RoPE + KV append  vs  add_rmsnorm, gemv_quant, qkv_rope (input x or the normalised residual);
 *   gate|up + SiLU * up              vs  add_rmsnorm, gemv_quant, silu_mul (both inputs);
 *   store                            vs  gemv_quant;
 *   residual add                     vs  gemv_quant, then resid += bf16(y) on the host.
 * Each with the weights in the row layout and in the tiled one (quant_tile.cuh; whose prefill dequantization must
 * equal the rows' bit for bit). 4 and 8 bits, group 128, GPTQ and AWQ zero-point rules, on real Qwen2.5 shapes
 * (TP1 and TP slices) and small ones; every stage count (2, 3, 4) and a grid of one block per SM (several tiles
 * per block: the ring crossing from one tile to the next) on the small shapes, the default and one block per SM on
 * the real ones; each case launched twice (a launch must leave nothing behind that changes the next). Tolerance:
 * relative L2 error 1e-2 (fp32 sums in another order, bf16-rounded outputs); NaN fails; sentinels after every
 * output; cache rows other than the position untouched.
 * Tensor-parallel residual exchange (tp_exchange.cuh) with one rank: o_proj pushed into an exchange point, then
 * gate|up + SiLU normalising resid + the pushed sums, must equal bit for bit o_proj adding into the residual then
 * gate|up normalising it (the one-GPU fusion: the same sums, rounded the same way), in both layouts; the consumer
 * refills the other point with the sentinel. Multi-rank exchanges: test_tp_exchange (bf16 kernels, same code).
 * Timing (--bench): each fused kernel (row and tiled layouts) vs its unfused sequence in a CUDA graph (7B 4 and
 * 8 bits, 72B/TP2 4 bits).
 *   test_decode_fusion_quant [--quick] [--bench]      exits 77 without a GPU, 1 on any failure
 */
#include <stdbool.h>

#include "test_cuda_bench.h"
#include "test_cuda_util.h"

#include "add_rmsnorm.cuh"
#include "gemv_quant.cuh"
#include "gemv_quant_fused.cuh"
#include "qkv_rope.cuh"
#include "quant_tile.cuh"
#include "random_fill_quant.cuh"
#include "silu_mul.cuh"

#define MAX_SEQ 8
#define POS 5
#define EPS 1e-6f
#define GROUP 128

typedef struct {
    const char *name;
    int H, I, hq, hkv, hd; /* this rank's slice: I and heads already divided */
} shape;

/* Random packed weights (n, k) on the device; *w gets the pointers. */
static void make_qweights(int n, int k, int bits, int awq, uint64_t id, qb_gemv_qweights *w) {
    size_t qw_bytes = (size_t)n * k * bits / 8, sz_bytes = (size_t)n * (k / GROUP) * 4;
    uint32_t *qw = dev_alloc_guarded(qw_bytes), *sz = dev_alloc_guarded(sz_bytes);
    LAUNCH(qb_launch_random_fill_qmat(qw, sz, n, k, bits, GROUP, awq, n, 0, 0, 11, id, id + 1, id + 2, 0));
    CK(cudaDeviceSynchronize());
    memset(w, 0, sizeof *w);
    w->qweight = qw;
    w->sz = sz;
    w->bits = bits;
    w->group_size = GROUP;
}

static void free_qweights(qb_gemv_qweights *w) {
    cudaFree((void *)w->qweight);
    cudaFree((void *)w->sz);
}

/* The tiled copy of row-layout weights (quant_tile.cuh), checked on the way: its prefill dequantization equals the
 * row layout's bit for bit. */
static void make_tiled(const qb_gemv_qweights *rows, int n, int k, int kind, int hd, int inter, const char *what,
                       qb_gemv_qweights *tiled, int check) {
    size_t qw_bytes = (size_t)n * k * rows->bits / 8, sz_bytes = (size_t)n * (k / GROUP) * 4;
    uint32_t *qw = dev_alloc_guarded(qw_bytes), *sz = dev_alloc_guarded(sz_bytes);
    LAUNCH(qb_launch_quant_tile(rows->qweight, rows->sz, n, k, rows->bits, GROUP, kind, hd, inter, qw, sz, 0));
    *tiled = *rows;
    tiled->qweight = qw;
    tiled->sz = sz;
    tiled->tiled = 1;
    tiled->kind = kind;
    tiled->hd = hd;
    tiled->inter = inter;
    if (!check) return;
    size_t wbytes = (size_t)n * k * 2;
    uint16_t *a = dev_alloc_guarded(wbytes), *b = dev_alloc_guarded(wbytes);
    LAUNCH(qb_launch_dequant_quant_bf16(rows->qweight, rows->sz, n, k, rows->bits, GROUP, a, 0));
    LAUNCH(qb_launch_dequant_quant_tiled_bf16(qw, sz, n, k, rows->bits, GROUP, kind, hd, inter, b, 0));
    CK(cudaDeviceSynchronize());
    dev_guard_ok(qw, qw_bytes, what);
    dev_guard_ok(sz, sz_bytes, what);
    dev_guard_ok(b, wbytes, what);
    uint16_t *ha = malloc(wbytes), *hb = malloc(wbytes);
    CK(cudaMemcpy(ha, a, wbytes, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hb, b, wbytes, cudaMemcpyDeviceToHost));
    if (memcmp(ha, hb, wbytes) != 0) {
        printf("FAIL %s: dequantization from tiles differs from the rows' (kind %d, N=%d K=%d)\n", what, kind, n, k);
        g_failures++;
    }
    free(ha);
    free(hb);
    cudaFree(a);
    cudaFree(b);
}

static float *download_bf16(const uint16_t *d, size_t n) {
    uint16_t *h = malloc(n * 2);
    float *f = malloc(n * 4);
    CK(cudaMemcpy(h, d, n * 2, cudaMemcpyDeviceToHost));
    bf16_to_f32(h, n, f);
    free(h);
    return f;
}

static float *download_f32(const float *d, size_t n) {
    float *f = malloc(n * 4);
    CK(cudaMemcpy(f, d, n * 4, cudaMemcpyDeviceToHost));
    return f;
}

/* x = bf16(rmsnorm(resid) * nw) by the unfused kernel (on a copy of the residual: add_rmsnorm writes it back) */
static void norm_unfused(const float *d_resid, const float *d_nw, int H, uint16_t *d_x) {
    float *tmp = dev_alloc_guarded((size_t)H * 4);
    CK(cudaMemcpy(tmp, d_resid, (size_t)H * 4, cudaMemcpyDeviceToDevice));
    LAUNCH(qb_launch_add_rmsnorm(tmp, NULL, d_nw, 1, H, EPS, d_x, 0));
    CK(cudaDeviceSynchronize());
    cudaFree(tmp);
}

/* The plain store on weights tiled by pairs (a one-row prefill chunk reads q|k|v and gate|up so): every row where it
 * belongs, against the unfused GEMV's output d_ref. */
static void check_tiled_store(const char *shape_name, const char *what, const qb_gemv_qweights *w, int n, int k,
                              const uint16_t *d_x, const uint16_t *d_ref) {
    char label[160];
    snprintf(label, sizeof label, "quant store %s %s %d-bit tiled kind %d", shape_name, what, w->bits, w->kind);
    uint16_t *d_y = dev_alloc_guarded((size_t)n * 2);
    qb_gemv_input in = {.x = d_x};
    LAUNCH(qb_launch_gemv_quant_fused_store(w, n, k, &in, d_y, 0));
    CK(cudaDeviceSynchronize());
    dev_guard_ok(d_y, (size_t)n * 2, label);
    float *got = download_bf16(d_y, n), *ref = download_bf16(d_ref, n);
    check_close(label, got, ref, n, 1e-2);
    free(got);
    free(ref);
    cudaFree(d_y);
}

typedef struct {
    int stages, bps;
} tuning;

static const tuning all_tunings[] = {{0, 0}, {2, 0}, {3, 0}, {4, 0}, {0, 1}, {2, 1}};
static const tuning default_tuning[] = {{0, 0}, {0, 1}};

static void set_tuning(const tuning *t) {
    qb_gemv_quant_fused_tuning(t->stages, t->bps);
}

static void reset_tuning(void) {
    qb_gemv_quant_fused_tuning(0, 0);
}

static void test_qkv(const shape *s, int bits, int awq, const tuning *tu, int n_tu, const float *d_resid,
                     const float *d_nw, const uint16_t *d_xn) {
    int H = s->H, hd = s->hd, half = hd / 2, nh = s->hq + 2 * s->hkv, n = nh * hd;
    qb_gemv_qweights w_rows, w_tiles[1], w;
    make_qweights(n, H, bits, awq, 1000, &w_rows);
    make_tiled(&w_rows, n, H, QB_TILE_ROPE, hd, 0, s->name, &w_tiles[0], 1);
    w = w_rows;
    float *bias = malloc((size_t)n * 4), *cs = malloc(MAX_SEQ * half * 4), *sn = malloc(MAX_SEQ * half * 4);
    for (int i = 0; i < n; i++) bias[i] = rnd_uniform(-0.5f, 0.5f);
    for (int i = 0; i < MAX_SEQ * half; i++) {
        float a = rnd_uniform(-3.14f, 3.14f);
        cs[i] = cosf(a);
        sn[i] = sinf(a);
    }
    float *d_bias = dev_upload(bias, (size_t)n * 4), *d_cs = dev_upload(cs, MAX_SEQ * half * 4),
          *d_sn = dev_upload(sn, MAX_SEQ * half * 4);
    int pos = POS, *d_pos = dev_upload(&pos, sizeof pos);
    size_t qn = (size_t)s->hq * hd, cn = (size_t)s->hkv * MAX_SEQ * hd;
    uint16_t *d_big = dev_alloc_guarded((size_t)n * 2);
    uint16_t *rq = dev_alloc_guarded(qn * 2), *rk = dev_alloc_guarded(cn * 2), *rv = dev_alloc_guarded(cn * 2);
    uint16_t *fq = dev_alloc_guarded(qn * 2), *fk = dev_alloc_guarded(cn * 2), *fv = dev_alloc_guarded(cn * 2);
    /* the unfused reference */
    dev_set_bytes(rk, 0, cn * 2);
    dev_set_bytes(rv, 0, cn * 2);
    LAUNCH(qb_launch_gemv_quant(w_rows.qweight, w_rows.sz, d_xn, n, H, bits, GROUP, d_big, NULL, 0));
    LAUNCH(qb_launch_qkv_rope(d_big, d_bias, 1, s->hq, s->hkv, hd, d_pos, d_cs, d_sn, rq, rk, rv, MAX_SEQ, 0));
    CK(cudaDeviceSynchronize());
    float *ref_q = download_bf16(rq, qn), *ref_k = download_bf16(rk, cn), *ref_v = download_bf16(rv, cn);
    check_tiled_store(s->name, "q|k|v", &w_tiles[0], n, H, d_xn, d_big); /* the one-row prefill on tiled weights */
    for (int layout = 0; layout < 2; layout++)
    for (int mode = 0; mode < 2; mode++)
        for (int ti = 0; ti < n_tu; ti++) {
            char what[200];
            w = layout ? w_tiles[0] : w_rows;
            snprintf(what, sizeof what, "quant qkv_rope %s %d-bit%s %s input=%s stages=%d bps=%d", s->name,
                     bits, awq ? " awq" : "", layout ? "tiled" : "rows", mode ? "norm" : "x", tu[ti].stages,
                     tu[ti].bps);
            dev_set_bytes(fk, QB_SENTINEL_BYTE, cn * 2);
            dev_set_bytes(fv, QB_SENTINEL_BYTE, cn * 2);
            set_tuning(&tu[ti]);
            qb_gemv_input in = {.x = mode ? NULL : d_xn, .resid = d_resid, .norm_w = d_nw, .eps = EPS};
            for (int twice = 0; twice < 2; twice++)
                LAUNCH(qb_launch_gemv_quant_qkv_rope(&w, H, &in, d_bias, s->hq, s->hkv, hd, d_pos, d_cs, d_sn, fq, fk,
                                                     fv, MAX_SEQ, 0));
            reset_tuning();
            CK(cudaDeviceSynchronize());
            dev_guard_ok(fq, qn * 2, what);
            dev_guard_ok(fk, cn * 2, what);
            dev_guard_ok(fv, cn * 2, what);
            float *got_q = download_bf16(fq, qn);
            int ok = check_close(what, got_q, ref_q, qn, 1e-2);
            free(got_q);
            for (int c = 0; c < 2 && ok; c++) {
                uint16_t *hc = malloc(cn * 2);
                CK(cudaMemcpy(hc, c ? fv : fk, cn * 2, cudaMemcpyDeviceToHost));
                const float *ref = c ? ref_v : ref_k;
                float *got_row = malloc((size_t)s->hkv * hd * 4), *ref_row = malloc((size_t)s->hkv * hd * 4);
                for (int h = 0; h < s->hkv; h++)
                    for (int t = 0; t < MAX_SEQ; t++)
                        for (int d = 0; d < hd; d++) {
                            size_t at = ((size_t)h * MAX_SEQ + t) * hd + d;
                            if (t == POS) {
                                got_row[h * hd + d] = qb_bf16_to_float(hc[at]);
                                ref_row[h * hd + d] = ref[at];
                            } else if (hc[at] != 0xA5A5 && ok) {
                                printf("FAIL %s: %s cache head %d position %d written (not the position)\n", what,
                                       c ? "v" : "k", h, t);
                                g_failures++;
                                ok = 0;
                            }
                        }
                if (ok) ok = check_close(what, got_row, ref_row, (size_t)s->hkv * hd, 1e-2);
                free(hc);
                free(got_row);
                free(ref_row);
            }
        }
    free_qweights(&w_rows);
    free_qweights(&w_tiles[0]);
    cudaFree(d_bias); cudaFree(d_cs); cudaFree(d_sn); cudaFree(d_pos); cudaFree(d_big);
    cudaFree(rq); cudaFree(rk); cudaFree(rv); cudaFree(fq); cudaFree(fk); cudaFree(fv);
    free(bias); free(cs); free(sn); free(ref_q); free(ref_k); free(ref_v);
}

static void test_gate_up(const shape *s, int bits, int awq, const tuning *tu, int n_tu, const float *d_resid,
                         const float *d_nw, const uint16_t *d_xn) {
    int H = s->H, I = s->I;
    qb_gemv_qweights w_rows, w_tiled, w;
    make_qweights(2 * I, H, bits, awq, 2000, &w_rows);
    make_tiled(&w_rows, 2 * I, H, QB_TILE_SILU, 0, I, s->name, &w_tiled, 1);
    w = w_rows;
    uint16_t *d_big = dev_alloc_guarded((size_t)2 * I * 2), *r_act = dev_alloc_guarded((size_t)I * 2),
             *f_act = dev_alloc_guarded((size_t)I * 2);
    LAUNCH(qb_launch_gemv_quant(w.qweight, w.sz, d_xn, 2 * I, H, bits, GROUP, d_big, NULL, 0));
    LAUNCH(qb_launch_silu_mul(d_big, 1, I, r_act, 0));
    CK(cudaDeviceSynchronize());
    check_tiled_store(s->name, "gate|up", &w_tiled, 2 * I, H, d_xn, d_big);
    float *ref = download_bf16(r_act, I);
    for (int layout = 0; layout < 2; layout++)
    for (int mode = 0; mode < 2; mode++)
        for (int ti = 0; ti < n_tu; ti++) {
            char what[200];
            w = layout ? w_tiled : w_rows;
            snprintf(what, sizeof what, "quant gate_up_silu %s %d-bit%s %s input=%s stages=%d bps=%d", s->name,
                     bits, awq ? " awq" : "", layout ? "tiled" : "rows", mode ? "norm" : "x", tu[ti].stages,
                     tu[ti].bps);
            set_tuning(&tu[ti]);
            qb_gemv_input in = {.x = mode ? NULL : d_xn, .resid = d_resid, .norm_w = d_nw, .eps = EPS};
            for (int twice = 0; twice < 2; twice++) LAUNCH(qb_launch_gemv_quant_gate_up_silu(&w, I, H, &in, f_act, 0));
            reset_tuning();
            CK(cudaDeviceSynchronize());
            dev_guard_ok(f_act, (size_t)I * 2, what);
            float *got = download_bf16(f_act, I);
            check_close(what, got, ref, I, 1e-2);
            free(got);
        }
    free_qweights(&w_rows);
    free_qweights(&w_tiled);
    cudaFree(d_big); cudaFree(r_act); cudaFree(f_act);
    free(ref);
}

/* o_proj-like (n = H, k = hq hd) stored, and down_proj-like (n = H, k = I) added to the residual. */
static void test_store_resid(const shape *s, int bits, int awq, const tuning *tu, int n_tu, int resid_add) {
    int n = s->H, k = resid_add ? s->I : s->hq * s->hd;
    qb_gemv_qweights w_rows, w_tiled, w;
    make_qweights(n, k, bits, awq, resid_add ? 4000 : 3000, &w_rows);
    make_tiled(&w_rows, n, k, QB_TILE_ROWS, 0, 0, s->name, &w_tiled, 1);
    w = w_rows;
    uint16_t *hx = malloc((size_t)k * 2);
    fill_bf16(hx, k, 1.f);
    uint16_t *d_x = dev_upload(hx, (size_t)k * 2), *r_y = dev_alloc_guarded((size_t)n * 2),
             *f_y = dev_alloc_guarded((size_t)n * 2);
    float *resid0 = malloc((size_t)n * 4);
    for (int i = 0; i < n; i++) resid0[i] = rnd_uniform(-2.f, 2.f);
    float *d_res = dev_alloc_guarded((size_t)n * 4);
    LAUNCH(qb_launch_gemv_quant(w.qweight, w.sz, d_x, n, k, bits, GROUP, r_y, NULL, 0));
    CK(cudaDeviceSynchronize());
    float *ref = download_bf16(r_y, n);
    if (resid_add)
        for (int i = 0; i < n; i++) ref[i] += resid0[i];
    for (int layout = 0; layout < 2; layout++)
    for (int ti = 0; ti < n_tu; ti++) {
        char what[200];
        w = layout ? w_tiled : w_rows;
        snprintf(what, sizeof what, "quant %s %s %d-bit%s %s N=%d K=%d stages=%d bps=%d",
                 resid_add ? "resid_add" : "store", s->name, bits, awq ? " awq" : "", layout ? "tiled" : "rows", n, k,
                 tu[ti].stages, tu[ti].bps);
        set_tuning(&tu[ti]);
        qb_gemv_input in = {.x = d_x};
        float *got;
        if (resid_add) {
            for (int twice = 0; twice < 2; twice++) {
                h2d(d_res, resid0, (size_t)n * 4);
                LAUNCH(qb_launch_gemv_quant_resid_add(&w, n, k, &in, d_res, 0));
            }
            CK(cudaDeviceSynchronize());
            dev_guard_ok(d_res, (size_t)n * 4, what);
            got = download_f32(d_res, n);
        } else {
            for (int twice = 0; twice < 2; twice++) LAUNCH(qb_launch_gemv_quant_fused_store(&w, n, k, &in, f_y, 0));
            CK(cudaDeviceSynchronize());
            dev_guard_ok(f_y, (size_t)n * 2, what);
            got = download_bf16(f_y, n);
        }
        reset_tuning();
        check_close(what, got, ref, n, 1e-2);
        free(got);
    }
    free_qweights(&w_rows);
    free_qweights(&w_tiled);
    cudaFree(d_x); cudaFree(r_y); cudaFree(f_y); cudaFree(d_res);
    free(hx); free(resid0); free(ref);
}

/* One rank's exchange (2 points) against the one-GPU residual fusion, bit for bit (see the file comment). */
static void test_exchange_one_rank(const shape *s, int bits, int awq) {
    int H = s->H, I = s->I, k_o = s->hq * s->hd;
    size_t slot = ((size_t)H * 4 + 255) & ~(size_t)255, bytes = 2 * slot;
    char *region = NULL;
    int *err = NULL;
    CK(cudaMalloc((void **)&region, bytes));
    dev_set_bytes(region, 0xFF, bytes);
    CK(cudaMalloc((void **)&err, sizeof(int)));
    dev_set_bytes(err, 0, sizeof(int));
    qb_tp_exchange xc;
    memset(&xc, 0, sizeof xc);
    xc.base[0] = region;
    xc.slot_bytes = slot;
    xc.point_bytes = slot;
    xc.points = 2;
    xc.error_dev = err;
    xc.timeout_ns = 10ull * 1000 * 1000 * 1000;
    xc.ranks = 1;
    qb_gemv_qweights o_rows, o_tiled, gu_rows, gu_tiled;
    make_qweights(H, k_o, bits, awq, 5000, &o_rows);
    make_tiled(&o_rows, H, k_o, QB_TILE_ROWS, 0, 0, s->name, &o_tiled, 0);
    make_qweights(2 * I, H, bits, awq, 6000, &gu_rows);
    make_tiled(&gu_rows, 2 * I, H, QB_TILE_SILU, 0, I, s->name, &gu_tiled, 0);
    uint16_t *hx = malloc((size_t)k_o * 2);
    fill_bf16(hx, k_o, 1.f);
    float *resid0 = malloc((size_t)H * 4), *nw = malloc((size_t)H * 4);
    for (int i = 0; i < H; i++) {
        resid0[i] = rnd_uniform(-2.f, 2.f);
        nw[i] = rnd_uniform(0.5f, 1.5f);
    }
    uint16_t *d_x = dev_upload(hx, (size_t)k_o * 2), *act_a = dev_alloc_guarded((size_t)I * 2),
             *act_b = dev_alloc_guarded((size_t)I * 2);
    float *d_nw = dev_upload(nw, (size_t)H * 4), *res_a = dev_upload(resid0, (size_t)H * 4),
          *res_b = dev_upload(resid0, (size_t)H * 4), *next_b = dev_alloc_guarded((size_t)H * 4);
    for (int layout = 0; layout < 2; layout++) {
        const qb_gemv_qweights *wo = layout ? &o_tiled : &o_rows, *wgu = layout ? &gu_tiled : &gu_rows;
        char what[200];
        snprintf(what, sizeof what, "quant exchange %s %d-bit%s %s (one rank)", s->name, bits, awq ? " awq" : "",
                 layout ? "tiled" : "rows");
        h2d(res_a, resid0, (size_t)H * 4);
        qb_gemv_input vx = {.x = d_x};
        LAUNCH(qb_launch_gemv_quant_resid_add(wo, H, k_o, &vx, res_a, 0));
        qb_gemv_input norm = {.resid = res_a, .norm_w = d_nw, .eps = EPS};
        LAUNCH(qb_launch_gemv_quant_gate_up_silu(wgu, I, H, &norm, act_a, 0));
        LAUNCH(qb_launch_gemv_quant_tp_push(wo, H, k_o, &vx, &xc, 0, 0));
        qb_gemv_input tpn = {.resid = res_b, .norm_w = d_nw, .eps = EPS, .tp = &xc, .tp_point = 0,
                             .resid_next = next_b};
        LAUNCH(qb_launch_gemv_quant_gate_up_silu(wgu, I, H, &tpn, act_b, 0));
        dev_set_bytes(region, 0xFF, slot); /* point 0 for the next layout (the engine's next consumer's job) */
        float *ra = download_f32(res_a, H), *nb = download_f32(next_b, H);
        uint16_t *aa = malloc((size_t)I * 2), *ab = malloc((size_t)I * 2);
        unsigned char *p1 = malloc(slot);
        CK(cudaMemcpy(aa, act_a, (size_t)I * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(ab, act_b, (size_t)I * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(p1, region + slot, slot, cudaMemcpyDeviceToHost));
        int err_h = 0;
        CK(cudaMemcpy(&err_h, err, sizeof err_h, cudaMemcpyDeviceToHost));
        size_t filled = 0;
        while (filled < slot && p1[filled] == 0xFF) filled++;
        int same_r = memcmp(ra, nb, (size_t)H * 4) == 0, same_a = memcmp(aa, ab, (size_t)I * 2) == 0;
        if (!same_r || !same_a || filled != slot || err_h) {
            printf("FAIL %s: residual %s, gate|up %s, point 1 %s, error flag %d\n", what, same_r ? "equal" : "differs",
                   same_a ? "equal" : "differs", filled == slot ? "refilled" : "not refilled", err_h);
            g_failures++;
        }
        dev_guard_ok(act_b, (size_t)I * 2, what);
        dev_guard_ok(next_b, (size_t)H * 4, what);
        free(ra); free(nb); free(aa); free(ab); free(p1);
    }
    free_qweights(&o_rows); free_qweights(&o_tiled); free_qweights(&gu_rows); free_qweights(&gu_tiled);
    cudaFree(d_x); cudaFree(act_a); cudaFree(act_b); cudaFree(d_nw); cudaFree(res_a); cudaFree(res_b);
    cudaFree(next_b); cudaFree(region); cudaFree(err);
    free(hx); free(resid0); free(nw);
}

static void test_shape(const shape *s, int bits, int awq, bool all) {
    const tuning *tu = all ? all_tunings : default_tuning;
    int n_tu = all ? (int)(sizeof all_tunings / sizeof all_tunings[0]) : 2;
    int H = s->H;
    float *resid = malloc((size_t)H * 4), *nw = malloc((size_t)H * 4);
    for (int i = 0; i < H; i++) {
        resid[i] = rnd_uniform(-2.f, 2.f);
        nw[i] = rnd_uniform(0.5f, 1.5f);
    }
    float *d_resid = dev_upload(resid, (size_t)H * 4), *d_nw = dev_upload(nw, (size_t)H * 4);
    uint16_t *d_xn = dev_alloc_guarded((size_t)H * 2);
    norm_unfused(d_resid, d_nw, H, d_xn);
    test_qkv(s, bits, awq, tu, n_tu, d_resid, d_nw, d_xn);
    test_gate_up(s, bits, awq, tu, n_tu, d_resid, d_nw, d_xn);
    test_store_resid(s, bits, awq, tu, n_tu, 0);
    test_store_resid(s, bits, awq, tu, n_tu, 1);
    if (qb_gemv_quant_tc_supported(bits, s->hq * s->hd, GROUP) && qb_gemv_quant_tc_supported(bits, H, GROUP))
        test_exchange_one_rank(s, bits, awq);
    /* the residual is only read */
    float *after = download_f32(d_resid, H);
    if (memcmp(after, resid, (size_t)H * 4) != 0) {
        printf("FAIL %s %d-bit: the normalising prologue changed the residual\n", s->name, bits);
        g_failures++;
    }
    free(after);
    cudaFree(d_resid); cudaFree(d_nw); cudaFree(d_xn);
    free(resid); free(nw);
}

/* ---- timing: fused kernel vs the unfused sequence, 7B shapes, 4 bits ---- */
typedef struct {
    int which; /* 0 qkv, 1 gate_up, 2 o store, 3 down resid */
    int bits;
    int fused;
    const shape *s;
    qb_gemv_qweights w, copies[64], tcopies[64]; /* w = (t)copies[i % n_copies]: rotated past the L2 */
    int tiled; /* the fused kernel reads the tiled copies */
    int n_copies;
    float *resid, *nw, *bias, *cs, *sn, *res_out;
    int *pos;
    uint16_t *xn, *big, *q, *k, *v, *act, *x_o, *x_d, *y;
    float *tmp_resid;
} bench_ctx;

static cudaStream_t g_stream;

static int bench_launch(void *vctx, int i) {
    bench_ctx *b = vctx;
    const shape *s = b->s;
    cudaStream_t st = g_stream;
    b->w = b->fused && b->tiled ? b->tcopies[i % b->n_copies] : b->copies[i % b->n_copies];
    qb_gemv_input in_norm = {.resid = b->resid, .norm_w = b->nw, .eps = EPS}, in_o = {.x = b->x_o},
                  in_d = {.x = b->x_d};
    int n_qkv = (s->hq + 2 * s->hkv) * s->hd;
    switch (b->which) {
    case 0:
        if (b->fused)
            return qb_launch_gemv_quant_qkv_rope(&b->w, s->H, &in_norm, b->bias, s->hq, s->hkv, s->hd, b->pos, b->cs,
                                                 b->sn, b->q, b->k, b->v, MAX_SEQ, st);
        if (qb_launch_add_rmsnorm(b->tmp_resid, NULL, b->nw, 1, s->H, EPS, b->xn, st)) return -1;
        if (qb_launch_gemv_quant(b->w.qweight, b->w.sz, b->xn, n_qkv, s->H, b->bits, GROUP, b->big, NULL, st))
            return -1;
        return qb_launch_qkv_rope(b->big, b->bias, 1, s->hq, s->hkv, s->hd, b->pos, b->cs, b->sn, b->q, b->k, b->v,
                                  MAX_SEQ, st);
    case 1:
        if (b->fused) return qb_launch_gemv_quant_gate_up_silu(&b->w, s->I, s->H, &in_norm, b->act, st);
        if (qb_launch_add_rmsnorm(b->tmp_resid, NULL, b->nw, 1, s->H, EPS, b->xn, st)) return -1;
        if (qb_launch_gemv_quant(b->w.qweight, b->w.sz, b->xn, 2 * s->I, s->H, b->bits, GROUP, b->big, NULL, st))
            return -1;
        return qb_launch_silu_mul(b->big, 1, s->I, b->act, st);
    case 2:
        if (b->fused) return qb_launch_gemv_quant_fused_store(&b->w, s->H, s->hq * s->hd, &in_o, b->y, st);
        return qb_launch_gemv_quant(b->w.qweight, b->w.sz, b->x_o, s->H, s->hq * s->hd, b->bits, GROUP, b->y, NULL, st);
    default:
        if (b->fused) return qb_launch_gemv_quant_resid_add(&b->w, s->H, s->I, &in_d, b->res_out, st);
        if (qb_launch_gemv_quant(b->w.qweight, b->w.sz, b->x_d, s->H, s->I, b->bits, GROUP, b->y, NULL, st)) return -1;
        return qb_launch_add_rmsnorm(b->res_out, b->y, b->nw, 1, s->H, EPS, b->xn, st);
    }
}

static void bench(const shape *s, int bits) {
    static const char *names[4] = {"q|k|v (+norm, rope)", "gate|up (+norm, silu)", "o_proj store",
                                   "down (+resid; unfused: +add_rmsnorm)"};
    int H = s->H, I = s->I, half = s->hd / 2;
    size_t cn = (size_t)s->hkv * MAX_SEQ * s->hd;
    bench_ctx b = {0};
    b.s = s;
    b.bits = bits;
    b.resid = dev_alloc_guarded((size_t)H * 4);
    b.tmp_resid = dev_alloc_guarded((size_t)H * 4);
    b.res_out = dev_alloc_guarded((size_t)H * 4);
    b.nw = dev_alloc_guarded((size_t)H * 4);
    b.bias = dev_alloc_guarded((size_t)(s->hq + 2 * s->hkv) * s->hd * 4);
    b.cs = dev_alloc_guarded((size_t)MAX_SEQ * half * 4);
    b.sn = dev_alloc_guarded((size_t)MAX_SEQ * half * 4);
    int pos = POS;
    b.pos = dev_upload(&pos, sizeof pos);
    dev_set_bytes(b.resid, 0, (size_t)H * 4);
    dev_set_bytes(b.tmp_resid, 0, (size_t)H * 4);
    dev_set_bytes(b.res_out, 0, (size_t)H * 4);
    dev_set_bytes(b.nw, 0, (size_t)H * 4);
    dev_set_bytes(b.bias, 0, (size_t)(s->hq + 2 * s->hkv) * s->hd * 4);
    dev_set_bytes(b.cs, 0, (size_t)MAX_SEQ * half * 4);
    dev_set_bytes(b.sn, 0, (size_t)MAX_SEQ * half * 4);
    b.xn = dev_alloc_guarded((size_t)H * 2);
    b.big = dev_alloc_guarded((size_t)2 * I * 2);
    b.q = dev_alloc_guarded((size_t)s->hq * s->hd * 2);
    b.k = dev_alloc_guarded(cn * 2);
    b.v = dev_alloc_guarded(cn * 2);
    b.act = dev_alloc_guarded((size_t)I * 2);
    b.x_o = dev_alloc_guarded((size_t)s->hq * s->hd * 2);
    b.x_d = dev_alloc_guarded((size_t)I * 2);
    b.y = dev_alloc_guarded((size_t)H * 2);
    dev_set_bytes(b.x_o, 0, (size_t)s->hq * s->hd * 2);
    dev_set_bytes(b.x_d, 0, (size_t)I * 2);
    int ns[4] = {(s->hq + 2 * s->hkv) * s->hd, 2 * I, H, H}, ks[4] = {H, H, s->hq * s->hd, I};
    printf("bench %s %d-bit (us per call, median of CUDA-graph replays):\n", s->name, bits);
    for (int which = 0; which < 4; which++) {
        double bytes = (double)ns[which] * ks[which] * bits / 8 + (double)ns[which] * (ks[which] / GROUP) * 4;
        b.n_copies = (int)(512e6 / bytes) + 1;
        if (b.n_copies > 64) b.n_copies = 64;
        static const int kinds[4] = {QB_TILE_ROPE, QB_TILE_SILU, QB_TILE_ROWS, QB_TILE_ROWS};
        for (int c = 0; c < b.n_copies; c++) {
            make_qweights(ns[which], ks[which], bits, 0, 5000 + 10 * which, &b.copies[c]);
            make_tiled(&b.copies[c], ns[which], ks[which], kinds[which], s->hd, I, "bench", &b.tcopies[c], 0);
        }
        b.which = which;
        double us[2], st[3];
        for (int f = 0; f < 2; f++) {
            b.fused = f;
            us[f] = qb_bench_graph_seconds(g_stream, bench_launch, &b, 64, 9) * 1e6;
        }
        for (int d = 2; d <= 4; d++) { /* the stage counts that fit (others fall back to the default) */
            qb_gemv_quant_fused_tuning(d, 0);
            st[d - 2] = qb_bench_graph_seconds(g_stream, bench_launch, &b, 64, 9) * 1e6;
            qb_gemv_quant_fused_tuning(0, 0);
        }
        b.fused = 1;
        b.tiled = 1;
        double tm = qb_bench_graph_seconds(g_stream, bench_launch, &b, 64, 9) * 1e6;
        b.tiled = 0;
        printf("  %-40s unfused %8.2f  fused %8.2f  (%.0f GB/s of packed weights; stages 2/3/4: %.2f %.2f %.2f; "
               "tiled layout %.2f = %.0f GB/s)\n",
               names[which], us[0], us[1], bytes / (us[1] * 1e3), st[0], st[1], st[2], tm, bytes / (tm * 1e3));
        for (int c = 0; c < b.n_copies; c++) {
            free_qweights(&b.copies[c]);
            free_qweights(&b.tcopies[c]);
        }
    }
}

int main(int argc, char **argv) {
    bool quick = false, do_bench = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--bench")) do_bench = true;
        else {
            fprintf(stderr, "usage: %s [--quick] [--bench]\n", argv[0]);
            return 2;
        }
    }
    qb_test_skip_without_gpu();
    qb_gemv_quant_fused_prepare();
    static const shape small[] = {
        {"0.5B", 896, 4864, 14, 2, 64},
        {"small", 256, 384, 2, 1, 128},
        {"mid", 384, 640, 2, 1, 64}, /* 0.5B's head size, 5 groups in down_proj */
    };
    static const shape real[] = {
        {"7B", 3584, 18944, 28, 4, 128},
        {"7B/tp2", 3584, 9472, 14, 2, 128},
        {"32B/tp2", 5120, 13824, 20, 4, 128},
        {"72B/tp2", 8192, 14848, 32, 4, 128},
        {"72B/tp4", 8192, 7424, 16, 2, 128},
    };
    for (int bits = 4; bits <= 8; bits += 4)
        for (int a = 0; a < (int)(sizeof small / sizeof small[0]); a++)
            test_shape(&small[a], bits, bits == 4 && a == 1, true);
    int n_real = quick ? 1 : (int)(sizeof real / sizeof real[0]);
    for (int bits = 4; bits <= 8; bits += 4)
        for (int r = 0; r < n_real; r++) test_shape(&real[r], bits, bits == 4 && r == 0, false);
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
    if (do_bench && !g_failures) {
        CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
        printf("copy bandwidth %.0f GB/s\n", qb_bench_copy_gbps(g_stream, 5));
        bench(&real[0], 4);
        bench(&real[0], 8);
        bench(&real[3], 4);
        cudaStreamDestroy(g_stream);
    }
    return g_failures ? 1 : 0;
}
