/* test_tp_exchange.c - the tensor-parallel residual exchange of the decode step (kernels/comm/tp_exchange.cuh) on one
 * GPU: R "ranks" are R regions on the same device (filled with the sentinel), every rank's base[] pointing at all
 * of them, and each step is launched rank after rank on one stream (all producers, then all consumers), so the
 * protocol - pushes into every rank's slot, the consumers' waits for every word, the sums in rank order, the
 * refill of the previous point - runs as between GPUs without any two kernels having to run at once.
 * One exchange round per iteration (2 points), at tensor-parallel slices of 0.5B, 7B, 32B and 72B (R = 2, and 4
 * for 7B):
 *   o_proj push (point 0) -> gate|up + SiLU with the exchange prologue: every rank's new residual bit-identical,
 *     equal to resid + bf16(sum of the partial products) of the CPU reference, the activations against the CPU;
 *   down_proj push (point 1) -> the head's sum + final norm (qb_launch_tp_sum_rmsnorm): bit-identical on every
 *     rank, against the CPU; and q|k|v + RoPE with the exchange prologue equal bit for bit to the same kernel with
 *     the plain normalising prologue on the residual the exchange made (so is gate|up's);
 * three iterations (each point refilled with the sentinel by the next consumer - checked - and reused), every K
 * split of the fused kernels on one shape. A consumer whose peer never pushes gives up after its timeout and raises
 * the error flag instead of hanging.
 *   test_tp_exchange [--quick]     exits 77 without a GPU, 1 on any failure
 */
#include <stdbool.h>

#include "test_cuda_util.h"
#include "test_cuda_bf16.h"

#include "engine/cpu_ops.h"
#include "gemv.cuh"
#include "tp_exchange.cuh"

#define EPS 1e-6f
#define MAXR 4
#define MAX_SEQ 8

static int g_threads = 16;

typedef struct {
    const char *name;
    int H, nq, I, hq, hkv, hd, ranks; /* per-rank slices: nq = hq * hd, I, q|k|v heads */
} tshape;

typedef struct {
    char *region[MAXR];
    int *error[MAXR];
    qb_tp_exchange x[MAXR];
} exchange_set;

/* 2 points of dim values per rank, the engine's layout (tp_exchange.cuh) */
static void exchange_open(exchange_set *s, int ranks, int dim, unsigned long long timeout_ns) {
    size_t slot = ((size_t)dim * 4 + 255) & ~(size_t)255, bytes = 2 * (size_t)ranks * slot;
    for (int r = 0; r < ranks; r++) {
        CK(cudaMalloc((void **)&s->region[r], bytes));
        dev_set_bytes(s->region[r], 0xFF, bytes);
        CK(cudaMalloc((void **)&s->error[r], sizeof(int)));
        dev_set_bytes(s->error[r], 0, sizeof(int));
    }
    for (int r = 0; r < ranks; r++) {
        qb_tp_exchange *x = &s->x[r];
        memset(x, 0, sizeof *x);
        for (int i = 0; i < ranks; i++) x->base[i] = s->region[i];
        x->slot_bytes = slot;
        x->point_bytes = (size_t)ranks * slot;
        x->points = 2;
        x->error_dev = s->error[r];
        x->timeout_ns = timeout_ns;
        x->rank = r;
        x->ranks = ranks;
    }
}

static void exchange_close(exchange_set *s, int ranks) {
    for (int r = 0; r < ranks; r++) {
        cudaFree(s->region[r]);
        cudaFree(s->error[r]);
    }
}

static int error_raised(const exchange_set *s, int r) {
    int v = 0;
    CK(cudaMemcpy(&v, s->error[r], sizeof v, cudaMemcpyDeviceToHost));
    return v;
}

static void *dl(const void *d, size_t bytes) {
    void *h = malloc(bytes);
    CK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return h;
}

static int same_bytes(const char *what, const void *a, const void *b, size_t bytes) {
    if (memcmp(a, b, bytes) == 0) return 1;
    printf("FAIL %s: not bit-identical\n", what);
    g_failures++;
    return 0;
}

/* CPU: out = resid + bf16(sum over ranks of W[r] . x[r]) (row-parallel linear then the exchange's sum). */
static void ref_exchange_sum(uint16_t *const *w, float *const *x, int ranks, int n, int k, const float *resid,
                             float *out) {
    float *y = malloc((size_t)n * 4), *s = calloc((size_t)n, 4);
    for (int r = 0; r < ranks; r++) {
        qb_ref_matmul_bf16(x[r], w[r], NULL, 1, n, k, y, g_threads);
        for (int i = 0; i < n; i++) s[i] += y[i];
    }
    for (int i = 0; i < n; i++) out[i] = resid[i] + round_bf16(s[i]);
    free(y);
    free(s);
}

static void test_shape(const tshape *t, int ks) {
    const int R = t->ranks, H = t->H, nq = t->nq, I = t->I, n_qkv = (t->hq + 2 * t->hkv) * t->hd;
    char what[200];
    exchange_set xs;
    exchange_open(&xs, R, H, 10ull * 1000 * 1000 * 1000);
    uint16_t *d_wo[MAXR], *d_wgu[MAXR], *d_wd[MAXR], *d_wqkv[MAXR], *wo[MAXR], *wgu[MAXR], *wd[MAXR], *wqkv[MAXR];
    for (int r = 0; r < R; r++) {
        d_wo[r] = make_weight(H, nq, 100 + r, &wo[r]);
        d_wgu[r] = make_weight(2L * I, H, 200 + r, &wgu[r]);
        d_wd[r] = make_weight(H, I, 300 + r, &wd[r]);
        d_wqkv[r] = make_weight(n_qkv, H, 400 + r, &wqkv[r]);
    }
    float *nw_post = malloc((size_t)H * 4), *nw_in = malloc((size_t)H * 4), *nw_final = malloc((size_t)H * 4);
    for (int i = 0; i < H; i++) {
        nw_post[i] = rnd_uniform(0.5f, 1.5f);
        nw_in[i] = rnd_uniform(0.5f, 1.5f);
        nw_final[i] = rnd_uniform(0.5f, 1.5f);
    }
    float *d_nw_post = dev_upload(nw_post, (size_t)H * 4), *d_nw_in = dev_upload(nw_in, (size_t)H * 4),
          *d_nw_final = dev_upload(nw_final, (size_t)H * 4);
    int pos = 3;
    int *d_pos = dev_upload(&pos, sizeof pos);
    float *cs = malloc(MAX_SEQ * (size_t)t->hd / 2 * 4), *sn = malloc(MAX_SEQ * (size_t)t->hd / 2 * 4);
    for (int i = 0; i < MAX_SEQ * t->hd / 2; i++) {
        float a = rnd_uniform(-3.f, 3.f);
        cs[i] = cosf(a);
        sn[i] = sinf(a);
    }
    float *d_cs = dev_upload(cs, MAX_SEQ * (size_t)t->hd / 2 * 4), *d_sn = dev_upload(sn, MAX_SEQ * (size_t)t->hd / 2 * 4);
    size_t cache_bytes = (size_t)t->hkv * MAX_SEQ * t->hd * 2;
    uint16_t *d_q[2], *d_k[2], *d_v[2];
    for (int i = 0; i < 2; i++) {
        d_q[i] = dev_alloc_guarded((size_t)nq * 2);
        d_k[i] = dev_alloc_guarded(cache_bytes);
        d_v[i] = dev_alloc_guarded(cache_bytes);
    }
    float *resid = malloc((size_t)H * 4), *x1 = malloc((size_t)H * 4), *x2 = malloc((size_t)H * 4);
    float *xa[MAXR], *xact[MAXR];
    uint16_t *xab[MAXR], *d_xa[MAXR], *d_act[MAXR], *d_xn[MAXR];
    float *d_resid[MAXR], *d_next[MAXR], *d_next2[MAXR];
    for (int r = 0; r < R; r++) {
        xa[r] = malloc((size_t)nq * 4);
        xact[r] = malloc((size_t)I * 4);
        xab[r] = malloc((size_t)nq * 2);
        d_xa[r] = dev_alloc_guarded((size_t)nq * 2);
        d_act[r] = dev_alloc_guarded((size_t)I * 2);
        d_xn[r] = dev_alloc_guarded((size_t)H * 2);
        d_resid[r] = dev_alloc_guarded((size_t)H * 4);
        d_next[r] = dev_alloc_guarded((size_t)H * 4);
        d_next2[r] = dev_alloc_guarded((size_t)H * 4);
    }
    qb_gemv_fused_tuning(ks, 0);
    for (int it = 0; it < 3; it++) {
        for (int i = 0; i < H; i++) resid[i] = rnd_uniform(-2.f, 2.f);
        for (int r = 0; r < R; r++) {
            fill_bf16(xab[r], (size_t)nq, 1.f);
            bf16_to_f32(xab[r], (size_t)nq, xa[r]);
            h2d(d_xa[r], xab[r], (size_t)nq * 2);
            h2d(d_resid[r], resid, (size_t)H * 4);
        }
        /* o_proj pushes, then gate|up consumers */
        for (int r = 0; r < R; r++) {
            qb_gemv_input in = {.x = d_xa[r]};
            LAUNCH(qb_launch_gemv_tp_push(d_wo[r], H, nq, &in, &xs.x[r], 0, 0));
        }
        for (int r = 0; r < R; r++) {
            qb_gemv_input in = {.resid = d_resid[r], .norm_w = d_nw_post, .eps = EPS, .tp = &xs.x[r], .tp_point = 0,
                                .resid_next = d_next[r]};
            LAUNCH(qb_launch_gemv_gate_up_silu(d_wgu[r], I, H, &in, d_act[r], 0));
        }
        ref_exchange_sum(wo, xa, R, H, nq, resid, x1);
        float *next0 = dl(d_next[0], (size_t)H * 4);
        snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: residual after o_proj", t->name, R, ks, it);
        check_close(what, next0, x1, (size_t)H, 2e-3);
        float *xn = malloc((size_t)H * 4), *gu = malloc((size_t)2 * I * 4), *ref_act = malloc((size_t)I * 4);
        qb_ref_rmsnorm(next0, nw_post, 1, H, EPS, xn);
        for (int i = 0; i < H; i++) xn[i] = round_bf16(xn[i]);
        for (int r = 0; r < R; r++) {
            float *nr = dl(d_next[r], (size_t)H * 4);
            snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: rank %d residual vs rank 0", t->name, R, ks,
                     it, r);
            same_bytes(what, nr, next0, (size_t)H * 4);
            free(nr);
            qb_ref_matmul_bf16(xn, wgu[r], NULL, 1, 2 * I, H, gu, g_threads);
            for (int i = 0; i < 2 * I; i++) gu[i] = round_bf16(gu[i]);
            qb_ref_silu_mul(gu, gu + I, I, ref_act);
            uint16_t *ab = dl(d_act[r], (size_t)I * 2);
            bf16_to_f32(ab, (size_t)I, xact[r]);
            free(ab);
            snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: rank %d gate|up after the exchange", t->name,
                     R, ks, it, r);
            check_close(what, xact[r], ref_act, (size_t)I, 1e-2);
            dev_guard_ok(d_act[r], (size_t)I * 2, what);
            dev_guard_ok(d_next[r], (size_t)H * 4, what);
        }
        /* the same gate|up with the plain prologue on the exchanged residual: bit for bit */
        {
            uint16_t *d_act2 = dev_alloc_guarded((size_t)I * 2);
            qb_gemv_input in = {.resid = d_next[0], .norm_w = d_nw_post, .eps = EPS};
            LAUNCH(qb_launch_gemv_gate_up_silu(d_wgu[0], I, H, &in, d_act2, 0));
            uint16_t *a1 = dl(d_act[0], (size_t)I * 2), *a2 = dl(d_act2, (size_t)I * 2);
            snprintf(what, sizeof what, "%s tp%d ksplit %d: gate|up exchange prologue vs plain", t->name, R, ks);
            same_bytes(what, a1, a2, (size_t)I * 2);
            free(a1);
            free(a2);
            cudaFree(d_act2);
        }
        /* down_proj pushes, then the head's consumer and a q|k|v consumer on every rank */
        for (int r = 0; r < R; r++) {
            qb_gemv_input in = {.x = d_act[r]};
            LAUNCH(qb_launch_gemv_tp_push(d_wd[r], H, I, &in, &xs.x[r], 1, 0));
        }
        for (int r = 0; r < R; r++) {
            LAUNCH(qb_launch_tp_sum_rmsnorm(&xs.x[r], 1, d_next[r], d_nw_final, H, EPS, d_xn[r], 0));
            qb_gemv_input in = {.resid = d_next[r], .norm_w = d_nw_in, .eps = EPS, .tp = &xs.x[r], .tp_point = 1,
                                .resid_next = d_next2[r]};
            LAUNCH(qb_launch_gemv_qkv_rope(d_wqkv[r], H, &in, NULL, t->hq, t->hkv, t->hd, d_pos, d_cs, d_sn,
                                           d_q[0], d_k[0], d_v[0], MAX_SEQ, 0));
            if (r == 0) { /* the plain prologue on the exchanged residual */
                qb_gemv_input plain = {.resid = d_next2[0], .norm_w = d_nw_in, .eps = EPS};
                LAUNCH(qb_launch_gemv_qkv_rope(d_wqkv[0], H, &plain, NULL, t->hq, t->hkv, t->hd, d_pos, d_cs, d_sn,
                                               d_q[1], d_k[1], d_v[1], MAX_SEQ, 0));
                void *q0 = dl(d_q[0], (size_t)nq * 2), *q1 = dl(d_q[1], (size_t)nq * 2);
                void *k0 = dl(d_k[0], cache_bytes), *k1 = dl(d_k[1], cache_bytes);
                snprintf(what, sizeof what, "%s tp%d ksplit %d: q|k|v exchange prologue vs plain (q)", t->name, R, ks);
                same_bytes(what, q0, q1, (size_t)nq * 2);
                snprintf(what, sizeof what, "%s tp%d ksplit %d: q|k|v exchange prologue vs plain (k cache)", t->name,
                         R, ks);
                same_bytes(what, k0, k1, cache_bytes);
                free(q0); free(q1); free(k0); free(k1);
            }
        }
        uint16_t *act_b = malloc((size_t)I * 2);
        float **acts = malloc(sizeof(float *) * R);
        for (int r = 0; r < R; r++) acts[r] = xact[r];
        ref_exchange_sum(wd, acts, R, H, I, x1, x2); /* from the GPU's activations and the reference residual */
        float *ref_xn = malloc((size_t)H * 4), *got = malloc((size_t)H * 4);
        qb_ref_rmsnorm(x2, nw_final, 1, H, EPS, ref_xn);
        uint16_t *xn0 = dl(d_xn[0], (size_t)H * 2);
        bf16_to_f32(xn0, (size_t)H, got);
        snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: head sum + final norm", t->name, R, ks, it);
        check_close(what, got, ref_xn, (size_t)H, 1e-2);
        float *n2 = dl(d_next2[0], (size_t)H * 4);
        snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: residual after down_proj", t->name, R, ks, it);
        check_close(what, n2, x2, (size_t)H, 2e-3);
        for (int r = 1; r < R; r++) {
            uint16_t *xr = dl(d_xn[r], (size_t)H * 2);
            float *nr = dl(d_next2[r], (size_t)H * 4);
            snprintf(what, sizeof what, "%s tp%d ksplit %d iteration %d: rank %d head input vs rank 0", t->name, R, ks,
                     it, r);
            same_bytes(what, xr, xn0, (size_t)H * 2);
            same_bytes(what, nr, n2, (size_t)H * 4);
            free(xr);
            free(nr);
        }
        for (int r = 0; r < R; r++) { /* point 0 refilled with the sentinel by the consumers of point 1 */
            unsigned char *pt = dl(xs.region[r], xs.x[r].point_bytes);
            size_t bad = 0;
            while (bad < xs.x[r].point_bytes && pt[bad] == 0xFF) bad++;
            if (bad != xs.x[r].point_bytes) {
                printf("FAIL %s tp%d iteration %d: rank %d point 0 not refilled (byte %zu)\n", t->name, R, it, r, bad);
                g_failures++;
            }
            free(pt);
        }
        for (int r = 0; r < R; r++)
            if (error_raised(&xs, r)) {
                printf("FAIL %s tp%d: rank %d raised the exchange's error flag\n", t->name, R, r);
                g_failures++;
            }
        free(xn0); free(n2); free(ref_xn); free(got); free(acts); free(act_b);
        free(next0); free(xn); free(gu); free(ref_act);
    }
    qb_gemv_fused_tuning(0, 0);
    printf("ok %s tp%d ksplit %d (3 exchange rounds)\n", t->name, R, ks);
    for (int r = 0; r < R; r++) {
        cudaFree(d_wo[r]); cudaFree(d_wgu[r]); cudaFree(d_wd[r]); cudaFree(d_wqkv[r]);
        free(wo[r]); free(wgu[r]); free(wd[r]); free(wqkv[r]);
        free(xa[r]); free(xact[r]); free(xab[r]);
        cudaFree(d_xa[r]); cudaFree(d_act[r]); cudaFree(d_xn[r]);
        cudaFree(d_resid[r]); cudaFree(d_next[r]); cudaFree(d_next2[r]);
    }
    for (int i = 0; i < 2; i++) {
        cudaFree(d_q[i]); cudaFree(d_k[i]); cudaFree(d_v[i]);
    }
    cudaFree(d_nw_post); cudaFree(d_nw_in); cudaFree(d_nw_final); cudaFree(d_pos); cudaFree(d_cs); cudaFree(d_sn);
    free(nw_post); free(nw_in); free(nw_final); free(cs); free(sn); free(resid); free(x1); free(x2);
    exchange_close(&xs, R);
}

/* Rank 1 never pushes: rank 0's consumer must give up after the timeout and raise the flag. */
static void test_timeout(void) {
    const int H = 896, nq = 448, I = 2432;
    exchange_set xs;
    exchange_open(&xs, 2, H, 20ull * 1000 * 1000); /* 20 ms */
    uint16_t *wo, *wgu;
    uint16_t *d_wo = make_weight(H, nq, 1, &wo), *d_wgu = make_weight(2L * I, H, 2, &wgu);
    uint16_t *xb = malloc((size_t)nq * 2);
    fill_bf16(xb, (size_t)nq, 1.f);
    uint16_t *d_x = dev_upload(xb, (size_t)nq * 2), *d_act = dev_alloc_guarded((size_t)I * 2);
    float *ones = malloc((size_t)H * 4);
    for (int i = 0; i < H; i++) ones[i] = 1.f;
    float *d_resid = dev_upload(ones, (size_t)H * 4), *d_nw = dev_upload(ones, (size_t)H * 4),
          *d_next = dev_alloc_guarded((size_t)H * 4);
    qb_gemv_input in = {.x = d_x};
    LAUNCH(qb_launch_gemv_tp_push(d_wo, H, nq, &in, &xs.x[0], 0, 0));
    qb_gemv_input cin = {.resid = d_resid, .norm_w = d_nw, .eps = EPS, .tp = &xs.x[0], .tp_point = 0,
                         .resid_next = d_next};
    LAUNCH(qb_launch_gemv_gate_up_silu(d_wgu, I, H, &cin, d_act, 0)); /* LAUNCH synchronises: it must return */
    if (!error_raised(&xs, 0)) {
        printf("FAIL timeout: the consumer of a peer that never pushed did not raise the error flag\n");
        g_failures++;
    } else {
        printf("ok timeout: a missing peer raises the error flag and the kernel ends\n");
    }
    cudaFree(d_wo); cudaFree(d_wgu); cudaFree(d_x); cudaFree(d_act); cudaFree(d_resid); cudaFree(d_nw);
    cudaFree(d_next);
    free(wo); free(wgu); free(xb); free(ones);
    exchange_close(&xs, 2);
}

int main(int argc, char **argv) {
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }
    qb_test_skip_without_gpu();
    static const tshape shapes[] = {
        {"0.5B", 896, 448, 2432, 7, 1, 64, 2},
        {"7B", 3584, 1792, 9472, 14, 2, 128, 2},
        {"7B", 3584, 896, 4736, 7, 1, 128, 4},
        {"32B", 5120, 2560, 13824, 20, 4, 128, 2},
        {"72B", 8192, 4096, 14784, 32, 4, 128, 2},
    };
    int n = quick ? 2 : (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < n; i++) test_shape(&shapes[i], 0);
    static const int splits[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) test_shape(&shapes[0], splits[i]);
    test_timeout();
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}
