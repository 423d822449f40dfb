/* fuzz_config.c - libFuzzer target: config.json parsing and validation on arbitrary bytes.
 *
 * Any input must give a clean -1 with a one-line message, or a config within the documented limits, for
 * which the parameter count and every shard-plan check run without overflow (UndefinedBehaviorSanitizer
 * watches the arithmetic). Build and run: tests/run_fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    qb_model_config c;
    memset(&c, 0, sizeof c);
    if (qb_model_config_parse(copy, size, "fuzz.json", &c) != 0) {
        const char *msg = qb_last_error();
        if (msg[0] == '\0' || strchr(msg, '\n')) abort();
        free(copy);
        return 0;
    }
    if (c.vocab_size < 1 || c.hidden_size < 1 || c.num_layers < 1 || c.num_heads % c.num_kv_heads != 0) abort();
    if (qb_model_config_validate(&c, "fuzz.json") != 0) abort(); /* parse's result must stay valid */
    (void)qb_model_param_count(&c);
    for (int tp = 1; tp <= 16; tp++) {
        if (qb_shard_plan_check(&c, tp) != 0) continue;
        for (int r = 0; r < tp; r++) {
            qb_shard_plan p;
            if (qb_shard_plan_make(&c, tp, r, &p) != 0) abort();
            if (p.vocab_size < 1 || p.vocab_start + p.vocab_size > c.vocab_size) abort();
            if (p.kv_head_start + p.kv_heads > c.num_kv_heads) abort();
        }
    }
    free(copy);
    return 0;
}
