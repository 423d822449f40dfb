/* gemv_fused_common.cuh - what the fused decode GEMVs of gemv.cu (bf16 weights) and gemv_quant_fused.cu (GPTQ /
 * AWQ weights) share: the parameter block, the normalising prologue (RMSNorm of the fp32 residual into shared
 * memory, the same arithmetic as add_rmsnorm) and the epilogues (store, residual add, bias + RoPE + KV append,
 * SiLU * up). Device code only; included by .cu files after common.cuh. The fused kernels are described in
 * gemv.cuh.
 */
#ifndef QB_KERNELS_GEMV_FUSED_COMMON_CUH
#define QB_KERNELS_GEMV_FUSED_COMMON_CUH

#include "common.cuh"
#include "gemv.cuh" /* qb_gemv_input */
#include "tp_exchange.cuh"

/* input: the bf16 vector x; RMSNorm of the fp32 residual; at tensor parallel, RMSNorm of the residual plus the
 * exchanged partial sums of the previous row-parallel linear (tp_exchange.cuh) */
enum { QB_FX_VEC = 0, QB_FX_NORM = 1, QB_FX_TPNORM = 2 };
/* epilogue: store, residual add, push to the tensor-parallel exchange (one output per row), then the pair
 * epilogues (two rows each: RoPE, SiLU); QB_FE_ROWS tells the two kinds apart */
enum { QB_FE_STORE = 0, QB_FE_RESID = 1, QB_FE_PUSH = 2, QB_FE_ROPE = 3, QB_FE_SILU = 4 };
#define QB_FE_ROWS(epi) ((epi) < QB_FE_ROPE)

typedef struct {
    const uint4 *w;
    int n_rows, k8, n_units;
    const uint4 *x;
    const float *resid_in, *norm_w;
    float eps;
    qb_bf16 *y;
    float *resid_out;
    const float *bias;
    const int *pos;
    const float *cos_t, *sin_t;
    qb_bf16 *q_out, *k_cache, *v_cache;
    int hq, hkv, hd, max_seq, inter;
    /* quantized weights (gemv_quant_fused.cu): repacked qweight and scale | zero, steps of 16 bytes per lane */
    const uint4 *qw;
    const uint32_t *sz;
    int steps, groups, steps_per_group, n_tiles;
    int tile_major; /* quantized layout: 0 rows (quant_repack.h), 1 tiles (the 16 rows of a step contiguous) */
    int store_kind; /* tiled store: how the weights' tiles pair rows (quant_tile.cuh; hd / inter above) */
    /* tensor-parallel exchange (QB_FE_PUSH: into point tp_point; QB_FX_TPNORM: resid_in + the partial sums of
     * point tp_point, block 0 writes the sum to resid_next) */
    qb_tp_exchange tp;
    int tp_point;
    float *resid_next;
} qb_fused_params;

#define QB_FUSED_MAX_NORM_K 8192 /* the normalised input lives in shared memory: k * 2 bytes */

/* Host side of both fused launchers (gemv.cu, gemv_quant_fused.cu): checks the input for epilogue epi and K, fills
 * p's input fields, and returns its QB_FX_* mode, or -1 with the one-line error. The row epilogues (store, residual
 * add, push) take x only. */
static inline int qb_fused_set_input(qb_fused_params &p, const qb_gemv_input *in, int epi, int k, const char *what) {
    if (!in || (!in->x && (!in->resid || !in->norm_w)))
        return qb_errorf("%s: input needs x or the residual and the norm weight", what);
    int xm = in->x ? QB_FX_VEC : in->tp ? QB_FX_TPNORM : QB_FX_NORM;
    if (xm == QB_FX_VEC && ((uintptr_t)in->x & 15)) return qb_errorf("%s: x must be 16-byte aligned", what);
    if (xm != QB_FX_VEC) {
        if (QB_FE_ROWS(epi)) return qb_errorf("%s: the normalised input is for q|k|v and gate|up only", what);
        if (((uintptr_t)in->resid | (uintptr_t)in->norm_w | (uintptr_t)in->resid_next) & 15)
            return qb_errorf("%s: residual and norm weight must be 16-byte aligned", what);
        if (k > QB_FUSED_MAX_NORM_K)
            return qb_errorf("%s: K=%d above %d for the normalised input", what, k, QB_FUSED_MAX_NORM_K);
    }
    if (xm == QB_FX_TPNORM) {
        if (in->tp_point < 0 || in->tp_point >= in->tp->points || (size_t)k * sizeof(float) > in->tp->slot_bytes ||
            !in->resid_next)
            return qb_errorf("%s: exchange point %d, K=%d or next residual unusable", what, in->tp_point, k);
        p.tp = *in->tp;
        p.tp_point = in->tp_point;
        p.resid_next = in->resid_next;
    }
    p.k8 = k / 8;
    p.x = (const uint4 *)in->x;
    p.resid_in = in->resid;
    p.norm_w = in->norm_w;
    p.eps = in->eps;
    return xm;
}

/* Host side: the q|k|v + RoPE epilogue's parameters (both launchers), or -1 with the error naming `what`. */
static inline int qb_fused_set_rope(qb_fused_params &p, const float *bias, int hq, int hkv, int hd, const int *pos,
                                    const float *cos_t, const float *sin_t, uint16_t *q_out, uint16_t *k_cache,
                                    uint16_t *v_cache, int max_seq, const char *what) {
    if (hq <= 0 || hkv <= 0 || hd <= 0 || (hd & 1) || max_seq <= 0)
        return qb_errorf("%s: bad sizes hq=%d hkv=%d hd=%d max_seq=%d", what, hq, hkv, hd, max_seq);
    p.n_rows = (hq + 2 * hkv) * hd;
    p.n_units = p.n_rows / 2;
    p.bias = bias;
    p.pos = pos;
    p.cos_t = cos_t;
    p.sin_t = sin_t;
    p.q_out = (qb_bf16 *)q_out;
    p.k_cache = (qb_bf16 *)k_cache;
    p.v_cache = (qb_bf16 *)v_cache;
    p.hq = hq;
    p.hkv = hkv;
    p.hd = hd;
    p.max_seq = max_seq;
    return 0;
}

/* Host side: exchange point `point` of tp as a push epilogue's destination, or -1 (n values per rank). */
static inline int qb_fused_set_push(qb_fused_params &p, const qb_tp_exchange *tp, int point, int n, const char *what) {
    if (n <= 0 || !tp || point < 0 || point >= tp->points || (size_t)n * sizeof(float) > tp->slot_bytes)
        return qb_errorf("%s: bad N=%d, exchange or point %d", what, n, point);
    p.tp = *tp;
    p.tp_point = point;
    return 0;
}

__device__ __forceinline__ uint32_t qb_pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ float qb_round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

/* The norm weight is constant data: pull it into L1 before the PDL wait, so the prologue's second pass hits L1. */
template <int THREADS>
__device__ __forceinline__ void qb_fused_prefetch_norm_w(const qb_fused_params &p) {
    for (int g = threadIdx.x; g < p.k8; g += THREADS) {
        const float *a = p.norm_w + 8 * g;
        asm volatile("prefetch.global.L1 [%0];" ::"l"(a));
        asm volatile("prefetch.global.L1 [%0];" ::"l"(a + 4));
    }
}

/* x = bf16(resid * rsqrt(mean(resid^2) + eps) * norm_w) into shared memory; every block sums in the same order.
 * The first pass brings the residual into L1 (plain loads), the second re-reads it from there. */
template <int THREADS>
__device__ void qb_fused_norm_prologue(const qb_fused_params &p, uint4 *xs, float *warp_ss) {
    const float4 *r4 = (const float4 *)p.resid_in, *w4 = (const float4 *)p.norm_w;
    float ss = 0.f;
    for (int g = threadIdx.x; g < p.k8; g += THREADS) {
        float4 a = r4[2 * g], b = r4[2 * g + 1];
        ss = fmaf(a.x, a.x, ss); ss = fmaf(a.y, a.y, ss); ss = fmaf(a.z, a.z, ss); ss = fmaf(a.w, a.w, ss);
        ss = fmaf(b.x, b.x, ss); ss = fmaf(b.y, b.y, ss); ss = fmaf(b.z, b.z, ss); ss = fmaf(b.w, b.w, ss);
    }
    float scale = rsqrtf(qb_block_sum<THREADS>(ss, warp_ss) / (float)(p.k8 * 8) + p.eps);
    for (int g = threadIdx.x; g < p.k8; g += THREADS) {
        float4 a = r4[2 * g], b = r4[2 * g + 1], wa = w4[2 * g], wb = w4[2 * g + 1];
        uint4 o;
        o.x = qb_pack_bf16x2(a.x * scale * wa.x, a.y * scale * wa.y);
        o.y = qb_pack_bf16x2(a.z * scale * wa.z, a.w * scale * wa.w);
        o.z = qb_pack_bf16x2(b.x * scale * wb.x, b.y * scale * wb.y);
        o.w = qb_pack_bf16x2(b.z * scale * wb.z, b.w * scale * wb.w);
        xs[g] = o;
    }
    __syncthreads();
}

/* The normalised input of the tensor-parallel consumer (QB_FX_TPNORM): the peers' partial sums as they arrive,
 * x = bf16(RMSNorm(resid_in + bf16(their sum)) * norm_w) into shared memory; block 0 keeps the sum in resid_next;
 * then this block's share of refilling the previous point. */
template <int THREADS>
__device__ __forceinline__ void qb_fused_tp_norm_prologue(const qb_fused_params &p, uint4 *xs, float *warp_ss) {
    qb_tpx_sum_norm<THREADS>(p.tp, p.tp_point, p.resid_in, p.norm_w, p.k8, p.eps,
                             blockIdx.x == 0 ? p.resid_next : NULL, xs, warp_ss);
    qb_tpx_refill_previous<THREADS>(p.tp, p.tp_point, blockIdx.x, gridDim.x);
}

/* The epilogue of unit u (one thread): acc holds the unit's rows in qb_fused_row order. */
template <int P, int EPI>
__device__ __forceinline__ void qb_fused_epilogue(const qb_fused_params &p, int u, const float *acc) {
    if (QB_FE_ROWS(EPI)) {
#pragma unroll
        for (int r = 0; r < P; r++) {
            int row = u * P + r;
            if (row >= p.n_rows) break;
            if (EPI == QB_FE_STORE) p.y[row] = __float2bfloat16(acc[r]);
            else if (EPI == QB_FE_PUSH) qb_tpx_push(p.tp, p.tp_point, row, acc[r]);
            else p.resid_out[row] += qb_round_bf16(acc[r]);
        }
    } else if (EPI == QB_FE_SILU) {
#pragma unroll
        for (int j = 0; j < P; j++) {
            float g = qb_round_bf16(acc[j]), up = qb_round_bf16(acc[P + j]);
            float s = g / (1.f + __expf(-g));
            p.y[u * P + j] = __float2bfloat16(s * up);
        }
    } else { /* bias + RoPE + cache append, as qkv_rope.cu */
        int pos = *p.pos, half = p.hd >> 1;
#pragma unroll
        for (int j = 0; j < P; j++) {
            int pair = u * P + j, head = pair / half, i = pair - head * half;
            int e0 = head * p.hd + i, e1 = e0 + half;
            float x0 = qb_round_bf16(acc[j]), x1 = qb_round_bf16(acc[P + j]);
            if (head < p.hq + p.hkv) {
                if (p.bias) {
                    x0 = qb_round_bf16(x0 + p.bias[e0]);
                    x1 = qb_round_bf16(x1 + p.bias[e1]);
                }
                float c = p.cos_t[(size_t)pos * half + i], s = p.sin_t[(size_t)pos * half + i];
                float y0 = x0 * c - x1 * s;
                float y1 = x1 * c + x0 * s;
                qb_bf16 *dst = head < p.hq ? p.q_out + (size_t)head * p.hd
                                           : p.k_cache + ((size_t)(head - p.hq) * p.max_seq + pos) * p.hd;
                dst[i] = __float2bfloat16(y0);
                dst[i + half] = __float2bfloat16(y1);
            } else {
                if (p.bias) {
                    x0 += p.bias[e0];
                    x1 += p.bias[e1];
                }
                qb_bf16 *dst = p.v_cache + ((size_t)(head - p.hq - p.hkv) * p.max_seq + pos) * p.hd;
                dst[i] = __float2bfloat16(x0);
                dst[i + half] = __float2bfloat16(x1);
            }
        }
    }
}

#endif
