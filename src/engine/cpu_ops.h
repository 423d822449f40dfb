/* cpu_ops.h - the plain-C reference of every operation of the Qwen2 forward (fp32 arithmetic, bf16
 * weights). The CPU engine is built from these, and every CUDA kernel's test compares against them on the
 * real model shapes. Shapes are in the comments: (rows, cols), row-major.
 */
#ifndef QB_ENGINE_CPU_OPS_H
#define QB_ENGINE_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out (n, H) = table[tokens[i]] (table (vocab, H) bf16 bits). */
void qb_ref_embedding(const uint16_t *table, int hidden, const int32_t *tokens, int n, float *out);

/* out (n, dim) = x * rsqrt(mean(x^2) + eps) * w, per row; out may alias x. */
void qb_ref_rmsnorm(const float *x, const float *w, int n, int dim, float eps, float *out);

/* residual (n, dim) += x (n, dim); then out = rmsnorm(residual) (the fused form the kernels implement). */
void qb_ref_add_rmsnorm(float *residual, const float *x, const float *w, int n, int dim, float eps, float *out);

/* y (M, N) = x (M, K) . W^T (W (N, K) bf16 bits) + bias (N, or NULL). Threaded over N when threads > 1. */
void qb_ref_matmul_bf16(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                        int threads);
/* The same with W (N, K) f16 bits (the non-quantized linears of GPTQ/AWQ checkpoints). */
void qb_ref_matmul_f16(const float *x, const uint16_t *w, const float *bias, int M, int N, int K, float *y,
                       int threads);

/* Rotate q (n, heads, hd) in place, NeoX rotate_half form: for i < hd/2,
 * (x[i], x[i+hd/2]) -> (x[i] c - x[i+hd/2] s, x[i+hd/2] c + x[i] s), with c = cos[pos][i], s = sin[pos][i]
 * (tables (max_pos, hd/2), see rope.h). positions[n]. */
void qb_ref_rope(float *x, int n, int heads, int hd, const int32_t *positions, const float *cos_table,
                 const float *sin_table);

/* Causal grouped-query attention for n queries at positions start_pos .. start_pos+n-1:
 * q (n, hq, hd); k, v caches (T, hkv, hd) holding positions 0 .. start_pos+n-1; out (n, hq, hd).
 * Query head h uses kv head h / (hq / hkv). Scale hd^-0.5. Softmax in fp32 with max subtraction. */
void qb_ref_attention(const float *q, const float *k_cache, const float *v_cache, int n, int start_pos,
                      int hq, int hkv, int hd, float *out, int threads);

/* out (n) = silu(gate) * up. */
void qb_ref_silu_mul(const float *gate, const float *up, int n, float *out);

/* Index of the largest value; ties -> smallest index (the rule every engine here uses). */
int32_t qb_ref_argmax(const float *x, int n, float *max_value);

#endif
