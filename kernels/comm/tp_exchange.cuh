/* tp_exchange.cuh - the tensor-parallel residual exchange of the decode step, with no all-reduce kernel.
 *
 * At tensor parallel every row-parallel linear (o_proj, down_proj) leaves a partial sum on each rank. Instead of
 * an all-reduce kernel between that GEMV and the next one, the two GEMVs do the reduction themselves, and the data
 * is its own signal (no flags, no fences):
 *   producer (the row-parallel GEMV, epilogue QB_FE_PUSH of gemv.cuh): each output row's fp32 partial is stored
 *     into slot [this rank] of exchange point p on EVERY rank (remote stores through CUDA IPC, posted);
 *   consumer (the next GEMV's normalising prologue, QB_FX_TPNORM, or qb_launch_tp_sum_rmsnorm for the head): after
 *     the PDL wait every block reads all slots of point p, re-reading any 4-byte word that still holds the
 *     sentinel (0xFFFFFFFF, a NaN no arithmetic produces; a pushed value with those bits is stored as the canonical
 *     NaN), computes x = resid + bf16(sum of the slots in rank order) - the same on every rank and in every block -
 *     and normalises it; block 0 also writes x to the next residual buffer (the residual alternates between two
 *     buffers, so no block reads what another writes). Each consumer also refills the point before its own
 *     (p - 1 mod points) with the sentinel: every local reader of that point has finished (stream order).
 * Points: one per row-parallel linear of a decode step (2 x layers), each [ranks][slot] fp32 on every rank.
 * Why a point is never written before it is refilled: a peer pushes into point q of the next step only after it
 * passed every exchange between, which needs this rank's pushes to them, made after its consumer of q + 1 (which
 * refilled q) finished. The region is a qb_ipc_peers region of allreduce_ipc.h filled with 0xFF bytes at open.
 * A peer that never pushes: after timeout_ns the waiting thread sets *error_dev (host-mapped) and goes on with what
 * it has, so the kernel ends and the host watchdog (qb_nccl_wait) reports the peer.
 * The struct and the launch are C; the device helpers are for .cu files.
 */
#ifndef QB_KERNELS_TP_EXCHANGE_CUH
#define QB_KERNELS_TP_EXCHANGE_CUH

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#define QB_TPX_MAX_RANKS 8
#define QB_TPX_MAX_DIM 8192 /* hidden sizes up to 72B's */
#define QB_TPX_SENTINEL 0xFFFFFFFFu

typedef struct {
    char *base[QB_TPX_MAX_RANKS]; /* every rank's region as mapped on this device (base[rank] = local) */
    size_t slot_bytes;            /* one rank's fp32 values at one point (>= 4 x hidden size, 16-byte multiple) */
    size_t point_bytes;           /* ranks x slot_bytes */
    int points;                   /* exchange points in the region */
    int *error_dev;               /* host-mapped: 1 once a wait timed out */
    unsigned long long timeout_ns;
    int rank, ranks;
} qb_tp_exchange;

#ifdef __cplusplus
extern "C" {
#endif
/* The head's consumer of point p: out (bf16 [dim]) = RMSNorm(resid + bf16(sum of point p's slots)) * w, one block;
 * it refills point p - 1. */
int qb_launch_tp_sum_rmsnorm(const qb_tp_exchange *tp, int point, const float *resid, const float *w, int dim,
                             float eps, uint16_t *out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include "common.cuh"

__device__ __forceinline__ char *qb_tpx_base(const qb_tp_exchange &t, int i) { return qb_select_ptr(t.base, i); }

/* Producer, one row: value into slot [rank] of point p on every rank. */
__device__ __forceinline__ void qb_tpx_push(const qb_tp_exchange &t, int point, int row, float v) {
    unsigned int u = __float_as_uint(v);
    if (u == QB_TPX_SENTINEL) u = 0x7FFFFFFFu;
    size_t off = (size_t)point * t.point_bytes + (size_t)t.rank * t.slot_bytes + (size_t)row * 4;
#pragma unroll
    for (int r = 0; r < QB_TPX_MAX_RANKS; r++)
        if (r < t.ranks) asm volatile("st.volatile.global.u32 [%0], %1;" ::"l"(t.base[r] + off), "r"(u) : "memory");
}

__device__ __forceinline__ bool qb_tpx_arrived(float4 v) {
    return __float_as_uint(v.x) != QB_TPX_SENTINEL && __float_as_uint(v.y) != QB_TPX_SENTINEL &&
           __float_as_uint(v.z) != QB_TPX_SENTINEL && __float_as_uint(v.w) != QB_TPX_SENTINEL;
}

/* Consumer: 16 bytes of a slot once every word has arrived (or the wait timed out: then *failed is set). */
__device__ __forceinline__ float4 qb_tpx_poll4(const qb_tp_exchange &t, const float4 *p, bool &failed) {
    float4 v;
    unsigned long long start = 0;
    for (;;) {
        asm volatile("ld.volatile.global.v4.f32 {%0,%1,%2,%3}, [%4];"
                     : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                     : "l"(p)
                     : "memory");
        if (qb_tpx_arrived(v) || failed) return v;
        unsigned long long now;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
        if (start == 0) {
            start = now;
        } else if (now - start > t.timeout_ns) {
            failed = true;
            *(volatile int *)t.error_dev = 1;
            __threadfence_system();
            return v;
        }
    }
}

/* Consumer: x[8] = resid[8g..8g+7] + bf16(sum over ranks of point p's slots), waiting for each slot's words. */
__device__ __forceinline__ void qb_tpx_sum8(const qb_tp_exchange &t, int point, const float *resid, int g,
                                            float x[8], bool &failed) {
    float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const char *pt = qb_tpx_base(t, t.rank) + (size_t)point * t.point_bytes;
#pragma unroll
    for (int r = 0; r < QB_TPX_MAX_RANKS; r++) {
        if (r < t.ranks) {
            const float4 *p = (const float4 *)(pt + (size_t)r * t.slot_bytes) + 2 * g;
            float4 a = qb_tpx_poll4(t, p, failed), b = qb_tpx_poll4(t, p + 1, failed);
            s[0] += a.x; s[1] += a.y; s[2] += a.z; s[3] += a.w;
            s[4] += b.x; s[5] += b.y; s[6] += b.z; s[7] += b.w;
        }
    }
    const float4 *r4 = (const float4 *)resid + 2 * g;
    float4 a = r4[0], b = r4[1];
    float rv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int i = 0; i < 8; i++) x[i] = rv[i] + __bfloat162float(__float2bfloat16(s[i]));
}

/* Consumer of point p, its share (block `part` of `parts`, THREADS threads) of refilling point p - 1 (mod points)
 * with the sentinel on this rank. */
template <int THREADS>
__device__ __forceinline__ void qb_tpx_refill_previous(const qb_tp_exchange &t, int point, int part, int parts) {
    int prev = point == 0 ? t.points - 1 : point - 1;
    uint4 *dst = (uint4 *)(qb_tpx_base(t, t.rank) + (size_t)prev * t.point_bytes);
    const uint4 fill = make_uint4(QB_TPX_SENTINEL, QB_TPX_SENTINEL, QB_TPX_SENTINEL, QB_TPX_SENTINEL);
    size_t n = t.point_bytes / 16;
    for (size_t i = (size_t)part * THREADS + threadIdx.x; i < n; i += (size_t)parts * THREADS) dst[i] = fill;
}

/* Consumer, all threads (THREADS of them), after the PDL wait: x = resid + bf16(sum of point p's slots) for k8
 * groups of 8, out (bf16, 16-byte pieces: shared or global) = x * rsqrt(mean(x^2) + eps) * w; resid_next (fp32,
 * or NULL) = x. The sum of squares has one order, so every block and every rank finds the same scale. */
template <int THREADS>
__device__ __forceinline__ void qb_tpx_sum_norm(const qb_tp_exchange &t, int point, const float *resid,
                                                const float *w, int k8, float eps, float *resid_next, uint4 *out,
                                                float *warp_ss) {
    constexpr int MAXG = (QB_TPX_MAX_DIM / 8 + THREADS - 1) / THREADS;
    float x[MAXG][8];
    float ss = 0.f;
    bool failed = false;
#pragma unroll
    for (int j = 0; j < MAXG; j++) {
        int g = threadIdx.x + j * THREADS;
        if (g < k8) {
            qb_tpx_sum8(t, point, resid, g, x[j], failed);
#pragma unroll
            for (int i = 0; i < 8; i++) ss = fmaf(x[j][i], x[j][i], ss);
            if (resid_next) {
                float4 *o = (float4 *)resid_next + 2 * g;
                o[0] = make_float4(x[j][0], x[j][1], x[j][2], x[j][3]);
                o[1] = make_float4(x[j][4], x[j][5], x[j][6], x[j][7]);
            }
        }
    }
    float scale = rsqrtf(qb_block_sum<THREADS>(ss, warp_ss) / (float)(k8 * 8) + eps);
#pragma unroll
    for (int j = 0; j < MAXG; j++) {
        int g = threadIdx.x + j * THREADS;
        if (g < k8) {
            const float4 *w4 = (const float4 *)w + 2 * g;
            float4 wa = w4[0], wb = w4[1];
            float wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
            uint32_t h[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                __nv_bfloat162 b = __floats2bfloat162_rn(x[j][2 * i] * scale * wv[2 * i],
                                                         x[j][2 * i + 1] * scale * wv[2 * i + 1]);
                h[i] = *reinterpret_cast<uint32_t *>(&b);
            }
            out[g] = make_uint4(h[0], h[1], h[2], h[3]);
        }
    }
    __syncthreads();
}

#endif /* __CUDACC__ */
#endif
