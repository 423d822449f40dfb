/* qwen2_family.c - the Qwen2 family's tensor table (see model_family.h for what each field means). */
#include "model/model_family.h"

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
