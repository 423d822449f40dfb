/* test_dist_errors.c - every rank's error gathered to rank 0, and ranks comparing what they will run.
 *
 * Run: mpirun -np N test_dist_errors   (N = 1, 2, 4 in CTest)
 * Checks the report's format (one line per distinct message, ranks as ranges, hosts named, control
 * characters escaped, long messages cut, the message alone in a world of one); that qb_dist_gather_errors
 * gives every rank the same verdict and rank 0 every failing rank's message (the last rank failing alone,
 * then every rank with one message); that a fingerprint names the first field that differs (config, options,
 * tensors); and that qb_ranks_compare tells exactly the rank with another config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/rank_agreement.h"
#include "comm/dist.h"
#include "util/error.h"

static int g_failures;
static qb_dist d;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond) && g_failures++ < 10) {                                                  \
            fprintf(stderr, "FAIL rank %d (%s:%d): ", d.world_rank, __FILE__, __LINE__);     \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
        }                                                                                    \
    } while (0)

#define MUST(call)                                                                           \
    do {                                                                                     \
        if ((call) != 0) QB_FATAL(&d, qb_last_error());                                      \
    } while (0)

static void record(qb_rank_error *e, int rank, const char *host, int ok, const char *message) {
    qb_rank_error_set(e, &d, ok, message);
    e->rank = rank;
    snprintf(e->host, sizeof e->host, "%s", host);
}

static void check_format(void) {
    qb_rank_error e[6];
    char out[2048];
    record(&e[0], 0, "a", 1, "");
    record(&e[1], 1, "a", 0, "bad config");
    record(&e[2], 2, "b", 0, "bad config");
    record(&e[3], 3, "b", 0, "bad config");
    record(&e[4], 4, "c", 0, "other\nline");
    record(&e[5], 5, "c", 0, "bad config");
    int failing = qb_rank_errors_format(e, 6, " | ", out, sizeof out);
    CHECK(failing == 5, "%d failing, want 5", failing);
    const char *want = "ranks 1-3, 5 (hosts a, b, c): bad config | rank 4 (host c): other\\nline";
    CHECK(strcmp(out, want) == 0, "format gave '%s', want '%s'", out, want);

    failing = qb_rank_errors_format(e, 1, "\n", out, sizeof out);
    CHECK(failing == 0 && out[0] == '\0', "all ok gave %d '%s'", failing, out);
    record(&e[0], 0, "a", 0, "only rank");
    failing = qb_rank_errors_format(e, 1, "\n", out, sizeof out);
    CHECK(failing == 1 && strcmp(out, "only rank") == 0, "world of one gave '%s', want the message alone", out);

    char long_message[2000];
    memset(long_message, 'x', sizeof long_message - 1);
    long_message[sizeof long_message - 1] = '\0';
    record(&e[1], 1, "a", 0, long_message);
    CHECK(strlen(e[1].message) < QB_RANK_MESSAGE_MAX, "message not cut: %zu bytes", strlen(e[1].message));
    char small[40];
    qb_rank_errors_format(e, 2, "\n", small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1, "report not cut to its buffer: %zu", strlen(small));
}

static void check_gather(void) {
    char report[4096];
    int all_ok = -1;
    MUST(qb_dist_gather_errors(&d, 1, "", "\n", &all_ok, report, sizeof report));
    CHECK(all_ok == 1 && report[0] == '\0', "all ok: all_ok %d, report '%s'", all_ok, report);

    /* the last rank fails alone: every rank learns it, rank 0 has its message with rank and host */
    const int last = d.world_size - 1;
    MUST(qb_dist_gather_errors(&d, d.world_rank != last, "config.json:\tbroken", "\n", &all_ok, report,
                               sizeof report));
    CHECK(all_ok == 0, "the last rank failed but all_ok = %d", all_ok);
    char want[512];
    if (d.world_size == 1) snprintf(want, sizeof want, "config.json:\\tbroken");
    else snprintf(want, sizeof want, "rank %d (host %s): config.json:\\tbroken", last, d.hostname);
    if (d.world_rank == 0) CHECK(strcmp(report, want) == 0, "report '%s', want '%s'", report, want);
    else CHECK(report[0] == '\0', "rank %d got a report '%s'", d.world_rank, report);

    /* every rank fails with one message: one line */
    MUST(qb_dist_gather_errors(&d, 0, "same", "\n", &all_ok, report, sizeof report));
    if (d.world_size == 1) snprintf(want, sizeof want, "same");
    else snprintf(want, sizeof want, "ranks 0-%d (host %s): same", last, d.hostname);
    if (d.world_rank == 0) CHECK(strcmp(report, want) == 0, "report '%s', want '%s'", report, want);
}

static qb_model_config small_config(void) {
    qb_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 384, c.hidden_size = 256, c.intermediate_size = 384, c.num_layers = 2;
    c.num_heads = 4, c.num_kv_heads = 2, c.head_dim = 64, c.max_position_embeddings = 256;
    c.rms_norm_eps = 1e-6, c.rope_theta = 10000.0;
    return c;
}

static void check_fingerprints(void) {
    qb_options o;
    qb_options_defaults(&o);
    qb_model_config c = small_config();
    qb_fingerprint a, b;
    char why[512];

    qb_fingerprint_init(&a);
    qb_fingerprint_add_options(&a, &o, "cpu", 3);
    qb_fingerprint_add_config(&a, &c);
    CHECK(a.v.n < QB_FINGERPRINT_FIELDS, "%d fields fill the fingerprint", a.v.n);
    CHECK(qb_fingerprint_compare(&a, &a.v, why, sizeof why) == 0, "a fingerprint differs from itself: %s", why);

    c.hidden_size = 128;
    qb_fingerprint_init(&b);
    qb_fingerprint_add_options(&b, &o, "cpu", 3);
    qb_fingerprint_add_config(&b, &c);
    CHECK(qb_fingerprint_compare(&b, &a.v, why, sizeof why) == 1 &&
              strcmp(why, "config differs from rank 0's: hidden_size 128 here, 256 on rank 0") == 0,
          "hidden_size: '%s'", why);

    c = small_config();
    c.rms_norm_eps = 1e-5;
    const int repetitions = o.repetitions;
    o.repetitions = repetitions + 4;
    qb_fingerprint_init(&b);
    qb_fingerprint_add_options(&b, &o, "cpu", 3);
    qb_fingerprint_add_config(&b, &c);
    char want[128];
    snprintf(want, sizeof want, "options differ from rank 0's: --repetitions %d here, %d on rank 0", repetitions + 4,
             repetitions);
    CHECK(qb_fingerprint_compare(&b, &a.v, why, sizeof why) == 1 && strcmp(why, want) == 0,
          "options first: '%s', want '%s'", why, want);
    o.repetitions = repetitions;
    qb_fingerprint_init(&b);
    qb_fingerprint_add_options(&b, &o, "cpu", 3);
    qb_fingerprint_add_config(&b, &c);
    CHECK(qb_fingerprint_compare(&b, &a.v, why, sizeof why) == 1 && strstr(why, "rms_norm_eps 1.0000000000000001e-05"),
          "a real field: '%s'", why);

    c = small_config();
    qb_fingerprint_init(&b);
    qb_fingerprint_add_options(&b, &o, "cuda", 3);
    qb_fingerprint_add_config(&b, &c);
    CHECK(qb_fingerprint_compare(&b, &a.v, why, sizeof why) == 1 && strstr(why, "engine (--backend) is not the same"),
          "a text field: '%s'", why);

    /* tensors: same config, other headers */
    c = small_config();
    qb_fingerprint_init(&b);
    qb_fingerprint_add_options(&b, &o, "cpu", 3);
    qb_fingerprint_add_config(&b, &c);
    b.v.has_tensors = 1, b.v.tensors_digest = 42, b.v.n_tensors = 27;
    CHECK(qb_fingerprint_compare(&b, &a.v, why, sizeof why) == 1 && strstr(why, "a checkpoint here, random weights"),
          "checkpoint vs preset: '%s'", why);
    qb_fingerprint_values other = b.v;
    other.tensors_digest = 43;
    CHECK(qb_fingerprint_compare(&b, &other, why, sizeof why) == 2 && strstr(why, "tensors differ from rank 0's"),
          "tensor digest: '%s'", why);
    other.valid = 0;
    CHECK(qb_fingerprint_compare(&b, &other, why, sizeof why) == 0, "compared with nothing: '%s'", why);
}

/* The last rank runs another hidden size: it alone learns that it differs, and how. */
static void check_ranks_compare(void) {
    qb_options o;
    qb_options_defaults(&o);
    qb_model_config c = small_config();
    if (d.world_size > 1 && d.world_rank == d.world_size - 1) c.hidden_size = 512;
    qb_fingerprint f;
    qb_fingerprint_init(&f);
    qb_fingerprint_add_options(&f, &o, "cpu", 1);
    qb_fingerprint_add_config(&f, &c);
    int verdict = -1;
    char why[512];
    MUST(qb_ranks_compare(&d, &f, 1, &verdict, why, sizeof why));
    if (d.world_size > 1 && d.world_rank == d.world_size - 1)
        CHECK(verdict == 1 && strstr(why, "hidden_size 512 here, 256 on rank 0"), "last rank: %d '%s'", verdict, why);
    else
        CHECK(verdict == 0, "rank %d: verdict %d '%s'", d.world_rank, verdict, why);
    /* rank 0 with nothing to compare (it failed before): nobody differs */
    MUST(qb_ranks_compare(&d, &f, d.world_rank != 0, &verdict, why, sizeof why));
    CHECK(verdict == 0, "rank 0 sent nothing, yet rank %d differs: '%s'", d.world_rank, why);
}

int main(int argc, char **argv) {
    if (qb_dist_init(&argc, &argv, 30.0, &d) != 0) QB_FATAL(&d, qb_last_error());
    if (d.world_rank == 0) check_format();
    check_fingerprints();
    check_gather();
    check_ranks_compare();
    int passed = 0;
    MUST(qb_dist_all_ok(&d, g_failures == 0, &passed));
    if (d.world_rank == 0) printf("%s: %d ranks, %s\n", argv[0], d.world_size, passed ? "all checks passed" : "FAILED");
    qb_dist_finalize(&d);
    return passed ? 0 : 1;
}
