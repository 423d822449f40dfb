/* test_cuda_bench.h - the timing shared by the CUDA micro-benchmarks: a graph of launches replayed after one
 * warm-up replay (median seconds per launch), and the device-to-device copy bandwidth the GEMV and attention
 * figures are compared with. Header-only (static inline functions) like test_cuda_util.h, whose CK it uses.
 */
#ifndef QB_TEST_CUDA_BENCH_H
#define QB_TEST_CUDA_BENCH_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_cuda_util.h"

/* One launch of the benchmarked work; i = 0 .. reps-1 lets it rotate over copies so the L2 cannot serve them. */
typedef int (*qb_bench_launch_fn)(void *ctx, int i);

static inline int qb_bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts t[0..n) and returns its median. */
static inline double qb_bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, qb_bench_cmp_double);
    return t[n / 2];
}

/* Median seconds per launch: fn(ctx, 0 .. reps-1) captured as one graph on stream s, one warm-up replay, then
 * `rounds` timed replays (at most 64). A failing launch ends the program with its message. */
static inline double qb_bench_graph_seconds(cudaStream_t s, qb_bench_launch_fn fn, void *ctx, int reps, int rounds) {
    double t[64];
    if (rounds < 1 || rounds > 64) {
        fprintf(stderr, "FATAL qb_bench_graph_seconds: %d rounds (1..64)\n", rounds);
        exit(1);
    }
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < reps; i++)
        if (fn(ctx, i) != 0) {
            fprintf(stderr, "FATAL launch: %s\n", qb_last_error());
            exit(1);
        }
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaGraphLaunch(ge, s)); /* warm-up */
    for (int r = 0; r < rounds; r++) {
        CK(cudaEventRecord(e0, s));
        CK(cudaGraphLaunch(ge, s));
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        t[r] = ms * 1e-3 / reps;
    }
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    return qb_bench_median(t, rounds);
}

/* Device-to-device copy bandwidth in GB/s (bytes read + written) of a 1 GiB copy on stream s, median of
 * `rounds` copies (at most 64) after one untimed copy. */
static inline double qb_bench_copy_gbps(cudaStream_t s, int rounds) {
    size_t bytes = 1ull << 30;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemsetAsync(a, 1, bytes, s));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double t[64];
    if (rounds < 1 || rounds > 64) {
        fprintf(stderr, "FATAL qb_bench_copy_gbps: %d rounds (1..64)\n", rounds);
        exit(1);
    }
    CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));
    for (int r = 0; r < rounds; r++) {
        CK(cudaEventRecord(e0, s));
        CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        t[r] = ms * 1e-3;
    }
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    return 2.0 * (double)bytes / qb_bench_median(t, rounds) / 1e9;
}

#endif
