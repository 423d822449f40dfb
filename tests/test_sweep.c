/* test_sweep.c - the sweep-config loader: the shipped sweeps expand to the expected grids in file order,
 * and every malformed file is refused with one line naming the file and the field; the limits (config/limits.h,
 * the same as the command line's), the cell limit checked before expansion, a fast duplicate check, and files
 * that are not regular files (a FIFO must be refused at once, not waited on).
 *
 * Run: test_sweep <source dir>   (ctest passes it; the shipped files are read from <source>/configs/sweeps)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/limits.h"
#include "config/sweep.h"
#include "util/error.h"

static int g_failures;

#define CHECK(cond, ...)                                                                                    \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                                                                   \
            fputc('\n', stderr);                                                                            \
            g_failures++;                                                                                   \
        }                                                                                                   \
    } while (0)

static int load_shipped(const char *src, const char *name, qb_sweep *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/sweeps/%s.json", src, name);
    if (qb_sweep_load(path, s) != 0) {
        fprintf(stderr, "FAIL loading %s: %s\n", path, qb_last_error());
        g_failures++;
        return -1;
    }
    return 0;
}

static int count_model(const qb_sweep *s, const char *model, qb_quant q) {
    int n = 0;
    for (int i = 0; i < s->n_cells; i++)
        if (strcmp(s->cells[i].model, model) == 0 && s->cells[i].quant == q) n++;
    return n;
}

static void test_report(const char *src) {
    qb_sweep s;
    if (load_shipped(src, "qwen2.5-report", &s) != 0) return;
    const char *small[] = {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b"};
    const char *large[] = {"qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b"};
    CHECK(s.n_cells == 3 * 4 * 4 + 4 * 4 * 6, "n_cells %d, expected 144", s.n_cells);
    CHECK(strcmp(s.name, "qwen2.5-report") == 0, "name \"%s\"", s.name);
    CHECK(s.has_generate_length && s.generate_length == 2048, "generate_length %d", s.generate_length);
    CHECK(s.has_repetitions && s.repetitions == 3, "repetitions %d", s.repetitions);
    CHECK(s.has_warmup && s.warmup == 1, "warmup %d", s.warmup);
    CHECK(s.has_tp && s.tp == QB_SWEEP_TP_AUTO, "tp %d", s.tp);
    for (int q = 0; q < QB_QUANT_COUNT; q++) {
        for (int m = 0; m < 3; m++)
            CHECK(count_model(&s, small[m], (qb_quant)q) == 4, "%s %s: %d lengths, expected 4", small[m],
                  qb_quant_name((qb_quant)q), count_model(&s, small[m], (qb_quant)q));
        for (int m = 0; m < 4; m++)
            CHECK(count_model(&s, large[m], (qb_quant)q) == 6, "%s %s: %d lengths, expected 6", large[m],
                  qb_quant_name((qb_quant)q), count_model(&s, large[m], (qb_quant)q));
    }
    for (int i = 0; i < s.n_cells; i++) {
        bool is_small = strcmp(s.cells[i].model, small[0]) == 0 || strcmp(s.cells[i].model, small[1]) == 0 ||
                        strcmp(s.cells[i].model, small[2]) == 0;
        CHECK(!is_small || s.cells[i].context_len <= 32768, "cell %d: %s at %d: above 32768 needs 7B or more",
              i, s.cells[i].model, s.cells[i].context_len);
    }
    /* order: model outermost, then quant, then length */
    CHECK(strcmp(s.cells[0].model, "qwen2.5-0.5b") == 0 && s.cells[0].quant == QB_QUANT_BF16 &&
              s.cells[0].context_len == 1, "first cell %s %d", s.cells[0].model, s.cells[0].context_len);
    CHECK(s.cells[3].context_len == 30720 && s.cells[4].context_len == 1 && s.cells[4].quant != QB_QUANT_BF16,
          "cells 3/4: %d/%d", s.cells[3].context_len, s.cells[4].context_len);
    const qb_sweep_cell *last = &s.cells[s.n_cells - 1];
    CHECK(strcmp(last->model, "qwen2.5-72b") == 0 && last->quant == QB_QUANT_AWQ && last->context_len == 129024,
          "last cell %s %s %d", last->model, qb_quant_name(last->quant), last->context_len);
    qb_sweep_free(&s);
}

static void test_quick_and_tiny(const char *src) {
    qb_sweep s;
    if (load_shipped(src, "qwen2.5-quick", &s) == 0) {
        CHECK(s.n_cells == 4, "quick: n_cells %d", s.n_cells);
        CHECK(s.generate_length == 2048, "quick: generate_length %d", s.generate_length);
        qb_sweep_free(&s);
    }
    if (load_shipped(src, "cpu-tiny", &s) == 0) {
        const int lengths[] = {1, 16, 32};
        CHECK(s.n_cells == 3, "cpu-tiny: n_cells %d", s.n_cells);
        for (int i = 0; i < s.n_cells && i < 3; i++)
            CHECK(strcmp(s.cells[i].model, "qwen2.5-tiny") == 0 && s.cells[i].quant == QB_QUANT_BF16 &&
                      s.cells[i].context_len == lengths[i],
                  "cpu-tiny cell %d: %s %d", i, s.cells[i].model, s.cells[i].context_len);
        CHECK(s.generate_length == 8 && s.repetitions == 2, "cpu-tiny: gen %d reps %d", s.generate_length,
              s.repetitions);
        qb_sweep_free(&s);
    }
}

static void test_defaults(void) {
    qb_sweep s;
    const char *json = "{\"entries\": [{\"models\": [\"a\", \"b\"], \"quants\": [\"bf16\"],"
                       " \"context_lengths\": [3, 2]}], \"tp\": 4}";
    if (qb_sweep_parse(json, "dir/mine.json", &s) != 0) {
        fprintf(stderr, "FAIL parsing minimal sweep: %s\n", qb_last_error());
        g_failures++;
        return;
    }
    CHECK(strcmp(s.name, "mine") == 0, "default name \"%s\", expected the file stem", s.name);
    CHECK(!s.has_generate_length && !s.has_repetitions && !s.has_warmup, "unset settings flagged as set");
    CHECK(s.has_tp && s.tp == 4, "tp %d", s.tp);
    CHECK(s.n_cells == 4, "n_cells %d", s.n_cells);
    if (s.n_cells == 4)
        CHECK(strcmp(s.cells[0].model, "a") == 0 && s.cells[0].context_len == 3 &&
                  strcmp(s.cells[1].model, "a") == 0 && s.cells[1].context_len == 2 &&
                  strcmp(s.cells[2].model, "b") == 0 && s.cells[2].context_len == 3,
              "order: file order, model outer, length inner");
    qb_sweep_free(&s);
    CHECK(s.cells == NULL && s.n_cells == 0, "qb_sweep_free leaves an empty sweep");
}

/* An entry's own "tp" (N or "auto") is carried by its cells; entries without one leave has_tp false. */
static void test_entry_tp(void) {
    qb_sweep s;
    const char *json = "{\"tp\": 4, \"entries\": ["
                       "{\"models\": [\"a\"], \"quants\": [\"bf16\"], \"context_lengths\": [1, 2], \"tp\": 2},"
                       "{\"models\": [\"b\"], \"quants\": [\"bf16\"], \"context_lengths\": [1]},"
                       "{\"models\": [\"c\"], \"quants\": [\"bf16\"], \"context_lengths\": [1], \"tp\": \"auto\"}]}";
    if (qb_sweep_parse(json, "tp.json", &s) != 0) {
        fprintf(stderr, "FAIL parsing entries with their own tp: %s\n", qb_last_error());
        g_failures++;
        return;
    }
    CHECK(s.has_tp && s.tp == 4, "top-level tp %d", s.tp);
    CHECK(s.n_cells == 4, "n_cells %d", s.n_cells);
    if (s.n_cells == 4) {
        CHECK(s.cells[0].has_tp && s.cells[0].tp == 2 && s.cells[1].has_tp && s.cells[1].tp == 2,
              "entries[0]'s cells carry tp 2 (%d %d)", s.cells[0].tp, s.cells[1].tp);
        CHECK(!s.cells[2].has_tp, "entries[1] gave no tp: its cell has none of its own");
        CHECK(s.cells[3].has_tp && s.cells[3].tp == QB_SWEEP_TP_AUTO, "entries[2]'s cell: tp auto (%d)", s.cells[3].tp);
    }
    qb_sweep_free(&s);
}

/* A malformed sweep must be refused with a message that contains each of the expected fragments. */
static void expect_error(const char *json, const char *frag1, const char *frag2) {
    qb_sweep s;
    if (qb_sweep_parse(json, "bad.json", &s) == 0) {
        fprintf(stderr, "FAIL accepted a bad sweep (expected \"%s\"): %.200s\n", frag2, json);
        g_failures++;
        qb_sweep_free(&s);
        return;
    }
    const char *msg = qb_last_error();
    CHECK(strncmp(msg, "bad.json: ", 10) == 0 && strstr(msg, frag1) && strstr(msg, frag2) &&
              !strchr(msg, '\n'),
          "message \"%s\" should start with the file and contain \"%s\" and \"%s\"", msg, frag1, frag2);
    CHECK(s.cells == NULL && s.n_cells == 0, "a refused sweep must be left empty");
}

#define ENTRY "{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1]}"

static void test_errors(void) {
    expect_error("{\"entries\": [" ENTRY "], \"repetitions\": 2, \"repetitions\": 3}", "line 1", "duplicate");
    expect_error("{\"entries\": [" ENTRY "]", "line 1", "column");
    expect_error("[1]", "top level", "object");
    expect_error("{}", "entries", "missing");
    expect_error("{\"entries\": []}", "entries", "non-empty");
    expect_error("{\"entries\": [" ENTRY "], \"repetition\": 3}", "repetition", "unknown field");
    expect_error("{\"entries\": [" ENTRY "], \"repetitions\": 0}", "repetitions", "out of range");
    expect_error("{\"entries\": [" ENTRY "], \"repetitions\": 2.5}", "repetitions", "integer");
    expect_error("{\"entries\": [" ENTRY "], \"generate_length\": \"2048\"}", "generate_length", "integer");
    expect_error("{\"entries\": [" ENTRY "], \"warmup\": -1}", "warmup", "out of range");
    expect_error("{\"entries\": [" ENTRY "], \"tp\": \"all\"}", "tp", "auto");
    expect_error("{\"entries\": [" ENTRY "], \"tp\": 0}", "tp", "out of range");
    expect_error("{\"entries\": [" ENTRY "], \"tp\": true}", "tp", "\"auto\" or a positive integer");
    expect_error("{\"entries\": [" ENTRY "], \"name\": \"\"}", "name", "non-empty");
#define TP_ENTRY(v) "{\"entries\": [" ENTRY ", {\"models\": [\"n\"], \"quants\": [\"bf16\"], \"context_lengths\": [1], " \
                    "\"tp\": " v "}]}"
    expect_error(TP_ENTRY("\"all\""), "entries[1].tp", "must be \"auto\" or a positive integer, not \"all\"");
    expect_error(TP_ENTRY("0"), "entries[1].tp", "0 is out of range [1, 1024]");
    expect_error(TP_ENTRY("1025"), "entries[1].tp", "out of range [1, 1024]");
    expect_error(TP_ENTRY("-2"), "entries[1].tp", "out of range");
    expect_error(TP_ENTRY("2.0"), "entries[1].tp", "\"auto\" or a positive integer");
    expect_error(TP_ENTRY("[2]"), "entries[1].tp", "\"auto\" or a positive integer");
    expect_error(TP_ENTRY("null"), "entries[1].tp", "\"auto\" or a positive integer");
#undef TP_ENTRY
    expect_error("{\"entries\": [" ENTRY ", 3]}", "entries[1]", "object");
    expect_error("{\"entries\": [{\"quants\": [\"bf16\"], \"context_lengths\": [1]}]}", "entries[0].models",
                 "missing");
    expect_error("{\"entries\": [{\"models\": [], \"quants\": [\"bf16\"], \"context_lengths\": [1]}]}",
                 "entries[0].models", "non-empty");
    expect_error("{\"entries\": [{\"models\": [\"\"], \"quants\": [\"bf16\"], \"context_lengths\": [1]}]}",
                 "entries[0].models[0]", "non-empty string");
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\", \"int3\"], \"context_lengths\": [1]}]}",
                 "entries[0].quants[1]", "unknown quant \"int3\"");
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1, 0]}]}",
                 "entries[0].context_lengths[1]", "out of range");
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [\"1\"]}]}",
                 "entries[0].context_lengths[0]", "integer");
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1],"
                 " \"lengths\": [2]}]}", "entries[0].lengths", "unknown field");
    expect_error("{\"entries\": [" ENTRY ", {\"models\": [\"n\", \"m\"], \"quants\": [\"bf16\"],"
                 " \"context_lengths\": [1]}]}", "entries[1]", "already listed in entries[0]");
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1, 1]}]}",
                 "entries[0]", "already listed");

    qb_sweep s;
    CHECK(qb_sweep_load("/nonexistent/sweep.json", &s) == -1 && strstr(qb_last_error(), "/nonexistent/sweep.json"),
          "missing file: \"%s\"", qb_last_error());
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* {"entries": [{"models": [models], "quants": ["bf16"], "context_lengths": [first, first + 1, ...]}]}: n lengths. */
static char *lengths_sweep(const char *models, int first, int n) {
    size_t cap = 128 + strlen(models) + (size_t)n * 12;
    char *json = malloc(cap);
    if (!json) return NULL;
    size_t k = (size_t)snprintf(json, cap, "{\"entries\": [{\"models\": [%s], \"quants\": [\"bf16\"], "
                                "\"context_lengths\": [", models);
    for (int i = 0; i < n; i++) k += (size_t)snprintf(json + k, cap - k, "%s%d", i ? "," : "", first + i);
    snprintf(json + k, cap - k, "]}]}");
    return json;
}

static void expect_ok(const char *json, int n_cells) {
    qb_sweep s;
    if (qb_sweep_parse(json, "ok.json", &s) != 0) {
        fprintf(stderr, "FAIL refused a sweep within the limits: %s\n", qb_last_error());
        g_failures++;
        return;
    }
    CHECK(s.n_cells == n_cells, "n_cells %d, expected %d", s.n_cells, n_cells);
    qb_sweep_free(&s);
}

/* The settings have the command line's ranges (config/limits.h), not wider ones. */
static void test_setting_limits(void) {
    expect_ok("{\"entries\": [" ENTRY "], \"generate_length\": 1048576, \"repetitions\": 1000, \"warmup\": 100,"
              " \"tp\": 1024}", 1);
    expect_error("{\"entries\": [" ENTRY "], \"generate_length\": 1048577}", "generate_length", "[1, 1048576]");
    expect_error("{\"entries\": [" ENTRY "], \"generate_length\": 16777216}", "generate_length", "out of range");
    expect_error("{\"entries\": [" ENTRY "], \"repetitions\": 1001}", "repetitions", "[1, 1000]");
    expect_error("{\"entries\": [" ENTRY "], \"warmup\": 101}", "warmup", "[0, 100]");
    expect_error("{\"entries\": [" ENTRY "], \"tp\": 1025}", "tp", "[1, 1024]");
    expect_ok("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1048576]}]}", 1);
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1048577]}]}",
                 "entries[0].context_lengths[0]", "[1, 1048576]");
    char *long_name = malloc(QB_LIMIT_MODEL_NAME_LEN + 64);
    memset(long_name, 'x', QB_LIMIT_MODEL_NAME_LEN + 1);
    long_name[QB_LIMIT_MODEL_NAME_LEN + 1] = '\0';
    char *json = malloc(QB_LIMIT_MODEL_NAME_LEN + 256);
    snprintf(json, QB_LIMIT_MODEL_NAME_LEN + 256, "{\"entries\": [{\"models\": [\"%s\"], \"quants\": [\"bf16\"], "
             "\"context_lengths\": [1]}]}", long_name);
    expect_error(json, "entries[0].models[0]", "longer than 4095");
    free(json);
    free(long_name);
}

/* At most QB_LIMIT_SWEEP_CELLS cells, counted from the array sizes before anything is expanded. */
static void test_cell_limit(void) {
    char *json = lengths_sweep("\"m\"", 1, QB_LIMIT_SWEEP_CELLS);
    double t0 = now_s();
    if (json) expect_ok(json, QB_LIMIT_SWEEP_CELLS);
    double took = now_s() - t0;
    CHECK(took < 2.0, "a %d-cell sweep took %.2f s to load (duplicate check not n log n?)", QB_LIMIT_SWEEP_CELLS, took);
    free(json);
    json = lengths_sweep("\"m\", \"n\"", 1, QB_LIMIT_SWEEP_CELLS / 2 + 1); /* 2 x 5001 */
    if (json) expect_error(json, "entries[0]", "more than 10000 cells");
    free(json);
    /* summed over the entries: 6000 + 6000, refused at the second entry */
    json = lengths_sweep("\"m\"", 1, 6000);
    if (json) {
        size_t n = strlen(json);
        char *two = malloc(2 * n + 8);
        memcpy(two, json, n - 2); /* up to the end of the first entry's object: "...]}" */
        snprintf(two + n - 2, n + 10, ", %s", strstr(json, "{\"models\""));
        expect_error(two, "entries[1]", "more than 10000 cells");
        free(two);
    }
    free(json);
    /* issue 20: 10^5 input lengths took 3.4 s and 590 MB before any check; now a quick clear refusal */
    json = lengths_sweep("\"m\"", 1, 100000);
    t0 = now_s();
    if (json) expect_error(json, "entries[0]", "more than 10000 cells");
    took = now_s() - t0;
    CHECK(took < 2.0, "a 10^5-length list took %.2f s to refuse", took);
    free(json);
}

/* The duplicate named is the first repeat in file order, with the entry of its first listing. */
static void test_duplicates(void) {
    expect_error("{\"entries\": [{\"models\": [\"m\"], \"quants\": [\"bf16\"], \"context_lengths\": [1, 2, 3]},"
                 " {\"models\": [\"n\"], \"quants\": [\"bf16\"], \"context_lengths\": [2]},"
                 " {\"models\": [\"m\"], \"quants\": [\"awq\", \"bf16\"], \"context_lengths\": [9, 3, 2]}]}",
                 "entries[2]", "cell (m, bf16, 3) is already listed in entries[0]");
    expect_error("{\"entries\": [{\"models\": [\"a\\nb\"], \"quants\": [\"bf16\"], \"context_lengths\": [1, 1]}]}",
                 "a\\nb", "already listed"); /* the model name is escaped: the message stays one line */
    char *json = lengths_sweep("\"m\"", 1, QB_LIMIT_SWEEP_CELLS);
    if (json) {
        char *last = strrchr(json, ',');
        memcpy(last + 1, "1    ", 5); /* the last length becomes 1, repeating the first cell */
        expect_error(json, "entries[0]", "cell (m, bf16, 1) is already listed in entries[0]");
    }
    free(json);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL test_sweep: loading a sweep blocked (FIFO waited on?)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

/* A FIFO, a directory and an oversized file are refused at once with one line; a FIFO is never waited on. */
static void test_files(void) {
    char dir[] = "/tmp/test_sweep_XXXXXX", path[256];
    if (!mkdtemp(dir)) {
        fprintf(stderr, "FAIL mkdtemp\n");
        g_failures++;
        return;
    }
    qb_sweep s;
    signal(SIGALRM, on_alarm);
    alarm(10);
    snprintf(path, sizeof path, "%s/fifo.json", dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    CHECK(qb_sweep_load(path, &s) == -1 && strstr(qb_last_error(), "not a regular file"), "FIFO: \"%s\"",
          qb_last_error());
    unlink(path);
    CHECK(qb_sweep_load(dir, &s) == -1 && strstr(qb_last_error(), "not a regular file"), "directory: \"%s\"",
          qb_last_error());
    alarm(0);
    snprintf(path, sizeof path, "%s/big.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"entries\": [" ENTRY "], \"description\": \"", f);
        for (int i = 0; i < QB_LIMIT_SWEEP_FILE_BYTES; i += 8) fputs("padding.", f);
        fputs("\"}", f);
        fclose(f);
        CHECK(qb_sweep_load(path, &s) == -1 && strstr(qb_last_error(), "larger than the limit"), "big: \"%s\"",
              qb_last_error());
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/ok.json", dir);
    f = fopen(path, "w");
    if (f) {
        fputs("{\"entries\": [" ENTRY "]}", f);
        fclose(f);
        if (qb_sweep_load(path, &s) == 0) {
            CHECK(s.n_cells == 1 && strcmp(s.name, "ok") == 0, "ok.json: %d cells, name %s", s.n_cells, s.name);
            qb_sweep_free(&s);
        } else {
            CHECK(0, "ok.json refused: %s", qb_last_error());
        }
    }
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    const char *src = argc > 1 ? argv[1] : QB_SOURCE_DIR;
    test_report(src);
    test_quick_and_tiny(src);
    test_defaults();
    test_entry_tp();
    test_errors();
    test_setting_limits();
    test_cell_limit();
    test_duplicates();
    test_files();
    if (g_failures) {
        fprintf(stderr, "test_sweep: %d failure(s)\n", g_failures);
        return 1;
    }
    printf("test_sweep: all checks passed\n");
    return 0;
}
