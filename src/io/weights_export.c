/* weights_export.c - write full weights as a safetensors checkpoint directory (see weights_export.h). */
#include "io/weights_export.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/random_init.h"
#include "engine/weights_layout.h"
#include "model/model_family.h"
#include "model/weight_format.h"
#include "io/safetensors_write.h"
#include "util/error.h"

typedef struct {
    qb_st_write_tensor *t;
    char **names;
    uint16_t **owned; /* converted float vectors */
    size_t n, cap;
} tensor_list;

static int push(tensor_list *l, const char *name, int ndim, uint64_t d0, uint64_t d1, const void *data,
                uint16_t *owned) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        qb_st_write_tensor *t = realloc(l->t, cap * sizeof *t);
        if (t) l->t = t;
        char **names = realloc(l->names, cap * sizeof *names);
        if (names) l->names = names;
        uint16_t **owned2 = realloc(l->owned, cap * sizeof *owned2);
        if (owned2) l->owned = owned2;
        if (!t || !names || !owned2) return qb_errorf("export: out of memory");
        l->cap = cap;
    }
    l->names[l->n] = strdup(name);
    l->owned[l->n] = owned;
    if (!l->names[l->n]) return qb_errorf("export: out of memory");
    qb_st_write_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    t->name = l->names[l->n - 1];
    t->dtype = QB_ST_BF16;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = data;
    return 0;
}

static int push_vec(tensor_list *l, const char *name, const float *v, uint64_t n) {
    uint16_t *b = malloc((n ? n : 1) * sizeof *b);
    if (!b) return qb_errorf("export: out of memory");
    for (uint64_t i = 0; i < n; i++) b[i] = qb_float_to_bf16(v[i]);
    return push(l, name, 1, n, 0, b, b);
}

static void list_free(tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
        free(l->owned[i]);
    }
    free(l->t);
    free(l->names);
    free(l->owned);
}

/* Tensors in the order of a transformers checkpoint: embedding; per layer the input norm, the linears (weight,
 * bias), the post-attention norm; final norm; lm_head unless tied. Names from the family table. */
static int collect(const qb_weights *w, tensor_list *l) {
    const qb_model_config *c = &w->cfg;
    const qb_model_family *fam = qb_model_family_of(c);
    const uint64_t H = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    char name[256];
    QB_TRY(push(l, fam->embed, 2, V, H, w->embed, NULL));
    for (int i = 0; i < c->num_layers; i++) {
        qb_layer_weights *lw = &w->layers[i];
        const float *norms[2] = {lw->input_norm, lw->post_attn_norm}; /* the family's layer_norms, in order */
        qb_tensor_name(name, sizeof name, i, fam->layer_norms[0]);
        QB_TRY(push_vec(l, name, norms[0], H));
        for (int k = 0; k < fam->n_linears; k++) {
            qb_slice s;
            qb_linear_slice(c, &w->plan, k, &s);
            const qb_linear *lin = qb_layer_linear(lw, k);
            qb_linear_tensor_name(name, sizeof name, i, k, qb_format_info(QB_QUANT_BF16)->parts[QB_PART_WEIGHT]);
            QB_TRY(push(l, name, 2, s.rows, s.cols, lin->w, NULL));
            if (s.has_bias) {
                qb_linear_tensor_name(name, sizeof name, i, k, "bias");
                QB_TRY(push_vec(l, name, lin->bias, s.rows));
            }
        }
        for (int n = 1; n < fam->n_layer_norms; n++) {
            qb_tensor_name(name, sizeof name, i, fam->layer_norms[n]);
            QB_TRY(push_vec(l, name, norms[n], H));
        }
    }
    QB_TRY(push_vec(l, fam->final_norm, w->final_norm, H));
    if (!c->tie_word_embeddings) QB_TRY(push(l, fam->lm_head, 2, V, H, w->lm_head.w, NULL));
    return 0;
}

size_t qb_weights_export_tensor_count(const qb_model_config *c) {
    const qb_model_family *fam = qb_model_family_of(c);
    size_t per_layer = (size_t)fam->n_layer_norms;
    for (int k = 0; k < fam->n_linears; k++) per_layer += fam->linears[k].has_bias ? 2 : 1;
    return 1 + (size_t)c->num_layers * per_layer + 1 + (c->tie_word_embeddings ? 0 : 1); /* embed, norm, head */
}

/* n_shards <= l->n: shard s gets l->n / n_shards tensors, one more for the first l->n % n_shards, so none is empty. */
static int write_shards(const char *dir, const tensor_list *l, int n_shards) {
    char path[4200], file[64];
    if (n_shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return qb_st_write(path, l->t, l->n, (const char *const[]){"format"}, (const char *const[]){"pt"}, 1);
    }
    json_t *index = json_object(), *map = json_object();
    if (!index || !map) return qb_errorf("export: out of memory");
    json_object_set_new(index, "metadata", json_pack("{s:I}", "total_size", (json_int_t)0));
    json_object_set_new(index, "weight_map", map);
    size_t base = l->n / (size_t)n_shards, extra = l->n % (size_t)n_shards, first = 0;
    int rc = 0;
    for (int s = 0; s < n_shards && rc == 0; s++) {
        size_t count = base + ((size_t)s < extra ? 1 : 0);
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        rc = qb_st_write(path, l->t + first, count, (const char *const[]){"format"}, (const char *const[]){"pt"}, 1);
        for (size_t i = first; i < first + count; i++) json_object_set_new(map, l->t[i].name, json_string(file));
        first += count;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (rc == 0 && json_dump_file(index, path, JSON_INDENT(2)) != 0) rc = qb_errorf("%s: cannot write", path);
    json_decref(index);
    return rc;
}

int qb_weights_export(const char *dir, const qb_weights *w, int n_shards) {
    if (w->plan.tp_size != 1) return qb_errorf("export: needs the full weights (tp 1), got tp %d", w->plan.tp_size);
    if (n_shards < 1 || n_shards > 99999) return qb_errorf("export: %d shards is out of range", n_shards);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    QB_TRY(qb_model_config_write_json(&w->cfg, path));
    tensor_list l = {0};
    int rc = collect(w, &l);
    if (rc == 0 && l.n != qb_weights_export_tensor_count(&w->cfg))
        rc = qb_errorf("export: internal error: %zu tensors, counted %zu", l.n, qb_weights_export_tensor_count(&w->cfg));
    if (rc == 0 && (size_t)n_shards > l.n)
        rc = qb_errorf("export: %d shards for %zu tensors: a shard would be empty", n_shards, l.n);
    if (rc == 0) rc = write_shards(dir, &l, n_shards);
    list_free(&l);
    return rc;
}

int qb_model_config_write_json(const qb_model_config *c, const char *path) {
    json_t *o = json_pack("{s:[s], s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:b, s:s}",
                          "architectures", qb_model_family_of(c)->architecture, "model_type",
                          qb_model_family_of(c)->model_type, "hidden_act", qb_model_family_of(c)->hidden_act,
                          "vocab_size", c->vocab_size, "hidden_size", c->hidden_size, "intermediate_size",
                          c->intermediate_size, "num_hidden_layers", c->num_layers, "num_attention_heads",
                          c->num_heads, "num_key_value_heads", c->num_kv_heads, "head_dim", c->head_dim,
                          "max_position_embeddings", c->max_position_embeddings, "rms_norm_eps", c->rms_norm_eps,
                          "rope_theta", c->rope_theta, "tie_word_embeddings", c->tie_word_embeddings,
                          "use_sliding_window", 0, "torch_dtype", "bfloat16");
    if (!o) return qb_errorf("%s: cannot build config.json", path);
    if (c->rope_type == QB_ROPE_YARN) {
        json_t *r = json_pack("{s:s, s:f, s:i, s:f, s:f}", "rope_type", "yarn", "factor", c->rope_factor,
                              "original_max_position_embeddings", c->rope_original_max_pos, "beta_fast",
                              c->yarn_beta_fast, "beta_slow", c->yarn_beta_slow);
        if (r && c->yarn_attn_factor > 0) json_object_set_new(r, "attention_factor", json_real(c->yarn_attn_factor));
        json_object_set_new(o, "rope_scaling", r);
    }
    /* 15 digits: config values are short decimals, and 1e-06 reads better than 9.9999999999999995e-07 */
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) == 0 ? 0 : qb_errorf("%s: cannot write: %s", path, strerror(errno));
    json_decref(o);
    return rc;
}
