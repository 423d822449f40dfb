/* attention_prefill_wg_kernels.cuh - the device code of the Hopper wgmma prefill attention kernels (wg, wgp) and
 * their templated launcher qb_apw_launch<HD, PIPELINED>, shared by the product (attention_prefill_wg.cu: wg at
 * head_dim 64, wgp at 64 and 128) and the kernel lab (dev/cuda/attention_prefill_wg128.cu: wg at head_dim 128,
 * which fails the checks there). Each includer instantiates only the launches it needs.
 * How the kernels work: see attention_prefill_wg.cu.
 */
#ifndef QB_KERNELS_ATTENTION_PREFILL_WG_KERNELS_CUH
#define QB_KERNELS_ATTENTION_PREFILL_WG_KERNELS_CUH
#include <math.h>

#include "common.cuh"

#define QB_APW_BM 128 /* query rows per block */
#define QB_APW_BN 128 /* keys per tile */
#define QB_APW_THREADS 256

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define QB_APW_HAVE_WGMMA 1
#endif

/* Bytes of dynamic shared memory: 1024 of alignment slack, K and V stages 0 and 1, the padded Q tile. */
static constexpr size_t qb_apw_smem_bytes(int hd) {
    return 1024 + 4 * (size_t)QB_APW_BN * hd * 2 + (size_t)QB_APW_BM * (hd + 8) * 2;
}

__device__ __forceinline__ void qb_apw_cp_async16(uint32_t saddr, const void *gmem, bool valid) {
    int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(saddr), "l"(gmem), "r"(src_bytes));
}

/* Shared-memory matrix descriptor, 128-byte swizzle (PTX "matrix descriptor format"). */
__device__ __forceinline__ uint64_t qb_apw_desc(uint32_t saddr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
    uint64_t d = (uint64_t)((saddr & 0x3FFFFu) >> 4);
    d |= (uint64_t)((lbo_bytes >> 4) & 0x3FFFu) << 16;
    d |= (uint64_t)((sbo_bytes >> 4) & 0x3FFFu) << 32;
    d |= (uint64_t)1 << 62;
    return d;
}

#ifdef QB_APW_HAVE_WGMMA
__device__ __forceinline__ void qb_wgmma_fence(void) { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void qb_wgmma_commit(void) { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void qb_wgmma_wait_all(void) {
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
}
#endif

/* Keep the compiler from moving reads of wgmma accumulators above the wait. */
template <int N>
__device__ __forceinline__ void qb_apw_pin(float *r) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}

#ifdef QB_APW_HAVE_WGMMA
/* D(64 x 64, f32) = A(64 x 16, bf16 registers) * B(16 x 64, bf16 shared memory, descriptor)
 *                   + (accumulate ? D : 0). */
template <int TRANS_B>
__device__ __forceinline__ void qb_wgmma_m64n64k16_rs(float *d, const uint32_t *a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate), "n"(TRANS_B));
}

/* D(64 x 128, f32) = A(64 x 16, bf16 registers) * B(16 x 128, bf16 shared memory, descriptor)
 *                    + (accumulate ? D : 0). */
template <int TRANS_B>
__device__ __forceinline__ void qb_wgmma_m64n128k16_rs(float *d, const uint32_t *a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate), "n"(TRANS_B));
}
#endif

__device__ __forceinline__ uint32_t qb_apw_pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

/* Copy keys k0 .. k0+BN-1 of one K or V tile (zero past kv_end) into a stage at dst, swizzled. */
template <int HD>
__device__ __forceinline__ void qb_apw_load_tile(uint32_t dst, const qb_bf16 *src, int k0, int kv_end, int tid) {
    constexpr int CH = HD / 8; /* 16-byte chunks per key row */
#pragma unroll
    for (int it = 0; it < QB_APW_BN * CH / QB_APW_THREADS; it++) {
        int i = tid + it * QB_APW_THREADS;
        int r = i / CH, ch = i % CH;
        int key = k0 + r;
        bool ok = key < kv_end;
        size_t off = (size_t)(ok ? key : 0) * HD + ch * 8;
        uint32_t so = (uint32_t)((ch >> 3) * (QB_APW_BN * 128) + r * 128 + (((ch & 7) ^ (r & 7)) << 4));
        qb_apw_cp_async16(dst + so, src + off, ok);
    }
}

/* Per-thread state shared by the two wgmma kernels: the block/warp geometry of attention_prefill_wg.cu. */
struct qb_apw_rows {
    int g, rows_total, kh, r0, tid, warp, gid, tig, mat, mrow;
    int kv_end, key_tiles, wg_tiles; /* key tiles of the block; of this warpgroup (0 if it has no rows) */
    int row_a, row_b, tok_a, tok_b, qpos_a, qpos_b, warp_first_pos;
    bool valid_a, valid_b;
};

__device__ __forceinline__ qb_apw_rows qb_apw_geometry(int n, int start, int hq, int hkv, int row_tiles) {
    qb_apw_rows w;
    w.g = hq / hkv;
    w.rows_total = n * w.g;
    w.kh = blockIdx.x % hkv;
    w.r0 = (row_tiles - 1 - (int)blockIdx.x / hkv) * QB_APW_BM; /* longest row tiles first */
    w.tid = threadIdx.x;
    w.warp = w.tid >> 5;
    int lane = w.tid & 31;
    w.gid = lane >> 2;
    w.tig = lane & 3;
    w.mat = lane >> 3;
    w.mrow = lane & 7;
    int tok_last = min((w.r0 + QB_APW_BM - 1) / w.g, n - 1);
    w.kv_end = start + tok_last + 1;
    w.key_tiles = (w.kv_end + QB_APW_BN - 1) / QB_APW_BN;
    int wrow0 = w.r0 + w.warp * 16;
    w.row_a = wrow0 + w.gid;
    w.row_b = w.row_a + 8;
    w.valid_a = w.row_a < w.rows_total;
    w.valid_b = w.row_b < w.rows_total;
    w.tok_a = w.row_a / w.g;
    w.tok_b = w.row_b / w.g;
    w.qpos_a = start + w.tok_a;
    w.qpos_b = start + w.tok_b;
    w.warp_first_pos = start + wrow0 / w.g; /* keys past this may be masked for some row of the warp */
    int wg_row0 = w.r0 + (w.warp >> 2) * 64;
    int wg_last_pos = start + (wg_row0 + 63) / w.g; /* keys past this are masked for every row of the warpgroup */
    w.wg_tiles = wg_row0 < w.rows_total ? min(w.key_tiles, wg_last_pos / QB_APW_BN + 1) : 0;
    return w;
}

/* Prologue: Q tile (padded rows) and the listed K/V tiles in flight; returns after they landed for everyone. */
template <int HD>
__device__ __forceinline__ void qb_apw_load_q(qb_bf16 *qs, const qb_bf16 *q, const qb_apw_rows &w, int hq) {
    constexpr int LD = HD + 8, CH = HD / 8;
#pragma unroll
    for (int it = 0; it < QB_APW_BM * CH / QB_APW_THREADS; it++) {
        int i = w.tid + it * QB_APW_THREADS;
        int r = i / CH, c = (i % CH) * 8;
        int row = w.r0 + r;
        bool ok = row < w.rows_total;
        const qb_bf16 *src = ok ? q + ((size_t)(row / w.g) * hq + w.kh * w.g + row % w.g) * HD + c : q;
        qb_apw_cp_async16((uint32_t)__cvta_generic_to_shared(qs + r * LD + c), src, ok);
    }
}

/* This warp's Q rows as wgmma A fragments (one per 16 head dims). */
template <int HD>
__device__ __forceinline__ void qb_apw_q_frags(uint32_t (*qa)[4], const qb_bf16 *qs, const qb_apw_rows &w) {
    constexpr int LD = HD + 8;
#pragma unroll
    for (int s = 0; s < HD / 16; s++) {
        uint32_t addr = (uint32_t)__cvta_generic_to_shared(qs + (w.warp * 16 + (w.mat & 1) * 8 + w.mrow) * LD + s * 16 +
                                                           (w.mat >> 1) * 8);
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(qa[s][0]), "=r"(qa[s][1]), "=r"(qa[s][2]), "=r"(qa[s][3])
                     : "r"(addr));
    }
}

#ifdef QB_APW_HAVE_WGMMA
/* Issue S = Q K^T for the K tile at kst (not committed). */
template <int HD>
__device__ __forceinline__ void qb_apw_issue_s(float *s, uint32_t (*qa)[4], uint32_t kst) {
#pragma unroll
    for (int ks = 0; ks < HD / 16; ks++)
        qb_wgmma_m64n128k16_rs<0>(s, qa[ks], qb_apw_desc(kst + (ks >> 2) * (QB_APW_BN * 128) + (ks & 3) * 32, 16, 1024),
                                  ks > 0);
}

/* Issue O += P V for the V tile at vst (not committed). */
template <int HD>
__device__ __forceinline__ void qb_apw_issue_pv(float *o, uint32_t (*pa)[4], uint32_t vst) {
#pragma unroll
    for (int kk = 0; kk < QB_APW_BN / 16; kk++) {
        uint64_t dv = qb_apw_desc(vst + kk * 16 * 128, QB_APW_BN * 128, 1024);
        if constexpr (HD == 128) qb_wgmma_m64n128k16_rs<1>(o, pa[kk], dv, 1);
        else qb_wgmma_m64n64k16_rs<1>(o, pa[kk], dv, 1);
    }
}
#endif

/* Online softmax of one S tile (keys k0 ..): causal mask where the tile crosses the warp's diagonal, new row
 * maxima (raw units), s replaced by exp2 of the scaled scores, row sums updated; alpha = rescale for the old O. */
__device__ __forceinline__ void qb_apw_softmax(float *s, int k0, const qb_apw_rows &w, float scale_log2, float &m_a,
                                               float &m_b, float &l_a, float &l_b, float &alpha_a, float &alpha_b) {
    constexpr int ST = QB_APW_BN / 8;
    if (k0 + QB_APW_BN - 1 > w.warp_first_pos) {
#pragma unroll
        for (int t = 0; t < ST; t++) {
            int key = k0 + t * 8 + w.tig * 2;
            if (key > w.qpos_a) s[4 * t + 0] = -INFINITY;
            if (key + 1 > w.qpos_a) s[4 * t + 1] = -INFINITY;
            if (key > w.qpos_b) s[4 * t + 2] = -INFINITY;
            if (key + 1 > w.qpos_b) s[4 * t + 3] = -INFINITY;
        }
    }
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int t = 0; t < ST; t++) {
        mx_a = fmaxf(mx_a, fmaxf(s[4 * t + 0], s[4 * t + 1]));
        mx_b = fmaxf(mx_b, fmaxf(s[4 * t + 2], s[4 * t + 3]));
    }
    float base_a, base_b;
    qb_quad_softmax_max(mx_a, mx_b, scale_log2, m_a, m_b, base_a, base_b, alpha_a, alpha_b);
    float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
    for (int t = 0; t < ST; t++) {
        s[4 * t + 0] = exp2f(fmaf(s[4 * t + 0], scale_log2, -base_a));
        s[4 * t + 1] = exp2f(fmaf(s[4 * t + 1], scale_log2, -base_a));
        s[4 * t + 2] = exp2f(fmaf(s[4 * t + 2], scale_log2, -base_b));
        s[4 * t + 3] = exp2f(fmaf(s[4 * t + 3], scale_log2, -base_b));
        sum_a += s[4 * t + 0] + s[4 * t + 1];
        sum_b += s[4 * t + 2] + s[4 * t + 3];
    }
    l_a = l_a * alpha_a + sum_a;
    l_b = l_b * alpha_b + sum_b;
}

/* P (fp32 S accumulator layout) -> bf16 A fragments of P.V, one per 16 keys. */
__device__ __forceinline__ void qb_apw_pack_p(uint32_t (*pa)[4], const float *s) {
#pragma unroll
    for (int kk = 0; kk < QB_APW_BN / 16; kk++) {
        pa[kk][0] = qb_apw_pack(s[8 * kk + 0], s[8 * kk + 1]);
        pa[kk][1] = qb_apw_pack(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = qb_apw_pack(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = qb_apw_pack(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

template <int DT>
__device__ __forceinline__ void qb_apw_rescale(float *o, float alpha_a, float alpha_b) {
#pragma unroll
    for (int d = 0; d < DT; d++) {
        o[4 * d + 0] *= alpha_a;
        o[4 * d + 1] *= alpha_a;
        o[4 * d + 2] *= alpha_b;
        o[4 * d + 3] *= alpha_b;
    }
}

/* Final normalisation (the quad holds a row's partial sums) and the bf16 store of this thread's O values. */
template <int HD>
__device__ __forceinline__ void qb_apw_store(qb_bf16 *out, const float *o, float l_a, float l_b, const qb_apw_rows &w,
                                             int hq) {
    constexpr int DT = HD / 8;
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    float inv_a = l_a > 0.f ? 1.f / l_a : 0.f, inv_b = l_b > 0.f ? 1.f / l_b : 0.f;
    if (w.valid_a) {
        qb_bf16 *dst = out + ((size_t)w.tok_a * hq + w.kh * w.g + w.row_a % w.g) * HD;
#pragma unroll
        for (int d = 0; d < DT; d++)
            *(uint32_t *)(dst + d * 8 + w.tig * 2) = qb_apw_pack(o[4 * d + 0] * inv_a, o[4 * d + 1] * inv_a);
    }
    if (w.valid_b) {
        qb_bf16 *dst = out + ((size_t)w.tok_b * hq + w.kh * w.g + w.row_b % w.g) * HD;
#pragma unroll
        for (int d = 0; d < DT; d++)
            *(uint32_t *)(dst + d * 8 + w.tig * 2) = qb_apw_pack(o[4 * d + 2] * inv_b, o[4 * d + 3] * inv_b);
    }
}

__device__ __forceinline__ void qb_apw_tiles_landed(void) {
    asm volatile("cp.async.wait_group 0;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); /* generic-proxy writes -> wgmma reads */
    __syncthreads();
}

/* The start both kernels share: the shared-memory stages (1024-aligned; K stage s at kv0 + s*TILE, V stage s at
 * kv0 + (2+s)*TILE, then Q), the PDL hand-over, the block's rows and its KV head's caches, and the loads of Q,
 * K(0) and V(0) into stage 0 (issued, not committed: the caller may add loads to the group). */
struct qb_apw_start {
    uint32_t kv0;
    qb_bf16 *qs;
    qb_apw_rows w;
    const qb_bf16 *kb, *vb;
};

template <int HD>
__device__ __forceinline__ qb_apw_start qb_apw_begin(unsigned char *smem, const qb_bf16 *q, const qb_bf16 *k_cache,
                                                     const qb_bf16 *v_cache, int max_seq, int n, int start, int hq,
                                                     int hkv, int row_tiles) {
    constexpr uint32_t TILE = QB_APW_BN * HD * 2; /* bytes of one K or V stage */
    qb_apw_start b;
    uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);
    b.kv0 = (sbase + 1023u) & ~1023u;
    b.qs = (qb_bf16 *)(smem + (b.kv0 - sbase) + 4 * TILE);
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    b.w = qb_apw_geometry(n, start, hq, hkv, row_tiles);
    b.kb = k_cache + (size_t)b.w.kh * max_seq * HD;
    b.vb = v_cache + (size_t)b.w.kh * max_seq * HD;
    qb_apw_load_q<HD>(b.qs, q, b.w, hq);
    qb_apw_load_tile<HD>(b.kv0, b.kb, 0, b.w.kv_end, b.w.tid);            /* K(0) -> K stage 0 */
    qb_apw_load_tile<HD>(b.kv0 + 2 * TILE, b.vb, 0, b.w.kv_end, b.w.tid); /* V(0) -> V stage 0 */
    return b;
}

/* After the first group landed: the Q fragments of the warp's rows, O zero, the running maxima and sums empty. */
template <int HD>
__device__ __forceinline__ void qb_apw_first_landed(uint32_t (&qa)[HD / 16][4], const qb_apw_start &b,
                                                    float (&o)[HD / 8 * 4], float &m_a, float &m_b, float &l_a,
                                                    float &l_b) {
    asm volatile("cp.async.commit_group;" ::: "memory");
    qb_apw_tiles_landed();
    qb_apw_q_frags<HD>(qa, b.qs, b.w);
#pragma unroll
    for (int i = 0; i < HD / 8 * 4; i++) o[i] = 0.f;
    m_a = -INFINITY; /* m in raw score units */
    m_b = -INFINITY;
    l_a = 0.f;
    l_b = 0.f;
}

/* wg: per key tile j: S = Q K_j^T, wait, softmax, O += P V_j, wait. Tile j+1 loads meanwhile. */
template <int HD>
__global__ void __launch_bounds__(QB_APW_THREADS, 1)
qb_attn_prefill_wg_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq, int n,
                          int start, int hq, int hkv, int row_tiles, float scale_log2, qb_bf16 *out) {
#ifdef QB_APW_HAVE_WGMMA
    constexpr int ST = QB_APW_BN / 8, PK = QB_APW_BN / 16, DT = HD / 8;
    constexpr uint32_t TILE = QB_APW_BN * HD * 2;
    extern __shared__ __align__(1024) unsigned char qb_apw_smem[];
    qb_apw_start b = qb_apw_begin<HD>(qb_apw_smem, q, k_cache, v_cache, max_seq, n, start, hq, hkv, row_tiles);
    const uint32_t kv0 = b.kv0;
    const qb_apw_rows &w = b.w;
    const qb_bf16 *kb = b.kb, *vb = b.vb;
    uint32_t qa[HD / 16][4];
    float o[DT * 4], m_a, m_b, l_a, l_b;
    qb_apw_first_landed<HD>(qa, b, o, m_a, m_b, l_a, l_b);

    for (int j = 0; j < w.key_tiles; j++) {
        if (j > 0) qb_apw_tiles_landed(); /* tile j visible to all; everyone done with tile j-1's stage */
        if (j + 1 < w.key_tiles) {
            int nxt = (j + 1) & 1;
            qb_apw_load_tile<HD>(kv0 + nxt * TILE, kb, (j + 1) * QB_APW_BN, w.kv_end, w.tid);
            qb_apw_load_tile<HD>(kv0 + (2 + nxt) * TILE, vb, (j + 1) * QB_APW_BN, w.kv_end, w.tid);
            asm volatile("cp.async.commit_group;" ::: "memory");
        }
        if (j >= w.wg_tiles) continue; /* uniform per warpgroup: wholly in its future */
        float s[ST * 4];
        qb_wgmma_fence();
        qb_apw_issue_s<HD>(s, qa, kv0 + (j & 1) * TILE);
        qb_wgmma_commit();
        qb_wgmma_wait_all();
        qb_apw_pin<ST * 4>(s);
        float alpha_a, alpha_b;
        qb_apw_softmax(s, j * QB_APW_BN, w, scale_log2, m_a, m_b, l_a, l_b, alpha_a, alpha_b);
        qb_apw_rescale<DT>(o, alpha_a, alpha_b);
        uint32_t pa[PK][4];
        qb_apw_pack_p(pa, s);
        qb_wgmma_fence();
        qb_apw_issue_pv<HD>(o, pa, kv0 + (2 + (j & 1)) * TILE);
        qb_wgmma_commit();
        qb_wgmma_wait_all();
        qb_apw_pin<DT * 4>(o);
    }
    qb_apw_store<HD>(out, o, l_a, l_b, w, hq);
#else
    __trap(); /* built without sm_90a: the launcher never gets here (it checks the device) */
#endif
}

/* wgp: S one tile ahead. Iteration j issues S(j+1) = Q K_{j+1}^T and O += P(j) V_j together, waits for S(j+1)
 * only, runs the softmax of S(j+1) while P(j) V_j is on the tensor cores, then waits for it, rescales O and packs
 * P(j+1). K and V tiles are staged separately: K(j+2) and V(j+1) load during iteration j (K stage j%2 was last
 * read by S(j), done in iteration j-1; V stage (j+1)%2 by P(j-1) V_{j-1}, done in iteration j-1). */
template <int HD>
__global__ void __launch_bounds__(QB_APW_THREADS, 1)
qb_attn_prefill_wgp_kernel(const qb_bf16 *q, const qb_bf16 *k_cache, const qb_bf16 *v_cache, int max_seq, int n,
                           int start, int hq, int hkv, int row_tiles, float scale_log2, qb_bf16 *out) {
#ifdef QB_APW_HAVE_WGMMA
    constexpr int ST = QB_APW_BN / 8, PK = QB_APW_BN / 16, DT = HD / 8;
    constexpr uint32_t TILE = QB_APW_BN * HD * 2;
    extern __shared__ __align__(1024) unsigned char qb_apw_smem[];
    qb_apw_start b = qb_apw_begin<HD>(qb_apw_smem, q, k_cache, v_cache, max_seq, n, start, hq, hkv, row_tiles);
    const uint32_t kv0 = b.kv0;
    const qb_apw_rows &w = b.w;
    const qb_bf16 *kb = b.kb, *vb = b.vb;
    if (w.key_tiles > 1) qb_apw_load_tile<HD>(kv0 + TILE, kb, QB_APW_BN, w.kv_end, w.tid); /* K(1) -> K stage 1 */
    uint32_t qa[HD / 16][4];
    float o[DT * 4], m_a, m_b, l_a, l_b;
    qb_apw_first_landed<HD>(qa, b, o, m_a, m_b, l_a, l_b);
    float s[ST * 4];
    uint32_t pa[PK][4];
    { /* S(0) and P(0); also in a warpgroup without rows (harmless, and no divergent wgmma) */
        qb_wgmma_fence();
        qb_apw_issue_s<HD>(s, qa, kv0);
        qb_wgmma_commit();
        qb_wgmma_wait_all();
        qb_apw_pin<ST * 4>(s);
        float alpha_a, alpha_b; /* O is zero: nothing to rescale */
        qb_apw_softmax(s, 0, w, scale_log2, m_a, m_b, l_a, l_b, alpha_a, alpha_b);
        qb_apw_pack_p(pa, s);
    }

    for (int j = 0; j < w.key_tiles; j++) {
        /* K(j+1), V(j) landed for everyone; every warpgroup is done with S(j) and P(j-1) V_{j-1} */
        qb_apw_tiles_landed();
        if (j + 2 < w.key_tiles) qb_apw_load_tile<HD>(kv0 + (j & 1) * TILE, kb, (j + 2) * QB_APW_BN, w.kv_end, w.tid);
        if (j + 1 < w.key_tiles)
            qb_apw_load_tile<HD>(kv0 + (2 + ((j + 1) & 1)) * TILE, vb, (j + 1) * QB_APW_BN, w.kv_end, w.tid);
        asm volatile("cp.async.commit_group;" ::: "memory");
        if (j >= w.wg_tiles) continue; /* uniform per warpgroup */
        /* S(j+1) is issued even past this warpgroup's last tile (then from a stale stage, and discarded):
         * wgmma under a branch would make ptxas serialize every wgmma of the kernel */
        bool ahead = j + 1 < w.wg_tiles;
        qb_wgmma_fence();
        qb_apw_issue_s<HD>(s, qa, kv0 + ((j + 1) & 1) * TILE);
        qb_wgmma_commit();
        qb_apw_issue_pv<HD>(o, pa, kv0 + (2 + (j & 1)) * TILE);
        qb_wgmma_commit();
        asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory"); /* S(j+1) done; P(j) V_j may run on */
        qb_apw_pin<ST * 4>(s);
        float alpha_a = 1.f, alpha_b = 1.f;
        if (ahead) qb_apw_softmax(s, (j + 1) * QB_APW_BN, w, scale_log2, m_a, m_b, l_a, l_b, alpha_a, alpha_b);
        qb_wgmma_wait_all();
        qb_apw_pin<DT * 4>(o);
        if (ahead) {
            qb_apw_rescale<DT>(o, alpha_a, alpha_b);
            qb_apw_pack_p(pa, s);
        }
    }
    qb_apw_store<HD>(out, o, l_a, l_b, w, hq);
#else
    __trap();
#endif
}

typedef void (*qb_apw_kernel_fn)(const qb_bf16 *, const qb_bf16 *, const qb_bf16 *, int, int, int, int, int, int, float,
                                 qb_bf16 *);

/* The kernel of (HD, PIPELINED); only that one is instantiated. */
template <int HD, int PIPELINED>
static qb_apw_kernel_fn qb_apw_kernel(void) {
    if constexpr (PIPELINED) return qb_attn_prefill_wgp_kernel<HD>;
    else return qb_attn_prefill_wg_kernel<HD>;
}

/* Launch wg (PIPELINED 0) or wgp (1) at head_dim HD; arguments checked by the caller. Refuses a device other than
 * sm_90 (the kernels trap there). */
template <int HD, int PIPELINED>
static int qb_apw_launch(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq, int n,
                         int start, int hq, int hkv, uint16_t *out, cudaStream_t stream) {
    const char *what = PIPELINED ? "attention_prefill (wgp)" : "attention_prefill (wg)";
    const qb_apw_kernel_fn kernel = qb_apw_kernel<HD, PIPELINED>();
    size_t smem = qb_apw_smem_bytes(HD);
    static int attr_set = 0;
    if (!attr_set) {
        int dev = 0, major = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
        if (e != cudaSuccess) return qb_errorf("%s: device query: %s", what, cudaGetErrorString(e));
        if (major != 9) return qb_errorf("%s: needs an sm_90 GPU (Hopper), device is sm_%d", what, major * 10);
        e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return qb_errorf("%s: shared memory %zu B: %s", what, smem, cudaGetErrorString(e));
        attr_set = 1;
    }
    int g = hq / hkv;
    long rows = (long)n * g;
    int row_tiles = qb_ceil_div(rows, QB_APW_BM);
    dim3 grid((unsigned)row_tiles * (unsigned)hkv);
    float scale_log2 = (float)(1.0 / sqrt((double)HD) * 1.4426950408889634);
    QB_LAUNCH(what, kernel, grid, dim3(QB_APW_THREADS), smem, stream, (const qb_bf16 *)q, (const qb_bf16 *)k_cache,
              (const qb_bf16 *)v_cache, max_seq, n, start, hq, hkv, row_tiles, scale_log2, (qb_bf16 *)out);
    return 0;
}
#endif
