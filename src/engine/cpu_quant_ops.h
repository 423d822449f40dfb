/* cpu_quant_ops.h - the plain-C reference for quantized and f16 weights: dequantization of GPTQ / AWQ
 * packed linears (quant_pack.h) into fp32, the matmul on them, the dispatch of any linear, and the f16
 * embedding (the f16 matmul, qb_ref_matmul_f16, is in cpu_ops.h: the same code as the bf16 one). Same
 * arithmetic as cpu_ops.h: a weight is first turned into its exact fp32 value, then the same 8-lane dot
 * product is used, so a quantized model gives bit-identical results to a bf16 model whose weights hold the
 * same values.
 */
#ifndef QB_ENGINE_CPU_QUANT_OPS_H
#define QB_ENGINE_CPU_QUANT_OPS_H

#include <stdint.h>

#include "engine/cpu_ops.h" /* qb_ref_matmul_f16 */
#include "engine/weights.h"

/* out (n1-n0, K) = rows [n0, n1) of the dequantized W (N, K) of a GPTQ or AWQ linear. */
void qb_ref_dequant_rows(const qb_linear *l, int n0, int n1, float *out);
/* One element W[n][k] (tests, spot checks). */
float qb_ref_dequant_at(const qb_linear *l, int n, int k);

/* y (M, N) = x (M, K) . W^T + bias for a GPTQ or AWQ linear (dequantized in blocks of rows). */
void qb_ref_matmul_quant(const float *x, const qb_linear *l, int M, float *y, int threads);
/* Any linear, dispatched on l->fmt (bf16, f16, gptq, awq). */
void qb_ref_linear(const float *x, const qb_linear *l, int M, float *y, int threads);

/* out (n, H) = table[tokens[i]], table (vocab, H) f16 bits. */
void qb_ref_embedding_f16(const uint16_t *table, int hidden, const int32_t *tokens, int n, float *out);

#endif
