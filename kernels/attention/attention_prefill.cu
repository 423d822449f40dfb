/* attention_prefill.cu - flash attention for prefill (see attention_prefill.cuh): the fa2 kernel and the dispatch.
 *
 * (Which kernel runs by default: qb_attention_prefill_auto_variant at the end; on Hopper the wgmma kernels of
 * attention_prefill_wg.cu.)
 * fa2: block of 8 warps, 128 query rows (16 per warp) of one kv head's group, 64-key K/V tiles
 *   double-buffered in shared memory: the cp.async copy of tile j+1 is issued before the math of tile j, so
 *   loads overlap the tensor cores and one __syncthreads per tile suffices. Q is staged once through shared
 *   memory (coalesced) and held in registers as mma A fragments; K and V reach the tensor cores through
 *   ldmatrix (V transposed) from rows padded by 16 bytes (conflict-free). Scores stay in registers and are
 *   re-packed as the A operand of P.V; the softmax runs in log2 units with the scale folded into one FMA per
 *   score before exp2; causal masking only on the tiles that cross a warp's diagonal, and a warp skips a tile
 *   that is wholly in its future. The 1-D grid hands out the longest row tiles first (all kv heads of a row
 *   tile together), so the causal triangle's short tiles fill the tail.
 *
 * wg, wgp: the Hopper wgmma kernels of attention_prefill_wg.cu; the default on sm_90 (wg at head_dim 64, wgp at 128:
 *   wg fails the checks at 128).
 * The first kernel ("old": 4 warps, 64 query rows, single-buffered; slower than fa2 everywhere) lives in the
 * kernel lab, dev/cuda/attention_prefill_old.cu, with wg at head_dim 128.
 *
 * fa2 uses mma.sync m16n8k16 bf16 -> fp32 (attention_prefill_mma.cuh); P is rounded to bf16 for P.V, the row sums
 * stay fp32.
 */
#include <math.h>

#include "attention_prefill.cuh"
#include "attention_prefill_mma.cuh"
#include "attention_prefill_wg.cuh"

/* ---- fa2 kernel ---------------------------------------------------------------------------------------- */

#define QB_AP2_BM 128 /* query rows per block */
#define QB_AP2_BN 64  /* keys per tile */
#define QB_AP2_WARPS 8
#define QB_AP2_THREADS (QB_AP2_WARPS * 32)

/* Shared memory: Q (BM rows), then K stages 0,1 and V stages 0,1 (BN rows each); rows of HD + 8 elements. */
static constexpr size_t qb_ap2_smem_bytes(int hd) {
    return (size_t)(QB_AP2_BM + 4 * QB_AP2_BN) * (hd + 8) * sizeof(qb_bf16);
}

__device__ __forceinline__ void qb_cp_async_wait_all(void) {
    asm volatile("cp.async.wait_group 0;" ::: "memory");
}

__device__ __forceinline__ void qb_cp_async_commit(void) {
    asm volatile("cp.async.commit_group;" ::: "memory");
}

/* Copy keys k0 .. k0+BN-1 of K and V (zero-filled at and past kv_end) into one stage. */
template <int HD>
__device__ __forceinline__ void qb_ap2_load_kv(qb_bf16 *kd, qb_bf16 *vd, const qb_bf16 *kb, const qb_bf16 *vb, int k0,
                                               int kv_end, int tid) {
    constexpr int LD = HD + 8, CH = HD / 8; /* 16-byte chunks per row */
#pragma unroll
    for (int it = 0; it < QB_AP2_BN * CH / QB_AP2_THREADS; it++) {
        int i = tid + it * QB_AP2_THREADS;
        int r = i / CH, c = (i % CH) * 8;
        int key = k0 + r;
        bool ok = key < kv_end;
        size_t off = (size_t)(ok ? key : 0) * HD + c;
        qb_cp_async16(kd + r * LD + c, kb + off, ok);
        qb_cp_async16(vd + r * LD + c, vb + off, ok);
    }
}

template <int HD>
__global__ void __launch_bounds__(QB_AP2_THREADS, HD == 64 ? 2 : 1)
qb_attn_prefill_fa2_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq, int n,
                           int start, int hq, int hkv, int row_tiles, float scale_log2, qb_bf16 *out) {
    constexpr int LD = HD + 8;  /* padded smem row (elements) */
    constexpr int KS = HD / 16; /* k-steps over head_dim */
    constexpr int DT = HD / 8;  /* output n-tiles over head_dim */
    constexpr int CH = HD / 8;  /* 16-byte chunks per row */
    constexpr int ST = QB_AP2_BN / 8; /* score n-tiles per key tile */
    extern __shared__ __align__(16) unsigned char qb_ap2_smem[];
    qb_bf16 *qs = (qb_bf16 *)qb_ap2_smem;
    qb_bf16 *ks = qs + QB_AP2_BM * LD; /* stage s at ks + s * BN * LD */
    qb_bf16 *vs = ks + 2 * QB_AP2_BN * LD;

    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int g = hq / hkv;
    int rows_total = n * g;
    int kh = blockIdx.x % hkv;
    int tile = row_tiles - 1 - blockIdx.x / hkv; /* longest row tiles first */
    int r0 = tile * QB_AP2_BM;
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int gid = lane >> 2, tig = lane & 3;
    int mat = lane >> 3, mrow = lane & 7;

    int tok_last = min((r0 + QB_AP2_BM - 1) / g, n - 1);
    int kv_end = start + tok_last + 1; /* keys this block needs */
    int key_tiles = (kv_end + QB_AP2_BN - 1) / QB_AP2_BN;
    const qb_bf16 *kb = k_cache + (size_t)kh * max_seq * HD;
    const qb_bf16 *vb = v_cache + (size_t)kh * max_seq * HD;

    /* this warp's 16 rows: a = r0 + warp*16 + gid, b = a + 8 */
    int wrow0 = r0 + warp * 16;
    int row_a = wrow0 + gid, row_b = row_a + 8;
    bool valid_a = row_a < rows_total, valid_b = row_b < rows_total;
    int tok_a = row_a / g, tok_b = row_b / g;
    int qpos_a = start + tok_a, qpos_b = start + tok_b;
    int warp_first_pos = start + wrow0 / g;        /* keys past this may be masked for some row of the warp */
    int warp_last_pos = wrow0 < rows_total ? start + (wrow0 + 15) / g : -1; /* keys past this: none visible */

    /* prologue: Q tile and key tile 0 */
#pragma unroll
    for (int it = 0; it < QB_AP2_BM * CH / QB_AP2_THREADS; it++) {
        int i = tid + it * QB_AP2_THREADS;
        int r = i / CH, c = (i % CH) * 8;
        int row = r0 + r;
        bool ok = row < rows_total;
        const qb_bf16 *src = ok ? q + ((size_t)(row / g) * hq + kh * g + row % g) * HD + c : q;
        qb_cp_async16(qs + r * LD + c, src, ok);
    }
    qb_ap2_load_kv<HD>(ks, vs, kb, vb, 0, kv_end, tid);
    qb_cp_async_commit();
    qb_cp_async_wait_all();
    __syncthreads();

    uint32_t qa[KS][4];
#pragma unroll
    for (int s = 0; s < KS; s++)
        qb_ldmatrix_x4(qa[s], qs + (warp * 16 + (mat & 1) * 8 + mrow) * LD + s * 16 + (mat >> 1) * 8);

    float o[DT][4];
#pragma unroll
    for (int d = 0; d < DT; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f; /* m in raw score units */

    for (int j = 0; j < key_tiles; j++) {
        if (j > 0) {
            qb_cp_async_wait_all(); /* this thread's copies of tile j */
            __syncthreads();        /* everyone's copies of tile j; everyone done with tile j-1's stage */
        }
        if (j + 1 < key_tiles) {
            int nxt = (j + 1) & 1;
            qb_ap2_load_kv<HD>(ks + nxt * QB_AP2_BN * LD, vs + nxt * QB_AP2_BN * LD, kb, vb, (j + 1) * QB_AP2_BN,
                               kv_end, tid);
            qb_cp_async_commit();
        }
        int k0 = j * QB_AP2_BN;
        if (k0 > warp_last_pos) continue; /* wholly in this warp's future (or the warp has no rows) */
        const qb_bf16 *kt = ks + (j & 1) * QB_AP2_BN * LD;
        const qb_bf16 *vt = vs + (j & 1) * QB_AP2_BN * LD;

        /* S = Q K^T for 16 rows x 64 keys */
        float s[ST][4];
#pragma unroll
        for (int t = 0; t < ST; t++) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.f;
#pragma unroll
        for (int kstep = 0; kstep < KS; kstep++) {
#pragma unroll
            for (int np = 0; np < ST / 2; np++) {
                uint32_t b[4];
                qb_ldmatrix_x4(b, kt + (np * 16 + (mat >> 1) * 8 + mrow) * LD + kstep * 16 + (mat & 1) * 8);
                qb_mma_bf16(s[2 * np], qa[kstep], b[0], b[1]);
                qb_mma_bf16(s[2 * np + 1], qa[kstep], b[2], b[3]);
            }
        }
        /* causal mask, only where the tile crosses the warp's diagonal */
        if (k0 + QB_AP2_BN - 1 > warp_first_pos) {
#pragma unroll
            for (int t = 0; t < ST; t++) {
                int key = k0 + t * 8 + tig * 2;
                if (key > qpos_a) s[t][0] = -INFINITY;
                if (key + 1 > qpos_a) s[t][1] = -INFINITY;
                if (key > qpos_b) s[t][2] = -INFINITY;
                if (key + 1 > qpos_b) s[t][3] = -INFINITY;
            }
        }
        /* online softmax; a row's 64 scores live in the 4 lanes of a quad */
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int t = 0; t < ST; t++) {
            mx_a = fmaxf(mx_a, fmaxf(s[t][0], s[t][1]));
            mx_b = fmaxf(mx_b, fmaxf(s[t][2], s[t][3]));
        }
        float base_a, base_b, alpha_a, alpha_b;
        qb_quad_softmax_max(mx_a, mx_b, scale_log2, m_a, m_b, base_a, base_b, alpha_a, alpha_b);
        float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
        for (int t = 0; t < ST; t++) {
            s[t][0] = exp2f(fmaf(s[t][0], scale_log2, -base_a));
            s[t][1] = exp2f(fmaf(s[t][1], scale_log2, -base_a));
            s[t][2] = exp2f(fmaf(s[t][2], scale_log2, -base_b));
            s[t][3] = exp2f(fmaf(s[t][3], scale_log2, -base_b));
            sum_a += s[t][0] + s[t][1];
            sum_b += s[t][2] + s[t][3];
        }
        l_a = l_a * alpha_a + sum_a;
        l_b = l_b * alpha_b + sum_b;
#pragma unroll
        for (int d = 0; d < DT; d++) {
            o[d][0] *= alpha_a;
            o[d][1] *= alpha_a;
            o[d][2] *= alpha_b;
            o[d][3] *= alpha_b;
        }
        /* O += P V */
#pragma unroll
        for (int kk = 0; kk < QB_AP2_BN / 16; kk++) {
            uint32_t pa[4];
            pa[0] = qb_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = qb_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = qb_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = qb_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < HD / 16; dp++) {
                uint32_t b[4];
                qb_ldmatrix_x4_trans(b, vt + (kk * 16 + (mat & 1) * 8 + mrow) * LD + dp * 16 + (mat >> 1) * 8);
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
static int qb_attn_prefill_fa2_launch(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                      int n, int start, int hq, int hkv, uint16_t *out, cudaStream_t stream) {
    size_t smem = qb_ap2_smem_bytes(HD);
    static int attr_set = 0;
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(qb_attn_prefill_fa2_kernel<HD>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return qb_errorf("attention_prefill (fa2): shared memory %zu B: %s", smem, cudaGetErrorString(e));
        attr_set = 1;
    }
    int g = hq / hkv;
    long rows = (long)n * g;
    int row_tiles = qb_ceil_div(rows, QB_AP2_BM);
    dim3 grid((unsigned)row_tiles * (unsigned)hkv);
    float scale_log2 = (float)(1.0 / sqrt((double)HD) * 1.4426950408889634);
    QB_LAUNCH("attention_prefill (fa2)", qb_attn_prefill_fa2_kernel<HD>, grid, dim3(QB_AP2_THREADS), smem, stream,
              (const qb_bf16 *)q, (const qb_bf16 *)k_cache, (const qb_bf16 *)v_cache, max_seq, n, start, hq, hkv,
              row_tiles, scale_log2, (qb_bf16 *)out);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------------------ */

/* The automatic rule: what measured fastest among the kernels that pass every check (H100,
 * tests/device/attn_prefill.sh; docs/PERFORMANCE.md, "Prefill attention"): on Hopper (compute capability 9) wg for
 * head_dim 64 and wgp for head_dim 128 (wg is wrong at 128, and wgp is faster than fa2 at both), fa2 on other GPUs. */
extern "C" int qb_attention_prefill_auto_variant(int hd, int cc_major) {
    if (cc_major != 9) return QB_ATTN_PREFILL_FA2;
    return hd == 64 ? QB_ATTN_PREFILL_WG : QB_ATTN_PREFILL_WGP;
}

/* Compute capability major of the current device, asked once (0 if the query fails: then fa2). */
static int qb_attn_prefill_device_cc_major(void) {
    static int major = -1;
    if (major < 0) {
        int dev = 0, m = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
            (void)cudaGetLastError();
            m = 0;
        }
        major = m;
    }
    return major;
}

extern "C" int qb_launch_attention_prefill_variant(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                                   int max_seq, int n, int start, int hq, int hkv, int hd,
                                                   uint16_t *out, int variant, cudaStream_t stream) {
    if (n <= 0 || start < 0 || start + n > max_seq)
        return qb_errorf("attention_prefill: positions %d..%d outside the cache (%d)", start, start + n - 1, max_seq);
    if (hkv <= 0 || hq % hkv != 0) return qb_errorf("attention_prefill: heads q=%d kv=%d", hq, hkv);
    if (hd != 64 && hd != 128) return qb_errorf("attention_prefill: head_dim %d unsupported (64 or 128)", hd);
    if (variant == QB_ATTN_PREFILL_WG && hd != 64)
        return qb_errorf("attention_prefill: the wg kernel is refused at head_dim %d (wrong there; 64 only)", hd);
    if (variant == QB_ATTN_PREFILL_DEFAULT)
        variant = qb_attention_prefill_auto_variant(hd, qb_attn_prefill_device_cc_major());
    if (variant == QB_ATTN_PREFILL_FA2) {
        if (hd == 128)
            return qb_attn_prefill_fa2_launch<128>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
        return qb_attn_prefill_fa2_launch<64>(q, k_cache, v_cache, max_seq, n, start, hq, hkv, out, stream);
    }
    if (variant == QB_ATTN_PREFILL_WG || variant == QB_ATTN_PREFILL_WGP)
        return qb_attn_prefill_wg_launch(q, k_cache, v_cache, max_seq, n, start, hq, hkv, hd, out,
                                         variant == QB_ATTN_PREFILL_WGP, stream);
    return qb_errorf("attention_prefill: unknown kernel variant %d (fa2 %d, wg %d, wgp %d)", variant,
                     QB_ATTN_PREFILL_FA2, QB_ATTN_PREFILL_WG, QB_ATTN_PREFILL_WGP);
}

extern "C" int qb_launch_attention_prefill(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache,
                                           int max_seq, int n, int start, int hq, int hkv, int hd, uint16_t *out,
                                           cudaStream_t stream) {
    return qb_launch_attention_prefill_variant(q, k_cache, v_cache, max_seq, n, start, hq, hkv, hd, out,
                                               QB_ATTN_PREFILL_DEFAULT, stream);
}
