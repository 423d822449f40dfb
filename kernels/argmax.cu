/* argmax.cu - greedy token choice and decode-state update (see argmax.cuh). */
#include "argmax.cuh"
#include "common.cuh"

#define QB_ARGMAX_THREADS 1024

/* The better of two candidates: larger value, ties (and NaN-free equal values) -> smaller index. */
__device__ __forceinline__ void qb_better(float &v, int &i, float ov, int oi) {
    if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
}

__global__ void __launch_bounds__(QB_ARGMAX_THREADS)
qb_argmax_kernel(const float *logits, int n, int32_t *token_out, int32_t *token_log, int *step, int *pos,
                 int pos_advance) {
    __shared__ float sv[32];
    __shared__ int si[32];
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    float best = -INFINITY;
    int best_i = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += QB_ARGMAX_THREADS) qb_better(best, best_i, logits[i], i);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
        qb_better(best, best_i, ov, oi);
    }
    if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = best; si[threadIdx.x >> 5] = best_i; }
    __syncthreads();
    if (threadIdx.x < 32) {
        best = sv[threadIdx.x];
        best_i = si[threadIdx.x];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
            qb_better(best, best_i, ov, oi);
        }
        if (threadIdx.x == 0) {
            if (best_i == 0x7fffffff) best_i = 0; /* all NaN: the engine's NaN check reports it */
            *token_out = best_i;
            if (token_log) token_log[*step] = best_i;
            if (step) *step += 1;
            if (pos) *pos += pos_advance;
        }
    }
}

extern "C" int qb_launch_argmax(const float *logits, int n, int32_t *token_out, int32_t *token_log, int *step,
                                int *pos, int pos_advance, cudaStream_t stream) {
    if (n <= 0) return qb_errorf("argmax: empty input");
    if (token_log && !step) return qb_errorf("argmax: token_log needs a step counter");
    QB_LAUNCH("argmax", qb_argmax_kernel, dim3(1), dim3(QB_ARGMAX_THREADS), 0, stream, logits, n, token_out, token_log,
              step, pos, pos_advance);
    return 0;
}

__global__ void qb_set_int_kernel(int *dst, int value) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    *dst = value;
}

extern "C" int qb_launch_set_int(int *dst, int value, cudaStream_t stream) {
    QB_LAUNCH("set_int", qb_set_int_kernel, dim3(1), dim3(1), 0, stream, dst, value);
    return 0;
}
