/* qkv_rope.cu - bias + RoPE + KV-cache append (see qkv_rope.cuh). One block per token row. */
#include "common.cuh"
#include "qkv_rope.cuh"

__global__ void qb_qkv_rope_kernel(const qb_bf16 *qkv, const float *bias, int hq, int hkv, int hd,
                                   const int *start_pos, const float *cos_t, const float *sin_t, qb_bf16 *q_out,
                                   qb_bf16 *k_cache, qb_bf16 *v_cache, int max_seq) {
    QB_PDL_WAIT();
    QB_PDL_TRIGGER();
    int row = blockIdx.x;
    int pos = *start_pos + row;
    int half = hd / 2;
    int width = (hq + 2 * hkv) * hd;
    const qb_bf16 *src = qkv + (size_t)row * width;
    const float *c = cos_t + (size_t)pos * half;
    const float *s = sin_t + (size_t)pos * half;
    int rot_items = (hq + hkv) * half;
    for (int it = threadIdx.x; it < rot_items; it += blockDim.x) {
        int head = it / half, i = it - head * half;
        int e0 = head * hd + i, e1 = e0 + half;
        float x0 = __bfloat162float(src[e0]), x1 = __bfloat162float(src[e1]);
        if (bias) {
            x0 = __bfloat162float(__float2bfloat16(x0 + bias[e0]));
            x1 = __bfloat162float(__float2bfloat16(x1 + bias[e1]));
        }
        float y0 = x0 * c[i] - x1 * s[i];
        float y1 = x1 * c[i] + x0 * s[i];
        qb_bf16 *dst;
        if (head < hq) {
            dst = q_out + ((size_t)row * hq + head) * hd;
        } else {
            dst = k_cache + ((size_t)(head - hq) * max_seq + pos) * hd;
        }
        dst[i] = __float2bfloat16(y0);
        dst[i + half] = __float2bfloat16(y1);
    }
    int v_items = hkv * hd;
    for (int it = threadIdx.x; it < v_items; it += blockDim.x) {
        int head = it / hd, d = it - head * hd;
        int e = (hq + hkv) * hd + it;
        float x = __bfloat162float(src[e]);
        if (bias) x += bias[e];
        v_cache[((size_t)head * max_seq + pos) * hd + d] = __float2bfloat16(x);
    }
}

extern "C" int qb_launch_qkv_rope(const uint16_t *qkv, const float *bias, int n, int hq, int hkv, int hd,
                                  const int *start_pos, const float *cos_t, const float *sin_t, uint16_t *q_out,
                                  uint16_t *k_cache, uint16_t *v_cache, int max_seq, cudaStream_t stream) {
    if (n <= 0 || hq <= 0 || hkv <= 0 || hd <= 0 || (hd & 1))
        return qb_errorf("qkv_rope: bad sizes n=%d hq=%d hkv=%d hd=%d", n, hq, hkv, hd);
    QB_LAUNCH("qkv_rope", qb_qkv_rope_kernel, dim3(n), dim3(256), 0, stream, (const qb_bf16 *)qkv, bias, hq, hkv, hd,
              start_pos, cos_t, sin_t, (qb_bf16 *)q_out, (qb_bf16 *)k_cache, (qb_bf16 *)v_cache, max_seq);
    return 0;
}
