// allreduce_ipc.cu - the one-shot all-reduce kernel over CUDA IPC peer memory (protocol: allreduce_ipc.h).
//
// One launch = one in-place bf16 sum over all ranks. Data moves by remote stores (push): each rank writes its
// values into its slot of every peer's staging, so after the barrier every read is local. Grid: one block of QB_IPC_THREADS per QB_IPC_THREADS
// 16-byte vectors, at most QB_IPC_MAX_BLOCKS (grid-stride beyond). Block b only synchronises with block b of
// the peers (same slice on every rank), so blocks of one rank never wait for each other.
#include <cuda_bf16.h>
#include <stdint.h>

#include "common.cuh" /* qb_select_ptr; qb_pdl_enabled (kernels/pdl.cu: the engine's one PDL switch) */
#include "comm/cuda/allreduce_ipc.h"

namespace {

// With programmatic dependent launch these kernels may be scheduled while the previous kernel of the stream is
// finishing; they wait for it (and so, transitively, for every earlier kernel) before touching any memory. They
// never let their own dependents start early: the protocol's "call k+1 started => call k finished" must hold
// whatever the kernels in between do.
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

struct oneshot_params {
    char *base[QB_IPC_MAX_RANKS];  // every rank's region as mapped on this device
    unsigned int *counters;        // [QB_IPC_MAX_BLOCKS] epochs, [+0] call counter, [+1] finished blocks
    int *error_dev;                // host-mapped error flag
    unsigned long long timeout_ns;
    size_t slot_bytes;    // one rank's slot in a staging half: the largest reduction
    size_t half_bytes;    // one staging half: ranks x slot_bytes
    size_t flags_offset;
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

__device__ __forceinline__ char *rank_base(const oneshot_params &p, int i) { return qb_select_ptr(p.base, i); }

// epoch reached, robust to wrap-around of the 32-bit counters (a peer is at most one epoch ahead)
__device__ __forceinline__ bool reached(unsigned int flag, unsigned int epoch) { return (int)(flag - epoch) >= 0; }

// Barrier half of one peer, run by thread `peer` (!= p.rank): tells rank `peer` that this rank's barrier slot `slot`
// reached `epoch`, then waits until rank `peer` has told this rank the same. A wait past p.timeout_ns sets *failed
// (the block's shared flag) and the error flag the host reads, and gives up.
__device__ __forceinline__ void signal_and_wait_peer(const oneshot_params &p, const char *my_base, int peer, int slot,
                                                     unsigned int epoch, int *failed) {
    unsigned int *peer_flag =
        reinterpret_cast<unsigned int *>(rank_base(p, peer) + p.flags_offset) + p.rank * QB_IPC_MAX_BLOCKS + slot;
    store_release_sys(peer_flag, epoch);
    const unsigned int *mine = reinterpret_cast<const unsigned int *>(my_base + p.flags_offset) +
                               (unsigned int)peer * QB_IPC_MAX_BLOCKS + slot; /* unsigned, as threadIdx.x */
    if (!reached(load_acquire_sys(mine), epoch)) {
        const unsigned long long start = global_timer_ns();
        while (!reached(load_acquire_sys(mine), epoch)) {
            if (global_timer_ns() - start > p.timeout_ns) {
                *failed = 1;
                *reinterpret_cast<volatile int *>(p.error_dev) = 1;
                __threadfence_system();
                break;
            }
        }
    }
}

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
    wait_for_previous_grid();
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

    // 1. push this rank's slice into its slot of every rank's staging half (remote stores do not wait)
    char *const my_base = rank_base(p, p.rank);
    const size_t my_slot = half + (size_t)p.rank * p.slot_bytes;
    const uint4 *src = reinterpret_cast<const uint4 *>(buf);
    for (size_t v = gid; v < nvec; v += stride) {
        const uint4 x = src[v];
#pragma unroll
        for (int r = 0; r < NR; r++) reinterpret_cast<uint4 *>(p.base[r] + my_slot)[v] = x;
    }
    for (size_t i = nvec * 8 + gid; i < count; i += stride) {
        const __nv_bfloat16 x = buf[i];
#pragma unroll
        for (int r = 0; r < NR; r++) reinterpret_cast<__nv_bfloat16 *>(p.base[r] + my_slot)[i] = x;
    }
    __syncthreads();

    // 2. barrier with block b of every peer: thread t < NR talks to rank t
    if (threadIdx.x < NR && (int)threadIdx.x != p.rank)
        signal_and_wait_peer(p, my_base, (int)threadIdx.x, b, epoch, &s_failed);
    __syncthreads();

    // 3. sum the slots of every rank, all local now, in rank order (identical on every rank), into the buffer
    if (!s_failed) {
        uint4 *dst = reinterpret_cast<uint4 *>(buf);
        for (size_t v = gid; v < nvec; v += stride) {
            uint4 x[NR];
#pragma unroll
            for (int r = 0; r < NR; r++) x[r] = reinterpret_cast<const uint4 *>(my_base + half + r * p.slot_bytes)[v];
            float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int r = 0; r < NR; r++) add_bf16x8(acc, x[r]);
            dst[v] = pack_bf16x8(acc);
        }
        for (size_t i = nvec * 8 + gid; i < count; i += stride) {
            float acc = 0.f;
#pragma unroll
            for (int r = 0; r < NR; r++)
                acc += __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(my_base + half + r * p.slot_bytes)[i]);
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

// Decode-path fusion, one row: delta summed over the ranks (rounded to bf16, as the unfused all-reduce leaves
// it), residual += that sum, out = RMSNorm(residual) * w. One block; the element-to-thread mapping, the order
// of the sum of squares and the rounding follow kernels/norm/add_rmsnorm.cu, so the result is the one of the
// unfused all-reduce + qb_launch_add_rmsnorm. Uses block slot 0 of the barrier and advances the call counter.
template <int NR>
__global__ void __launch_bounds__(QB_IPC_NORM_THREADS)
oneshot_add_rmsnorm_kernel(oneshot_params p, const __nv_bfloat16 *delta, float *residual, const float *w, int dim,
                           float eps, __nv_bfloat16 *out) {
    __shared__ unsigned int s_epoch, s_call;
    __shared__ int s_failed;
    __shared__ float warp_sums[QB_IPC_NORM_THREADS / 32];
    wait_for_previous_grid();
    if (threadIdx.x == 0) {
        unsigned int e = p.counters[0] + 1;
        p.counters[0] = e;
        s_epoch = e;
        s_call = p.counters[QB_IPC_MAX_BLOCKS];
        s_failed = 0;
    }
    __syncthreads();
    const unsigned int epoch = s_epoch;
    const size_t half = (size_t)(s_call & 1u) * p.half_bytes;
    char *const my_base = rank_base(p, p.rank);
    const size_t my_slot = half + (size_t)p.rank * p.slot_bytes;
    for (int i = threadIdx.x; i < dim; i += QB_IPC_NORM_THREADS) {
        const __nv_bfloat16 x = delta[i];
#pragma unroll
        for (int r = 0; r < NR; r++) reinterpret_cast<__nv_bfloat16 *>(p.base[r] + my_slot)[i] = x;
    }
    __syncthreads();

    if (threadIdx.x < NR && (int)threadIdx.x != p.rank)
        signal_and_wait_peer(p, my_base, (int)threadIdx.x, 0, epoch, &s_failed);
    __syncthreads();

    float v[QB_IPC_NORM_PER_THREAD];
    float ss = 0.f;
    const bool ok = !s_failed;
#pragma unroll
    for (int j = 0; j < QB_IPC_NORM_PER_THREAD; j++) {
        int i = threadIdx.x + j * QB_IPC_NORM_THREADS;
        v[j] = 0.f;
        if (ok && i < dim) {
            float sum = 0.f;
#pragma unroll
            for (int r = 0; r < NR; r++)
                sum += __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(my_base + half + r * p.slot_bytes)[i]);
            float x = residual[i] + __bfloat162float(__float2bfloat16_rn(sum));
            residual[i] = x;
            v[j] = x;
            ss = fmaf(x, x, ss);
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = threadIdx.x < QB_IPC_NORM_THREADS / 32 ? warp_sums[threadIdx.x] : 0.f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (threadIdx.x == 0) warp_sums[0] = t;
    }
    __syncthreads();
    const float scale = rsqrtf(warp_sums[0] / (float)dim + eps);
#pragma unroll
    for (int j = 0; j < QB_IPC_NORM_PER_THREAD; j++) {
        int i = threadIdx.x + j * QB_IPC_NORM_THREADS;
        if (ok && i < dim) out[i] = __float2bfloat16(v[j] * scale * w[i]);
    }
    if (threadIdx.x == 0) p.counters[QB_IPC_MAX_BLOCKS] = s_call + 1; /* the only block of this launch */
}

// A launch that may overlap the tail of the previous kernel when PDL is on (see wait_for_previous_grid).
template <typename... KArgs, typename... Args>
cudaError_t launch_pdl(void (*kernel)(KArgs...), int blocks, int threads, cudaStream_t stream, Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)blocks);
    cfg.blockDim = dim3((unsigned)threads);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = qb_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((KArgs)args)...);
}

template <int NR>
cudaError_t launch(const oneshot_params &k, int blocks, __nv_bfloat16 *buf, size_t count, cudaStream_t stream) {
    return launch_pdl(oneshot_kernel<NR>, blocks, QB_IPC_THREADS, stream, k, buf, count);
}

template <int NR>
cudaError_t launch_norm(const oneshot_params &k, const __nv_bfloat16 *delta, float *residual, const float *w, int dim,
                        float eps, __nv_bfloat16 *out, cudaStream_t stream) {
    return launch_pdl(oneshot_add_rmsnorm_kernel<NR>, 1, QB_IPC_NORM_THREADS, stream, k, delta, residual, w, dim,
                      eps, out);
}

oneshot_params make_params(const qb_ipc_peers *p) {
    oneshot_params k;
    for (int r = 0; r < QB_IPC_MAX_RANKS; r++) k.base[r] = r < p->ranks ? p->peer[r] : nullptr;
    k.counters = p->counters;
    k.error_dev = p->error_dev;
    k.timeout_ns = p->timeout_ns;
    k.slot_bytes = p->slot_bytes;
    k.half_bytes = p->half_bytes;
    k.flags_offset = p->flags_offset;
    k.rank = p->rank;
    return k;
}

}  // namespace

extern "C" int qb_ipc_oneshot_add_rmsnorm_launch(const qb_ipc_peers *p, const void *delta, float *residual,
                                                 const float *w, int dim, float eps, void *out, cudaStream_t stream) {
    if (dim <= 0 || dim > QB_IPC_NORM_MAX_DIM || (size_t)dim * 2 > p->slot_bytes) return (int)cudaErrorInvalidValue;
    oneshot_params k = make_params(p);
    const __nv_bfloat16 *d = static_cast<const __nv_bfloat16 *>(delta);
    __nv_bfloat16 *o = static_cast<__nv_bfloat16 *>(out);
    switch (p->ranks) {
    case 2: return (int)launch_norm<2>(k, d, residual, w, dim, eps, o, stream);
    case 3: return (int)launch_norm<3>(k, d, residual, w, dim, eps, o, stream);
    case 4: return (int)launch_norm<4>(k, d, residual, w, dim, eps, o, stream);
    case 5: return (int)launch_norm<5>(k, d, residual, w, dim, eps, o, stream);
    case 6: return (int)launch_norm<6>(k, d, residual, w, dim, eps, o, stream);
    case 7: return (int)launch_norm<7>(k, d, residual, w, dim, eps, o, stream);
    case 8: return (int)launch_norm<8>(k, d, residual, w, dim, eps, o, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int qb_ipc_oneshot_launch(const qb_ipc_peers *p, void *buf, size_t count, cudaStream_t stream) {
    if (count == 0) return (int)cudaSuccess;
    if (count * 2 > p->slot_bytes || ((uintptr_t)buf & 15u) != 0) return (int)cudaErrorInvalidValue;
    oneshot_params k = make_params(p);
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
