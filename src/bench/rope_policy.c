/* rope_policy.c - choose plain RoPE or YaRN per cell (see rope_policy.h). */
#include "bench/rope_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

enum { MODE_AUTO = 0, MODE_NONE = 1, MODE_YARN = 2 };
#define QB_YARN_DEFAULT_FACTOR 4.0
#define QB_YARN_MIN_HIDDEN 3584 /* Qwen2.5-7B and larger are published with YaRN support to 128K */

int qb_rope_policy_parse(const char *s, qb_rope_policy *out) {
    out->factor = 0;
    if (!strcmp(s, "auto")) { out->mode = MODE_AUTO; return 0; }
    if (!strcmp(s, "none")) { out->mode = MODE_NONE; return 0; }
    if (!strncmp(s, "yarn:", 5)) {
        char *end;
        errno = 0;
        double f = strtod(s + 5, &end);
        if (errno || end == s + 5 || *end || !(f > 1.0) || f > 64.0)
            return qb_errorf("'%s': expected yarn:F with a factor F in (1, 64]", s);
        out->mode = MODE_YARN;
        out->factor = f;
        return 0;
    }
    return qb_errorf("'%s' is not auto, none or yarn:F", s);
}

void qb_rope_policy_format(const qb_rope_policy *p, char *buf, size_t cap) {
    if (p->mode == MODE_YARN) snprintf(buf, cap, "yarn:%g", p->factor);
    else snprintf(buf, cap, "%s", p->mode == MODE_NONE ? "none" : "auto");
}

static void set_yarn(qb_model_config *cfg, double factor) {
    cfg->rope_type = QB_ROPE_YARN;
    cfg->rope_factor = factor;
    cfg->rope_original_max_pos = cfg->max_position_embeddings;
    cfg->yarn_beta_fast = 32.0;
    cfg->yarn_beta_slow = 1.0;
    cfg->yarn_attn_factor = 0.0;
    cfg->max_position_embeddings = (int)(cfg->max_position_embeddings * factor);
}

int qb_rope_policy_apply(const qb_rope_policy *p, qb_model_config *cfg, int ctx, int gen, char *label, size_t cap) {
    const long need = (long)ctx + gen;
    if (cfg->rope_type == QB_ROPE_YARN) {
        snprintf(label, cap, "yarn:%g (config)", cfg->rope_factor);
        return 0;
    }
    if (p->mode == MODE_NONE) {
        snprintf(label, cap, "none");
        return 0;
    }
    if (p->mode == MODE_YARN) {
        set_yarn(cfg, p->factor);
        snprintf(label, cap, "yarn:%g (forced)", p->factor);
        return 0;
    }
    if (need <= cfg->max_position_embeddings) {
        snprintf(label, cap, "none");
        return 0;
    }
    if (cfg->hidden_size < QB_YARN_MIN_HIDDEN)
        return qb_errorf("%s: input %d + %d generated tokens exceed max_position_embeddings %d, and this model size "
                         "is not published with YaRN; use --rope-scaling yarn:4 to force scaling",
                         cfg->name, ctx, gen, cfg->max_position_embeddings);
    set_yarn(cfg, QB_YARN_DEFAULT_FACTOR);
    if (need > cfg->max_position_embeddings)
        return qb_errorf("%s: input %d + %d generated tokens exceed even the YaRN-extended %d positions",
                         cfg->name, ctx, gen, cfg->max_position_embeddings);
    snprintf(label, cap, "yarn:%g (auto)", QB_YARN_DEFAULT_FACTOR);
    return 0;
}
