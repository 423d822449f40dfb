/* rope.c - rotary frequency and cos/sin tables, default RoPE and YaRN, computed as transformers does
 * (modeling_rope_utils: _compute_default_rope_parameters, _compute_yarn_parameters; the rotary module then
 * takes cos/sin of pos * inv_freq in fp32 and multiplies both by the attention factor).
 *
 * The tensor steps are fp32 like torch's; the correction-range arithmetic is Python float (double) with
 * truncate=True (floor/ceil), the transformers default.
 */
#include "engine/rope.h"

#include <math.h>
#include <stdlib.h>

#include "util/error.h"

/* theta^(2i/hd) in fp32: torch computes base ** (arange(0, hd, 2).float() / hd). */
static float pos_freq(double theta, int i, int hd) {
    float exponent = (float)(2 * i) / (float)hd;
    return powf((float)theta, exponent);
}

/* Dimension (fractional) at which a wavelength makes num_rotations turns over the original context. */
static double yarn_correction_dim(double num_rotations, int hd, double theta, int original_max_pos) {
    return (hd * log(original_max_pos / (num_rotations * 2.0 * M_PI))) / (2.0 * log(theta));
}

static double yarn_mscale(double factor) { return factor <= 1.0 ? 1.0 : 0.1 * log(factor) + 1.0; }

void qb_rope_inv_freq(const qb_model_config *c, float *inv_freq, float *attention_factor) {
    int hd = c->head_dim, half = hd / 2;
    if (c->rope_type != QB_ROPE_YARN) {
        for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / pos_freq(c->rope_theta, i, hd);
        *attention_factor = 1.0f;
        return;
    }
    double factor = c->rope_factor;
    double beta_fast = c->yarn_beta_fast > 0 ? c->yarn_beta_fast : 32.0;
    double beta_slow = c->yarn_beta_slow > 0 ? c->yarn_beta_slow : 1.0;
    double attn = c->yarn_attn_factor > 0 ? c->yarn_attn_factor : yarn_mscale(factor);

    /* correction range, truncated to whole dimensions and clamped to [0, hd-1] */
    double low = floor(yarn_correction_dim(beta_fast, hd, c->rope_theta, c->rope_original_max_pos));
    double high = ceil(yarn_correction_dim(beta_slow, hd, c->rope_theta, c->rope_original_max_pos));
    if (low < 0) low = 0;
    if (high > hd - 1) high = hd - 1;
    if (low == high) high += 0.001; /* transformers: prevent a zero-width ramp */
    float ramp_low = (float)low, ramp_width = (float)(high - low);

    for (int i = 0; i < half; i++) {
        float pf = pos_freq(c->rope_theta, i, hd);
        float extrapolated = 1.0f / pf;
        float interpolated = 1.0f / ((float)factor * pf);
        float ramp = ((float)i - ramp_low) / ramp_width;
        if (ramp < 0.0f) ramp = 0.0f;
        if (ramp > 1.0f) ramp = 1.0f;
        float extrapolation_weight = 1.0f - ramp;
        inv_freq[i] = interpolated * (1.0f - extrapolation_weight) + extrapolated * extrapolation_weight;
    }
    *attention_factor = (float)attn;
}

int qb_rope_tables(const qb_model_config *c, int max_pos, float **cos_out, float **sin_out) {
    int half = c->head_dim / 2;
    *cos_out = *sin_out = NULL;
    if (half <= 0 || max_pos <= 0)
        return qb_errorf("rope: head_dim %d and max_pos %d must be positive", c->head_dim, max_pos);
    float *inv_freq = malloc((size_t)half * sizeof *inv_freq);
    float *cos_table = malloc((size_t)max_pos * half * sizeof *cos_table);
    float *sin_table = malloc((size_t)max_pos * half * sizeof *sin_table);
    if (!inv_freq || !cos_table || !sin_table) {
        free(inv_freq);
        free(cos_table);
        free(sin_table);
        return qb_errorf("rope: out of memory for %d x %d cos/sin tables", max_pos, half);
    }
    float attention_factor;
    qb_rope_inv_freq(c, inv_freq, &attention_factor);
    for (int p = 0; p < max_pos; p++)
        for (int i = 0; i < half; i++) {
            float angle = (float)p * inv_freq[i]; /* fp32 product, as position_ids.float() @ inv_freq */
            cos_table[(size_t)p * half + i] = (float)cos((double)angle) * attention_factor;
            sin_table[(size_t)p * half + i] = (float)sin((double)angle) * attention_factor;
        }
    free(inv_freq);
    *cos_out = cos_table;
    *sin_out = sin_table;
    return 0;
}
