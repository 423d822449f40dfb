/* model_family.c - the registry of model families, tensor names and the slicing a family's table implies
 * (see model_family.h). */
#include "model/model_family.h"

#include <stdio.h>
#include <string.h>

static const qb_model_family *const k_families[] = {&qb_qwen2_family};

const qb_model_family *qb_model_family_at(int i) {
    return i >= 0 && (size_t)i < sizeof k_families / sizeof *k_families ? k_families[i] : NULL;
}

const qb_model_family *qb_model_family_by_type(const char *model_type) {
    for (size_t i = 0; i < sizeof k_families / sizeof *k_families; i++)
        if (model_type && strcmp(k_families[i]->model_type, model_type) == 0) return k_families[i];
    return NULL;
}

const qb_model_family *qb_model_family_of(const qb_model_config *c) {
    (void)c; /* one family today */
    return &qb_qwen2_family;
}

const qb_linear_desc *qb_linear_desc_of(int which) {
    return which >= 0 && which < qb_qwen2_family.n_linears ? &qb_qwen2_family.linears[which] : NULL;
}

void qb_tensor_name(char *buf, size_t cap, int layer, const char *suffix) {
    if (layer >= 0) snprintf(buf, cap, "%s%d.%s", qb_qwen2_family.layer_prefix, layer, suffix);
    else snprintf(buf, cap, "%s", suffix);
}

void qb_linear_tensor_name(char *buf, size_t cap, int layer, int which, const char *part) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s.%s", qb_qwen2_family.linears[which].suffix, part);
    qb_tensor_name(buf, cap, layer, suffix);
}

uint64_t qb_dim_full(const qb_model_config *c, qb_dim d) {
    switch (d) {
    case QB_DIM_Q: return (uint64_t)c->num_heads * (uint64_t)c->head_dim;
    case QB_DIM_KV: return (uint64_t)c->num_kv_heads * (uint64_t)c->head_dim;
    case QB_DIM_INTER: return (uint64_t)c->intermediate_size;
    case QB_DIM_VOCAB: return (uint64_t)c->vocab_size;
    default: return (uint64_t)c->hidden_size;
    }
}

void qb_dim_local(const qb_model_config *c, const qb_shard_plan *p, qb_dim d, uint64_t *start, uint64_t *n) {
    const uint64_t hd = (uint64_t)c->head_dim;
    switch (d) {
    case QB_DIM_Q: *start = (uint64_t)p->q_head_start * hd, *n = (uint64_t)p->q_heads * hd; return;
    case QB_DIM_KV: *start = (uint64_t)p->kv_head_start * hd, *n = (uint64_t)p->kv_heads * hd; return;
    case QB_DIM_INTER: *start = (uint64_t)p->inter_start, *n = (uint64_t)p->inter_size; return;
    case QB_DIM_VOCAB: *start = (uint64_t)p->vocab_start, *n = (uint64_t)p->vocab_size; return;
    default: *start = 0, *n = qb_dim_full(c, d); return;
    }
}

void qb_linear_slice(const qb_model_config *c, const qb_shard_plan *p, int which, qb_slice *s) {
    const qb_linear_desc *d = &qb_model_family_of(c)->linears[which];
    memset(s, 0, sizeof *s);
    s->rows = qb_dim_full(c, d->out), s->cols = qb_dim_full(c, d->in);
    s->n_rows = s->rows, s->n_cols = s->cols;
    if (d->shard == QB_SHARD_COLUMN) qb_dim_local(c, p, d->out, &s->row0, &s->n_rows);
    else if (d->shard == QB_SHARD_ROW) qb_dim_local(c, p, d->in, &s->col0, &s->n_cols);
    s->has_bias = d->has_bias;
}
