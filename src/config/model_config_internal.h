/* model_config_internal.h - limits and helpers shared by the config parser's files (not a public API).
 *
 * The limits bound every allocation an untrusted config.json can ask for; the largest Qwen2.5 model
 * (72B: vocab 152064, hidden 8192, intermediate 29696, 80 layers) is far below each.
 */
#ifndef QB_CONFIG_MODEL_CONFIG_INTERNAL_H
#define QB_CONFIG_MODEL_CONFIG_INTERNAL_H

#include <jansson.h>

#include "config/model_config.h"

#define QB_MAX_VOCAB 1048576
#define QB_MAX_HIDDEN 65536
#define QB_MAX_INTERMEDIATE 262144
#define QB_MAX_LAYERS 1024
#define QB_MAX_HEADS 1024
#define QB_MAX_HEAD_DIM 1024
#define QB_MAX_Q_DIM 131072
#define QB_MAX_POSITIONS 1048576
#define QB_MAX_PARAMS (1ull << 40)
#define QB_MAX_CONFIG_BYTES (16 * 1024 * 1024)

/* Parse a quantization_config object (or a quantize_config.json's top level) into c's quant fields.
 * prefix names the object in messages ("quantization_config"). */
int qb_model_config_parse_quant(const json_t *q, const char *origin, const char *prefix, qb_model_config *c);

#endif
