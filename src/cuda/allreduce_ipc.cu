// allreduce_ipc.cu - the one-shot all-reduce kernel over CUDA IPC peer memory (protocol: allreduce_ipc.h).
//
// One launch = one in-place bf16 sum over all ranks. Grid: one block of QB_IPC_THREADS per QB_IPC_THREADS
// 16-byte vectors, at most QB_IPC_MAX_BLOCKS (grid-stride beyond). Block b only synchronises with block b of
// the peers (same slice on every rank), so blocks of one rank never wait for each other.
#include <cuda_bf16.h>
#include <stdint.h>

#include "cuda/allreduce_ipc.h"

namespace {

struct oneshot_params {
    char *base[QB_IPC_MAX_RANKS];  // every rank's region as mapped on this device
    unsigned int *counters;        // [QB_IPC_MAX_BLOCKS] epochs, [+0] call counter, [+1] finished blocks
    int *error_dev;                // host-mapped error flag
    unsigned long long timeout_ns;
    size_t half_bytes, flags_offset;
    int rank;
};

__device__ __forceinline__ void store_release_sys(unsigned int *p, unsigned int v) {
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned int load_acquire_sys(const unsigned int *p) {
    unsigned int v;
    asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ unsigned long long global_timer_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// base[i] for a run-time i without copying the parameter array to local memory (constant indices only)
__device__ __forceinline__ char *rank_base(const oneshot_params &p, int i) {
    char *out = p.base[0];
#pragma unroll
    for (int r = 1; r < QB_IPC_MAX_RANKS; r++)
        if (i == r) out = p.base[r];
    return out;
}

// epoch reached, robust to wrap-around of the 32-bit counters (a peer is at most one epoch ahead)
__device__ __forceinline__ bool reached(unsigned int flag, unsigned int epoch) { return (int)(flag - epoch) >= 0; }

__device__ __forceinline__ void add_bf16x8(float acc[8], uint4 v) {
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __bfloat1622float2(h[i]);
        acc[2 * i] += f.x;
        acc[2 * i + 1] += f.y;
    }
}

__device__ __forceinline__ uint4 pack_bf16x8(const float acc[8]) {
    uint4 out;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&out);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(acc[2 * i], acc[2 * i + 1]);
    return out;
}

template <int NR>
__global__ void __launch_bounds__(QB_IPC_THREADS) oneshot_kernel(oneshot_params p, __nv_bfloat16 *buf, size_t count) {
    __shared__ unsigned int s_epoch, s_call;
    __shared__ int s_failed;
    const int b = blockIdx.x;
    if (threadIdx.x == 0) {
        unsigned int e = p.counters[b] + 1;
        p.counters[b] = e;
        s_epoch = e;
        s_call = p.counters[QB_IPC_MAX_BLOCKS];  // advanced only after every block of this launch is done
        s_failed = 0;
    }
    __syncthreads();
    const unsigned int epoch = s_epoch;
    const size_t half = (size_t)(s_call & 1u) * p.half_bytes;
    const size_t nvec = count / 8;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t gid = (size_t)b * blockDim.x + threadIdx.x;

    // 1. own slice into own staging half
    char *const my_base = rank_base(p, p.rank);
    uint4 *my_stage = reinterpret_cast<uint4 *>(my_base + half);
    const uint4 *src = reinterpret_cast<const uint4 *>(buf);
    for (size_t v = gid; v < nvec; v += stride) my_stage[v] = src[v];
    for (size_t i = nvec * 8 + gid; i < count; i += stride) reinterpret_cast<__nv_bfloat16 *>(my_stage)[i] = buf[i];
    __syncthreads();

    // 2. barrier with block b of every peer: thread t < NR talks to rank t
    if (threadIdx.x < NR && (int)threadIdx.x != p.rank) {
        unsigned int *peer_flag =
            reinterpret_cast<unsigned int *>(rank_base(p, (int)threadIdx.x) + p.flags_offset) + p.rank * QB_IPC_MAX_BLOCKS + b;
        store_release_sys(peer_flag, epoch);
        const unsigned int *mine =
            reinterpret_cast<const unsigned int *>(my_base + p.flags_offset) + threadIdx.x * QB_IPC_MAX_BLOCKS + b;
        if (!reached(load_acquire_sys(mine), epoch)) {
            const unsigned long long start = global_timer_ns();
            while (!reached(load_acquire_sys(mine), epoch)) {
                if (global_timer_ns() - start > p.timeout_ns) {
                    s_failed = 1;
                    *reinterpret_cast<volatile int *>(p.error_dev) = 1;
                    __threadfence_system();
                    break;
                }
            }
        }
    }
    __syncthreads();

    // 3. sum every rank's staging slice (fp32), result into the caller's buffer
    if (!s_failed) {
        uint4 *dst = reinterpret_cast<uint4 *>(buf);
        for (size_t v = gid; v < nvec; v += stride) {
            uint4 x[NR];
#pragma unroll
            for (int r = 0; r < NR; r++) x[r] = reinterpret_cast<const uint4 *>(p.base[r] + half)[v];
            float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int r = 0; r < NR; r++) add_bf16x8(acc, x[r]);
            dst[v] = pack_bf16x8(acc);
        }
        for (size_t i = nvec * 8 + gid; i < count; i += stride) {
            float acc = 0.f;
#pragma unroll
            for (int r = 0; r < NR; r++)
                acc += __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p.base[r] + half)[i]);
            buf[i] = __float2bfloat16_rn(acc);
        }
    }

    // 4. the last block of this launch advances the call counter (selects the other staging half next time)
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned int done = atomicAdd(&p.counters[QB_IPC_MAX_BLOCKS + 1], 1u);
        if (done == gridDim.x - 1) {
            p.counters[QB_IPC_MAX_BLOCKS + 1] = 0;
            p.counters[QB_IPC_MAX_BLOCKS] = s_call + 1;
        }
    }
}

template <int NR>
cudaError_t launch(const oneshot_params &k, int blocks, __nv_bfloat16 *buf, size_t count, cudaStream_t stream) {
    oneshot_kernel<NR><<<blocks, QB_IPC_THREADS, 0, stream>>>(k, buf, count);
    return cudaGetLastError();
}

}  // namespace

extern "C" int qb_ipc_oneshot_launch(const qb_ipc_peers *p, void *buf, size_t count, cudaStream_t stream) {
    if (count == 0) return (int)cudaSuccess;
    if (count * 2 > p->half_bytes || ((uintptr_t)buf & 15u) != 0) return (int)cudaErrorInvalidValue;
    oneshot_params k;
    for (int r = 0; r < QB_IPC_MAX_RANKS; r++) k.base[r] = r < p->ranks ? p->peer[r] : nullptr;
    k.counters = p->counters;
    k.error_dev = p->error_dev;
    k.timeout_ns = p->timeout_ns;
    k.half_bytes = p->half_bytes;
    k.flags_offset = p->flags_offset;
    k.rank = p->rank;
    size_t work = count / 8 > 0 ? count / 8 : 1;
    size_t blocks = (work + QB_IPC_THREADS - 1) / QB_IPC_THREADS;
    if (blocks > QB_IPC_MAX_BLOCKS) blocks = QB_IPC_MAX_BLOCKS;
    __nv_bfloat16 *b = static_cast<__nv_bfloat16 *>(buf);
    switch (p->ranks) {
    case 2: return (int)launch<2>(k, (int)blocks, b, count, stream);
    case 3: return (int)launch<3>(k, (int)blocks, b, count, stream);
    case 4: return (int)launch<4>(k, (int)blocks, b, count, stream);
    case 5: return (int)launch<5>(k, (int)blocks, b, count, stream);
    case 6: return (int)launch<6>(k, (int)blocks, b, count, stream);
    case 7: return (int)launch<7>(k, (int)blocks, b, count, stream);
    case 8: return (int)launch<8>(k, (int)blocks, b, count, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
