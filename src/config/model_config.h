/* model_config.h - the Qwen2 architecture a run uses, parsed from a Hugging Face config.json.
 *
 * The same parser reads the shipped presets (configs/models/<name>.json, e.g. qwen2.5-7b) and the
 * config.json of a local checkpoint directory. Missing, mistyped or inconsistent fields are refused with a
 * message naming the file and the field. Both rope_theta/rope_scaling and the newer rope_parameters are
 * accepted. Quantization settings (quantization_config, or quantize_config.json beside it) are read here too.
 */
#ifndef QB_CONFIG_MODEL_CONFIG_H
#define QB_CONFIG_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "model/weight_format.h" /* qb_quant and the format names */

typedef enum { QB_ROPE_DEFAULT = 0, QB_ROPE_YARN } qb_rope_type;

typedef struct {
    char name[128];              /* preset name or checkpoint directory's base name */
    int vocab_size;
    int hidden_size;             /* H */
    int intermediate_size;       /* I (from the checkpoint when the publisher padded it) */
    int num_layers;
    int num_heads;               /* query heads */
    int num_kv_heads;
    int head_dim;                /* hidden_size / num_heads unless config says otherwise */
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    qb_rope_type rope_type;
    double rope_factor;          /* YaRN factor (e.g. 4.0) */
    int rope_original_max_pos;   /* YaRN original_max_position_embeddings (e.g. 32768) */
    double yarn_beta_fast;       /* default 32 */
    double yarn_beta_slow;       /* default 1 */
    double yarn_attn_factor;     /* 0 = derived: 0.1*ln(factor)+1 */
    bool tie_word_embeddings;
    /* quantization (QB_QUANT_BF16 for plain checkpoints) */
    qb_quant quant;
    int quant_bits;              /* 4 or 8 (0 for bf16) */
    int group_size;              /* 128 for the Qwen2.5 releases */
    bool desc_act;
    bool sym;
} qb_model_config;

/* Parse a config.json held in memory; origin names it in error messages. */
int qb_model_config_parse(const char *json, size_t len, const char *origin, qb_model_config *out);
/* Parse a config.json file. */
int qb_model_config_load_file(const char *path, qb_model_config *out);
/* Resolve --model: a directory holding config.json, or a preset name found in the configs directory
 * ($QWENBENCH_CONFIG_DIR, else <source>/configs/models). On success *is_checkpoint says which. */
int qb_model_config_resolve(const char *model, qb_model_config *out, bool *is_checkpoint,
                            char *dir_out, size_t dir_cap);
/* Check internal consistency (divisibility, limits); called by the parsers, exposed for tests. */
int qb_model_config_validate(const qb_model_config *c, const char *origin);

/* Apply --quant to a resolved config. A preset (c->quant == BF16) becomes the published quantized release's
 * config (the format table's bits, published group size and symmetry; desc_act false), and the 72B's intermediate
 * size padded 29568 -> 29696 as in its GPTQ/AWQ releases. A checkpoint keeps its own quantization, and a
 * different --quant is refused ("--quant gptq-int4: the checkpoint NAME is bf16"). */
int qb_model_config_apply_quant(qb_model_config *c, qb_quant q, bool is_checkpoint);

/* Parameter counts, for memory planning and the bandwidth floor. */
size_t qb_model_param_count(const qb_model_config *c);

#endif
