/* export_cmd.c - export random weights as a checkpoint (see export_cmd.h). */
#include "bench/export_cmd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "io/weights_export.h"
#include "util/error.h"

static int usage(const char *msg) {
    fprintf(stderr, "qwenbench export-weights: error: %s (usage: qwenbench export-weights --model PRESET --out DIR "
                    "[--seed N] [--shards N])\n", msg);
    return 2;
}

static const char *const usage_text =
    "usage: qwenbench export-weights --model PRESET --out DIR [--seed N] [--shards N]\n"
    "Writes the preset's random weights (the ones `qwenbench --model PRESET --seed N` runs) as a Hugging Face\n"
    "checkpoint: DIR/config.json and bf16 safetensors in N shards (default 1; at most 1000 and at most the number\n"
    "of tensors, so that no shard is empty) with an index when N > 1.\n"
    "DIR and missing parent directories are created. transformers (AutoModelForCausalLM.from_pretrained(DIR))\n"
    "and qwenbench (--model DIR) then run the very same model.\n";

/* mkdir -p: DIR and every missing parent. */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return qb_errorf("--out: empty or too long path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return qb_errorf("%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return qb_errorf("%s: exists and is not a directory", path);
    return 0;
}

int qb_export_weights_command(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    unsigned long long seed = 1;
    long shards = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--model") && v) model = argv[++i];
        else if (!strcmp(a, "--out") && v) out = argv[++i];
        else if (!strcmp(a, "--seed") && v) {
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (!isdigit((unsigned char)argv[i][0]) || errno || *end)
                return usage("--seed: not an integer in [0, 2^64 - 1]");
        } else if (!strcmp(a, "--shards") && v) {
            errno = 0;
            shards = strtol(argv[++i], &end, 10);
            if (!isdigit((unsigned char)argv[i][0]) || errno || *end || shards < 1 || shards > 1000)
                return usage("--shards: not an integer in [1, 1000]");
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "unexpected argument '%s'", a);
            return usage(msg);
        }
    }
    if (!model || !out) return usage("--model and --out are required");
    qb_model_config cfg;
    bool ckpt;
    char dir[4096];
    qb_shard_plan plan;
    qb_weights w;
    memset(&w, 0, sizeof w);
    if (qb_model_config_resolve(model, &cfg, &ckpt, dir, sizeof dir) != 0) goto fail;
    if (ckpt) {
        qb_errorf("--model %s is a checkpoint directory: export-weights writes a preset's random weights", model);
        goto fail;
    }
    size_t n_tensors = qb_weights_export_tensor_count(&cfg);
    if ((size_t)shards > n_tensors) {
        char msg[256];
        snprintf(msg, sizeof msg, "--shards %ld: more than the %zu tensors of %s (a shard would be empty)", shards,
                 n_tensors, cfg.name);
        return usage(msg);
    }
    if (make_dirs(out) != 0) goto fail;
    if (qb_shard_plan_make(&cfg, 1, 0, &plan) != 0 || qb_weights_random(&cfg, &plan, seed, &w) != 0 ||
        qb_weights_export(out, &w, (int)shards) != 0)
        goto fail;
    fprintf(stderr, "# wrote %s: %s random weights (seed %llu), %ld shard(s)\n", out, cfg.name, seed, shards);
    qb_weights_free(&w);
    return 0;
fail:
    fprintf(stderr, "qwenbench export-weights: error: %s\n", qb_last_error());
    qb_weights_free(&w);
    return 1;
}
