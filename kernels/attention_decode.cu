/* attention_decode.cu - split-KV decode attention (see attention_decode.cuh): the old split kernel, the merge of
 * the splits, the tensor-core split kernel (default), the launcher.
 * Old kernel, phase 1: 8 lanes per key, each lane hd/8 dims, scores for all g heads of the group (3 shuffles per head).
 * Phase 2: warp j keeps head j's running max / sum over the tiles. Phase 3: each warp accumulates p.V for
 * its keys over hd/32 dims per lane; warps are summed through shared memory at the end.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention_decode.cuh"
#include "common.cuh"

#define QB_AD_TILE 64
#define QB_AD_WARPS 8
#define QB_AD_MAX_GROUP 8
#define QB_AD_MIN_CHUNK 64

template <int HD>
__device__ __forceinline__ void qb_load_dims(const qb_bf16 *src, float *dst) {
    /* HD/8 consecutive bf16 (16 or 8) */
    const uint4 *p = (const uint4 *)src;
#pragma unroll
    for (int v = 0; v < HD / 64; v++) {
        uint4 u = p[v];
        float2 a = qb_bf16x2_to_float2(u.x), b = qb_bf16x2_to_float2(u.y);
        float2 c = qb_bf16x2_to_float2(u.z), d = qb_bf16x2_to_float2(u.w);
        dst[v * 8 + 0] = a.x; dst[v * 8 + 1] = a.y; dst[v * 8 + 2] = b.x; dst[v * 8 + 3] = b.y;
        dst[v * 8 + 4] = c.x; dst[v * 8 + 5] = c.y; dst[v * 8 + 6] = d.x; dst[v * 8 + 7] = d.y;
    }
}

template <int HD>
__global__ void __launch_bounds__(QB_AD_WARPS * 32)
qb_attn_decode_split_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq,
                            const int *pos, int hq, int hkv, int chunk, float scale_log2, float *part_o,
                            float *part_ml, int n_splits) {
    constexpr int G = QB_AD_MAX_GROUP;
    constexpr int DPL = HD / 8;  /* phase 1 dims per lane */
    constexpr int DV = HD / 32;  /* phase 3 dims per lane */
    __shared__ float q_s[G][HD];
    __shared__ float p_s[G][QB_AD_TILE];
    __shared__ float m_s[G], l_s[G], alpha_s[G];
    __shared__ float red[QB_AD_WARPS][G * DV * 32];

    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int g = hq / hkv, kh = blockIdx.y, split = blockIdx.x;
    int len = *pos + 1;
    int k_begin = split * chunk;
    if (k_begin >= len) return;
    int k_end = min(k_begin + chunk, len);
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

    for (int i = tid; i < g * HD; i += blockDim.x)
        q_s[i / HD][i % HD] = __bfloat162float(q[(size_t)kh * g * HD + i]) * scale_log2;
    if (tid < G) { m_s[tid] = -INFINITY; l_s[tid] = 0.f; alpha_s[tid] = 0.f; }
    const qb_bf16 *kb = k_cache + (size_t)kh * max_seq * HD;
    const qb_bf16 *vb = v_cache + (size_t)kh * max_seq * HD;
    float acc[G][DV];
#pragma unroll
    for (int j = 0; j < G; j++)
#pragma unroll
        for (int d = 0; d < DV; d++) acc[j][d] = 0.f;
    __syncthreads();

    int sub = lane >> 3, li = lane & 7;
    for (int t0 = k_begin; t0 < k_end; t0 += QB_AD_TILE) {
        /* phase 1: scores; both key groups' loads are issued before the first FMA */
        float kf[QB_AD_TILE / 32][DPL];
#pragma unroll
        for (int it = 0; it < QB_AD_TILE / 32; it++) {
            int key = t0 + it * 32 + warp * 4 + sub;
            if (key < k_end) qb_load_dims<HD>(kb + (size_t)key * HD + li * DPL, kf[it]);
            else {
#pragma unroll
                for (int d = 0; d < DPL; d++) kf[it][d] = 0.f;
            }
        }
#pragma unroll
        for (int it = 0; it < QB_AD_TILE / 32; it++) {
            int c = it * 32 + warp * 4 + sub;
            int key = t0 + c;
#pragma unroll
            for (int j = 0; j < G; j++) {
                if (j < g) {
                    float s = 0.f;
#pragma unroll
                    for (int d = 0; d < DPL; d++) s = fmaf(q_s[j][li * DPL + d], kf[it][d], s);
                    s += __shfl_xor_sync(0xffffffffu, s, 1);
                    s += __shfl_xor_sync(0xffffffffu, s, 2);
                    s += __shfl_xor_sync(0xffffffffu, s, 4);
                    if (li == 0) p_s[j][c] = key < k_end ? s : -INFINITY;
                }
            }
        }
        __syncthreads();
        /* phase 2: online softmax state, warp j for head j */
        if (warp < g) {
            float v0 = p_s[warp][lane], v1 = p_s[warp][lane + 32];
            float mx = qb_warp_max(fmaxf(v0, v1));
            float m_old = m_s[warp];
            float m_new = fmaxf(m_old, mx);
            float p0 = exp2f(v0 - m_new), p1 = exp2f(v1 - m_new);
            float sum = qb_warp_sum(p0 + p1);
            p_s[warp][lane] = p0;
            p_s[warp][lane + 32] = p1;
            if (lane == 0) {
                float alpha = exp2f(m_old - m_new);
                l_s[warp] = l_s[warp] * alpha + sum;
                m_s[warp] = m_new;
                alpha_s[warp] = alpha;
            }
        }
        __syncthreads();
        /* phase 3: acc = acc * alpha + p . V */
#pragma unroll
        for (int j = 0; j < G; j++) {
            float a = j < g ? alpha_s[j] : 0.f;
#pragma unroll
            for (int d = 0; d < DV; d++) acc[j][d] *= a;
        }
        /* the warp's keys c = warp, warp + 8, ...: all V loads in flight before the FMAs */
        constexpr int KPW = QB_AD_TILE / QB_AD_WARPS;
        float vf[KPW][DV];
#pragma unroll
        for (int i = 0; i < KPW; i++) {
            int key = t0 + warp + i * QB_AD_WARPS;
            const qb_bf16 *vp = vb + (size_t)key * HD + lane * DV;
            if (key >= k_end) {
#pragma unroll
                for (int d = 0; d < DV; d++) vf[i][d] = 0.f;
            } else if (DV == 4) {
                uint2 u = *(const uint2 *)vp;
                float2 a = qb_bf16x2_to_float2(u.x), b = qb_bf16x2_to_float2(u.y);
                vf[i][0] = a.x; vf[i][1] = a.y; vf[i][2 % DV] = b.x; vf[i][3 % DV] = b.y;
            } else {
                float2 a = qb_bf16x2_to_float2(*(const uint32_t *)vp);
                vf[i][0] = a.x; vf[i][1 % DV] = a.y;
            }
        }
#pragma unroll
        for (int i = 0; i < KPW; i++) {
            int c = warp + i * QB_AD_WARPS;
#pragma unroll
            for (int j = 0; j < G; j++) {
                if (j < g) {
                    float p = p_s[j][c]; /* 0 past the context (exp2 of -inf) */
#pragma unroll
                    for (int d = 0; d < DV; d++) acc[j][d] = fmaf(p, vf[i][d], acc[j][d]);
                }
            }
        }
        __syncthreads();
    }
    /* sum the warps' partial p.V */
#pragma unroll
    for (int j = 0; j < G; j++)
#pragma unroll
        for (int d = 0; d < DV; d++) red[warp][j * HD + lane * DV + d] = acc[j][d];
    __syncthreads();
    for (int i = tid; i < g * HD; i += blockDim.x) {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < QB_AD_WARPS; w++) s += red[w][i];
        int h = kh * g + i / HD;
        part_o[((size_t)h * n_splits + split) * HD + i % HD] = s;
    }
    if (tid < g) {
        int h = kh * g + tid;
        part_ml[((size_t)h * n_splits + split) * 2 + 0] = m_s[tid];
        part_ml[((size_t)h * n_splits + split) * 2 + 1] = l_s[tid];
    }
}

/* Merge of the splits: block (head h, 32-dim slice); the block's max over the splits' maxima first, then warp w
 * sums splits w, w+16, ... for its lane's dimension, and the 16 warps' sums are added through shared memory. */
#define QB_ADC_WARPS 16
template <int HD>
__global__ void __launch_bounds__(QB_ADC_WARPS * 32)
qb_attn_decode_combine_kernel(const float *part_o, const float *part_ml, int n_splits, int chunk, const int *pos,
                              qb_bf16 *out) {
    __shared__ float red_m[QB_ADC_WARPS], red_o[QB_ADC_WARPS][32], red_l[QB_ADC_WARPS];
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int h = blockIdx.x, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int d = blockIdx.y * 32 + lane;
    int len = *pos + 1;
    int active = min((len + chunk - 1) / chunk, n_splits);
    const float *ml = part_ml + (size_t)h * n_splits * 2;
    float m = -INFINITY;
    for (int s = tid; s < active; s += QB_ADC_WARPS * 32) m = fmaxf(m, ml[2 * s]);
    m = qb_warp_max(m);
    if (lane == 0) red_m[warp] = m;
    __syncthreads();
    m = red_m[0];
#pragma unroll
    for (int w = 1; w < QB_ADC_WARPS; w++) m = fmaxf(m, red_m[w]);
    float l = 0.f, o = 0.f;
    const float *po = part_o + (size_t)h * n_splits * HD + d;
#pragma unroll 8 /* independent loads in flight: the merge is latency bound */
    for (int s = warp; s < active; s += QB_ADC_WARPS) {
        float w = exp2f(ml[2 * s] - m);
        l = fmaf(w, ml[2 * s + 1], l);
        o = fmaf(w, po[(size_t)s * HD], o);
    }
    red_o[warp][lane] = o;
    if (lane == 0) red_l[warp] = l;
    __syncthreads();
    if (warp == 0) {
        float so = 0.f, sl = 0.f;
#pragma unroll
        for (int w = 0; w < QB_ADC_WARPS; w++) { so += red_o[w][lane]; sl += red_l[w]; }
        out[(size_t)h * HD + d] = __float2bfloat16(so / sl);
    }
}

/* ---- The tensor-core split kernel (default; QB_ATTN_DECODE=old selects the kernel above) ----
 * Block (split, kv head) of QB_ADM_WARPS warps; the chunk's keys are cut into tiles of 16 * NT keys and warp w
 * takes tiles w, w + QB_ADM_WARPS, ... For each 16-key sub-tile a warp computes with mma.sync m16n8k16:
 *   S (16 keys x 8 heads) = K (16 keys x hd) . Q^T (hd x 8 heads)     A = K rows, B = Q (heads >= g are zero)
 *   O^T (hd x 8 heads) += V^T (hd x 16 keys) . P^T (16 keys x 8 heads) A = V columns, B = P (bf16, via shared)
 * Lane (gi = lane / 4, ti = lane % 4) holds S for keys gi, gi + 8 and heads 2 ti, 2 ti + 1, and O^T for the same
 * two heads, so the online softmax (max, rescale, sum) stays in registers: the max over the 16 keys takes three
 * shuffles, the sum is kept per lane and reduced once at the end. Each warp keeps its own softmax state; the
 * warps merge once through shared memory and the block writes the split's partial (o, m, l) for the combine.
 * The dot product over hd and the P.V sum over keys do not care in which order dimensions / keys enter the mma,
 * so fragments are loaded straight from global memory as 16-byte pieces:
 *   K: lane loads 16-byte chunk (j * 4 + ti) of key rows gi and gi + 8 (j < hd / 32); chunk words x, y feed
 *      k-step 2 j, z, w k-step 2 j + 1. Q is loaded the same way for head gi, so the products pair up.
 *   V: lane loads dims [e / 8 * 64 + gi * 8 + e % 8] (e < hd / 8) of keys 2 ti, 2 ti + 1, 2 ti + 8, 2 ti + 9;
 *      element e of m-block i is i (row gi) and hd / 16 + i (row gi + 8); byte permutes pair two keys per register.
 * The next tile's loads are issued before the current tile is computed (two register buffers that swap roles,
 * the loop unrolled by two, so nothing is copied): no block barrier inside the loop. Keys past the context are
 * neither loaded nor counted (score -inf, V zero).
 */
#define QB_ADM_WARPS 4

__device__ __forceinline__ void qb_mma_16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                             uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t qb_word(const uint4 &u, int i) {
    return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;
}

/* bf16 element e of keys a and b (e < 8 per uint4 piece) packed as (a, b): a in the low half. */
template <int VC>
__device__ __forceinline__ uint32_t qb_pair(const uint4 (&a)[VC], const uint4 (&b)[VC], int e) {
    uint32_t wa = qb_word(a[e >> 3], (e >> 1) & 3), wb = qb_word(b[e >> 3], (e >> 1) & 3);
    return __byte_perm(wa, wb, (e & 1) ? 0x7632 : 0x5410);
}

template <int HD>
struct qb_adm_tile {
    uint4 k[2][HD / 32]; /* key rows gi, gi + 8: chunks j * 4 + ti */
    uint4 v[4][HD / 64]; /* keys 2 ti, 2 ti + 1, 2 ti + 8, 2 ti + 9: dims c * 64 + gi * 8 .. + 7 */
};

template <int HD>
__device__ __forceinline__ void qb_adm_load(qb_adm_tile<HD> &t, const qb_bf16 *kb, const qb_bf16 *vb, int base,
                                            int k_end, int gi, int ti) {
    const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int key = base + gi + 8 * r;
        const uint4 *p = (const uint4 *)(kb + (size_t)key * HD + ti * 8);
#pragma unroll
        for (int j = 0; j < HD / 32; j++) t.k[r][j] = key < k_end ? __ldcs(p + j * 4) : zero;
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        int key = base + 2 * ti + (r & 1) + (r >> 1) * 8;
        const uint4 *p = (const uint4 *)(vb + (size_t)key * HD + gi * 8);
#pragma unroll
        for (int c = 0; c < HD / 64; c++) t.v[r][c] = key < k_end ? __ldcs(p + c * 8) : zero;
    }
}

/* One 16-key sub-tile (keys base .. base + 15, those >= k_end masked) into the warp's online softmax state. */
template <int HD>
__device__ __forceinline__ void qb_adm_step(const qb_adm_tile<HD> &t, int base, int k_end,
                                            const uint32_t (&qf)[HD / 16][2], float scale_log2,
                                            float (&acc)[HD / 16][4], float &m0, float &m1, float &l0, float &l1,
                                            uint16_t *pw, int gi, int ti) {
    constexpr int KC = HD / 32, MB = HD / 16, VC = HD / 64;
    float sc[4] = {0.f, 0.f, 0.f, 0.f}, sd[4] = {0.f, 0.f, 0.f, 0.f}; /* two chains of dependent mma */
#pragma unroll
    for (int j = 0; j < KC; j++) {
        qb_mma_16816(sc, t.k[0][j].x, t.k[1][j].x, t.k[0][j].y, t.k[1][j].y, qf[2 * j][0], qf[2 * j][1]);
        qb_mma_16816(sd, t.k[0][j].z, t.k[1][j].z, t.k[0][j].w, t.k[1][j].w, qf[2 * j + 1][0],
                     qf[2 * j + 1][1]);
    }
    sc[0] += sd[0]; sc[1] += sd[1]; sc[2] += sd[2]; sc[3] += sd[3];
    /* sc: (key gi, head 2ti), (key gi, head 2ti+1), (key gi+8, head 2ti), (key gi+8, head 2ti+1) */
    const bool ok0 = base + gi < k_end, ok1 = base + gi + 8 < k_end;
    float s0 = ok0 ? sc[0] * scale_log2 : -INFINITY, s1 = ok0 ? sc[1] * scale_log2 : -INFINITY;
    float s2 = ok1 ? sc[2] * scale_log2 : -INFINITY, s3 = ok1 ? sc[3] * scale_log2 : -INFINITY;
    float mx0 = fmaxf(s0, s2), mx1 = fmaxf(s1, s3);
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1); /* finite: key base is in the context */
    const float a0 = exp2f(m0 - mn0), a1 = exp2f(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    const qb_bf16 p0 = __float2bfloat16_rn(exp2f(s0 - mn0)), p1 = __float2bfloat16_rn(exp2f(s1 - mn1));
    const qb_bf16 p2 = __float2bfloat16_rn(exp2f(s2 - mn0)), p3 = __float2bfloat16_rn(exp2f(s3 - mn1));
    l0 = fmaf(l0, a0, __bfloat162float(p0) + __bfloat162float(p2));
    l1 = fmaf(l1, a1, __bfloat162float(p1) + __bfloat162float(p3));
#pragma unroll
    for (int i = 0; i < MB; i++) {
        acc[i][0] *= a0; acc[i][1] *= a1; acc[i][2] *= a0; acc[i][3] *= a1;
    }
    /* P^T through shared memory: lane needs P[head gi][keys 2ti, 2ti+1] and [2ti+8, 2ti+9] */
    pw[(2 * ti) * 24 + gi] = __bfloat16_as_ushort(p0);
    pw[(2 * ti + 1) * 24 + gi] = __bfloat16_as_ushort(p1);
    pw[(2 * ti) * 24 + gi + 8] = __bfloat16_as_ushort(p2);
    pw[(2 * ti + 1) * 24 + gi + 8] = __bfloat16_as_ushort(p3);
    __syncwarp();
    const uint32_t pb0 = *(const uint32_t *)&pw[gi * 24 + 2 * ti];
    const uint32_t pb1 = *(const uint32_t *)&pw[gi * 24 + 2 * ti + 8];
    __syncwarp();
#pragma unroll
    for (int i = 0; i < MB; i++)
        qb_mma_16816(acc[i], qb_pair<VC>(t.v[0], t.v[1], i), qb_pair<VC>(t.v[0], t.v[1], MB + i),
                     qb_pair<VC>(t.v[2], t.v[3], i), qb_pair<VC>(t.v[2], t.v[3], MB + i), pb0, pb1);
}

template <int HD, int NT>
__global__ void __launch_bounds__(QB_ADM_WARPS * 32, 2)
qb_attn_decode_mma_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq,
                          const int *pos, int hq, int hkv, int chunk, float scale_log2, float *part_o, float *part_ml,
                          int n_splits) {
    constexpr int KC = HD / 32; /* K chunks per row per lane; QK k-steps = 2 KC */
    constexpr int MB = HD / 16; /* P.V m-blocks of 16 dims */
    constexpr int W = QB_ADM_WARPS;
    __shared__ float o_s[W][QB_AD_MAX_GROUP][HD];
    __shared__ float m_s[W][QB_AD_MAX_GROUP], l_s[W][QB_AD_MAX_GROUP];
    __shared__ __align__(16) uint16_t p_s[W][QB_AD_MAX_GROUP][24]; /* P^T of one sub-tile: [head][key] */

    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    const int g = hq / hkv, kh = blockIdx.y, split = blockIdx.x;
    const int len = *pos + 1;
    const int k_begin = split * chunk;
    if (k_begin >= len) return;
    const int k_end = min(k_begin + chunk, len);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gi = lane >> 2, ti = lane & 3;

    uint32_t qf[2 * KC][2];
    if (gi < g) {
        const uint4 *qp = (const uint4 *)(q + ((size_t)kh * g + gi) * HD + ti * 8);
#pragma unroll
        for (int j = 0; j < KC; j++) {
            uint4 u = qp[j * 4];
            qf[2 * j][0] = u.x; qf[2 * j][1] = u.y; qf[2 * j + 1][0] = u.z; qf[2 * j + 1][1] = u.w;
        }
    } else {
#pragma unroll
        for (int j = 0; j < 2 * KC; j++) qf[j][0] = qf[j][1] = 0u;
    }
    const qb_bf16 *kb = k_cache + (size_t)kh * max_seq * HD;
    const qb_bf16 *vb = v_cache + (size_t)kh * max_seq * HD;

    float acc[MB][4];
#pragma unroll
    for (int i = 0; i < MB; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; /* heads 2 ti, 2 ti + 1 */

    constexpr int TK = 16 * NT;
    const int n_tiles = (k_end - k_begin + TK - 1) / TK;
    qb_adm_tile<HD> cur[NT], nxt[NT];
    int tile = warp;
#pragma unroll
    for (int s = 0; s < NT; s++) qb_adm_load<HD>(cur[s], kb, vb, k_begin + tile * TK + s * 16, k_end, gi, ti);
    uint16_t *pw = &p_s[warp][0][0];
    /* two tiles an iteration, the buffers swapping roles: loads of one tile are in flight while the other is used */
    for (; tile < n_tiles; tile += 2 * W) {
#pragma unroll
        for (int s = 0; s < NT; s++)
            qb_adm_load<HD>(nxt[s], kb, vb, k_begin + (tile + W) * TK + s * 16, k_end, gi, ti);
#pragma unroll
        for (int s = 0; s < NT; s++)
            qb_adm_step<HD>(cur[s], k_begin + tile * TK + s * 16, k_end, qf, scale_log2, acc, m0, m1, l0, l1, pw, gi,
                            ti);
        if (tile + W >= n_tiles) break;
#pragma unroll
        for (int s = 0; s < NT; s++)
            qb_adm_load<HD>(cur[s], kb, vb, k_begin + (tile + 2 * W) * TK + s * 16, k_end, gi, ti);
#pragma unroll
        for (int s = 0; s < NT; s++)
            qb_adm_step<HD>(nxt[s], k_begin + (tile + W) * TK + s * 16, k_end, qf, scale_log2, acc, m0, m1, l0, l1, pw,
                            gi, ti);
    }

    /* merge the warps: acc[i] = O[heads 2ti, 2ti+1][dims d(i), d(MB + i)], d(e) = e / 8 * 64 + gi * 8 + e % 8 */
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, o);
        l1 += __shfl_xor_sync(0xffffffffu, l1, o);
    }
#pragma unroll
    for (int i = 0; i < MB; i++) {
        const int d0 = (i >> 3) * 64 + gi * 8 + (i & 7), d1 = ((MB + i) >> 3) * 64 + gi * 8 + ((MB + i) & 7);
        o_s[warp][2 * ti][d0] = acc[i][0];
        o_s[warp][2 * ti + 1][d0] = acc[i][1];
        o_s[warp][2 * ti][d1] = acc[i][2];
        o_s[warp][2 * ti + 1][d1] = acc[i][3];
    }
    if (gi == 0) {
        m_s[warp][2 * ti] = m0; m_s[warp][2 * ti + 1] = m1;
        l_s[warp][2 * ti] = l0; l_s[warp][2 * ti + 1] = l1;
    }
    __syncthreads();
    for (int i = tid; i < g * HD; i += W * 32) {
        const int hh = i / HD, d = i % HD;
        float mx = m_s[0][hh];
#pragma unroll
        for (int w = 1; w < W; w++) mx = fmaxf(mx, m_s[w][hh]);
        float o = 0.f;
#pragma unroll
        for (int w = 0; w < W; w++) o = fmaf(exp2f(m_s[w][hh] - mx), o_s[w][hh][d], o); /* idle warp: m -inf */
        part_o[(((size_t)kh * g + hh) * n_splits + split) * HD + d] = o;
    }
    if (tid < g) {
        float mx = m_s[0][tid];
#pragma unroll
        for (int w = 1; w < W; w++) mx = fmaxf(mx, m_s[w][tid]);
        float l = 0.f;
#pragma unroll
        for (int w = 0; w < W; w++) l = fmaf(exp2f(m_s[w][tid] - mx), l_s[w][tid], l);
        const size_t h = (size_t)kh * g + tid;
        part_ml[(h * n_splits + split) * 2 + 0] = mx;
        part_ml[(h * n_splits + split) * 2 + 1] = l;
    }
}

extern "C" size_t qb_attention_decode_workspace_floats(int hq, int hd, int max_seq) {
    return (size_t)hq * (size_t)qb_ceil_div(max_seq, QB_AD_MIN_CHUNK) * (size_t)hd;
}

/* QB_ATTN_DECODE=old in the environment selects the first kernel; read once. */
static int qb_attention_decode_default_variant(void) {
    static int variant = 0;
    if (variant == 0) {
        const char *v = getenv("QB_ATTN_DECODE");
        variant = (v && strcmp(v, "old") == 0) ? QB_ATTN_DECODE_OLD : QB_ATTN_DECODE_MMA;
    }
    return variant;
}

extern "C" const char *qb_attention_decode_variant_name(int variant) {
    if (variant == QB_ATTN_DECODE_DEFAULT) variant = qb_attention_decode_default_variant();
    return variant == QB_ATTN_DECODE_OLD ? "old" : "mma";
}

template <int HD>
static int qb_launch_decode_hd(int variant, const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache,
                               int max_seq, const int *pos, int hq, int hkv, int chunk, int n_splits,
                               float scale_log2, float *part_o, float *part_ml, qb_bf16 *out, cudaStream_t stream) {
    dim3 grid(n_splits, hkv);
    if (variant == QB_ATTN_DECODE_OLD)
        QB_LAUNCH("attention_decode split", qb_attn_decode_split_kernel<HD>, grid, dim3(QB_AD_WARPS * 32), 0, stream,
                  q, k_cache, v_cache, max_seq, pos, hq, hkv, chunk, scale_log2, part_o, part_ml, n_splits);
    else
        QB_LAUNCH("attention_decode split (mma)", qb_attn_decode_mma_kernel<HD, 128 / HD>, grid,
                  dim3(QB_ADM_WARPS * 32), 0, stream, q, k_cache, v_cache, max_seq, pos, hq, hkv, chunk, scale_log2,
                  part_o, part_ml, n_splits);
    QB_LAUNCH("attention_decode combine", qb_attn_decode_combine_kernel<HD>, dim3(hq, HD / 32), dim3(QB_ADC_WARPS * 32),
              0, stream, (const float *)part_o, (const float *)part_ml, n_splits, chunk, pos, out);
    return 0;
}

extern "C" int qb_launch_attention_decode_variant(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                                  int max_seq, int len_cap, const int *pos, int hq, int hkv, int hd,
                                                  int chunk, float *part_o, float *part_ml, uint16_t *out,
                                                  int variant, cudaStream_t stream) {
    if (hkv <= 0 || hq % hkv != 0 || hq / hkv > QB_AD_MAX_GROUP)
        return qb_errorf("attention_decode: heads q=%d kv=%d unsupported (group size must be 1..%d)", hq, hkv,
                         QB_AD_MAX_GROUP);
    if (chunk < QB_AD_MIN_CHUNK || chunk % QB_AD_TILE)
        return qb_errorf("attention_decode: chunk %d must be a multiple of %d", chunk, QB_AD_TILE);
    if (len_cap < 1 || len_cap > max_seq)
        return qb_errorf("attention_decode: len_cap %d outside 1..%d", len_cap, max_seq);
    if (variant == QB_ATTN_DECODE_DEFAULT) variant = qb_attention_decode_default_variant();
    if (variant != QB_ATTN_DECODE_OLD && variant != QB_ATTN_DECODE_MMA)
        return qb_errorf("attention_decode: unknown kernel variant %d", variant);
    int n_splits = qb_ceil_div(len_cap, chunk);
    float scale_log2 = (float)(1.0 / sqrt((double)hd) * 1.4426950408889634);
    const qb_bf16 *qq = (const qb_bf16 *)q, *kk = (const qb_bf16 *)k_cache, *vv = (const qb_bf16 *)v_cache;
    if (hd == 128)
        return qb_launch_decode_hd<128>(variant, qq, kk, vv, max_seq, pos, hq, hkv, chunk, n_splits, scale_log2,
                                        part_o, part_ml, (qb_bf16 *)out, stream);
    if (hd == 64)
        return qb_launch_decode_hd<64>(variant, qq, kk, vv, max_seq, pos, hq, hkv, chunk, n_splits, scale_log2,
                                       part_o, part_ml, (qb_bf16 *)out, stream);
    return qb_errorf("attention_decode: head_dim %d unsupported (64 or 128)", hd);
}

extern "C" int qb_launch_attention_decode(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                          int max_seq, int len_cap, const int *pos, int hq, int hkv, int hd, int chunk,
                                          float *part_o, float *part_ml, uint16_t *out, cudaStream_t stream) {
    return qb_launch_attention_decode_variant(q, k_cache, v_cache, max_seq, len_cap, pos, hq, hkv, hd, chunk, part_o,
                                              part_ml, out, QB_ATTN_DECODE_DEFAULT, stream);
}
