/* model_family.h - a model family described once, as data (the Qwen2 table is src/model/qwen2_family.c, the
 * only family today): the tensors of one layer and of the whole model,
 * their names, their shapes as functions of the config's dimensions, which have a bias, which linear family
 * computes them and how each splits under tensor parallelism; plus embedding, final norm, lm_head (tied or
 * not) and the RoPE kind.
 *
 * A linear's full tensor is [out][in] (row-major, as in the checkpoint). Column-parallel linears split their
 * output rows (q/k/v by whole heads, gate/up by rows of the intermediate size), row-parallel ones their input
 * columns (o, down; outputs all-reduced); lm_head splits vocabulary rows; embedding and norms are replicated.
 * The shard plan (engine/shard_plan.h) says which heads / rows a rank holds; qb_linear_slice turns a table
 * row and a plan into the rank's block. Loaders, random weights, export, memory plans, the roofline and the
 * CUDA upload enumerate tensors from here; tensor names (and so the random-weight seeds hashed from them)
 * are spelled only in the family tables and in the format table's suffixes (model/weight_format.h).
 */
#ifndef QB_MODEL_MODEL_FAMILY_H
#define QB_MODEL_MODEL_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"

enum { QB_LIN_Q = 0, QB_LIN_K, QB_LIN_V, QB_LIN_O, QB_LIN_GATE, QB_LIN_UP, QB_LIN_DOWN, QB_NUM_LINEAR };

/* A dimension of the config, and how tensor parallelism splits it. */
typedef enum {
    QB_DIM_HIDDEN = 0, /* hidden_size, never split */
    QB_DIM_Q,          /* num_heads * head_dim, split by query heads */
    QB_DIM_KV,         /* num_kv_heads * head_dim, split by kv heads (replicated below tp) */
    QB_DIM_INTER,      /* intermediate_size, split evenly */
    QB_DIM_VOCAB,      /* vocab_size, split in chunks */
} qb_dim;

typedef enum {
    QB_SHARD_COLUMN = 0, /* output rows split */
    QB_SHARD_ROW,        /* input columns split, output all-reduced */
    QB_SHARD_REPLICATED, /* whole on every rank */
} qb_shard_kind;

typedef struct {
    int id;             /* QB_LIN_* */
    const char *suffix; /* "self_attn.q_proj": tensors are "model.layers.<i>.<suffix>.<part>" */
    qb_dim out, in;     /* full shape [out][in] */
    bool has_bias;      /* "<suffix>.bias" [out], float on the host */
    qb_shard_kind shard;
    const char *fused;  /* the engines' fused matrix it is a block of: "qkv", "o", "gate_up", "down" */
} qb_linear_desc;

typedef enum { QB_ROPE_KIND_NEOX = 0 } qb_rope_kind; /* rotate-half RoPE, theta and YaRN scaling from config */

typedef struct {
    const char *model_type;   /* config.json model_type */
    const char *architecture; /* config.json architectures[0] */
    const char *hidden_act;
    const char *layer_prefix; /* "model.layers." */
    int n_linears;
    const qb_linear_desc *linears;           /* of one layer, in QB_LIN_* order */
    int n_layer_norms;
    const char *const *layer_norms;          /* "input_layernorm.weight", ... : [hidden], float on the host */
    const char *embed;        /* [vocab][hidden], replicated */
    const char *final_norm;   /* [hidden] */
    const char *lm_head;      /* [vocab][hidden], vocabulary rows split; absent and aliasing embed when tied */
    bool lm_head_quantized;   /* false: dense in every release (bf16 or the checkpoint's f16) */
    qb_rope_kind rope;
} qb_model_family;

extern const qb_model_family qb_qwen2_family; /* qwen2_family.c */

/* Family i of the registry (NULL past the end), for listing (`qwenbench formats --json`). */
const qb_model_family *qb_model_family_at(int i);
/* The family a config.json's model_type names, or NULL. */
const qb_model_family *qb_model_family_by_type(const char *model_type);
/* The family of a parsed config: every reader takes its tensors from here (Qwen2 is the only one today; a
 * second family adds its table, a row in qb_model_family_by_type and a field of qb_model_config set from
 * model_type, which this returns). */
const qb_model_family *qb_model_family_of(const qb_model_config *c);

/* "self_attn.q_proj", ..., "mlp.down_proj" (append ".weight" / ".bias" and pass to qb_tensor_name). */
extern const char *const qb_linear_suffix[QB_NUM_LINEAR];
/* The row of linear `which` (QB_LIN_*). */
const qb_linear_desc *qb_linear_desc_of(int which);

/* Canonical tensor names ("model.layers.3.mlp.up_proj.weight"; layer < 0: suffix as is). */
void qb_tensor_name(char *buf, size_t cap, int layer, const char *suffix);
/* "model.layers.3.mlp.up_proj.qweight": linear `which` of `layer`, tensor `part`. */
void qb_linear_tensor_name(char *buf, size_t cap, int layer, int which, const char *part);

/* Full size of dimension d, and this rank's [start, start + n) of it under plan p. */
uint64_t qb_dim_full(const qb_model_config *c, qb_dim d);
void qb_dim_local(const qb_model_config *c, const qb_shard_plan *p, qb_dim d, uint64_t *start, uint64_t *n);

typedef struct {
    uint64_t rows, cols;          /* full tensor shape */
    uint64_t row0, n_rows;        /* this rank's rows */
    uint64_t col0, n_cols;        /* this rank's columns */
    bool has_bias;                /* q, k, v */
} qb_slice;

/* This rank's block of linear `which` (see weights_layout.h for how slices index the full tensor). */
void qb_linear_slice(const qb_model_config *c, const qb_shard_plan *p, int which, qb_slice *s);

#endif
