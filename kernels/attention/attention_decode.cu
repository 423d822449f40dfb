/* attention_decode.cu - split-KV decode attention (see attention_decode.cuh): the merge of the splits, the
 * tensor-core split kernel, the launchers. (The first, CUDA-core split kernel lost on every measured shape,
 * docs/PERFORMANCE.md, "Decode attention", and lives in the kernel lab, dev/cuda/attention_decode_old.cu, which
 * reuses the merge through qb_launch_attention_decode_combine.)
 */
#include <math.h>

#include "attention_decode.cuh"
#include "common.cuh"

#define QB_AD_TILE 64
#define QB_AD_MAX_GROUP 8
#define QB_AD_MIN_CHUNK 64

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

/* ---- The tensor-core split kernel ----
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
        qb_mma_bf16_16816(sc, t.k[0][j].x, t.k[1][j].x, t.k[0][j].y, t.k[1][j].y, qf[2 * j][0], qf[2 * j][1]);
        qb_mma_bf16_16816(sd, t.k[0][j].z, t.k[1][j].z, t.k[0][j].w, t.k[1][j].w, qf[2 * j + 1][0],
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
        qb_mma_bf16_16816(acc[i], qb_pair<VC>(t.v[0], t.v[1], i), qb_pair<VC>(t.v[0], t.v[1], MB + i),
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

template <int HD>
static int qb_launch_decode_combine_hd(const float *part_o, const float *part_ml, int n_splits, int chunk,
                                       const int *pos, int hq, qb_bf16 *out, cudaStream_t stream) {
    QB_LAUNCH("attention_decode combine", qb_attn_decode_combine_kernel<HD>, dim3(hq, HD / 32), dim3(QB_ADC_WARPS * 32),
              0, stream, part_o, part_ml, n_splits, chunk, pos, out);
    return 0;
}

extern "C" int qb_launch_attention_decode_combine(const float *part_o, const float *part_ml, int n_splits, int chunk,
                                                  const int *pos, int hq, int hd, uint16_t *out, cudaStream_t stream) {
    if (n_splits < 1 || chunk < 1 || hq < 1)
        return qb_errorf("attention_decode combine: n_splits %d chunk %d hq %d must be positive", n_splits, chunk, hq);
    qb_bf16 *o = (qb_bf16 *)out;
    if (hd == 128) return qb_launch_decode_combine_hd<128>(part_o, part_ml, n_splits, chunk, pos, hq, o, stream);
    if (hd == 64) return qb_launch_decode_combine_hd<64>(part_o, part_ml, n_splits, chunk, pos, hq, o, stream);
    return qb_errorf("attention_decode combine: head_dim %d unsupported (64 or 128)", hd);
}

template <int HD>
static int qb_launch_decode_hd(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq,
                               const int *pos, int hq, int hkv, int chunk, int n_splits, float scale_log2,
                               float *part_o, float *part_ml, qb_bf16 *out, cudaStream_t stream) {
    QB_LAUNCH("attention_decode split (mma)", qb_attn_decode_mma_kernel<HD, 128 / HD>, dim3(n_splits, hkv),
              dim3(QB_ADM_WARPS * 32), 0, stream, q, k_cache, v_cache, max_seq, pos, hq, hkv, chunk, scale_log2, part_o,
              part_ml, n_splits);
    return qb_launch_decode_combine_hd<HD>(part_o, part_ml, n_splits, chunk, pos, hq, out, stream);
}

extern "C" int qb_launch_attention_decode(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                          int max_seq, int len_cap, const int *pos, int hq, int hkv, int hd, int chunk,
                                          float *part_o, float *part_ml, uint16_t *out, cudaStream_t stream) {
    if (hkv <= 0 || hq % hkv != 0 || hq / hkv > QB_AD_MAX_GROUP)
        return qb_errorf("attention_decode: heads q=%d kv=%d unsupported (group size must be 1..%d)", hq, hkv,
                         QB_AD_MAX_GROUP);
    if (chunk < QB_AD_MIN_CHUNK || chunk % QB_AD_TILE)
        return qb_errorf("attention_decode: chunk %d must be a multiple of %d", chunk, QB_AD_TILE);
    if (len_cap < 1 || len_cap > max_seq)
        return qb_errorf("attention_decode: len_cap %d outside 1..%d", len_cap, max_seq);
    int n_splits = qb_ceil_div(len_cap, chunk);
    float scale_log2 = (float)(1.0 / sqrt((double)hd) * 1.4426950408889634);
    const qb_bf16 *qq = (const qb_bf16 *)q, *kk = (const qb_bf16 *)k_cache, *vv = (const qb_bf16 *)v_cache;
    if (hd == 128)
        return qb_launch_decode_hd<128>(qq, kk, vv, max_seq, pos, hq, hkv, chunk, n_splits, scale_log2, part_o, part_ml,
                                        (qb_bf16 *)out, stream);
    if (hd == 64)
        return qb_launch_decode_hd<64>(qq, kk, vv, max_seq, pos, hq, hkv, chunk, n_splits, scale_log2, part_o, part_ml,
                                       (qb_bf16 *)out, stream);
    return qb_errorf("attention_decode: head_dim %d unsupported (64 or 128)", hd);
}
