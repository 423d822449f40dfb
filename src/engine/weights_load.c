/* weights_load.c - this rank's slices of a local checkpoint (see weights.h, weights_layout.h): BF16 read
 * here, GPTQ / AWQ tensors read by weights_quant.c; opening, the unused-tensor and finite checks here for both.
 *
 * Every tensor the model needs must be present with the exact shape the config gives; lm_head.weight may be
 * absent when tie_word_embeddings (then lm_head aliases the embedding rows). Tensors the model does not use
 * are an error (a checkpoint of another architecture or a truncated config), except lm_head.weight in a tied
 * model, which transformers ignores too. The loaded weights are then checked for NaN / Inf
 * (weights_finite.c), naming the tensor.
 */
#include "engine/weights.h"

#include <stdio.h>
#include <string.h>

#include "engine/weights_layout.h"
#include "engine/weights_quant.h"
#include "io/checkpoint.h"
#include "io/printable.h"
#include "util/error.h"

int qb_weights_read_layer_norms(qb_checkpoint *ck, const qb_model_config *c, int layer, qb_layer_weights *l) {
    char name[256];
    const uint64_t H = (uint64_t)c->hidden_size;
    const qb_model_family *fam = qb_model_family_of(c);
    float *norms[2] = {l->input_norm, l->post_attn_norm}; /* the family's layer_norms, in order */
    for (int n = 0; n < fam->n_layer_norms; n++) {
        qb_tensor_name(name, sizeof name, layer, fam->layer_norms[n]);
        QB_TRY(qb_checkpoint_read_vec_f32(ck, name, H, 0, H, norms[n]));
    }
    return 0;
}

static int load_layer(qb_checkpoint *ck, const qb_model_config *c, const qb_shard_plan *p, int i,
                      qb_layer_weights *l) {
    char name[256];
    QB_TRY(qb_weights_read_layer_norms(ck, c, i, l));
    for (int k = 0; k < QB_NUM_LINEAR; k++) {
        qb_slice s;
        qb_linear_slice(c, p, k, &s);
        qb_linear *lin = qb_layer_linear(l, k);
        qb_linear_tensor_name(name, sizeof name, i, k, qb_format_info(QB_QUANT_BF16)->parts[QB_PART_WEIGHT]);
        QB_TRY(qb_checkpoint_read_bf16(ck, name, s.rows, s.cols, s.row0, s.n_rows, s.col0, s.n_cols, lin->w));
        if (s.has_bias) {
            qb_linear_tensor_name(name, sizeof name, i, k, "bias");
            QB_TRY(qb_checkpoint_read_vec_f32(ck, name, s.rows, s.row0, s.n_rows, lin->bias));
        }
    }
    return 0;
}

static int read_bf16(qb_checkpoint *ck, const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    const uint64_t H = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    const qb_model_family *fam = qb_model_family_of(c);
    QB_TRY(qb_checkpoint_read_rows_bf16(ck, fam->embed, V, H, 0, V, w->embed));
    QB_TRY(qb_checkpoint_read_vec_f32(ck, fam->final_norm, H, 0, H, w->final_norm));
    qb_ck_entry *lm = qb_checkpoint_find(ck, fam->lm_head);
    if (!c->tie_word_embeddings) {
        if (!lm)
            return qb_errorf("%s: tensor \"%s\" is missing and tie_word_embeddings is false", ck->dir, fam->lm_head);
        QB_TRY(qb_checkpoint_read_rows_bf16(ck, fam->lm_head, V, H, (uint64_t)p->vocab_start,
                                            (uint64_t)p->vocab_size, w->lm_head.w));
    } else if (lm) {
        lm->used = true; /* tied: transformers ignores a stored lm_head too */
    }
    for (int i = 0; i < c->num_layers; i++) QB_TRY(load_layer(ck, c, p, i, &w->layers[i]));
    return 0;
}

/* Tensors of the checkpoint that no read marked used: an error naming the first (another architecture or a
 * truncated config). */
static int reject_unused(qb_checkpoint *ck, const qb_model_config *c) {
    const char *extra[1];
    size_t n_extra = qb_checkpoint_unused(ck, extra, 1);
    if (n_extra == 0) return 0;
    const bool quant = c->quant != QB_QUANT_BF16;
    return qb_errorf("%s: tensor \"%.200s\" is not used by a %d-layer %s%sQwen2 model (%zu unused tensors)", ck->dir,
                     extra[0], c->num_layers, quant ? qb_quant_name(c->quant) : "", quant ? " " : "", n_extra);
}

static int load_impl(const char *dir, const qb_model_config *c, const qb_shard_plan *p, qb_weights *out) {
    memset(out, 0, sizeof *out);
    const bool quant = c->quant != QB_QUANT_BF16; /* GPTQ / AWQ: weights_quant.c */
    qb_checkpoint ck;
    QB_TRY(qb_checkpoint_open(dir, &ck));
    int rc = quant ? qb_weights_alloc_quant(c, p, out) : qb_weights_alloc(c, p, out);
    if (rc == 0) rc = quant ? qb_weights_read_quant(&ck, c, p, out) : read_bf16(&ck, c, p, out);
    if (rc == 0) rc = reject_unused(&ck, c);
    if (rc == 0) rc = qb_weights_check_finite(dir, out);
    qb_checkpoint_close(&ck);
    if (rc != 0) qb_weights_free(out);
    return rc;
}

int qb_weights_load(const char *dir, const qb_model_config *c, const qb_shard_plan *p, qb_weights *out) {
    if (load_impl(dir, c, p, out) != 0) return qb_error_make_printable();
    return 0;
}
