/* gemv_quant_tc_by_shape.c - kernel lab: the product's tensor-core quantized GEMV with warps per 16-row tile chosen
 * by shape (formerly QB_GEMV_QUANT=tc for 4 and 8 bits, and "prev" = this for 4 bits with CUDA cores for 8), moved
 * out of the product: the measured rule (qb_gemv_quant_pick in kernels/linear/gemv_quant.cu) beats it (8 warps for 4 bits;
 * the CUDA-core kernel or 16 warps unroll 4 for 8 bits). Launcher: qb_lab_gemv_quant_tc_by_shape (lab_kernels.h).
 */
#include "gemv_quant.cuh"
#include "lab_kernels.h"

/* Warps per 16-row tile by shape: as many as keep the grid within ~31 resident warps per SM of an H100
 * (4096 warps) and give each warp at least two steps. */
static int qb_lab_tc_shape_warps(int n, int steps) {
    long tiles = (n + 15) / 16;
    int w = 16;
    while (w > 1 && (tiles * w > 4096 || steps < 2 * w)) w >>= 1;
    return w;
}

int qb_lab_gemv_quant_tc_by_shape_warps(int n, int k, int bits) {
    return qb_lab_tc_shape_warps(n, k / (512 / bits));
}

int qb_lab_gemv_quant_tc_by_shape(const uint32_t *qweight, const uint32_t *sz, const uint16_t *x, int n, int k,
                                  int bits, int group_size, uint16_t *y_bf16, float *y_f32, cudaStream_t stream) {
    if (bits != 4 && bits != 8) return qb_errorf("gemv_quant_tc_by_shape: bits %d not supported (4 or 8)", bits);
    return qb_launch_gemv_quant_tc_tuned(qweight, sz, x, n, k, bits, group_size, y_bf16, y_f32,
                                         qb_lab_gemv_quant_tc_by_shape_warps(n, k, bits), 2, 0, stream);
}
