/* test_cuda_util.h - shared helpers of the CUDA tests: skip without a GPU, device buffers guarded by
 * sentinels, bf16 conversion, and the error metric (relative L2 error, NaN always fails).
 * Header-only (static functions) so each test stays one C file.
 */
#ifndef QB_TEST_CUDA_UTIL_H
#define QB_TEST_CUDA_UTIL_H

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/random_init.h"
#include "util/error.h"

#define QB_SKIP_CODE 77
#define QB_GUARD 64 /* sentinel elements after every output (bytes = 64 * element size) */
#define QB_SENTINEL_BYTE 0xA5

static int g_failures = 0;

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define LAUNCH(call)                                                                               \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, qb_last_error());  \
            exit(1);                                                                               \
        }                                                                                          \
        CK(cudaDeviceSynchronize());                                                               \
    } while (0)

static void qb_test_skip_without_gpu(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no GPU\n");
        exit(QB_SKIP_CODE);
    }
}

/* Fill / upload that have landed when they return. A plain cudaMemset of device memory runs on the legacy stream
 * and may return before it is done, and a cudaMemcpy from pageable host memory may return before its DMA lands; the
 * tests' kernels run on non-blocking streams, which do not wait for the legacy stream, so without the device
 * synchronisation a fill could land after a kernel's output (an output "never written") or a kernel could read
 * an input before it arrived. Seen on the H100 when GPU tests ran side by side (ctest -j3, 2026-12-08). */
static void dev_set_bytes(void *p, int byte, size_t bytes) {
    CK(cudaMemset(p, byte, bytes));
    CK(cudaDeviceSynchronize());
}
static void h2d(void *dst, const void *src, size_t bytes) {
    CK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
    CK(cudaDeviceSynchronize());
}

/* Device buffer of bytes plus a guard zone filled with sentinels. */
static void *dev_alloc_guarded(size_t bytes) {
    void *p = NULL;
    CK(cudaMalloc(&p, bytes + QB_GUARD * 8));
    dev_set_bytes(p, QB_SENTINEL_BYTE, bytes + QB_GUARD * 8);
    return p;
}

/* 1 if the guard after bytes is intact. */
static int dev_guard_ok(const void *p, size_t bytes, const char *what) {
    unsigned char g[QB_GUARD * 8];
    CK(cudaMemcpy(g, (const char *)p + bytes, sizeof g, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < sizeof g; i++)
        if (g[i] != QB_SENTINEL_BYTE) {
            printf("FAIL %s: out-of-bounds write %zu bytes past the end\n", what, i);
            g_failures++;
            return 0;
        }
    return 1;
}

static void *dev_upload(const void *h, size_t bytes) {
    void *p = dev_alloc_guarded(bytes);
    h2d(p, h, bytes);
    return p;
}

static uint64_t g_rng = 0x1234567;
static float rnd_uniform(float lo, float hi) { /* splitmix-based, reproducible */
    g_rng = qb_splitmix64(g_rng);
    return lo + (hi - lo) * (float)((g_rng >> 40) * (1.0 / 16777216.0));
}

static void fill_bf16(uint16_t *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = qb_float_to_bf16(rnd_uniform(-scale, scale));
}

static void bf16_to_f32(const uint16_t *x, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = qb_bf16_to_float(x[i]);
}

/* Compare got vs ref: relative L2 error <= tol, no NaN/inf. Prints the first mismatches on failure. */
static int check_close(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double num = 0, den = 0;
    size_t bad = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            printf("FAIL %s: non-finite value %g at %zu (ref %g)\n", what, got[i], i, ref[i]);
            g_failures++;
            return 0;
        }
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (bad == (size_t)-1 && fabs(d) > 10 * tol * (fabs(ref[i]) + 1e-2)) bad = i;
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    if (rel > tol) {
        printf("FAIL %s: relative L2 error %.3g > tolerance %.3g (n=%zu)\n", what, rel, tol, n);
        size_t shown = 0;
        for (size_t i = 0; i < n && shown < 5; i++)
            if (fabs((double)got[i] - ref[i]) > tol * (fabs(ref[i]) + 1e-3)) {
                printf("    [%zu] got %.6g ref %.6g\n", i, got[i], ref[i]);
                shown++;
            }
        g_failures++;
        return 0;
    }
    (void)bad;
    return 1;
}

#endif
