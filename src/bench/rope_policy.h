/* rope_policy.h - when an input needs YaRN, as the published long-input runs did.
 *
 * --rope-scaling auto (default): a cell whose input + generated tokens fit max_position_embeddings runs the
 * config as it is. Beyond it, a model that supports YaRN (the 32K configs of 7B..72B: hidden size >= 3584)
 * gets YaRN factor 4 over the original 32768 positions (rope_scaling {"type":"yarn","factor":4.0,
 * "original_max_position_embeddings":32768}); a 0.5B..3B model is refused, unless the user forces scaling.
 * --rope-scaling none runs without scaling whatever the length; --rope-scaling yarn:F forces YaRN factor F.
 * A config that already asks for YaRN is kept as it is.
 */
#ifndef QB_BENCH_ROPE_POLICY_H
#define QB_BENCH_ROPE_POLICY_H

#include <stddef.h>

#include "config/model_config.h"

typedef struct {
    int mode;       /* 0 auto, 1 none, 2 yarn */
    double factor;  /* yarn: factor */
} qb_rope_policy;

int qb_rope_policy_parse(const char *s, qb_rope_policy *out);
void qb_rope_policy_format(const qb_rope_policy *p, char *buf, size_t cap);
/* Apply the policy to cfg for a cell of ctx + gen positions; describe the outcome in label ("none",
 * "yarn:4 (auto)", "yarn:4 (config)", ...). -1 with a message when the cell must be refused. */
int qb_rope_policy_apply(const qb_rope_policy *p, qb_model_config *cfg, int ctx, int gen, char *label, size_t cap);

#endif
