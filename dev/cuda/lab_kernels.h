/* lab_kernels.h - the kernel lab's launchers (the .cu and .c files of dev/cuda): variants that lost to the product's
 * kernels or are known wrong, kept with their checks and timings but never linked into qwenbench (dev/README.md).
 * Each takes the arguments of the product launcher it competes with and returns 0, or -1 with a qb_errorf message.
 * Also: qb_lab_skip_without_gpu, the harnesses' "no GPU" exit (0: a lab check that cannot run is not a failure).
 */
#ifndef QB_DEV_CUDA_LAB_KERNELS_H
#define QB_DEV_CUDA_LAB_KERNELS_H
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __cplusplus
extern "C" {
#endif
#include "util/error.h"

/* Prefill attention (as qb_launch_attention_prefill): the first 64-row single-buffered kernel ("old"), and the
 * Hopper wg kernel at head_dim 128 (wrong there; head_dim 128 only, sm_90 only). */
int qb_lab_attention_prefill_old(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                 int n, int start, int hq, int hkv, int hd, uint16_t *out, cudaStream_t stream);
int qb_lab_attention_prefill_wg128(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                   int n, int start, int hq, int hkv, int hd, uint16_t *out, cudaStream_t stream);

/* Decode attention (as qb_launch_attention_decode): the first, CUDA-core split kernel ("old") + the product's merge. */
int qb_lab_attention_decode_old(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                                int len_cap, const int *pos, int hq, int hkv, int hd, int chunk, float *part_o,
                                float *part_ml, uint16_t *out, cudaStream_t stream);

/* Quantized decode GEMV (as qb_launch_gemv_quant): the cp.async tensor-core kernel, (warps, stages) one of (4, 4)
 * (4, 8) (8, 2) (8, 3) (8, 4) (16, 2); the product's tensor-core kernel with warps per tile by shape (and that
 * number of warps). */
int qb_lab_gemv_quant_tc_async(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k, int bits,
                               int group_size, uint16_t *y_bf16, float *y_f32, int warps, int stages,
                               cudaStream_t stream);
int qb_lab_gemv_quant_tc_by_shape(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                  int bits, int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream);
int qb_lab_gemv_quant_tc_by_shape_warps(int n, int k, int bits);

/* Without a visible GPU: print "skipped: no GPU" and exit 0. */
static inline void qb_lab_skip_without_gpu(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no GPU\n");
        exit(0);
    }
}
#ifdef __cplusplus
}
#endif
#endif
