/* tp_exchange.cu - the head's side of the tensor-parallel residual exchange (see tp_exchange.cuh): after the last
 * layer's down_proj pushed its partial sums, one block waits for the peers' values, sums, adds the residual and
 * applies the final norm into the bf16 vector the lm_head GEMV reads. */
#include "common.cuh"
#include "tp_exchange.cuh"

#define QB_TPX_HEAD_THREADS 256

__global__ void __launch_bounds__(QB_TPX_HEAD_THREADS)
qb_tp_sum_rmsnorm_kernel(qb_tp_exchange t, int point, const float *resid, const float *w, int k8, float eps,
                         uint4 *out) {
    __shared__ float warp_ss[QB_TPX_HEAD_THREADS / 32];
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    qb_tpx_sum_norm<QB_TPX_HEAD_THREADS>(t, point, resid, w, k8, eps, NULL, out, warp_ss);
    qb_tpx_refill_previous<QB_TPX_HEAD_THREADS>(t, point, 0, 1);
}

extern "C" int qb_launch_tp_sum_rmsnorm(const qb_tp_exchange *tp, int point, const float *resid, const float *w,
                                        int dim, float eps, uint16_t *out, cudaStream_t stream) {
    if (!tp || point < 0 || point >= tp->points || dim <= 0 || dim % 8 || dim > QB_TPX_MAX_DIM ||
        (size_t)dim * sizeof(float) > tp->slot_bytes)
        return qb_errorf("tp_sum_rmsnorm: bad exchange, point %d or dim %d", point, dim);
    if (((uintptr_t)resid | (uintptr_t)w | (uintptr_t)out) & 15)
        return qb_errorf("tp_sum_rmsnorm: residual, weight and output must be 16-byte aligned");
    QB_LAUNCH("tp_sum_rmsnorm", qb_tp_sum_rmsnorm_kernel, dim3(1), dim3(QB_TPX_HEAD_THREADS), 0, stream, *tp, point,
              resid, w, dim / 8, eps, (uint4 *)out);
    return 0;
}
