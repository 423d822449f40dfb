/* qwen2_family.c - the Qwen2 family's tensor table and the slicing it implies (see qwen2_family.h). */
#include "model/qwen2_family.h"

#include <stdio.h>
#include <string.h>

/* each linear's name, spelled once for both tables below */
#define SUFFIX_Q "self_attn.q_proj"
#define SUFFIX_K "self_attn.k_proj"
#define SUFFIX_V "self_attn.v_proj"
#define SUFFIX_O "self_attn.o_proj"
#define SUFFIX_GATE "mlp.gate_proj"
#define SUFFIX_UP "mlp.up_proj"
#define SUFFIX_DOWN "mlp.down_proj"

static const qb_linear_desc k_linears[QB_NUM_LINEAR] = {
    {QB_LIN_Q, SUFFIX_Q, QB_DIM_Q, QB_DIM_HIDDEN, true, QB_SHARD_COLUMN, "qkv"},
    {QB_LIN_K, SUFFIX_K, QB_DIM_KV, QB_DIM_HIDDEN, true, QB_SHARD_COLUMN, "qkv"},
    {QB_LIN_V, SUFFIX_V, QB_DIM_KV, QB_DIM_HIDDEN, true, QB_SHARD_COLUMN, "qkv"},
    {QB_LIN_O, SUFFIX_O, QB_DIM_HIDDEN, QB_DIM_Q, false, QB_SHARD_ROW, "o"},
    {QB_LIN_GATE, SUFFIX_GATE, QB_DIM_INTER, QB_DIM_HIDDEN, false, QB_SHARD_COLUMN, "gate_up"},
    {QB_LIN_UP, SUFFIX_UP, QB_DIM_INTER, QB_DIM_HIDDEN, false, QB_SHARD_COLUMN, "gate_up"},
    {QB_LIN_DOWN, SUFFIX_DOWN, QB_DIM_HIDDEN, QB_DIM_INTER, false, QB_SHARD_ROW, "down"},
};

static const char *const k_layer_norms[] = {"input_layernorm.weight", "post_attention_layernorm.weight"};

const char *const qb_linear_suffix[QB_NUM_LINEAR] = {SUFFIX_Q,    SUFFIX_K,  SUFFIX_V,   SUFFIX_O,
                                                     SUFFIX_GATE, SUFFIX_UP, SUFFIX_DOWN};

const qb_model_family qb_qwen2_family = {
    .model_type = "qwen2",
    .architecture = "Qwen2ForCausalLM",
    .hidden_act = "silu",
    .layer_prefix = "model.layers.",
    .n_linears = QB_NUM_LINEAR,
    .linears = k_linears,
    .n_layer_norms = 2,
    .layer_norms = k_layer_norms,
    .embed = "model.embed_tokens.weight",
    .final_norm = "model.norm.weight",
    .lm_head = "lm_head.weight",
    .lm_head_quantized = false,
    .rope = QB_ROPE_KIND_NEOX,
};

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
    return which >= 0 && which < QB_NUM_LINEAR ? &k_linears[which] : NULL;
}

void qb_tensor_name(char *buf, size_t cap, int layer, const char *suffix) {
    if (layer >= 0) snprintf(buf, cap, "%s%d.%s", qb_qwen2_family.layer_prefix, layer, suffix);
    else snprintf(buf, cap, "%s", suffix);
}

void qb_linear_tensor_name(char *buf, size_t cap, int layer, int which, const char *part) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, "%s.%s", k_linears[which].suffix, part);
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
