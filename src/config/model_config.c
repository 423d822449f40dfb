/* model_config.c - parse and validate a Hugging Face Qwen2 config.json (see model_config.h).
 *
 * The JSON is parsed by jansson with duplicate keys refused. Every field is type- and range-checked before
 * it is used, so no product of sizes can overflow later (limits below). Errors are one line:
 * "ORIGIN: FIELD: what is wrong".
 *
 * Limits (allocation bounds for untrusted configs; the largest Qwen2.5 sizes are far below them):
 *   vocab_size <= 1,048,576   hidden_size <= 65,536   intermediate_size <= 262,144   layers <= 1024
 *   heads, kv heads <= 1024   head_dim <= 1024 (even)  max_position_embeddings <= 1,048,576
 *   num_attention_heads * head_dim <= 131,072          parameters <= 2^40
 */
#include "config/model_config.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/model_config_internal.h"
#include "model/model_family.h"
#include "io/printable.h"
#include "util/error.h"

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Integer field in [lo, hi]. Absent (or null when optional): *out untouched, *present = 0. */
static int get_int(const json_t *obj, const char *key, bool required, long long lo, long long hi,
                   const char *origin, const char *prefix, int *out, bool *present) {
    const json_t *v = json_object_get(obj, key);
    if (present) *present = false;
    if (!v || (json_is_null(v) && !required)) {
        if (required) return qb_errorf("%s: %s%s: missing", origin, prefix, key);
        return 0;
    }
    long long x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && isfinite(json_real_value(v)) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        x = (long long)json_real_value(v);
    } else {
        return qb_errorf("%s: %s%s: must be an integer, got %s", origin, prefix, key, json_type_name(v));
    }
    if (x < lo || x > hi)
        return qb_errorf("%s: %s%s: %lld is out of range [%lld, %lld]", origin, prefix, key, x, lo, hi);
    *out = (int)x;
    if (present) *present = true;
    return 0;
}

/* Finite number field in [lo, hi] (integer or real JSON). */
static int get_num(const json_t *obj, const char *key, bool required, double lo, double hi, const char *origin,
                   const char *prefix, double *out, bool *present) {
    const json_t *v = json_object_get(obj, key);
    if (present) *present = false;
    if (!v || (json_is_null(v) && !required)) {
        if (required) return qb_errorf("%s: %s%s: missing", origin, prefix, key);
        return 0;
    }
    if (!json_is_number(v))
        return qb_errorf("%s: %s%s: must be a number, got %s", origin, prefix, key, json_type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return qb_errorf("%s: %s%s: %g is out of range [%g, %g]", origin, prefix, key, x, lo, hi);
    *out = x;
    if (present) *present = true;
    return 0;
}

static int get_bool(const json_t *obj, const char *key, const char *origin, const char *prefix, bool *out) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return qb_errorf("%s: %s%s: must be true or false, got %s", origin, prefix, key, json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* Optional string field; *out = NULL when absent or null. */
static int get_str(const json_t *obj, const char *key, const char *origin, const char *prefix, const char **out) {
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return qb_errorf("%s: %s%s: must be a string, got %s", origin, prefix, key, json_type_name(v));
    *out = json_string_value(v);
    return 0;
}

/* rope_scaling / rope_parameters: {"rope_type"|"type": "default"|"yarn", factor, ...}. */
static int parse_rope(const json_t *r, const char *field, const char *origin, qb_model_config *c) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", field);
    if (!json_is_object(r))
        return qb_errorf("%s: %s: must be an object or null, got %s", origin, field, json_type_name(r));
    const char *type = NULL, *type2 = NULL;
    QB_TRY(get_str(r, "rope_type", origin, prefix, &type));
    QB_TRY(get_str(r, "type", origin, prefix, &type2));
    if (!type) type = type2;
    /* A rope_scaling without a type asks for scaling without saying which: refuse it rather than run unscaled.
     * (A rope_parameters without one is read as plain RoPE with its rope_theta, as before.) */
    if (!type && strcmp(field, "rope_scaling") == 0)
        return qb_errorf("%s: rope_scaling: no \"type\" (or \"rope_type\"): say \"default\" or \"yarn\", or set "
                         "rope_scaling to null", origin);
    bool has_theta = false;
    QB_TRY(get_num(r, "rope_theta", false, 1.0, 1e12, origin, prefix, &c->rope_theta, &has_theta));
    if (!type || strcmp(type, "default") == 0) {
        c->rope_type = QB_ROPE_DEFAULT;
        return 0;
    }
    if (strcmp(type, "yarn") != 0)
        return qb_errorf("%s: %srope_type: unsupported rope scaling type \"%.40s\" (supported: default, yarn)",
                         origin, prefix, type);
    c->rope_type = QB_ROPE_YARN;
    QB_TRY(get_num(r, "factor", true, 1.0, 1024.0, origin, prefix, &c->rope_factor, NULL));
    bool has_orig = false;
    QB_TRY(get_int(r, "original_max_position_embeddings", false, 1, QB_MAX_POSITIONS, origin, prefix,
                   &c->rope_original_max_pos, &has_orig));
    if (!has_orig) c->rope_original_max_pos = 0; /* resolved to max_position_embeddings below */
    QB_TRY(get_num(r, "beta_fast", false, 1e-6, 1e6, origin, prefix, &c->yarn_beta_fast, NULL));
    QB_TRY(get_num(r, "beta_slow", false, 1e-6, 1e6, origin, prefix, &c->yarn_beta_slow, NULL));
    QB_TRY(get_num(r, "attention_factor", false, 1e-6, 1e6, origin, prefix, &c->yarn_attn_factor, NULL));
    return 0;
}

/* quantization_config (or quantize_config.json): GPTQ or AWQ settings. */
int qb_model_config_parse_quant(const json_t *q, const char *origin, const char *prefix, qb_model_config *c) {
    if (!json_is_object(q))
        return qb_errorf("%s: %s: must be an object, got %s", origin, prefix, json_type_name(q));
    char p[64];
    snprintf(p, sizeof p, "%s.", prefix);
    const char *method = NULL, *version = NULL, *format = NULL;
    QB_TRY(get_str(q, "quant_method", origin, p, &method));
    QB_TRY(get_str(q, "version", origin, p, &version));
    QB_TRY(get_str(q, "checkpoint_format", origin, p, &format));
    bool has_bits = false, has_group = false;
    int bits = 0, group = 0;
    QB_TRY(get_int(q, "bits", false, -1000000, 1000000, origin, p, &bits, &has_bits));
    if (!has_bits) QB_TRY(get_int(q, "w_bit", false, -1000000, 1000000, origin, p, &bits, &has_bits));
    QB_TRY(get_int(q, "group_size", false, -1000000, 1000000, origin, p, &group, &has_group));
    if (!has_group) QB_TRY(get_int(q, "q_group_size", false, -1000000, 1000000, origin, p, &group, &has_group));
    if (!method) method = "gptq"; /* quantize_config.json of older AutoGPTQ repos has no quant_method */
    if (!has_bits) return qb_errorf("%s: %sbits: missing", origin, p);
    if (!has_group) return qb_errorf("%s: %sgroup_size: missing", origin, p);
    qb_quant fmt = QB_QUANT_BF16;
    if (*qb_quant_bits_list(method) && qb_quant_from_checkpoint(method, bits, &fmt) != 0) /* the format table */
        return qb_errorf("%s: %sbits: %d is not supported for %.40s (%s)", origin, p, bits, method,
                         qb_quant_bits_list(method));
    if (strcasecmp(method, "gptq") == 0) {
        if (format && strcasecmp(format, "gptq") != 0)
            return qb_errorf("%s: %scheckpoint_format: \"%.40s\" is not supported (gptq only)", origin, p, format);
        c->quant = fmt;
        c->desc_act = false;
        c->sym = true;
        QB_TRY(get_bool(q, "desc_act", origin, p, &c->desc_act));
        QB_TRY(get_bool(q, "sym", origin, p, &c->sym));
    } else if (strcasecmp(method, "awq") == 0) {
        if (version && strcasecmp(version, "gemm") != 0)
            return qb_errorf("%s: %sversion: \"%.40s\" is not supported (gemm only)", origin, p, version);
        bool zero_point = true;
        QB_TRY(get_bool(q, "zero_point", origin, p, &zero_point));
        if (!zero_point) return qb_errorf("%s: %szero_point: false is not supported (AutoAWQ GEMM uses zero points)", origin, p);
        c->quant = fmt;
        c->desc_act = false;
        c->sym = false;
    } else {
        return qb_errorf("%s: %squant_method: \"%.40s\" is not supported (gptq, awq)", origin, p, method);
    }
    if (group <= 0 || group > 65536 || (group & (group - 1)) != 0)
        return qb_errorf("%s: %sgroup_size: %d is not supported (a power of two, 32..65536; per-channel -1 is not)",
                         origin, p, group);
    if (group < 32) return qb_errorf("%s: %sgroup_size: %d is not supported (a power of two, 32..65536)", origin, p, group);
    c->quant_bits = bits;
    c->group_size = group;
    return 0;
}

static int parse_object(const json_t *root, const char *origin, qb_model_config *c) {
    if (!json_is_object(root)) return qb_errorf("%s: top level must be a JSON object", origin);
    const char *s = NULL;
    QB_TRY(get_str(root, "model_type", origin, "", &s));
    const qb_model_family *fam = s ? qb_model_family_by_type(s) : &qb_qwen2_family;
    if (!fam) return qb_errorf("%s: model_type: \"%.40s\" is not supported (%s only)", origin, s, qb_qwen2_family.model_type);
    QB_TRY(get_str(root, "hidden_act", origin, "", &s));
    if (s && strcmp(s, fam->hidden_act) != 0)
        return qb_errorf("%s: hidden_act: \"%.40s\" is not supported (%s only)", origin, s, fam->hidden_act);
    QB_TRY(get_int(root, "vocab_size", true, 1, QB_MAX_VOCAB, origin, "", &c->vocab_size, NULL));
    QB_TRY(get_int(root, "hidden_size", true, 1, QB_MAX_HIDDEN, origin, "", &c->hidden_size, NULL));
    QB_TRY(get_int(root, "intermediate_size", true, 1, QB_MAX_INTERMEDIATE, origin, "", &c->intermediate_size, NULL));
    QB_TRY(get_int(root, "num_hidden_layers", true, 1, QB_MAX_LAYERS, origin, "", &c->num_layers, NULL));
    QB_TRY(get_int(root, "num_attention_heads", true, 1, QB_MAX_HEADS, origin, "", &c->num_heads, NULL));
    bool has_kv = false, has_hd = false;
    QB_TRY(get_int(root, "num_key_value_heads", false, 1, QB_MAX_HEADS, origin, "", &c->num_kv_heads, &has_kv));
    if (!has_kv) c->num_kv_heads = c->num_heads; /* transformers' default */
    QB_TRY(get_int(root, "head_dim", false, 2, QB_MAX_HEAD_DIM, origin, "", &c->head_dim, &has_hd));
    if (!has_hd) {
        if (c->hidden_size % c->num_heads != 0)
            return qb_errorf("%s: hidden_size: %d is not divisible by num_attention_heads %d (and head_dim is absent)",
                             origin, c->hidden_size, c->num_heads);
        c->head_dim = c->hidden_size / c->num_heads;
    }
    QB_TRY(get_int(root, "max_position_embeddings", true, 1, QB_MAX_POSITIONS, origin, "",
                   &c->max_position_embeddings, NULL));
    c->rms_norm_eps = 1e-6;
    QB_TRY(get_num(root, "rms_norm_eps", false, 1e-30, 0.1, origin, "", &c->rms_norm_eps, NULL));
    c->rope_theta = 10000.0; /* transformers' Qwen2Config default */
    QB_TRY(get_num(root, "rope_theta", false, 1.0, 1e12, origin, "", &c->rope_theta, NULL));
    c->tie_word_embeddings = false;
    QB_TRY(get_bool(root, "tie_word_embeddings", origin, "", &c->tie_word_embeddings));
    bool sliding = false;
    QB_TRY(get_bool(root, "use_sliding_window", origin, "", &sliding));
    if (sliding)
        return qb_errorf("%s: use_sliding_window: true is not supported (Qwen2.5 uses full attention)", origin);
    c->rope_type = QB_ROPE_DEFAULT;
    c->rope_factor = 1.0;
    c->yarn_beta_fast = 32.0;
    c->yarn_beta_slow = 1.0;
    c->yarn_attn_factor = 0.0;
    const json_t *rp = json_object_get(root, "rope_parameters");
    const json_t *rs = json_object_get(root, "rope_scaling");
    if (rp && !json_is_null(rp)) QB_TRY(parse_rope(rp, "rope_parameters", origin, c));
    else if (rs && !json_is_null(rs)) QB_TRY(parse_rope(rs, "rope_scaling", origin, c));
    if (c->rope_type == QB_ROPE_YARN && c->rope_original_max_pos == 0)
        c->rope_original_max_pos = c->max_position_embeddings;
    const json_t *q = json_object_get(root, "quantization_config");
    c->quant = QB_QUANT_BF16;
    if (q && !json_is_null(q)) QB_TRY(qb_model_config_parse_quant(q, origin, "quantization_config", c));
    return 0;
}

static int parse_impl(const char *json, size_t len, const char *origin, qb_model_config *out) {
    if (len > QB_MAX_CONFIG_BYTES)
        return qb_errorf("%s: %zu bytes is too large for a config (limit %d)", origin, len, QB_MAX_CONFIG_BYTES);
    qb_model_config c;
    memset(&c, 0, sizeof c);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return qb_errorf("%s: invalid JSON at line %d column %d: %s", origin, jerr.line, jerr.column, jerr.text);
    int rc = parse_object(root, origin, &c);
    json_decref(root);
    if (rc != 0) return -1;
    QB_TRY(qb_model_config_validate(&c, origin));
    *out = c;
    return 0;
}

int qb_model_config_validate(const qb_model_config *c, const char *origin) {
    if (c->vocab_size < 1 || c->vocab_size > QB_MAX_VOCAB)
        return qb_errorf("%s: vocab_size: %d is out of range [1, %d]", origin, c->vocab_size, QB_MAX_VOCAB);
    if (c->hidden_size < 1 || c->hidden_size > QB_MAX_HIDDEN)
        return qb_errorf("%s: hidden_size: %d is out of range [1, %d]", origin, c->hidden_size, QB_MAX_HIDDEN);
    if (c->intermediate_size < 1 || c->intermediate_size > QB_MAX_INTERMEDIATE)
        return qb_errorf("%s: intermediate_size: %d is out of range [1, %d]", origin, c->intermediate_size,
                         QB_MAX_INTERMEDIATE);
    if (c->num_layers < 1 || c->num_layers > QB_MAX_LAYERS)
        return qb_errorf("%s: num_hidden_layers: %d is out of range [1, %d]", origin, c->num_layers, QB_MAX_LAYERS);
    if (c->num_heads < 1 || c->num_heads > QB_MAX_HEADS)
        return qb_errorf("%s: num_attention_heads: %d is out of range [1, %d]", origin, c->num_heads, QB_MAX_HEADS);
    if (c->num_kv_heads < 1 || c->num_kv_heads > c->num_heads)
        return qb_errorf("%s: num_key_value_heads: %d is out of range [1, num_attention_heads %d]", origin,
                         c->num_kv_heads, c->num_heads);
    if (c->num_heads % c->num_kv_heads != 0)
        return qb_errorf("%s: num_key_value_heads: must divide num_attention_heads (%d %% %d != 0)", origin,
                         c->num_heads, c->num_kv_heads);
    if (c->head_dim < 2 || c->head_dim > QB_MAX_HEAD_DIM || c->head_dim % 2 != 0)
        return qb_errorf("%s: head_dim: %d must be even and in [2, %d]", origin, c->head_dim, QB_MAX_HEAD_DIM);
    if ((long long)c->num_heads * c->head_dim > QB_MAX_Q_DIM)
        return qb_errorf("%s: num_attention_heads * head_dim: %d * %d exceeds %d", origin, c->num_heads, c->head_dim,
                         QB_MAX_Q_DIM);
    if (c->max_position_embeddings < 1 || c->max_position_embeddings > QB_MAX_POSITIONS)
        return qb_errorf("%s: max_position_embeddings: %d is out of range [1, %d]", origin,
                         c->max_position_embeddings, QB_MAX_POSITIONS);
    if (!(c->rms_norm_eps > 0.0 && c->rms_norm_eps <= 0.1))
        return qb_errorf("%s: rms_norm_eps: %g is out of range (0, 0.1]", origin, c->rms_norm_eps);
    if (!(c->rope_theta >= 1.0 && c->rope_theta <= 1e12))
        return qb_errorf("%s: rope_theta: %g is out of range [1, 1e12]", origin, c->rope_theta);
    if (c->rope_type == QB_ROPE_YARN) {
        if (!(c->rope_factor >= 1.0 && c->rope_factor <= 1024.0))
            return qb_errorf("%s: rope_scaling.factor: %g is out of range [1, 1024]", origin, c->rope_factor);
        if (c->rope_original_max_pos < 1 || c->rope_original_max_pos > QB_MAX_POSITIONS)
            return qb_errorf("%s: rope_scaling.original_max_position_embeddings: %d is out of range [1, %d]", origin,
                             c->rope_original_max_pos, QB_MAX_POSITIONS);
        if (!(c->yarn_beta_fast > 0 && c->yarn_beta_slow > 0 && c->yarn_beta_fast >= c->yarn_beta_slow))
            return qb_errorf("%s: rope_scaling: beta_fast %g and beta_slow %g must be positive with beta_fast >= beta_slow",
                             origin, c->yarn_beta_fast, c->yarn_beta_slow);
    } else if (c->rope_type != QB_ROPE_DEFAULT) {
        return qb_errorf("%s: rope_scaling: unknown rope type %d", origin, (int)c->rope_type);
    }
    if (c->quant != QB_QUANT_BF16) {
        if (c->quant < 0 || c->quant >= QB_QUANT_COUNT)
            return qb_errorf("%s: quantization_config: unknown quantization %d", origin, (int)c->quant);
        int g = c->group_size;
        if (g < 32 || (g & (g - 1)) != 0)
            return qb_errorf("%s: quantization_config.group_size: %d is not supported (a power of two >= 32)", origin, g);
        if (c->hidden_size % g != 0)
            return qb_errorf("%s: quantization_config.group_size: hidden_size %d is not divisible by %d", origin,
                             c->hidden_size, g);
        if (c->intermediate_size % g != 0)
            return qb_errorf("%s: quantization_config.group_size: intermediate_size %d is not divisible by %d", origin,
                             c->intermediate_size, g);
        if ((c->num_heads * c->head_dim) % g != 0)
            return qb_errorf("%s: quantization_config.group_size: num_attention_heads*head_dim %d is not divisible by %d",
                             origin, c->num_heads * c->head_dim, g);
    }
    size_t params = qb_model_param_count(c);
    if (params > QB_MAX_PARAMS)
        return qb_errorf("%s: the model has %zu parameters, above the limit %llu", origin, params,
                         (unsigned long long)QB_MAX_PARAMS);
    return 0;
}

size_t qb_model_param_count(const qb_model_config *c) {
    size_t H = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, V = (size_t)c->vocab_size;
    size_t qd = (size_t)c->num_heads * (size_t)c->head_dim, kvd = (size_t)c->num_kv_heads * (size_t)c->head_dim;
    size_t per_layer = H * qd + qd + 2 * (H * kvd + kvd) + qd * H + 3 * H * I + 2 * H;
    size_t total = V * H + (size_t)c->num_layers * per_layer + H;
    if (!c->tie_word_embeddings) total += V * H;
    return total;
}

int qb_model_config_parse(const char *json, size_t len, const char *origin, qb_model_config *out) {
    if (parse_impl(json, len, origin, out) != 0) return qb_error_make_printable();
    return 0;
}
