/* silu_mul.cu - SiLU-gated activation (see silu_mul.cuh). */
#include "common.cuh"
#include "silu_mul.cuh"

__global__ void qb_silu_mul_kernel(const qb_bf16 *gu, int inter, long total, qb_bf16 *out) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        long row = i / inter, col = i - row * inter;
        const qb_bf16 *r = gu + row * 2 * inter;
        float g = __bfloat162float(r[col]);
        float u = __bfloat162float(r[inter + col]);
        float s = g / (1.f + __expf(-g));
        out[i] = __float2bfloat16(s * u);
    }
}

extern "C" int qb_launch_silu_mul(const uint16_t *gate_up, int n, int inter, uint16_t *out, cudaStream_t stream) {
    if (n <= 0 || inter <= 0) return qb_errorf("silu_mul: bad sizes n=%d inter=%d", n, inter);
    long total = (long)n * inter;
    long blocks = (total + 255) / 256;
    if (blocks > 132 * 16) blocks = 132 * 16;
    QB_LAUNCH("silu_mul", qb_silu_mul_kernel, dim3((unsigned)blocks), dim3(256), 0, stream, (const qb_bf16 *)gate_up,
              inter, total, (qb_bf16 *)out);
    return 0;
}
