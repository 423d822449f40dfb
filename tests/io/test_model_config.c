/* test_model_config.c - config.json parsing: the shipped presets, rope/quantization variants, resolve, and
 * every refusal with the message it must give. Usage: test_model_config <source dir> <scratch dir> */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/model_config.h"
#include "io_test_util.h"

/* A valid tiny config as (key, JSON value) pairs; tests replace or drop one and add others. */
static const char *k_base[][2] = {
    {"architectures", "[\"Qwen2ForCausalLM\"]"}, {"model_type", "\"qwen2\""}, {"hidden_act", "\"silu\""},
    {"vocab_size", "1024"}, {"hidden_size", "128"}, {"intermediate_size", "384"}, {"num_hidden_layers", "2"},
    {"num_attention_heads", "4"}, {"num_key_value_heads", "2"}, {"max_position_embeddings", "4096"},
    {"rms_norm_eps", "1e-06"}, {"rope_theta", "1000000.0"}, {"tie_word_embeddings", "false"},
    {"use_sliding_window", "false"},
};
#define N_BASE (sizeof k_base / sizeof k_base[0])

/* key = NULL: unchanged base. value = NULL: drop key. Unknown key: appended. */
static char *make_json(const char *key, const char *value) {
    static char buf[8192];
    size_t used = 0;
    bool seen = false;
    used += (size_t)snprintf(buf + used, sizeof buf - used, "{");
    for (size_t i = 0; i < N_BASE; i++) {
        const char *v = k_base[i][1];
        if (key && strcmp(key, k_base[i][0]) == 0) {
            seen = true;
            if (!value) continue;
            v = value;
        }
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\"%s\": %s", used > 1 ? ", " : "", k_base[i][0], v);
    }
    if (key && !seen && value) used += (size_t)snprintf(buf + used, sizeof buf - used, ", \"%s\": %s", key, value);
    snprintf(buf + used, sizeof buf - used, "}");
    return buf;
}

static int parse(const char *json, qb_model_config *c) {
    return qb_model_config_parse(json, strlen(json), "cfg.json", c);
}

static void test_presets(void) {
    struct { const char *name; int layers, hidden, inter, heads, kv, hd, vocab; bool tied; double params_b; } p[] = {
        {"qwen2.5-0.5b", 24, 896, 4864, 14, 2, 64, 151936, true, 0.494},
        {"qwen2.5-1.5b", 28, 1536, 8960, 12, 2, 128, 151936, true, 1.544},
        {"qwen2.5-3b", 36, 2048, 11008, 16, 2, 128, 151936, true, 3.086},
        {"qwen2.5-7b", 28, 3584, 18944, 28, 4, 128, 152064, false, 7.616},
        {"qwen2.5-14b", 48, 5120, 13824, 40, 8, 128, 152064, false, 14.770},
        {"qwen2.5-32b", 64, 5120, 27648, 40, 8, 128, 152064, false, 32.764},
        {"qwen2.5-72b", 80, 8192, 29568, 64, 8, 128, 152064, false, 72.706},
        {"qwen2.5-tiny", 2, 128, 384, 4, 2, 32, 1024, false, 0.0},
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        qb_model_config c;
        bool ckpt = true;
        char dir[64] = "x";
        int rc = qb_model_config_resolve(p[i].name, &c, &ckpt, dir, sizeof dir);
        CHECK_OK(rc);
        if (rc) continue;
        CHECK(!ckpt && strcmp(c.name, p[i].name) == 0 && dir[0] == '\0');
        CHECK(c.num_layers == p[i].layers && c.hidden_size == p[i].hidden && c.intermediate_size == p[i].inter);
        CHECK(c.num_heads == p[i].heads && c.num_kv_heads == p[i].kv && c.head_dim == p[i].hd);
        CHECK(c.vocab_size == p[i].vocab && c.tie_word_embeddings == p[i].tied);
        CHECK(c.rms_norm_eps == 1e-6 && c.rope_theta == 1e6 && c.rope_type == QB_ROPE_DEFAULT);
        CHECK(c.quant == QB_QUANT_BF16);
        if (p[i].params_b > 0) {
            double b = (double)qb_model_param_count(&c) / 1e9;
            if (b < p[i].params_b * 0.995 || b > p[i].params_b * 1.005) {
                fprintf(stderr, "%s: %.3fB parameters, expected %.3fB (+-0.5%%)\n", p[i].name, b, p[i].params_b);
                g_failures++;
            }
        }
    }
}

static void test_variants(void) {
    qb_model_config c;
    CHECK_OK(parse(make_json(NULL, NULL), &c));
    CHECK(c.head_dim == 32 && c.num_kv_heads == 2);
    CHECK_OK(parse(make_json("num_key_value_heads", NULL), &c)); /* default = heads */
    CHECK(c.num_kv_heads == 4);
    CHECK_OK(parse(make_json("head_dim", "64"), &c));
    CHECK(c.head_dim == 64);
    CHECK_OK(parse(make_json("rope_scaling", "{\"type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}"), &c));
    CHECK(c.rope_type == QB_ROPE_YARN && c.rope_factor == 4.0 && c.rope_original_max_pos == 32768);
    CHECK(c.yarn_beta_fast == 32.0 && c.yarn_beta_slow == 1.0 && c.yarn_attn_factor == 0.0);
    CHECK_OK(parse(make_json("rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 2, \"beta_fast\": 16, \"beta_slow\": 2, \"attention_factor\": 1.5}"), &c));
    CHECK(c.rope_factor == 2.0 && c.rope_original_max_pos == 4096 && c.yarn_beta_fast == 16 && c.yarn_attn_factor == 1.5);
    CHECK_OK(parse(make_json("rope_scaling", "null"), &c));
    CHECK(c.rope_type == QB_ROPE_DEFAULT);
    CHECK_OK(parse(make_json("rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}"), &c));
    CHECK(c.rope_type == QB_ROPE_DEFAULT && c.rope_theta == 500000.0);
    CHECK_OK(parse(make_json("rope_parameters", "{\"rope_type\": \"yarn\", \"rope_theta\": 1e6, \"factor\": 4.0, \"original_max_position_embeddings\": 32768}"), &c));
    CHECK(c.rope_type == QB_ROPE_YARN && c.rope_factor == 4.0);
    CHECK_OK(parse(make_json("quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"desc_act\": false, \"sym\": true}"), &c));
    CHECK(c.quant == QB_QUANT_GPTQ_INT4 && c.quant_bits == 4 && c.group_size == 128 && !c.desc_act && c.sym);
    CHECK_OK(parse(make_json("quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 8, \"group_size\": 128, \"desc_act\": true}"), &c));
    CHECK(c.quant == QB_QUANT_GPTQ_INT8 && c.desc_act);
    CHECK_OK(parse(make_json("quantization_config", "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, \"version\": \"gemm\", \"zero_point\": true}"), &c));
    CHECK(c.quant == QB_QUANT_AWQ && c.quant_bits == 4);
    CHECK_OK(parse(make_json("quantization_config", "{\"quant_method\": \"awq\", \"w_bit\": 4, \"q_group_size\": 128, \"version\": \"GEMM\"}"), &c));
    CHECK(c.quant == QB_QUANT_AWQ && c.group_size == 128);
}

static void test_errors(void) {
    struct { const char *key, *value, *want; } e[] = {
        {"vocab_size", NULL, "cfg.json: vocab_size: missing"},
        {"hidden_size", "\"128\"", "cfg.json: hidden_size: must be an integer, got a string"},
        {"hidden_size", "128.5", "hidden_size: must be an integer, got a real number"},
        {"num_hidden_layers", "0", "num_hidden_layers: 0 is out of range [1, 1024]"},
        {"intermediate_size", "-5", "intermediate_size: -5 is out of range"},
        {"vocab_size", "1048577", "vocab_size: 1048577 is out of range [1, 1048576]"},
        {"vocab_size", "99999999999999999999", "invalid JSON"},
        {"vocab_size", "4294967296", "vocab_size: 4294967296 is out of range"},
        {"hidden_size", "65537", "hidden_size: 65537 is out of range [1, 65536]"},
        {"num_hidden_layers", "1025", "num_hidden_layers: 1025 is out of range [1, 1024]"},
        {"max_position_embeddings", "1048577", "max_position_embeddings: 1048577 is out of range"},
        {"num_key_value_heads", "3", "num_key_value_heads: must divide num_attention_heads (4 % 3 != 0)"},
        {"num_key_value_heads", "8", "num_key_value_heads: 8 is out of range [1, num_attention_heads 4]"},
        {"num_attention_heads", "3", "hidden_size: 128 is not divisible by num_attention_heads 3"},
        {"head_dim", "33", "head_dim: 33 must be even"},
        {"head_dim", "1026", "head_dim: 1026 is out of range [2, 1024]"},
        {"rms_norm_eps", "0", "rms_norm_eps: 0 is out of range"},
        {"rms_norm_eps", "\"x\"", "rms_norm_eps: must be a number, got a string"},
        {"rope_theta", "-1", "rope_theta: -1 is out of range"},
        {"tie_word_embeddings", "1", "tie_word_embeddings: must be true or false, got an integer"},
        {"model_type", "\"llama\"", "model_type: \"llama\" is not supported (qwen2 only)"},
        {"hidden_act", "\"gelu\"", "hidden_act: \"gelu\" is not supported"},
        {"use_sliding_window", "true", "use_sliding_window: true is not supported"},
        {"rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", "rope_scaling.rope_type: unsupported rope scaling type \"linear\""},
        {"rope_scaling", "{\"rope_type\": \"dynamic\", \"factor\": 2.0}", "unsupported rope scaling type \"dynamic\""},
        {"rope_scaling", "{\"type\": \"yarn\"}", "rope_scaling.factor: missing"},
        {"rope_scaling", "{\"type\": \"yarn\", \"factor\": 0.5}", "rope_scaling.factor: 0.5 is out of range"},
        {"rope_scaling", "{\"type\": 7}", "rope_scaling.type: must be a string"},
        {"rope_scaling", "[1]", "rope_scaling: must be an object or null"},
        {"rope_parameters", "{\"rope_type\": \"longrope\"}", "rope_parameters.rope_type: unsupported rope scaling type \"longrope\""},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 3, \"group_size\": 128}", "quantization_config.bits: 3 is not supported for gptq"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": -1}", "quantization_config.group_size: -1 is not supported"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 48}", "group_size: 48 is not supported"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 256}", "hidden_size 128 is not divisible by 256"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4}", "quantization_config.group_size: missing"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"checkpoint_format\": \"gptq_v2\"}", "checkpoint_format: \"gptq_v2\" is not supported"},
        {"quantization_config", "{\"quant_method\": \"awq\", \"bits\": 8, \"group_size\": 128}", "quantization_config.bits: 8 is not supported for awq"},
        {"quantization_config", "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128, \"version\": \"gemv\"}", "version: \"gemv\" is not supported"},
        {"quantization_config", "{\"quant_method\": \"bitsandbytes\", \"bits\": 4, \"group_size\": 128}", "quant_method: \"bitsandbytes\" is not supported"},
        {"quantization_config", "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128, \"sym\": \"yes\"}", "quantization_config.sym: must be true or false"},
        {"quantization_config", "7", "quantization_config: must be an object"},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        qb_model_config c;
        const char *json = make_json(e[i].key, e[i].value);
        int rc = parse(json, &c);
        if (rc != -1 || !strstr(qb_last_error(), e[i].want)) {
            fprintf(stderr, "FAILED case %zu (%s = %s): expected \"%s\", got rc %d \"%s\"\n", i, e[i].key,
                    e[i].value ? e[i].value : "(absent)", e[i].want, rc, rc ? qb_last_error() : "");
            g_failures++;
        }
    }
    qb_model_config c;
    CHECK_ERR(parse("[1, 2]", &c), "cfg.json: top level must be a JSON object");
    CHECK_ERR(parse("{\"vocab_size\": 1, \"vocab_size\": 2}", &c), "cfg.json: invalid JSON");
    CHECK_ERR(parse("{\"vocab_size\": 1,", &c), "cfg.json: invalid JSON at line 1");
    CHECK_ERR(parse("", &c), "invalid JSON");
    CHECK_ERR(qb_model_config_parse("{\"a\": \"\xff\"}", 10, "cfg.json", &c), "invalid JSON");
    /* products: the 72B-sized vocabulary x hidden is fine, the limits keep every product in 64 bits */
    CHECK_OK(parse(make_json(NULL, NULL), &c));
    c.num_heads = 1024, c.num_kv_heads = 1, c.head_dim = 1024;
    CHECK_ERR(qb_model_config_validate(&c, "v"), "v: num_attention_heads * head_dim: 1024 * 1024 exceeds 131072");
    CHECK_ERR(parse(make_json("hidden_size", "65536"), &c), "head_dim: 16384 must be even and in [2, 1024]");
}

static FILE *open_or_die(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot create (does the scratch directory exist?)\n", path);
        exit(1);
    }
    return f;
}

static void test_resolve(const char *scratch) {
    qb_model_config c;
    bool ckpt = false;
    char dir[512];
    CHECK_ERR(qb_model_config_resolve("qwen2.5-9b", &c, &ckpt, dir, sizeof dir), "unknown model \"qwen2.5-9b\"");
    CHECK(strstr(qb_last_error(), "qwen2.5-0.5b") && strstr(qb_last_error(), "qwen2.5-tiny"));
    CHECK_ERR(qb_model_config_resolve("../etc/passwd", &c, &ckpt, dir, sizeof dir), "neither a checkpoint directory");
    CHECK_ERR(qb_model_config_resolve("", &c, &ckpt, dir, sizeof dir), "--model: empty");
    /* a checkpoint directory */
    char d[600], path[700];
    snprintf(d, sizeof d, "%s/My-Model", scratch);
    mkdir(d, 0755);
    snprintf(path, sizeof path, "%s/config.json", d);
    remove(path);
    CHECK_ERR(qb_model_config_resolve(d, &c, &ckpt, dir, sizeof dir), "no config.json in this directory");
    FILE *f = open_or_die(path);
    fputs(make_json(NULL, NULL), f);
    fclose(f);
    char with_slash[700];
    snprintf(with_slash, sizeof with_slash, "%s/", d);
    CHECK_OK(qb_model_config_resolve(with_slash, &c, &ckpt, dir, sizeof dir));
    CHECK(ckpt && strcmp(c.name, "My-Model") == 0 && strcmp(dir, with_slash) == 0 && c.quant == QB_QUANT_BF16);
    /* quantize_config.json beside config.json */
    snprintf(path, sizeof path, "%s/quantize_config.json", d);
    f = open_or_die(path);
    fputs("{\"bits\": 8, \"group_size\": 128, \"desc_act\": false, \"sym\": true}", f);
    fclose(f);
    CHECK_OK(qb_model_config_resolve(d, &c, &ckpt, dir, sizeof dir));
    CHECK(c.quant == QB_QUANT_GPTQ_INT8 && c.group_size == 128);
    f = open_or_die(path);
    fputs("{\"bits\": 2, \"group_size\": 128}", f);
    fclose(f);
    CHECK_ERR(qb_model_config_resolve(d, &c, &ckpt, dir, sizeof dir), "quantize_config.json: quantize_config.bits: 2 is not supported");
    remove(path);
    /* $QWENBENCH_CONFIG_DIR */
    setenv("QWENBENCH_CONFIG_DIR", scratch, 1);
    snprintf(path, sizeof path, "%s/mine.json", scratch);
    f = open_or_die(path);
    fputs(make_json("num_hidden_layers", "3"), f);
    fclose(f);
    CHECK_OK(qb_model_config_resolve("mine", &c, &ckpt, dir, sizeof dir));
    CHECK(!ckpt && c.num_layers == 3 && strcmp(c.name, "mine") == 0);
    unsetenv("QWENBENCH_CONFIG_DIR");
    CHECK_ERR(qb_model_config_load_file("/nonexistent/config.json", &c), "/nonexistent/config.json: cannot open");
    CHECK_ERR(qb_model_config_load_file(scratch, &c), "not a regular file");
}

static void test_quant_names(void) {
    for (int q = 0; q < QB_QUANT_COUNT; q++) {
        qb_quant back;
        CHECK(qb_quant_parse(qb_quant_name((qb_quant)q), &back) == 0 && back == (qb_quant)q);
    }
    qb_quant q;
    CHECK(strcmp(qb_quant_name(QB_QUANT_GPTQ_INT4), "gptq-int4") == 0);
    CHECK_ERR(qb_quant_parse("int3", &q), "unknown quantization \"int3\"");
    qb_model_config c;
    CHECK_OK(qb_model_config_resolve("qwen2.5-72b", &c, NULL, NULL, 0));
    CHECK_OK(qb_model_config_apply_quant(&c, QB_QUANT_GPTQ_INT4, false));
    CHECK(c.quant == QB_QUANT_GPTQ_INT4 && c.quant_bits == 4 && c.group_size == 128 && c.intermediate_size == 29696 && c.sym);
    CHECK_OK(qb_model_config_resolve("qwen2.5-7b", &c, NULL, NULL, 0));
    CHECK_OK(qb_model_config_apply_quant(&c, QB_QUANT_GPTQ_INT8, false));
    CHECK(c.quant_bits == 8 && c.intermediate_size == 18944);
    CHECK_ERR(qb_model_config_apply_quant(&c, QB_QUANT_AWQ, true), "--quant awq: the checkpoint qwen2.5-7b is gptq-int8");
    CHECK_OK(qb_model_config_resolve("qwen2.5-tiny", &c, NULL, NULL, 0));
    CHECK_OK(qb_model_config_apply_quant(&c, QB_QUANT_AWQ, false));
    CHECK(c.quant == QB_QUANT_AWQ && !c.sym);
    CHECK_OK(qb_model_config_resolve("qwen2.5-tiny", &c, NULL, NULL, 0));
    c.hidden_size = 96, c.head_dim = 24;
    CHECK_ERR(qb_model_config_apply_quant(&c, QB_QUANT_GPTQ_INT4, false),
              "--quant gptq-int4: qwen2.5-tiny has no such release: qwen2.5-tiny: quantization_config.group_size: hidden_size 96");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <source dir> <scratch dir>\n", argv[0]);
        return 2;
    }
    char cfgdir[4096];
    snprintf(cfgdir, sizeof cfgdir, "%s/configs/models", argv[1]);
    setenv("QWENBENCH_CONFIG_DIR", cfgdir, 1);
    mkdir(argv[2], 0755);
    test_presets();
    test_variants();
    test_errors();
    test_resolve(argv[2]);
    test_quant_names();
    return test_finish("test_model_config");
}
