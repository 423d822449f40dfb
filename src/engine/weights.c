/* weights.c - one rank's weight buffers: allocation of the shapes the family table (model/model_family.h)
 * and a shard plan give, host bytes, freeing. Random filling is in weights_random.c, quantized buffers in
 * weights_quant.c, loading from a checkpoint in weights_load.c; this file depends on none of them.
 */
#include "engine/weights.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/weights_layout.h"
#include "model/weight_format.h"
#include "util/error.h"

qb_linear *qb_layer_linear(qb_layer_weights *l, int which) {
    qb_linear *all[QB_NUM_LINEAR] = {&l->q, &l->k, &l->v, &l->o, &l->gate, &l->up, &l->down};
    return all[which];
}

void *qb_weights_alloc_bytes(qb_weights *w, size_t bytes, const char *what) {
    void *ptr = malloc(bytes ? bytes : 1);
    if (!ptr) {
        qb_errorf("%s: out of memory allocating %zu bytes", what, bytes);
        return NULL;
    }
    w->host_bytes += bytes;
    return ptr;
}

int qb_weights_alloc_common(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w,
                            qb_linear_alloc_fn alloc_linear) {
    memset(w, 0, sizeof *w);
    w->cfg = *c;
    w->plan = *p;
    w->embed_fmt = QB_WFMT_BF16;
    const size_t H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    w->layers = calloc((size_t)c->num_layers, sizeof *w->layers);
    if (!w->layers) return qb_errorf("weights: out of memory for %d layers", c->num_layers);
    if (!(w->embed = qb_weights_alloc_bytes(w, V * H * 2, qb_model_family_of(c)->embed))) return -1;
    if (!(w->final_norm = qb_weights_alloc_bytes(w, H * sizeof(float), qb_model_family_of(c)->final_norm))) return -1;
    qb_linear *lm = &w->lm_head;
    lm->fmt = QB_WFMT_BF16;
    lm->out_features = p->vocab_size;
    lm->in_features = c->hidden_size;
    if (c->tie_word_embeddings) {
        lm->w = w->embed + (size_t)p->vocab_start * H;
        lm->owns_w = 0;
    } else {
        if (!(lm->w = qb_weights_alloc_bytes(w, (size_t)p->vocab_size * H * 2, qb_model_family_of(c)->lm_head))) return -1;
        lm->owns_w = 1;
    }
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *l = &w->layers[i];
        if (!(l->input_norm = qb_weights_alloc_bytes(w, H * sizeof(float), "input_layernorm"))) return -1;
        if (!(l->post_attn_norm = qb_weights_alloc_bytes(w, H * sizeof(float), "post_attention_layernorm")))
            return -1;
    }
    for (int i = 0; i < c->num_layers; i++) {
        for (int k = 0; k < QB_NUM_LINEAR; k++) {
            qb_slice s;
            qb_linear_slice(c, p, k, &s);
            QB_TRY(alloc_linear(c, &s, i, k, w, qb_layer_linear(&w->layers[i], k)));
        }
    }
    return 0;
}

static int alloc_linear_bf16(const qb_model_config *c, const qb_slice *s, int layer, int which, qb_weights *w,
                             qb_linear *lin) {
    (void)c;
    (void)layer;
    lin->fmt = QB_WFMT_BF16;
    lin->out_features = (int)s->n_rows;
    lin->in_features = (int)s->n_cols;
    lin->owns_w = 1;
    if (!(lin->w = qb_weights_alloc_bytes(w, (size_t)(s->n_rows * s->n_cols) * 2, qb_linear_suffix[which])))
        return -1;
    if (s->has_bias &&
        !(lin->bias = qb_weights_alloc_bytes(w, (size_t)s->n_rows * sizeof(float), qb_linear_suffix[which])))
        return -1;
    return 0;
}

int qb_weights_alloc(const qb_model_config *c, const qb_shard_plan *p, qb_weights *w) {
    return qb_weights_alloc_common(c, p, w, alloc_linear_bf16);
}

static void free_linear(qb_linear *l) {
    if (l->owns_w) free(l->w);
    free(l->qweight);
    free(l->qzeros);
    free(l->g_idx);
    free(l->scales);
    free(l->bias);
    memset(l, 0, sizeof *l);
}

void qb_weights_free(qb_weights *w) {
    if (!w) return;
    if (w->layers) {
        for (int i = 0; i < w->cfg.num_layers; i++) {
            qb_layer_weights *l = &w->layers[i];
            for (int k = 0; k < QB_NUM_LINEAR; k++) free_linear(qb_layer_linear(l, k));
            free(l->input_norm);
            free(l->post_attn_norm);
        }
    }
    free(w->layers);
    free_linear(&w->lm_head);
    free(w->embed);
    free(w->final_norm);
    memset(w, 0, sizeof *w);
}

size_t qb_weights_rank_bytes(const qb_model_config *c, const qb_shard_plan *p) {
    const size_t H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    size_t total = V * H * 2 + H * sizeof(float) * (1 + 2 * (size_t)c->num_layers);
    if (!c->tie_word_embeddings) total += (size_t)p->vocab_size * H * 2;
    for (int k = 0; k < QB_NUM_LINEAR; k++) {
        qb_slice s;
        qb_linear_slice(c, p, k, &s);
        size_t per = qb_format_host_linear_bytes(c->quant, (size_t)s.n_cols, (size_t)s.n_rows, (size_t)c->group_size) +
                     (s.has_bias ? (size_t)s.n_rows * sizeof(float) : 0);
        total += per * (size_t)c->num_layers;
    }
    return total;
}
