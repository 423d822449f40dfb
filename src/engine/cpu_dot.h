/* cpu_dot.h - the fp32 dot product every CPU reference matmul uses, in one place, so the bf16, f16 and
 * dequantized paths sum term for term in the same order (and agree bit for bit on equal values).
 * QB_LANES partial sums, then the tail: fixed order, independent of threads. */
#ifndef QB_ENGINE_CPU_DOT_H
#define QB_ENGINE_CPU_DOT_H

#define QB_LANES 8

static inline float qb_dot_f32(const float *a, const float *b, int n) {
    float acc[QB_LANES] = {0};
    int k = 0;
    for (; k + QB_LANES <= n; k += QB_LANES)
        for (int j = 0; j < QB_LANES; j++) acc[j] += a[k + j] * b[k + j];
    float sum = 0.0f;
    for (int j = 0; j < QB_LANES; j++) sum += acc[j];
    for (; k < n; k++) sum += a[k] * b[k];
    return sum;
}

#endif
