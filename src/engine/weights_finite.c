/* weights_finite.c - one pass over a rank's loaded weights for NaN / Inf (see weights.h), with the
 * predicate of kernels/weights/nonfinite.cuh. A checkpoint of non-finite numbers would otherwise generate token 0
 * forever and be recorded VALID. Memory-bound: a block of values is tested branch-free and only a block with
 * a hit is searched for the exact element. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/weights.h"
#include "engine/weights_layout.h"
#include "nonfinite.cuh"
#include "util/error.h"

#define BLOCK 4096

long long qb_first_nonfinite16(const uint16_t *v, size_t n, uint32_t exp_mask) {
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t end = n - b < BLOCK ? n : b + BLOCK;
        int any = 0;
        for (size_t i = b; i < end; i++) any |= qb_bits_nonfinite(v[i], exp_mask);
        if (!any) continue;
        for (size_t i = b; i < end; i++)
            if (qb_bits_nonfinite(v[i], exp_mask)) return (long long)i;
    }
    return -1;
}

long long qb_first_nonfinite_f32(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        if (qb_bits_nonfinite(bits, QB_F32_EXP_MASK)) return (long long)i;
    }
    return -1;
}

static uint32_t mask_of(qb_weight_format fmt) { return fmt == QB_WFMT_F16 ? QB_F16_EXP_MASK : QB_BF16_EXP_MASK; }

/* A dense [rows][cols] tensor of this rank. */
static int check_dense(const char *dir, const char *name, const uint16_t *w, qb_weight_format fmt, long rows, long cols) {
    if (!w) return 0;
    long long i = qb_first_nonfinite16(w, (size_t)rows * (size_t)cols, mask_of(fmt));
    if (i < 0) return 0;
    return qb_errorf("%s: %s: element [%lld, %lld] of this rank's slice is not finite (%s bits 0x%04x)", dir, name,
                     i / cols, i % cols, fmt == QB_WFMT_F16 ? "f16" : "bf16", (unsigned)w[i]);
}

static int check_vec(const char *dir, const char *name, const float *v, long n) {
    if (!v) return 0;
    long long i = qb_first_nonfinite_f32(v, (size_t)n);
    if (i < 0) return 0;
    return qb_errorf("%s: %s: element %lld of this rank's slice is not finite (%g)", dir, name, i, (double)v[i]);
}

int qb_weights_check_finite(const char *dir, const qb_weights *w) {
    const qb_model_config *c = &w->cfg;
    const long H = c->hidden_size;
    const qb_model_family *fam = qb_model_family_of(c);
    char name[256];
    QB_TRY(check_dense(dir, fam->embed, w->embed, w->embed_fmt, c->vocab_size, H));
    if (w->lm_head.owns_w)
        QB_TRY(check_dense(dir, fam->lm_head, w->lm_head.w, w->lm_head.fmt, w->lm_head.out_features,
                           w->lm_head.in_features));
    QB_TRY(check_vec(dir, fam->final_norm, w->final_norm, H));
    for (int l = 0; l < c->num_layers; l++) {
        qb_layer_weights *L = &w->layers[l];
        const float *norms[2] = {L->input_norm, L->post_attn_norm}; /* the family's layer_norms, in order */
        for (int n = 0; n < fam->n_layer_norms; n++) {
            qb_tensor_name(name, sizeof name, l, fam->layer_norms[n]);
            QB_TRY(check_vec(dir, name, norms[n], H));
        }
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            const qb_linear *lin = qb_layer_linear(L, k);
            if (lin->fmt == QB_WFMT_BF16 || lin->fmt == QB_WFMT_F16) {
                qb_linear_tensor_name(name, sizeof name, l, k, qb_format_info(QB_QUANT_BF16)->parts[QB_PART_WEIGHT]);
                QB_TRY(check_dense(dir, name, lin->w, lin->fmt, lin->out_features, lin->in_features));
            } else if (lin->scales) { /* quantized: the f16 scales [K/group][N] are the only floats */
                qb_linear_tensor_name(name, sizeof name, l, k, qb_format_info(w->cfg.quant)->parts[QB_PART_SCALES]);
                QB_TRY(check_dense(dir, name, lin->scales, QB_WFMT_F16, lin->in_features / lin->group_size,
                                   lin->out_features));
            }
            qb_linear_tensor_name(name, sizeof name, l, k, "bias");
            QB_TRY(check_vec(dir, name, lin->bias, lin->out_features));
        }
    }
    return 0;
}
