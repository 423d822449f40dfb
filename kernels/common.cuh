/* common.cuh - shared by the kernel sources: bf16 helpers, 16-byte loads, the launch check.
 * Kernels know nothing of configs, files or MPI: pointers, sizes and a stream (see ../src/cuda/).
 * bf16 tensors cross the C interface as uint16_t bits; inside the kernels they are __nv_bfloat16.
 */
#ifndef QB_KERNELS_COMMON_CUH
#define QB_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "util/error.h"
}

typedef __nv_bfloat16 qb_bf16;

/* After a launch: turn a launch error into the one-line error of util/error.h and return -1. */
#define QB_LAUNCH_CHECK(what)                                                                        \
    do {                                                                                             \
        cudaError_t launch_err_ = cudaGetLastError();                                                \
        if (launch_err_ != cudaSuccess)                                                              \
            return qb_errorf("%s: kernel launch failed: %s", (what), cudaGetErrorString(launch_err_)); \
    } while (0)

/* 16-byte load of read-once data (weights): bypass L1. */
__device__ __forceinline__ uint4 qb_load_stream16(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

__device__ __forceinline__ float2 qb_bf16x2_to_float2(uint32_t u) {
    float2 f;
    f.x = __uint_as_float(u << 16);
    f.y = __uint_as_float(u & 0xffff0000u);
    return f;
}

/* Sum of the 8 products of two vectors of 8 bf16. */
__device__ __forceinline__ float qb_dot8(uint4 a, uint4 b) {
    float2 a0 = qb_bf16x2_to_float2(a.x), b0 = qb_bf16x2_to_float2(b.x);
    float2 a1 = qb_bf16x2_to_float2(a.y), b1 = qb_bf16x2_to_float2(b.y);
    float2 a2 = qb_bf16x2_to_float2(a.z), b2 = qb_bf16x2_to_float2(b.z);
    float2 a3 = qb_bf16x2_to_float2(a.w), b3 = qb_bf16x2_to_float2(b.w);
    float s = a0.x * b0.x;
    s = fmaf(a0.y, b0.y, s);
    s = fmaf(a1.x, b1.x, s);
    s = fmaf(a1.y, b1.y, s);
    s = fmaf(a2.x, b2.x, s);
    s = fmaf(a2.y, b2.y, s);
    s = fmaf(a3.x, b3.x, s);
    s = fmaf(a3.y, b3.y, s);
    return s;
}

__device__ __forceinline__ float qb_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The end of a warp-per-rows GEMV: each of the warp's ROWS sums is reduced across the lanes, and lane 0 stores
 * the rows below n, in fp32 when y_f32 is given, else in bf16. */
template <int ROWS>
__device__ __forceinline__ void qb_warp_rows_store(float (&acc)[ROWS], int lane, int row0, int n, qb_bf16 *y_bf16,
                                                   float *y_f32) {
#pragma unroll
    for (int r = 0; r < ROWS; r++) acc[r] = qb_warp_sum(acc[r]);
    if (lane != 0) return;
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        if (row0 + r < n) {
            if (y_f32) y_f32[row0 + r] = acc[r];
            else y_bf16[row0 + r] = __float2bfloat16(acc[r]);
        }
    }
}

/* One batch of a warp-per-rows GEMV's weights: U 16-byte pieces of each of the ROWS rows, 32 pieces apart from
 * base (the lane's first), streamed past L1; zeros past limit. */
template <int ROWS, int U>
__device__ __forceinline__ void qb_rows_load(uint4 (&wv)[ROWS][U], const uint4 *const (&wr)[ROWS], int base,
                                             int limit) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        int p = base + 32 * u;
#pragma unroll
        for (int r = 0; r < ROWS; r++) wv[r][u] = p < limit ? qb_load_stream16(wr[r] + p) : make_uint4(0, 0, 0, 0);
    }
}

/* Online softmax across the 4 lanes of an mma quad, for its two rows a and b: mx_* are the lane's maxima of the
 * new scores (raw units). Reduced over the quad they update the running maxima m_*; base_* (scaled, 0 for a row
 * with nothing visible yet) is what the new scores' exp2 subtracts and alpha_* rescales the old sums. */
__device__ __forceinline__ void qb_quad_softmax_max(float mx_a, float mx_b, float scale_log2, float &m_a, float &m_b,
                                                    float &base_a, float &base_b, float &alpha_a, float &alpha_b) {
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
    float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    base_a = mn_a == -INFINITY ? 0.f : mn_a * scale_log2;
    base_b = mn_b == -INFINITY ? 0.f : mn_b * scale_log2;
    alpha_a = exp2f(m_a * scale_log2 - base_a);
    alpha_b = exp2f(m_b * scale_log2 - base_b);
    m_a = mn_a;
    m_b = mn_b;
}

/* c += A . B, 16 x 16 bf16 by 16 x 8 bf16, fp32 accumulate (one warp's mma.sync) */
__device__ __forceinline__ void qb_mma_bf16_16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                  uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* The software pipeline's hand-over: the batch loaded ahead (next) becomes the one summed next (cur). */
template <int ROWS, int U>
__device__ __forceinline__ void qb_rows_advance(uint4 (&cur)[ROWS][U], const uint4 (&next)[ROWS][U]) {
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
        for (int r = 0; r < ROWS; r++) cur[r][u] = next[r][u];
}

/* a[i] for a run-time i without copying the array to local memory (the loop leaves only constant indices): the
 * per-rank pointers of the IPC kernels. */
template <int N>
__device__ __forceinline__ char *qb_select_ptr(char *const (&a)[N], int i) {
    char *out = a[0];
#pragma unroll
    for (int r = 1; r < N; r++)
        if (i == r) out = a[r];
    return out;
}

/* Sum of v over a block of THREADS threads (all of them call it), in one fixed order: warp sums, then warps 0, 1, ...
 * - the same total in every block that sums the same values. red: THREADS / 32 floats of shared memory. */
template <int THREADS>
__device__ __forceinline__ float qb_block_sum(float v, float *red) {
    v = qb_warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; i++) total += red[i];
    return total;
}

__device__ __forceinline__ float qb_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static inline int qb_ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

/* SMs of the current device, asked once per translation unit (132 = H100 SXM if the query fails). */
static inline int qb_device_sm_count(void) {
    static int sms = 0;
    if (sms <= 0) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) {
            (void)cudaGetLastError();
            v = 132;
        }
        sms = v;
    }
    return sms;
}

/* Programmatic dependent launch (PDL, Hopper): a kernel launched by qb_launch_kernel may start while the
 * previous kernel in the stream is finishing. Every such kernel calls QB_PDL_WAIT() before it touches memory that
 * another kernel writes or reads (it waits for the previous grid to complete and its writes to be visible), and
 * QB_PDL_TRIGGER() to let the next kernel be scheduled once all of its own blocks are running. Before the wait a
 * kernel may read only constant data (weights). The engine's --pdl option turns it off (plain launches): kernels/pdl.cu
 * holds the switch, qb_pdl_set_enabled sets it. */
#define QB_PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#define QB_PDL_TRIGGER() asm volatile("griddepcontrol.launch_dependents;" ::: "memory")

extern "C" int qb_pdl_enabled(void);
extern "C" void qb_pdl_set_enabled(int on);

template <typename... KArgs, typename... Args>
static inline cudaError_t qb_launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                           cudaStream_t stream, Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = (qb_pdl_enabled() && stream != 0) ? 1 : 0; /* plain launches on the legacy default stream */
    return cudaLaunchKernelEx(&cfg, kernel, ((KArgs)args)...);
}

/* Launch through qb_launch_kernel and turn a failure into the one-line error. */
#define QB_LAUNCH(what, ...)                                                                           \
    do {                                                                                               \
        cudaError_t launch_rc_ = qb_launch_kernel(__VA_ARGS__);                                        \
        if (launch_rc_ != cudaSuccess)                                                                 \
            return qb_errorf("%s: kernel launch failed: %s", (what), cudaGetErrorString(launch_rc_));  \
    } while (0)

#endif
