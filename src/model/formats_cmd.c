/* formats_cmd.c - the format and family tables as JSON (see formats_cmd.h). */
#include "model/formats_cmd.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_family.h"
#include "model/weight_format.h"

static const char *packing_name(qb_packing p) {
    switch (p) {
    case QB_PACK_GPTQ: return "gptq";
    case QB_PACK_AWQ: return "awq";
    default: return "dense";
    }
}

static const char *dim_name(qb_dim d) {
    static const char *const names[] = {"hidden_size", "num_attention_heads*head_dim",
                                        "num_key_value_heads*head_dim", "intermediate_size", "vocab_size"};
    return names[d];
}

static const char *shard_name(qb_shard_kind k) {
    return k == QB_SHARD_COLUMN ? "column" : k == QB_SHARD_ROW ? "row" : "replicated";
}

static json_t *format_json(const qb_weight_format_info *f) {
    json_t *parts = json_array();
    for (int i = 0; i < f->n_parts; i++) json_array_append_new(parts, json_string(f->parts[i]));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "published_name", json_string(f->published_name));
    json_object_set_new(o, "quant_method", f->quant_method ? json_string(f->quant_method) : json_null());
    json_object_set_new(o, "bits", json_integer(f->bits));
    json_object_set_new(o, "default_group_size", json_integer(f->default_group_size));
    json_object_set_new(o, "packing", json_string(packing_name(f->packing)));
    json_object_set_new(o, "values_per_word", json_integer(f->values_per_word));
    json_object_set_new(o, "zeros_stored_minus_one", json_boolean(f->zeros_stored_minus_one));
    json_object_set_new(o, "symmetric", json_boolean(f->symmetric));
    json_object_set_new(o, "has_g_idx", json_boolean(f->has_g_idx));
    json_object_set_new(o, "scale_bytes", json_integer(f->scale_bytes));
    json_object_set_new(o, "tensor_parts", parts);
    json_object_set_new(o, "engine_bytes_per_weight",
                        json_real(qb_format_engine_bytes_per_weight(f->id, f->default_group_size)));
    json_object_set_new(o, "kernels", json_string(f->kernels));
    return o;
}

static json_t *family_json(const qb_model_family *fam) {
    json_t *lin = json_array(), *norms = json_array();
    for (int k = 0; k < fam->n_linears; k++) {
        const qb_linear_desc *d = &fam->linears[k];
        json_array_append_new(lin, json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}", "suffix", d->suffix, "out",
                                             dim_name(d->out), "in", dim_name(d->in), "bias", d->has_bias, "shard",
                                             shard_name(d->shard), "fused", d->fused));
    }
    for (int n = 0; n < fam->n_layer_norms; n++) json_array_append_new(norms, json_string(fam->layer_norms[n]));
    json_t *o = json_object();
    json_object_set_new(o, "model_type", json_string(fam->model_type));
    json_object_set_new(o, "architecture", json_string(fam->architecture));
    json_object_set_new(o, "hidden_act", json_string(fam->hidden_act));
    json_object_set_new(o, "layer_prefix", json_string(fam->layer_prefix));
    json_object_set_new(o, "layer_linears", lin);
    json_object_set_new(o, "layer_norms", norms);
    json_object_set_new(o, "embed", json_string(fam->embed));
    json_object_set_new(o, "final_norm", json_string(fam->final_norm));
    json_object_set_new(o, "lm_head", json_string(fam->lm_head));
    json_object_set_new(o, "lm_head_quantized", json_boolean(fam->lm_head_quantized));
    json_object_set_new(o, "rope", json_string("neox"));
    return o;
}

char *qb_formats_json(void) {
    json_t *formats = json_array();
    for (int q = 0; q < QB_QUANT_COUNT; q++) json_array_append_new(formats, format_json(qb_format_info((qb_quant)q)));
    json_t *root = json_object();
    json_object_set_new(root, "generated_by", json_string("qwenbench formats --json (src/model/)"));
    json_object_set_new(root, "engine_group_bytes", json_integer(QB_ENGINE_GROUP_BYTES));
    json_object_set_new(root, "formats", formats);
    json_t *families = json_object();
    for (int i = 0; qb_model_family_at(i); i++)
        json_object_set_new(families, qb_model_family_at(i)->model_type, family_json(qb_model_family_at(i)));
    json_object_set_new(root, "families", families);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text) return NULL;
    size_t n = strlen(text);
    char *out = realloc(text, n + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    out[n] = '\n', out[n + 1] = '\0';
    return out;
}

int qb_formats_command(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "--json") != 0) {
        fprintf(stderr, "qwenbench formats: error: usage: qwenbench formats --json\n");
        return 2;
    }
    char *text = qb_formats_json();
    if (!text) {
        fprintf(stderr, "qwenbench formats: error: out of memory\n");
        return 1;
    }
    int ok = fputs(text, stdout) >= 0 && fflush(stdout) == 0;
    free(text);
    if (!ok) {
        fprintf(stderr, "qwenbench formats: error: cannot write to stdout\n");
        return 1;
    }
    return 0;
}
