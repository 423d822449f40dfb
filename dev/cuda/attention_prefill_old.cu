/* attention_prefill_old.cu - kernel lab: the first prefill attention kernel ("old"), moved out of the product
 * (kernels/attention/attention_prefill.cu) because fa2 and the wgmma kernels beat it at every measured shape
 * (docs/PERFORMANCE.md: 183-236 TFLOP/s vs fa2 234-306, wgp 391-452 on the H100).
 * Block of 4 warps, 64 query rows (16 per warp) of one kv head's group, 64-key K/V tiles single-buffered in shared
 * memory (cp.async, then wait: loads do not overlap the math); Q fragments straight from global memory; softmax
 * in log2 units; mma.sync m16n8k16 bf16 -> fp32 (the helpers of kernels/attention/attention_prefill_mma.cuh).
 * Launcher: qb_lab_attention_prefill_old (lab_kernels.h), arguments as qb_launch_attention_prefill.
 */
#include <math.h>

#include "attention_prefill_mma.cuh"
#include "lab_kernels.h"

#define QB_AP_BM 64
#define QB_AP_BN 64
#define QB_AP_WARPS 4

template <int HD>
__global__ void __launch_bounds__(QB_AP_WARPS * 32)
qb_attn_prefill_old_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq, int n,
                       int start, int hq, int hkv, float scale_log2, qb_bf16 *out) {
    constexpr int LD = HD + 8; /* padded smem row (elements) */
    constexpr int KS = HD / 16; /* k-steps over head_dim */
    constexpr int DT = HD / 8;  /* output n-tiles over head_dim */
    extern __shared__ __align__(16) unsigned char qb_ap_smem[];
    qb_bf16 *ks = (qb_bf16 *)qb_ap_smem;
    qb_bf16 *vs = ks + QB_AP_BN * LD;

    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int g = hq / hkv, kh = blockIdx.y;
    int rows_total = n * g;
    int tile = gridDim.x - 1 - blockIdx.x; /* longest tiles first */
    int r0 = tile * QB_AP_BM;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int gid = lane >> 2, tig = lane & 3;

    int row_a = r0 + warp * 16 + gid, row_b = row_a + 8;
    bool valid_a = row_a < rows_total, valid_b = row_b < rows_total;
    int tok_a = row_a / g, tok_b = row_b / g;
    int qpos_a = start + tok_a, qpos_b = start + tok_b;

    /* Q fragments straight from global memory (read once). */
    uint32_t qa[KS][4];
    {
        const qb_bf16 *qra = q + ((size_t)tok_a * hq + kh * g + row_a % g) * HD;
        const qb_bf16 *qrb = q + ((size_t)tok_b * hq + kh * g + row_b % g) * HD;
#pragma unroll
        for (int s = 0; s < KS; s++) {
            int c = s * 16 + tig * 2;
            qa[s][0] = valid_a ? *(const uint32_t *)(qra + c) : 0u;
            qa[s][1] = valid_b ? *(const uint32_t *)(qrb + c) : 0u;
            qa[s][2] = valid_a ? *(const uint32_t *)(qra + c + 8) : 0u;
            qa[s][3] = valid_b ? *(const uint32_t *)(qrb + c + 8) : 0u;
        }
    }

    int tok_last = min((r0 + QB_AP_BM - 1) / g, n - 1);
    int kv_end = start + tok_last + 1;         /* keys this tile needs */
    int first_masked = start + r0 / g;         /* keys at or past this may be masked for some row */
    const qb_bf16 *kb = k_cache + (size_t)kh * max_seq * HD;
    const qb_bf16 *vb = v_cache + (size_t)kh * max_seq * HD;

    float o[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;

    for (int k0 = 0; k0 < kv_end; k0 += QB_AP_BN) {
        __syncthreads(); /* previous tile fully consumed */
        constexpr int PIECES = QB_AP_BN * HD / 8;
        for (int i = tid; i < PIECES; i += QB_AP_WARPS * 32) {
            int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
            int key = k0 + r;
            bool ok = key < kv_end;
            size_t off = (size_t)(ok ? key : 0) * HD + c;
            qb_cp_async16(ks + r * LD + c, kb + off, ok);
            qb_cp_async16(vs + r * LD + c, vb + off, ok);
        }
        asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;" ::: "memory");
        __syncthreads();

        /* S = Q K^T for this warp's 16 rows x 64 keys */
        float s[QB_AP_BN / 8][4];
#pragma unroll
        for (int t = 0; t < QB_AP_BN / 8; t++) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.f;
        int mat = lane >> 3, mrow = lane & 7;
#pragma unroll
        for (int kstep = 0; kstep < KS; kstep++) {
#pragma unroll
            for (int np = 0; np < QB_AP_BN / 16; np++) {
                uint32_t b[4];
                const qb_bf16 *p = ks + (np * 16 + (mat >> 1) * 8 + mrow) * LD + kstep * 16 + (mat & 1) * 8;
                qb_ldmatrix_x4(b, p);
                qb_mma_bf16(s[2 * np], qa[kstep], b[0], b[1]);
                qb_mma_bf16(s[2 * np + 1], qa[kstep], b[2], b[3]);
            }
        }
        /* scale into log2 units, causal mask */
        bool need_mask = k0 + QB_AP_BN - 1 > first_masked;
#pragma unroll
        for (int t = 0; t < QB_AP_BN / 8; t++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = s[t][e] * scale_log2;
                if (need_mask) {
                    int key = k0 + t * 8 + tig * 2 + (e & 1);
                    int qp = e < 2 ? qpos_a : qpos_b;
                    if (key > qp) v = -INFINITY;
                }
                s[t][e] = v;
            }
        }
        /* online softmax, rows a (e 0,1) and b (e 2,3); a row's 64 values live in the 4 lanes of a quad */
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int t = 0; t < QB_AP_BN / 8; t++) {
            mx_a = fmaxf(mx_a, fmaxf(s[t][0], s[t][1]));
            mx_b = fmaxf(mx_b, fmaxf(s[t][2], s[t][3]));
        }
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
        float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
        float base_a = mn_a == -INFINITY ? 0.f : mn_a; /* a row with nothing visible yet */
        float base_b = mn_b == -INFINITY ? 0.f : mn_b;
        float alpha_a = exp2f(m_a - base_a), alpha_b = exp2f(m_b - base_b);
        m_a = mn_a;
        m_b = mn_b;
        float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
        for (int t = 0; t < QB_AP_BN / 8; t++) {
            s[t][0] = exp2f(s[t][0] - base_a);
            s[t][1] = exp2f(s[t][1] - base_a);
            s[t][2] = exp2f(s[t][2] - base_b);
            s[t][3] = exp2f(s[t][3] - base_b);
            sum_a += s[t][0] + s[t][1];
            sum_b += s[t][2] + s[t][3];
        }
        l_a = l_a * alpha_a + sum_a;
        l_b = l_b * alpha_b + sum_b;
#pragma unroll
        for (int d = 0; d < DT; d++) {
            o[d][0] *= alpha_a; o[d][1] *= alpha_a;
            o[d][2] *= alpha_b; o[d][3] *= alpha_b;
        }
        /* O += P V */
#pragma unroll
        for (int kk = 0; kk < QB_AP_BN / 16; kk++) {
            uint32_t pa[4];
            pa[0] = qb_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = qb_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = qb_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = qb_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < HD / 16; dp++) {
                uint32_t b[4];
                const qb_bf16 *p = vs + (kk * 16 + (mat & 1) * 8 + mrow) * LD + dp * 16 + (mat >> 1) * 8;
                qb_ldmatrix_x4_trans(b, p);
                qb_mma_bf16(o[2 * dp], pa, b[0], b[1]);
                qb_mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
            }
        }
    }
    /* final normalisation: the quad holds the row's partial sums */
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    float inv_a = l_a > 0.f ? 1.f / l_a : 0.f, inv_b = l_b > 0.f ? 1.f / l_b : 0.f;
    if (valid_a) {
        qb_bf16 *dst = out + ((size_t)tok_a * hq + kh * g + row_a % g) * HD;
#pragma unroll
        for (int d = 0; d < DT; d++)
            *(uint32_t *)(dst + d * 8 + tig * 2) = qb_pack_bf16(o[d][0] * inv_a, o[d][1] * inv_a);
    }
    if (valid_b) {
        qb_bf16 *dst = out + ((size_t)tok_b * hq + kh * g + row_b % g) * HD;
#pragma unroll
        for (int d = 0; d < DT; d++)
            *(uint32_t *)(dst + d * 8 + tig * 2) = qb_pack_bf16(o[d][2] * inv_b, o[d][3] * inv_b);
    }
}

template <int HD>
static int qb_attn_prefill_old_launch(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                      int n, int start, int hq, int hkv, uint16_t *out, cudaStream_t stream) {
    const char *what = "attention_prefill (old, lab)";
    size_t smem = 2 * (size_t)QB_AP_BN * (HD + 8) * sizeof(qb_bf16);
    static int attr_set = 0;
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(qb_attn_prefill_old_kernel<HD>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return qb_errorf("%s: shared memory %zu B: %s", what, smem, cudaGetErrorString(e));
        attr_set = 1;
    }
    int g = hq / hkv;
    long rows = (long)n * g;
    dim3 grid(qb_ceil_div(rows, QB_AP_BM), hkv);
    float scale_log2 = (float)(1.0 / sqrt((double)HD) * 1.4426950408889634);
    QB_LAUNCH(what, qb_attn_prefill_old_kernel<HD>, grid, dim3(QB_AP_WARPS * 32), smem, stream, (const qb_bf16 *)q,
              (const qb_bf16 *)k_cache, (const qb_bf16 *)v_cache, max_seq, n, start, hq, hkv, scale_log2,
              (qb_bf16 *)out);
    return 0;
}

extern "C" int qb_lab_attention_prefill_old(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                            int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                            cudaStream_t stream) {
    if (n <= 0 || start < 0 || start + n > max_seq)
        return qb_errorf("attention_prefill (old, lab): positions %d..%d outside the cache (%d)", start,
                         start + n - 1, max_seq);
    if (hkv <= 0 || hq % hkv != 0) return qb_errorf("attention_prefill (old, lab): heads q=%d kv=%d", hq, hkv);
    if (hd == 128) return qb_attn_prefill_old_launch<128>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    if (hd == 64) return qb_attn_prefill_old_launch<64>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    return qb_errorf("attention_prefill (old, lab): head_dim %d unsupported (64 or 128)", hd);
}
