/* test_quant_refusals.c - broken GPTQ / AWQ checkpoints are refused with a message naming what is wrong
 * (tests/make_quant_fixtures.py writes them to <fixtures>/bad/<case>/ with expected.txt: the text the
 * one-line error must contain, or "OK" for a case that must load).
 *   test_quant_refusals <quant fixtures dir>
 * Each case: resolve the config (quantization_config checks, padded intermediate size), then load the weights
 * at TP1; the first error is the case's message.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "util/error.h"

static int run_case(const char *dir, char *msg, size_t cap) {
    qb_model_config c;
    bool ckpt;
    qb_shard_plan p;
    qb_weights w;
    int rc = qb_model_config_resolve(dir, &c, &ckpt, NULL, 0);
    if (rc == 0) rc = qb_shard_plan_make(&c, 1, 0, &p);
    if (rc == 0) rc = qb_weights_load(dir, &c, &p, &w);
    if (rc == 0) qb_weights_free(&w);
    snprintf(msg, cap, "%s", rc == 0 ? "OK" : qb_last_error());
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_quant_refusals <quant fixtures dir>\n");
        return 2;
    }
    char root[4096];
    snprintf(root, sizeof root, "%s/bad", argv[1]);
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "test_quant_refusals: cannot open %s (run make_quant_fixtures.py first)\n", root);
        return 1;
    }
    int cases = 0, failures = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char dir[4600], path[4700], expected[512] = "", msg[QB_ERROR_MAX + 64];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(path, sizeof path, "%s/expected.txt", dir);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(expected, sizeof expected, f)) {
            fprintf(stderr, "FAIL %s: no expected.txt\n", e->d_name);
            failures++;
            if (f) fclose(f);
            continue;
        }
        fclose(f);
        expected[strcspn(expected, "\n")] = '\0';
        cases++;
        int rc = run_case(dir, msg, sizeof msg);
        int ok = strcmp(expected, "OK") == 0 ? rc == 0 : rc != 0 && strstr(msg, expected) != NULL;
        if (!ok) {
            fprintf(stderr, "FAIL %s: expected \"%s\", got rc %d: %s\n", e->d_name, expected, rc, msg);
            failures++;
        } else {
            printf("ok %-22s %s\n", e->d_name, msg);
        }
    }
    closedir(d);
    if (failures || cases == 0) {
        fprintf(stderr, "test_quant_refusals: %d of %d cases failed\n", failures, cases);
        return 1;
    }
    printf("test_quant_refusals: %d cases passed\n", cases);
    return 0;
}
