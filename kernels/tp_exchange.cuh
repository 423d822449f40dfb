/* tp_exchange.cuh - the tensor-parallel residual exchange of the decode step, with no all-reduce kernel.
 *
 * At tensor parallel every row-parallel linear (o_proj, down_proj) leaves a partial sum on each rank. Instead of
 * an all-reduce kernel between that GEMV and the next one, the two GEMVs do the reduction themselves:
 *   producer (the row-parallel GEMV, epilogue QB_FE_PUSH of gemv.cuh): each output row's fp32 partial is stored
 *     into slot [this rank] of buffer `buf` on EVERY rank (remote stores through CUDA IPC, posted, no round
 *     trip); then each block fences (system scope) and counts itself done; the last block of the grid advances
 *     this rank's epoch of `buf` and store-releases it into its flag on every peer;
 *   consumer (the next GEMV's normalising prologue, QB_FX_TPNORM, or qb_launch_tp_sum_rmsnorm for the head):
 *     after the PDL wait (the local producer has finished, so this rank's epoch of `buf` is the current one)
 *     thread t < ranks spins (load-acquire) until peer t's flag reaches that epoch, then every block computes
 *     x = resid + bf16(sum of the slots in rank order), the same on every rank and in every block, and normalises
 *     it; block 0 also writes x to the next residual buffer (the residual alternates between two buffers, so no
 *     block reads what another writes).
 * Two buffers (0: after o_proj, 1: after down_proj) are enough: a rank writes buffer b of the next layer only
 * after every peer passed the exchange in between, which needs this rank's contribution to it, which this rank
 * makes only after its consumer of b finished (stream order).
 * The memory is a qb_ipc_peers region of allreduce_ipc.h (slot_bytes = 4 * hidden size): staging half b holds
 * buffer b, flags [src rank][b] the epochs, private counters [b] the epoch and [2 + b] the finished blocks.
 * A peer that never signals: after timeout_ns the waiting thread sets *error_dev (host-mapped) and the kernel goes
 * on with what it has, so it ends and the host watchdog (qb_nccl_wait) reports the peer.
 * The struct and the launch are C; the device helpers are for .cu files.
 */
#ifndef QB_KERNELS_TP_EXCHANGE_CUH
#define QB_KERNELS_TP_EXCHANGE_CUH

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#define QB_TPX_MAX_RANKS 8
#define QB_TPX_MAX_DIM 8192   /* hidden sizes up to 72B's */
#define QB_TPX_FLAG_STRIDE 32 /* u32 flags per source rank (allreduce_ipc.h's QB_IPC_MAX_BLOCKS) */

typedef struct {
    char *base[QB_TPX_MAX_RANKS]; /* every rank's region as mapped on this device (base[rank] = local) */
    unsigned int *counters;       /* private: [0], [1] epochs of buffers 0 and 1; [2], [3] finished blocks */
    int *error_dev;               /* host-mapped: 1 once a wait timed out */
    unsigned long long timeout_ns;
    size_t half_bytes, slot_bytes, flags_offset;
    int rank, ranks;
} qb_tp_exchange;

#ifdef __cplusplus
extern "C" {
#endif
/* The head's consumer: out (bf16 [dim]) = RMSNorm(resid + bf16(sum of buffer buf's slots)) * w, one block. */
int qb_launch_tp_sum_rmsnorm(const qb_tp_exchange *tp, int buf, const float *resid, const float *w, int dim,
                             float eps, uint16_t *out, cudaStream_t stream);
#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include "common.cuh"

/* base[i] for a run-time i without copying the array to local memory */
__device__ __forceinline__ char *qb_tpx_base(const qb_tp_exchange &t, int i) {
    char *out = t.base[0];
#pragma unroll
    for (int r = 1; r < QB_TPX_MAX_RANKS; r++)
        if (i == r) out = t.base[r];
    return out;
}

/* This rank's slots of buffer buf as seen locally: slot s starts slot_bytes / 4 floats after slot s - 1. */
__device__ __forceinline__ const float *qb_tpx_local_slots(const qb_tp_exchange &t, int buf) {
    return (const float *)(qb_tpx_base(t, t.rank) + (size_t)buf * t.half_bytes);
}

/* Producer, one row: value into slot [rank] of buffer buf on every rank. */
__device__ __forceinline__ void qb_tpx_push(const qb_tp_exchange &t, int buf, int row, float v) {
    size_t off = (size_t)buf * t.half_bytes + (size_t)t.rank * t.slot_bytes;
#pragma unroll
    for (int r = 0; r < QB_TPX_MAX_RANKS; r++)
        if (r < t.ranks) ((float *)(t.base[r] + off))[row] = v;
}

/* Producer, every block once after its last push (all threads): the last block advances the epoch and tells
 * the peers. */
__device__ __forceinline__ void qb_tpx_signal(const qb_tp_exchange &t, int buf) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence_system(); /* this block's remote stores before its count */
        unsigned int done = atomicAdd(&t.counters[2 + buf], 1u);
        if (done == gridDim.x - 1) {
            __threadfence_system(); /* every block's stores (seen through their counts) before the flags */
            t.counters[2 + buf] = 0;
            unsigned int epoch = t.counters[buf] + 1;
            t.counters[buf] = epoch;
            for (int r = 0; r < t.ranks; r++) {
                if (r == t.rank) continue;
                unsigned int *flag = (unsigned int *)(qb_tpx_base(t, r) + t.flags_offset) +
                                     t.rank * QB_TPX_FLAG_STRIDE + buf;
                asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(flag), "r"(epoch) : "memory");
            }
        }
    }
}

/* Consumer, all threads, after the PDL wait: returns once every peer's slots of buffer buf are written. */
__device__ __forceinline__ void qb_tpx_wait(const qb_tp_exchange &t, int buf) {
    int src = threadIdx.x;
    if (src < t.ranks && src != t.rank) {
        unsigned int epoch = *(volatile unsigned int *)&t.counters[buf];
        const unsigned int *flag =
            (const unsigned int *)(qb_tpx_base(t, t.rank) + t.flags_offset) + src * QB_TPX_FLAG_STRIDE + buf;
        unsigned long long start = 0;
        for (;;) {
            unsigned int f;
            asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(f) : "l"(flag) : "memory");
            if ((int)(f - epoch) >= 0) break; /* wrap-safe: a peer is at most one epoch ahead */
            unsigned long long now;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
            if (start == 0) start = now;
            else if (now - start > t.timeout_ns) {
                *(volatile int *)t.error_dev = 1;
                __threadfence_system();
                break;
            }
        }
    }
    __syncthreads();
}

/* Consumer: x[8] = resid[8g..8g+7] + bf16(sum over ranks of the slots), slots read through L2 (peers wrote them). */
__device__ __forceinline__ void qb_tpx_sum8(const qb_tp_exchange &t, const float *slots, const float *resid, int g,
                                            float x[8]) {
    float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const size_t stride = t.slot_bytes / sizeof(float);
#pragma unroll
    for (int r = 0; r < QB_TPX_MAX_RANKS; r++) {
        if (r < t.ranks) {
            const float4 *p = (const float4 *)(slots + r * stride) + 2 * g;
            float4 a = __ldcg(p), b = __ldcg(p + 1);
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

/* Consumer, all threads (THREADS of them), after qb_tpx_wait: x = resid + bf16(sum of buffer buf's slots) for
 * k8 groups of 8, out (bf16, 16-byte pieces: shared or global) = x * rsqrt(mean(x^2) + eps) * w; resid_next (fp32,
 * or NULL) = x. The sum of squares has one order, so every block and every rank finds the same scale. */
template <int THREADS>
__device__ __forceinline__ void qb_tpx_sum_norm(const qb_tp_exchange &t, int buf, const float *resid, const float *w,
                                                int k8, float eps, float *resid_next, uint4 *out, float *warp_ss) {
    constexpr int MAXG = (QB_TPX_MAX_DIM / 8 + THREADS - 1) / THREADS;
    const float *slots = qb_tpx_local_slots(t, buf);
    float x[MAXG][8];
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < MAXG; j++) {
        int g = threadIdx.x + j * THREADS;
        if (g < k8) {
            qb_tpx_sum8(t, slots, resid, g, x[j]);
#pragma unroll
            for (int i = 0; i < 8; i++) ss = fmaf(x[j][i], x[j][i], ss);
            if (resid_next) {
                float4 *o = (float4 *)resid_next + 2 * g;
                o[0] = make_float4(x[j][0], x[j][1], x[j][2], x[j][3]);
                o[1] = make_float4(x[j][4], x[j][5], x[j][6], x[j][7]);
            }
        }
    }
    ss = qb_warp_sum(ss);
    if ((threadIdx.x & 31) == 0) warp_ss[threadIdx.x >> 5] = ss;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; i++) total += warp_ss[i];
    float scale = rsqrtf(total / (float)(k8 * 8) + eps);
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
