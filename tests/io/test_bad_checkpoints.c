/* test_bad_checkpoints.c - run every case of the hostile-input corpus (tests/make_bad_checkpoints.py):
 * each must fail with exit status -1 and a one-line message containing its expected text (controls must
 * load), must not contain the case's forbidden text (bytes of a file outside the model directory) nor any
 * raw control or bidirectional-override character (io/printable.h), and each must finish in bounded time.
 * Usage: test_bad_checkpoints <corpus dir>   (reads <corpus dir>/cases.tsv) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/model_config.h"
#include "engine/shard_plan.h"
#include "engine/weights.h"
#include "io/printable.h"
#include "io/safetensors.h"
#include "util/error.h"

#define CASE_SECONDS_MAX 20.0 /* generous for a sanitized build on a loaded 2-core machine */

static int run_case(const char *kind, const char *path) {
    if (strcmp(kind, "st") == 0) {
        qb_st_file f;
        QB_TRY(qb_st_open(path, &f));
        qb_st_close(&f);
        return 0;
    }
    if (strcmp(kind, "config") == 0) {
        qb_model_config c;
        return qb_model_config_load_file(path, &c);
    }
    if (strcmp(kind, "dir") == 0) {
        qb_model_config c;
        bool ckpt = false;
        qb_shard_plan p;
        qb_weights w;
        QB_TRY(qb_model_config_resolve(path, &c, &ckpt, NULL, 0));
        QB_TRY(qb_shard_plan_make(&c, 1, 0, &p));
        QB_TRY(qb_weights_load(path, &c, &p, &w));
        qb_weights_free(&w);
        return 0;
    }
    return qb_errorf("unknown case kind \"%s\"", kind);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    char list[4096];
    snprintf(list, sizeof list, "%s/cases.tsv", argv[1]);
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open (run tests/make_bad_checkpoints.py first)\n", list);
        return 2;
    }
    char line[8192];
    int n = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *kind = strtok(line, "\t"), *path = strtok(NULL, "\t"), *want = strtok(NULL, "\t");
        char *forbidden = strtok(NULL, "\t");
        if (!kind || !path || !want) continue;
        n++;
        qb_error_clear();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = run_case(kind, path);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        const char *msg = qb_last_error();
        const char *base = strstr(path, "/st/") ? strstr(path, "/st/") + 1
                         : strstr(path, "/dir/") ? strstr(path, "/dir/") + 1
                         : strstr(path, "/config/") ? strstr(path, "/config/") + 1 : path;
        bool ok;
        if (strcmp(want, "OK") == 0) ok = rc == 0;
        else ok = rc == -1 && strstr(msg, want) != NULL && strchr(msg, '\n') == NULL && msg[0] != '\0';
        if (secs > CASE_SECONDS_MAX) ok = false;
        if (rc != 0 && !qb_is_printable(msg)) ok = false;
        if (rc != 0 && forbidden && strstr(msg, forbidden)) ok = false;
        if (!ok) {
            failures++;
            fprintf(stderr, "FAILED %s (%s, %.2f s): expected %s%s%s, got rc %d: %s\n", base, kind, secs,
                    strcmp(want, "OK") ? "an error containing \"" : "", want, strcmp(want, "OK") ? "\"" : "", rc,
                    rc ? msg : "(no error)");
        } else {
            printf("ok %-48s %6.3f s  %s\n", base, secs, rc ? msg : "(loads)");
        }
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "%s: no cases\n", list);
        return 1;
    }
    printf("%d cases, %d failed\n", n, failures);
    return failures ? 1 : 0;
}
