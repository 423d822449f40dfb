/* attention_decode_old.cu - kernel lab: the first split-KV decode attention kernel ("old", CUDA cores), moved out
 * of the product (kernels/attention/attention_decode.cu) because the tensor-core split kernel reads the KV cache 2.3-4.7x
 * faster (docs/PERFORMANCE.md). Block (split s, kv head h) of 8 warps reads keys [s*chunk, (s+1)*chunk) of head h
 * in 64-key tiles for all the query heads of its group:
 *   phase 1: 8 lanes per key, each lane hd/8 dims, scores for all g heads of the group (3 shuffles per head);
 *   phase 2: warp j keeps head j's running max / sum over the tiles;
 *   phase 3: each warp accumulates p.V for its keys over hd/32 dims per lane; warps summed through shared memory.
 * It writes the same partial (o, m, l) layout as the product's split kernel, so the product's merge
 * (qb_launch_attention_decode_combine) finishes it. Launcher: qb_lab_attention_decode_old (lab_kernels.h),
 * arguments and checks as qb_launch_attention_decode.
 */
#include <math.h>

#include "attention_decode.cuh"
#include "common.cuh"
#include "lab_kernels.h"

#define QB_AD_TILE 64
#define QB_AD_WARPS 8
#define QB_AD_MAX_GROUP 8

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

template <int HD>
static int qb_lab_decode_old_hd(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                const int *pos, int hq, int hkv, int chunk, int n_splits, float *part_o,
                                float *part_ml, uint16_t *out, cudaStream_t stream) {
    float scale_log2 = (float)(1.0 / sqrt((double)HD) * 1.4426950408889634);
    QB_LAUNCH("attention_decode split (old, lab)", qb_attn_decode_split_kernel<HD>, dim3(n_splits, hkv),
              dim3(QB_AD_WARPS * 32), 0, stream, (const qb_bf16 *)q, (const qb_bf16 *)k_cache,
              (const qb_bf16 *)v_cache, max_seq, pos, hq, hkv, chunk, scale_log2, part_o, part_ml, n_splits);
    return qb_launch_attention_decode_combine(part_o, part_ml, n_splits, chunk, pos, hq, HD, out, stream);
}

extern "C" int qb_lab_attention_decode_old(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                           int max_seq, int len_cap, const int *pos, int hq, int hkv, int hd,
                                           int chunk, float *part_o, float *part_ml, uint16_t *out,
                                           cudaStream_t stream) {
    if (hkv <= 0 || hq % hkv != 0 || hq / hkv > QB_AD_MAX_GROUP)
        return qb_errorf("attention_decode (old, lab): heads q=%d kv=%d unsupported (group size must be 1..%d)", hq,
                         hkv, QB_AD_MAX_GROUP);
    if (chunk < QB_AD_TILE || chunk % QB_AD_TILE)
        return qb_errorf("attention_decode (old, lab): chunk %d must be a multiple of %d", chunk, QB_AD_TILE);
    if (len_cap < 1 || len_cap > max_seq)
        return qb_errorf("attention_decode (old, lab): len_cap %d outside 1..%d", len_cap, max_seq);
    int n_splits = qb_ceil_div(len_cap, chunk);
    if (hd == 128)
        return qb_lab_decode_old_hd<128>(q, k_cache, v_cache, max_seq, pos, hq, hkv, chunk, n_splits, part_o, part_ml,
                                         out, stream);
    if (hd == 64)
        return qb_lab_decode_old_hd<64>(q, k_cache, v_cache, max_seq, pos, hq, hkv, chunk, n_splits, part_o, part_ml,
                                        out, stream);
    return qb_errorf("attention_decode (old, lab): head_dim %d unsupported (64 or 128)", hd);
}
