/* rope.h - rotary position tables, plain RoPE and YaRN, as transformers computes them.
 *
 * inv_freq[i] = theta^(-2i/hd) in fp32; with YaRN (factor f, original length L, beta_fast, beta_slow) the
 * frequencies blend interpolated (inv_freq / f) and original ones with a linear ramp between the correction
 * dimensions, and cos/sin are multiplied by the attention factor (0.1 ln f + 1 unless the config gives one).
 * Reference: transformers' _compute_default_rope_parameters / _compute_yarn_parameters.
 */
#ifndef QB_ENGINE_ROPE_H
#define QB_ENGINE_ROPE_H

#include "config/model_config.h"

/* inv_freq[hd/2] and the cos/sin multiplier for this config. */
void qb_rope_inv_freq(const qb_model_config *c, float *inv_freq, float *attention_factor);
/* cos/sin tables (max_pos, hd/2): angle = pos * inv_freq[i] computed in fp32 as transformers does. */
int qb_rope_tables(const qb_model_config *c, int max_pos, float **cos_out, float **sin_out);

#endif
