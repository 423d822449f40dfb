/* test_shard_plan.c - legal and illegal tensor-parallel sizes for the seven presets (BF16 and group-quantized),
 * the slices each rank gets, and the messages for refusals. Usage: test_shard_plan <source dir> */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "io_test_util.h"

static const int k_tps[5] = {1, 2, 3, 4, 8};

static void check_preset(const char *name, const char *bf16_ok, const char *int4_ok) {
    qb_model_config c;
    if (qb_model_config_resolve(name, &c, NULL, NULL, 0) != 0) {
        fprintf(stderr, "%s: %s\n", name, qb_last_error());
        g_failures++;
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *ok = pass ? int4_ok : bf16_ok;
        if (pass) {
            c.quant = QB_QUANT_GPTQ_INT4, c.quant_bits = 4, c.group_size = 128;
            if (c.intermediate_size == 29568) c.intermediate_size = 29696; /* the quantized 72B releases */
        }
        for (int i = 0; i < 5; i++) {
            bool want = ok[i] == 'y';
            int rc = qb_shard_plan_check(&c, k_tps[i]);
            if ((rc == 0) != want) {
                fprintf(stderr, "FAILED %s %s tp %d: expected %s, got %s (%s)\n", name, pass ? "gptq-int4" : "bf16",
                        k_tps[i], want ? "legal" : "illegal", rc == 0 ? "legal" : "illegal", rc ? qb_last_error() : "");
                g_failures++;
            }
            if (rc != 0) continue;
            /* every rank's plan tiles heads, intermediate and vocabulary exactly */
            int heads = 0, inter = 0, vocab = 0;
            for (int r = 0; r < k_tps[i]; r++) {
                qb_shard_plan p;
                CHECK_OK(qb_shard_plan_make(&c, k_tps[i], r, &p));
                CHECK(p.q_head_start == heads && p.inter_start == inter && p.vocab_start == vocab);
                heads += p.q_heads, inter += p.inter_size, vocab += p.vocab_size;
                /* the kv heads the rank holds serve its query heads */
                int group = c.num_heads / c.num_kv_heads;
                CHECK(p.kv_head_start == p.q_head_start / group);
                CHECK((p.q_head_start + p.q_heads - 1) / group < p.kv_head_start + p.kv_heads);
                CHECK(p.vocab_size > 0);
            }
            CHECK(heads == c.num_heads && inter == c.intermediate_size && vocab == c.vocab_size);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char cfgdir[4096];
    snprintf(cfgdir, sizeof cfgdir, "%s/configs/models", argv[1]);
    setenv("QWENBENCH_CONFIG_DIR", cfgdir, 1);
    /* tp:                 1 2 3 4 8 */
    check_preset("qwen2.5-0.5b", "yynnn", "ynnnn");
    check_preset("qwen2.5-1.5b", "yynyn", "yynnn");
    check_preset("qwen2.5-3b", "yynyy", "yynnn");
    check_preset("qwen2.5-7b", "yynyn", "yynyn");
    check_preset("qwen2.5-14b", "yynyy", "yynyn");
    check_preset("qwen2.5-32b", "yynyy", "yynyy");
    check_preset("qwen2.5-72b", "yynyy", "yynyy");

    qb_model_config c;
    CHECK_OK(qb_model_config_resolve("qwen2.5-0.5b", &c, NULL, NULL, 0));
    CHECK_ERR(qb_shard_plan_check(&c, 3), "tp 3: num_attention_heads 14 is not divisible by 3");
    CHECK_ERR(qb_shard_plan_check(&c, 0), "tp 0: must be in [1, 1024]");
    qb_shard_plan p;
    CHECK_ERR(qb_shard_plan_make(&c, 2, 2, &p), "tp 2: rank 2 is out of range");
    CHECK_OK(qb_shard_plan_make(&c, 2, 1, &p));
    CHECK(p.q_head_start == 7 && p.q_heads == 7 && p.kv_head_start == 1 && p.kv_heads == 1);
    CHECK(p.inter_start == 2432 && p.inter_size == 2432 && p.vocab_start == 75968 && p.vocab_size == 75968);
    c.quant = QB_QUANT_GPTQ_INT4, c.quant_bits = 4, c.group_size = 128;
    CHECK_ERR(qb_shard_plan_check(&c, 2), "o_proj input slice num_attention_heads*head_dim/tp = 448 is not a multiple of group_size 128");
    CHECK_OK(qb_model_config_resolve("qwen2.5-1.5b", &c, NULL, NULL, 0));
    CHECK_ERR(qb_shard_plan_check(&c, 3), "tp 3: more ranks than num_key_value_heads 2, so tp must be a multiple of 2");
    CHECK_OK(qb_shard_plan_make(&c, 4, 3, &p));
    CHECK(p.q_head_start == 9 && p.q_heads == 3 && p.kv_head_start == 1 && p.kv_heads == 1);
    CHECK_OK(qb_model_config_resolve("qwen2.5-14b", &c, NULL, NULL, 0));
    c.quant = QB_QUANT_AWQ, c.quant_bits = 4, c.group_size = 128;
    CHECK_ERR(qb_shard_plan_check(&c, 8), "tp 8: awq down_proj input slice intermediate_size/tp = 13824/8 = 1728 is not a multiple of group_size 128");
    CHECK_OK(qb_model_config_resolve("qwen2.5-72b", &c, NULL, NULL, 0));
    c.quant = QB_QUANT_GPTQ_INT8, c.quant_bits = 8, c.group_size = 128;
    CHECK_ERR(qb_shard_plan_check(&c, 8), "29568/8 = 3696 is not a multiple of group_size 128");
    /* vocabulary in ceil chunks, the last rank holding the rest */
    CHECK_OK(qb_model_config_resolve("qwen2.5-tiny", &c, NULL, NULL, 0));
    c.num_kv_heads = 4, c.vocab_size = 10;
    int sizes[4];
    for (int r = 0; r < 4; r++) {
        CHECK_OK(qb_shard_plan_make(&c, 4, r, &p));
        sizes[r] = p.vocab_size;
        CHECK(p.vocab_start == 3 * r && p.kv_head_start == r && p.kv_heads == 1);
    }
    CHECK(sizes[0] == 3 && sizes[1] == 3 && sizes[2] == 3 && sizes[3] == 1);
    c.vocab_size = 9;
    CHECK_ERR(qb_shard_plan_check(&c, 4), "tp 4: vocab_size 9 in chunks of 3 leaves the last rank no rows");
    c.vocab_size = 1024, c.intermediate_size = 385;
    CHECK_ERR(qb_shard_plan_check(&c, 2), "tp 2: intermediate_size 385 is not divisible by 2");
    c.intermediate_size = 384, c.num_kv_heads = 4;
    c.num_heads = 8, c.num_kv_heads = 2;
    CHECK_OK(qb_shard_plan_check(&c, 2));
    c.num_heads = 12, c.num_kv_heads = 6;
    CHECK_ERR(qb_shard_plan_check(&c, 4), "tp 4: num_key_value_heads 6 is not divisible by 4");
    return test_finish("test_shard_plan");
}
