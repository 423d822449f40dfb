/* gemv.cu - decode GEMV for bf16 weights (see gemv.cuh).
 * Block = 4 warps; warp w of block b owns rows (4b + w) * ROWS .. + ROWS. Lane l reads 16-byte pieces
 * l, l+32, ... of each of its rows, UNROLL pieces per row per batch, the next batch loading while the current
 * one is summed; the first batch is loaded before the PDL wait (weights do not depend on the previous kernel).
 * The second half of the file holds the fused decode GEMVs (normalising prologue, residual / RoPE / SiLU
 * epilogues, shared with the quantized ones through gemv_fused_common.cuh).
 */
#include <stdlib.h>

#include "common.cuh"
#include "gemv.cuh"
#include "gemv_fused_common.cuh"

#define QB_GEMV_WARPS 4
#define QB_GEMV_UNROLL 4

template <int ROWS>
__global__ void __launch_bounds__(QB_GEMV_WARPS * 32)
qb_gemv_kernel(const uint4 *__restrict__ w, const uint4 *__restrict__ x, int n, int k8, qb_bf16 *y_bf16,
               float *y_f32) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int row0 = (blockIdx.x * QB_GEMV_WARPS + warp) * ROWS;
    const uint4 *wr[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) wr[r] = w + (size_t)min(row0 + r, n - 1) * k8;
    /* the first weights are constant data: fetch them while the previous kernel finishes (PDL) */
    uint4 wv[ROWS][QB_GEMV_UNROLL];
    qb_rows_load<ROWS, QB_GEMV_UNROLL>(wv, wr, lane, k8);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (row0 >= n) return;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
    for (int base = lane; base < k8; base += 32 * QB_GEMV_UNROLL) {
        uint4 xv[QB_GEMV_UNROLL], nv[ROWS][QB_GEMV_UNROLL];
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++) {
            int kk = base + 32 * u;
            xv[u] = kk < k8 ? __ldg(x + kk) : make_uint4(0, 0, 0, 0);
        }
        /* next batch in flight while this one is summed */
        qb_rows_load<ROWS, QB_GEMV_UNROLL>(nv, wr, base + 32 * QB_GEMV_UNROLL, k8);
#pragma unroll
        for (int u = 0; u < QB_GEMV_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < ROWS; r++) acc[r] += qb_dot8(wv[r][u], xv[u]);
        qb_rows_advance(wv, nv);
    }
    qb_warp_rows_store<ROWS>(acc, lane, row0, n, y_bf16, y_f32);
}

template <int ROWS>
static cudaError_t qb_gemv_launch(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                           cudaStream_t stream) {
    int rows_per_block = QB_GEMV_WARPS * ROWS;
    int blocks = (n + rows_per_block - 1) / rows_per_block;
    return qb_launch_kernel(qb_gemv_kernel<ROWS>, dim3(blocks), dim3(QB_GEMV_WARPS * 32), 0, stream, (const uint4 *)w,
                            (const uint4 *)x, n, k / 8, (qb_bf16 *)y_bf16, y_f32);
}

extern "C" int qb_launch_gemv_variant(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16,
                                      float *y_f32, int rows_per_warp, cudaStream_t stream) {
    if (n <= 0 || k <= 0 || (k % 8) != 0)
        return qb_errorf("gemv: unsupported shape N=%d K=%d (K must be a positive multiple of 8)", n, k);
    if (((uintptr_t)w | (uintptr_t)x) & 15) return qb_errorf("gemv: W and x must be 16-byte aligned");
    if ((y_bf16 == NULL) == (y_f32 == NULL)) return qb_errorf("gemv: exactly one output (bf16 or fp32) expected");
    cudaError_t rc;
    switch (rows_per_warp) {
    case 1: rc = qb_gemv_launch<1>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 2: rc = qb_gemv_launch<2>(w, x, n, k, y_bf16, y_f32, stream); break;
    case 4: rc = qb_gemv_launch<4>(w, x, n, k, y_bf16, y_f32, stream); break;
    default: return qb_errorf("gemv: rows_per_warp %d not in {1, 2, 4}", rows_per_warp);
    }
    if (rc != cudaSuccess) return qb_errorf("gemv: kernel launch failed: %s", cudaGetErrorString(rc));
    return 0;
}

/* Named conditions, each the fastest on the H100 for its shapes (timings of test_cuda_gemv_bench: docs/PERFORMANCE.md,
 * "Measurements behind the rules in the code", "bf16 decode GEMV: rows per warp"):
 *   many rows (N >= 8192): the grid at one row per warp already fills the chip, so 1 row per warp;
 *   mid-size N with long rows (N >= 2112, i.e. >= one 4-warp block per SM at 4 rows): 4 rows per warp when
 *     K >= 8192, 2 rows when K >= 2048: more bytes in flight per warp where the grid alone leaves the chip half empty;
 *   small N (the 0.5B shapes): 1 row per warp (fewer blocks than SMs otherwise).
 * cuBLAS (cublasGemmEx, n = 1) was slower on every shape measured. */
extern "C" int qb_launch_gemv(const uint16_t *w, const uint16_t *x, int n, int k, uint16_t *y_bf16, float *y_f32,
                              cudaStream_t stream) {
    int rows = 1;
    if (n < 8192 && n >= 2112) {
        if (k >= 8192) rows = 4;
        else if (k >= 2048) rows = 2;
    }
    return qb_launch_gemv_variant(w, x, n, k, y_bf16, y_f32, rows, stream);
}

/* ---- Fused decode GEMVs (see gemv.cuh) ----
 * Block = 8 warps in groups of KS warps; a group owns one unit (P rows, or P row pairs for the pair epilogues)
 * per iteration, each warp of the group a 1/KS interleaved slice of K (lane l of warp j reads pieces
 * 32 j + l + 32 KS t). The grid is what fits on the GPU at once (2 blocks per SM), each block looping over
 * block-units (grid-stride, the same count for every block): the normalising prologue is paid once per block, and
 * each lane loads the first batch of its next unit while summing the last batch of the current one, so the weight
 * stream never waits for a pipeline to refill between units. */

#define QB_FG_WARPS 8
#define QB_FG_THREADS (QB_FG_WARPS * 32)
#define QB_FG_UNROLL 4

template <int P, int EPI>
struct qb_fused_shape {
    static constexpr int rows = EPI >= QB_FE_ROPE ? 2 * P : P;
};

/* Row r (0 .. rows-1) of unit u: contiguous rows; for the pair epilogues rows j and P + j are a pair. */
template <int P, int EPI>
__device__ __forceinline__ int qb_fused_row(const qb_fused_params &p, int u, int r) {
    if (QB_FE_ROWS(EPI)) return min(u * P + r, p.n_rows - 1);
    int second = r >= P;
    int pair = u * P + (r - second * P);
    if (EPI == QB_FE_SILU) return pair + second * p.inter;
    int half = p.hd >> 1, head = pair / half;
    return head * p.hd + (pair - head * half) + second * half;
}

template <int ROWS, int STEP>
__device__ __forceinline__ void qb_fused_load_w(uint4 (&wv)[ROWS][QB_FG_UNROLL], const uint4 *const (&wr)[ROWS],
                                                int base, int k8) {
#pragma unroll
    for (int u = 0; u < QB_FG_UNROLL; u++) {
        int kk = base + STEP * u;
#pragma unroll
        for (int r = 0; r < ROWS; r++) wv[r][u] = kk < k8 ? qb_load_stream16(wr[r] + kk) : make_uint4(0, 0, 0, 0);
    }
}

template <int P, int KS, int XM, int EPI>
__global__ void __launch_bounds__(QB_FG_THREADS, 2) qb_gemv_fused_kernel(qb_fused_params p) {
    constexpr int ROWS = qb_fused_shape<P, EPI>::rows;
    constexpr int G = QB_FG_WARPS / KS; /* units per block iteration */
    constexpr int STEP = 32 * KS;       /* pieces between one lane's consecutive loads */
    extern __shared__ uint4 xs[];       /* the normalised input (QB_FX_NORM, QB_FX_TPNORM) */
    __shared__ float red[QB_FG_WARPS][ROWS];
    __shared__ float warp_ss[QB_FG_WARPS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int group = warp / KS, kj = warp - group * KS;
    int base0 = kj * 32 + lane, k8 = p.k8;
    int n_bu = (p.n_units + G - 1) / G;
    const uint4 *wr[ROWS];
    uint4 wv[ROWS][QB_FG_UNROLL];
    int unit = min((int)blockIdx.x * G + group, p.n_units - 1);
#pragma unroll
    for (int r = 0; r < ROWS; r++) wr[r] = p.w + (size_t)qb_fused_row<P, EPI>(p, unit, r) * k8;
    /* the first weights are constant data: fetch them while the previous kernel finishes (PDL) */
    qb_fused_load_w<ROWS, STEP>(wv, wr, base0, k8);
    if (XM != QB_FX_VEC) qb_fused_prefetch_norm_w<QB_FG_THREADS>(p);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    if (XM == QB_FX_NORM) qb_fused_norm_prologue<QB_FG_THREADS>(p, xs, warp_ss);
    if (XM == QB_FX_TPNORM) qb_fused_tp_norm_prologue<QB_FG_THREADS>(p, xs, warp_ss);
    for (int bu = blockIdx.x; bu < n_bu; bu += gridDim.x) { /* uniform over the block: barriers are safe */
        int u = bu * G + group, bn = bu + gridDim.x;
        /* the block's next unit: its first batch is loaded during this unit's last one (no pipeline restart) */
        const uint4 *wn[ROWS];
        int next_unit = min(bn * G + group, p.n_units - 1);
#pragma unroll
        for (int r = 0; r < ROWS; r++) wn[r] = p.w + (size_t)qb_fused_row<P, EPI>(p, next_unit, r) * k8;
        float acc[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; r++) acc[r] = 0.f;
        for (int base = base0; base < k8; base += STEP * QB_FG_UNROLL) {
            uint4 xv[QB_FG_UNROLL], nv[ROWS][QB_FG_UNROLL];
#pragma unroll
            for (int t = 0; t < QB_FG_UNROLL; t++) {
                int kk = base + STEP * t;
                xv[t] = kk < k8 ? (XM != QB_FX_VEC ? xs[kk] : __ldg(p.x + kk)) : make_uint4(0, 0, 0, 0);
            }
            int nb = base + STEP * QB_FG_UNROLL; /* next batch in flight while this one is summed */
            if (nb >= k8 && bn < n_bu) qb_fused_load_w<ROWS, STEP>(nv, wn, base0, k8);
            else qb_fused_load_w<ROWS, STEP>(nv, wr, nb, k8); /* zeros past the row */
#pragma unroll
            for (int t = 0; t < QB_FG_UNROLL; t++)
#pragma unroll
                for (int r = 0; r < ROWS; r++) acc[r] += qb_dot8(wv[r][t], xv[t]);
            qb_rows_advance(wv, nv);
        }
#pragma unroll
        for (int r = 0; r < ROWS; r++) wr[r] = wn[r];
#pragma unroll
        for (int r = 0; r < ROWS; r++) acc[r] = qb_warp_sum(acc[r]);
        if (KS > 1) { /* the group's K slices, summed in a fixed order */
            if (lane == 0)
#pragma unroll
                for (int r = 0; r < ROWS; r++) red[warp][r] = acc[r];
            __syncthreads();
            if (kj == 0 && lane == 0)
#pragma unroll
                for (int r = 0; r < ROWS; r++) {
                    float s = red[warp][r];
#pragma unroll
                    for (int j = 1; j < KS; j++) s += red[warp + j][r];
                    acc[r] = s;
                }
            __syncthreads();
        }
        if (kj == 0 && lane == 0 && u < p.n_units) qb_fused_epilogue<P, EPI>(p, u, acc);
    }
}

static int g_fused_k_split = 0, g_fused_blocks_per_sm = 0;

extern "C" void qb_gemv_fused_tuning(int k_split, int blocks_per_sm) {
    g_fused_k_split = k_split;
    g_fused_blocks_per_sm = blocks_per_sm;
}

template <int P, int KS, int XM, int EPI>
static cudaError_t qb_fused_go(const qb_fused_params &p, int grid, size_t smem, cudaStream_t s) {
    return qb_launch_kernel(qb_gemv_fused_kernel<P, KS, XM, EPI>, dim3(grid), dim3(QB_FG_THREADS), smem, s, p);
}

template <int P, int XM, int EPI>
static cudaError_t qb_fused_ks(int ks, const qb_fused_params &p, int grid, size_t smem, cudaStream_t s) {
    switch (ks) {
    case 1: return qb_fused_go<P, 1, XM, EPI>(p, grid, smem, s);
    case 2: return qb_fused_go<P, 2, XM, EPI>(p, grid, smem, s);
    case 4: return qb_fused_go<P, 4, XM, EPI>(p, grid, smem, s);
    default: return qb_fused_go<P, 8, XM, EPI>(p, grid, smem, s);
    }
}

/* Named conditions for the launch shape:
 *   K split: double the warps per row while the grid is under two blocks per SM and each warp keeps at least one
 *     16-byte piece per lane (0.5B down 896 x 4864: 4 warps per row, 448 blocks instead of 112);
 *   rows per unit (stores and residual adds): 2 for mid-size N with long rows (as qb_launch_gemv), else 1;
 *   grid: at most blocks_per_sm (default 2, what fits at once: __launch_bounds__(256, 2)) blocks per SM,
 *     balanced so every block runs the same number of iterations (a normalising prologue reads 8 k bytes from L2
 *     per block: 28 KB for 7B, times 2368 blocks of gate|up without the cap). */
static int qb_fused_launch(int epi, int rows_per_unit, qb_fused_params &p, const qb_gemv_input *in, int k,
                           cudaStream_t s, const char *what) {
    if (k <= 0 || (k % 8) != 0) return qb_errorf("%s: K=%d must be a positive multiple of 8", what, k);
    if ((uintptr_t)p.w & 15) return qb_errorf("%s: W must be 16-byte aligned", what);
    int xm = qb_fused_set_input(p, in, epi, k, what);
    if (xm < 0) return -1;
    int sms = qb_device_sm_count();
    int ks = g_fused_k_split, bps = g_fused_blocks_per_sm; /* 0: by the conditions above */
    if (ks != 1 && ks != 2 && ks != 4 && ks != 8) {
        ks = 1;
        while (ks < 8 && (long)p.n_units * ks < 2L * sms * QB_FG_WARPS && p.k8 >= 64 * ks) ks *= 2;
    }
    int units_per_block = QB_FG_WARPS / ks;
    int n_bu = (p.n_units + units_per_block - 1) / units_per_block;
    int cap = (bps > 0 ? bps : 2) * sms;
    int rounds = (n_bu + cap - 1) / cap;
    int grid = (n_bu + rounds - 1) / rounds;
    size_t smem = xm != QB_FX_VEC ? (size_t)k * 2 : 0;
    cudaError_t rc;
#define QB_FUSED_XM(P_, EPI_)                                                                \
    (xm == QB_FX_NORM     ? qb_fused_ks<P_, QB_FX_NORM, EPI_>(ks, p, grid, smem, s)       \
     : xm == QB_FX_TPNORM ? qb_fused_ks<P_, QB_FX_TPNORM, EPI_>(ks, p, grid, smem, s)     \
                          : qb_fused_ks<P_, QB_FX_VEC, EPI_>(ks, p, grid, smem, s))
    switch (epi) {
    case QB_FE_STORE: rc = rows_per_unit == 2 ? qb_fused_ks<2, QB_FX_VEC, QB_FE_STORE>(ks, p, grid, smem, s)
                                              : qb_fused_ks<1, QB_FX_VEC, QB_FE_STORE>(ks, p, grid, smem, s);
        break;
    case QB_FE_RESID: rc = rows_per_unit == 2 ? qb_fused_ks<2, QB_FX_VEC, QB_FE_RESID>(ks, p, grid, smem, s)
                                              : qb_fused_ks<1, QB_FX_VEC, QB_FE_RESID>(ks, p, grid, smem, s);
        break;
    case QB_FE_PUSH: rc = rows_per_unit == 2 ? qb_fused_ks<2, QB_FX_VEC, QB_FE_PUSH>(ks, p, grid, smem, s)
                                             : qb_fused_ks<1, QB_FX_VEC, QB_FE_PUSH>(ks, p, grid, smem, s);
        break;
    case QB_FE_ROPE: rc = QB_FUSED_XM(1, QB_FE_ROPE); break;
    default: rc = QB_FUSED_XM(1, QB_FE_SILU); break;
    }
#undef QB_FUSED_XM
    if (rc != cudaSuccess) return qb_errorf("%s: kernel launch failed: %s", what, cudaGetErrorString(rc));
    return 0;
}

static int qb_fused_rows_per_unit(int n, int k) { return (n >= 2112 && n < 8192 && k >= 2048) ? 2 : 1; }

/* The row epilogues (store, residual add, push): p holds the output; units of 1 or 2 rows by shape. */
static int qb_fused_launch_rows(int epi, qb_fused_params &p, const uint16_t *w, int n, int k, const qb_gemv_input *in,
                                cudaStream_t stream, const char *what) {
    int rows = qb_fused_rows_per_unit(n, k);
    p.w = (const uint4 *)w;
    p.n_rows = n;
    p.n_units = (n + rows - 1) / rows;
    return qb_fused_launch(epi, rows, p, in, k, stream, what);
}

extern "C" int qb_launch_gemv_fused_store(const uint16_t *w, int n, int k, const qb_gemv_input *in, uint16_t *y,
                                          cudaStream_t stream) {
    if (n <= 0 || !y) return qb_errorf("gemv_fused_store: bad N=%d or no output", n);
    qb_fused_params p = {};
    p.y = (qb_bf16 *)y;
    return qb_fused_launch_rows(QB_FE_STORE, p, w, n, k, in, stream, "gemv_fused_store");
}

extern "C" int qb_launch_gemv_resid_add(const uint16_t *w, int n, int k, const qb_gemv_input *in, float *resid,
                                        cudaStream_t stream) {
    if (n <= 0 || !resid) return qb_errorf("gemv_resid_add: bad N=%d or no residual", n);
    qb_fused_params p = {};
    p.resid_out = resid;
    return qb_fused_launch_rows(QB_FE_RESID, p, w, n, k, in, stream, "gemv_resid_add");
}

/* The pushes run the fused kernel rather than the row-per-warp one above (qb_launch_gemv's shape rule): faster end to
 * end at TP2 on 7B and 32B (docs/PERFORMANCE.md, "The residual exchange", the pushes' row of its table). */
extern "C" int qb_launch_gemv_tp_push(const uint16_t *w, int n, int k, const qb_gemv_input *in,
                                      const qb_tp_exchange *tp, int point, cudaStream_t stream) {
    qb_fused_params p = {};
    if (qb_fused_set_push(p, tp, point, n, "gemv_tp_push") != 0) return -1;
    return qb_fused_launch_rows(QB_FE_PUSH, p, w, n, k, in, stream, "gemv_tp_push");
}

extern "C" int qb_launch_gemv_qkv_rope(const uint16_t *w, int k, const qb_gemv_input *in, const float *bias, int hq,
                                       int hkv, int hd, const int *pos, const float *cos_t, const float *sin_t,
                                       uint16_t *q_out, uint16_t *k_cache, uint16_t *v_cache, int max_seq,
                                       cudaStream_t stream) {
    qb_fused_params p = {};
    if (qb_fused_set_rope(p, bias, hq, hkv, hd, pos, cos_t, sin_t, q_out, k_cache, v_cache, max_seq,
                          "gemv_qkv_rope") != 0)
        return -1;
    p.w = (const uint4 *)w;
    return qb_fused_launch(QB_FE_ROPE, 1, p, in, k, stream, "gemv_qkv_rope");
}

extern "C" int qb_launch_gemv_gate_up_silu(const uint16_t *w, int inter, int k, const qb_gemv_input *in,
                                           uint16_t *act, cudaStream_t stream) {
    if (inter <= 0 || !act) return qb_errorf("gemv_gate_up_silu: bad intermediate size %d or no output", inter);
    qb_fused_params p = {};
    p.w = (const uint4 *)w;
    p.n_rows = 2 * inter;
    p.n_units = inter;
    p.inter = inter;
    p.y = (qb_bf16 *)act;
    return qb_fused_launch(QB_FE_SILU, 1, p, in, k, stream, "gemv_gate_up_silu");
}
