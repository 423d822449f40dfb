/* weights_export.h - write full (TP 1) weights as a Hugging Face checkpoint directory.
 *
 * Writes config.json (from the config) and model.safetensors, or with n_shards > 1
 * model-0000i-of-0000N.safetensors plus model.safetensors.index.json. Every tensor is BF16 (norms and biases
 * too: exact for random weights and BF16 checkpoints). A tied model gets no lm_head.weight. Used by tests
 * and by `qwenbench export-weights`.
 */
#ifndef QB_IO_WEIGHTS_EXPORT_H
#define QB_IO_WEIGHTS_EXPORT_H

#include "engine/weights.h"

/* dir must exist; 1 <= n_shards <= the number of tensors (no shard is empty). 0 ok, -1 with a message. */
int qb_weights_export(const char *dir, const qb_weights *w, int n_shards);
/* The number of tensors qb_weights_export writes for config c (the most shards it accepts). */
size_t qb_weights_export_tensor_count(const qb_model_config *c);
/* config.json of c (the Qwen2 fields qb_model_config_parse reads back to the same config). */
int qb_model_config_write_json(const qb_model_config *c, const char *path);

#endif
