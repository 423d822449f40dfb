/* options.c - the command line: one table drives both parsing and --help (see options.h).
 *
 * Each flag has a long name, a value placeholder, a help line, and a setter. Defaults live only in
 * qb_options_defaults(); --help prints them by formatting a default-initialised struct, so the text cannot
 * drift from the parser.
 */
#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench/interference.h"
#include "bench/rope_policy.h"
#include "cli/flag_suggest.h"
#include "config/limits.h"
#include "io/printable.h"
#include "util/error.h"

#define QB_DEFAULT_MODEL "qwen2.5-7b"

void qb_options_defaults(qb_options *o) {
    memset(o, 0, sizeof *o);
    snprintf(o->model, sizeof o->model, "%s", QB_DEFAULT_MODEL);
    o->quant = QB_QUANT_BF16;
    o->quants[0] = QB_QUANT_BF16;
    o->n_quants = 1;
    static const int lengths[] = {1, 6144, 14336, 30720};
    o->n_context_lengths = 4;
    memcpy(o->context_lengths, lengths, sizeof lengths);
    o->generate_length = 2048;
    o->repetitions = 3;
    o->warmup = 1;
    o->backend = QB_BACKEND_AUTO;
    o->prompt_mode = QB_PROMPT_RANDOM;
    o->seed = 1;
    o->tp = 0;
    o->deadline_s = 600.0;
    o->threads = 0;
    o->noisy_threshold = 0.05;
    snprintf(o->rope_scaling, sizeof o->rope_scaling, "auto");
    qb_engine_option_lists_default(&o->engine);
}

/* Does s start like a number? strtol/strtoull/strtod would skip blanks and take a sign, so ' -1' would pass
 * the "not negative" test of an unsigned flag and come out as 2^64 - 1. */
static bool starts_numeric(const char *s, bool sign_ok) {
    if (sign_ok && s[0] == '-') s++;
    return isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1]));
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!starts_numeric(s, true) || errno || end == s || *end != '\0')
        return qb_errorf("--%s: '%s' is not an integer", flag, s);
    if (v < lo || v > hi) return qb_errorf("--%s: %ld is out of range [%ld, %ld]", flag, v, lo, hi);
    *out = v;
    return 0;
}

static int set_string(const char *flag, const char *v, char *dst, size_t cap) {
    if (v[0] == '\0') return qb_errorf("--%s: empty value", flag);
    if (strlen(v) >= cap) return qb_errorf("--%s: value longer than %zu characters", flag, cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* ---- setters: one per flag ---- */
/* Item i of a comma-separated list: its start and length. Returns the number of items. */
static int list_item(const char *list, int i, const char **start, size_t *len) {
    int n = 0;
    for (const char *p = list;; n++) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (n == i) { *start = p; *len = l; }
        if (!comma) return n + 1;
        p = comma + 1;
    }
}

int qb_options_model_item(const qb_options *o, int i, char *out, size_t cap) {
    const char *start = NULL;
    size_t len = 0;
    int n = list_item(o->model, i, &start, &len);
    if (start && out) {
        if (len >= cap) return -1;
        memcpy(out, start, len);
        out[len] = '\0';
    }
    return n;
}

/* A comma-separated list of models: no empty item, none twice (a cell must be unique for --resume). */
static int set_model(qb_options *o, const char *f, const char *v) {
    QB_TRY(set_string(f, v, o->model, sizeof o->model));
    int n = qb_options_model_item(o, 0, NULL, 0);
    for (int i = 0; i < n; i++) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        list_item(o->model, i, &a, &la);
        if (la == 0)
            return qb_errorf("--%s: empty item %d (a list is NAME,NAME,...; a path holding a comma needs a sweep file: "
                             "docs/SWEEPS.md)", f, i + 1);
        for (int k = 0; k < i; k++) {
            list_item(o->model, k, &b, &lb);
            if (la == lb && !memcmp(a, b, la)) return qb_errorf("--%s: item %d repeats item %d", f, i + 1, k + 1);
        }
    }
    return 0;
}

/* The results file is HDF5: a path ending in .h5 or .hdf5 (stdout cannot take it). */
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}
static int set_out(qb_options *o, const char *f, const char *v) {
    if (!strcmp(v, "-"))
        return qb_errorf("--%s -: the results file is HDF5 and cannot go to stdout; give a path ending in .h5 or .hdf5", f);
    QB_TRY(set_string(f, v, o->out, sizeof o->out));
    if (!ends_with(v, ".h5") && !ends_with(v, ".hdf5")) {
        char shown[256];
        o->out[0] = '\0';
        return qb_errorf("--%s %s: the results file is HDF5: its name must end in .h5 or .hdf5", f,
                         qb_printable(v, shown, sizeof shown));
    }
    return 0;
}
static int set_sweep(qb_options *o, const char *f, const char *v) { return set_string(f, v, o->sweep, sizeof o->sweep); }

/* A comma-separated list of formats, each once. */
static int set_quant(qb_options *o, const char *f, const char *v) {
    char item[32];
    const char *start;
    size_t len;
    int n = list_item(v, 0, &start, &len);
    for (int i = 0; i < n; i++) {
        list_item(v, i, &start, &len);
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), start);
        qb_quant q;
        if (len == 0) return qb_errorf("--%s: '%s': empty item %d (expected FORMAT,FORMAT,...)", f, v, i + 1);
        if (len >= sizeof item || qb_quant_parse(item, &q) != 0)
            return qb_errorf("--%s: unknown format '%.*s' (%s)", f, (int)len, start, qb_quant_name_list());
        for (int k = 0; k < i; k++)
            if (o->quants[k] == q) return qb_errorf("--%s: '%s' is listed twice", f, item);
        o->quants[i] = q;
    }
    o->n_quants = n;
    o->quant = o->quants[0];
    return 0;
}

/* Comma-separated lengths; every item must be a number ("1,,2", "1," and ",1" are refused, not skipped). */
static int set_context_lengths(qb_options *o, const char *f, const char *v) {
    char buf[1024];
    if (strlen(v) >= sizeof buf) return qb_errorf("--%s: list too long", f);
    if (v[0] == '\0') return qb_errorf("--%s: empty list", f);
    strcpy(buf, v);
    int n = 0;
    for (char *item = buf, *next; item; item = next) {
        char *comma = strchr(item, ',');
        next = comma ? comma + 1 : NULL;
        if (comma) *comma = '\0';
        if (item[0] == '\0') return qb_errorf("--%s: '%s': empty item %d (expected N,N,...)", f, v, n + 1);
        if (n == QB_MAX_CONTEXTS) return qb_errorf("--%s: at most %d lengths", f, QB_MAX_CONTEXTS);
        long x = 0;
        QB_TRY(parse_int(f, item, 1, QB_LIMIT_CONTEXT_LEN, &x));
        o->context_lengths[n++] = (int)x;
    }
    o->n_context_lengths = n;
    return 0;
}

#define INT_SETTER(fn, field, lo, hi)                                        \
    static int fn(qb_options *o, const char *f, const char *v) {             \
        long x = 0;                                                          \
        QB_TRY(parse_int(f, v, lo, hi, &x));                                 \
        o->field = (int)x;                                                   \
        return 0;                                                            \
    }
INT_SETTER(set_generate_length, generate_length, 1, QB_LIMIT_GENERATE_LEN)
INT_SETTER(set_repetitions, repetitions, 1, QB_LIMIT_REPETITIONS)
INT_SETTER(set_warmup, warmup, 0, QB_LIMIT_WARMUP)
INT_SETTER(set_tp, tp, 0, QB_LIMIT_TP)
INT_SETTER(set_threads, threads, 0, 4096)

static int set_seed(qb_options *o, const char *f, const char *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!starts_numeric(v, false) || errno || end == v || *end)
        return qb_errorf("--%s: '%s' is not an integer in [0, 2^64 - 1]", f, v);
    o->seed = x;
    return 0;
}

static int set_deadline(qb_options *o, const char *f, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!starts_numeric(v, false) || errno || end == v || *end || !(x >= QB_LIMIT_DEADLINE_MIN_S) ||
        x > QB_LIMIT_DEADLINE_MAX_S)
        return qb_errorf("--%s: '%s' is not a number of seconds in [%g, %g]", f, v, (double)QB_LIMIT_DEADLINE_MIN_S,
                         QB_LIMIT_DEADLINE_MAX_S);
    o->deadline_s = x;
    return 0;
}

static int set_noisy(qb_options *o, const char *f, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!starts_numeric(v, false) || errno || end == v || *end || !(x > 0) || x > 10)
        return qb_errorf("--%s: '%s' is not a fraction in (0, 10]", f, v);
    o->noisy_threshold = x;
    return 0;
}

static int set_rope_scaling(qb_options *o, const char *f, const char *v) {
    qb_rope_policy p;
    if (qb_rope_policy_parse(v, &p) != 0) return qb_error_prefix("--%s", f);
    qb_rope_policy_format(&p, o->rope_scaling, sizeof o->rope_scaling);
    return 0;
}

static int set_check(qb_options *o, const char *f, const char *v) {
    if (!strcmp(v, "none")) { o->check_steps = 0; return 0; }
    if (!strcmp(v, "reference")) { o->check_steps = 16; return 0; }
    if (!strncmp(v, "reference:", 10)) {
        long n = 0;
        if (parse_int(f, v + 10, 1, 1 << 20, &n) != 0) return qb_errorf("--%s: '%s': expected reference:N with N >= 1", f, v);
        o->check_steps = (int)n;
        return 0;
    }
    return qb_errorf("--%s: '%s' is not none, reference or reference:N", f, v);
}
static int set_expect(qb_options *o, const char *f, const char *v) {
    return set_string(f, v, o->expect_tokens, sizeof o->expect_tokens);
}

static int set_backend(qb_options *o, const char *f, const char *v) {
    if (!strcmp(v, "auto")) o->backend = QB_BACKEND_AUTO;
    else if (!strcmp(v, "cpu")) o->backend = QB_BACKEND_CPU;
    else if (!strcmp(v, "cuda")) o->backend = QB_BACKEND_CUDA;
    else return qb_errorf("--%s: unknown backend '%s' (auto, cpu, cuda)", f, v);
    return 0;
}

static int set_prompt(qb_options *o, const char *f, const char *v) {
    if (!strcmp(v, "random")) {
        o->prompt_mode = QB_PROMPT_RANDOM;
        return 0;
    }
    if (!strncmp(v, "repeat:", 7)) {
        long id = 0;
        if (parse_int(f, v + 7, 0, INT_MAX, &id) != 0) return qb_errorf("--%s: '%s': expected repeat:ID with ID a token id", f, v);
        o->prompt_mode = QB_PROMPT_REPEAT;
        o->prompt_repeat_id = (int32_t)id;
        return 0;
    }
    return qb_errorf("--%s: '%s' is neither 'random' nor 'repeat:ID'", f, v);
}

static int set_output_format(qb_options *o, const char *f, const char *v) {
    if (qb_output_format_parse(v, &o->output_format) != 0) return qb_error_prefix("--%s", f);
    return 0;
}

static int set_resume(qb_options *o, const char *f, const char *v) { (void)f; (void)v; o->resume = true; return 0; }
static int set_overwrite(qb_options *o, const char *f, const char *v) { (void)f; (void)v; o->overwrite = true; return 0; }
static int set_explain(qb_options *o, const char *f, const char *v) { (void)f; (void)v; o->explain = true; return 0; }
static int set_help(qb_options *o, const char *f, const char *v) { (void)f; (void)v; o->show_help = true; return 0; }
static int set_version(qb_options *o, const char *f, const char *v) { (void)f; (void)v; o->show_version = true; return 0; }

/* ---- default formatters for --help ---- */
static void fmt_model(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%s", o->model); }
static void fmt_quant(const qb_options *o, char *b, size_t n) {
    size_t k = 0;
    b[0] = '\0';
    for (int i = 0; i < o->n_quants && k < n; i++)
        k += (size_t)snprintf(b + k, n - k, "%s%s", i ? "," : "", qb_quant_name(o->quants[i]));
}
static void fmt_lengths(const qb_options *o, char *b, size_t n) {
    size_t k = 0;
    b[0] = '\0';
    for (int i = 0; i < o->n_context_lengths && k < n; i++)
        k += (size_t)snprintf(b + k, n - k, "%s%d", i ? "," : "", o->context_lengths[i]);
}
static void fmt_gen(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%d", o->generate_length); }
static void fmt_reps(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%d", o->repetitions); }
static void fmt_warmup(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%d", o->warmup); }
static int set_schedule(qb_options *o, const char *f, const char *v) {
    if (!strcmp(v, "serial")) o->schedule = QB_SCHEDULE_SERIAL;
    else if (!strcmp(v, "packed")) o->schedule = QB_SCHEDULE_PACKED;
    else return qb_errorf("--%s: unknown schedule '%s' (serial, packed)", f, v);
    return 0;
}
static void fmt_schedule(const qb_options *o, char *b, size_t n) {
    snprintf(b, n, "%s", o->schedule == QB_SCHEDULE_PACKED ? "packed" : "serial");
}

/* The syntax here; which cell it names is checked against the sweep before the run (bench/interference.h). */
static int set_interference(qb_options *o, const char *f, const char *v) {
    qb_interference_spec spec;
    if (qb_interference_parse(v, &spec) != 0) return qb_error_prefix("--%s", f);
    return set_string(f, v, o->interference, sizeof o->interference);
}

static void fmt_backend(const qb_options *o, char *b, size_t n) {
    snprintf(b, n, "%s", o->backend == QB_BACKEND_CPU ? "cpu" : o->backend == QB_BACKEND_CUDA ? "cuda" : "auto");
}
static void fmt_prompt(const qb_options *o, char *b, size_t n) {
    if (o->prompt_mode == QB_PROMPT_REPEAT) snprintf(b, n, "repeat:%d", (int)o->prompt_repeat_id);
    else snprintf(b, n, "random");
}
static void fmt_out(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%s", o->out[0] ? o->out : "(none)"); }
static void fmt_output_format(const qb_options *o, char *b, size_t n) {
    snprintf(b, n, "%s", qb_output_format_name(o->output_format));
}
static void fmt_seed(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%llu", (unsigned long long)o->seed); }
static void fmt_tp(const qb_options *o, char *b, size_t n) {
    if (o->tp) snprintf(b, n, "%d", o->tp);
    else snprintf(b, n, "planned");
}
static void fmt_deadline(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%g", o->deadline_s); }
static void fmt_check(const qb_options *o, char *b, size_t n) {
    if (o->check_steps) snprintf(b, n, "reference:%d", o->check_steps);
    else snprintf(b, n, "none");
}
static void fmt_rope(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%s", o->rope_scaling); }
static void fmt_noisy(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%g", o->noisy_threshold); }
static void fmt_threads(const qb_options *o, char *b, size_t n) {
    if (o->threads) snprintf(b, n, "%d", o->threads);
    else snprintf(b, n, "all cores");
}
static void fmt_sweep(const qb_options *o, char *b, size_t n) { snprintf(b, n, "%s", o->sweep[0] ? o->sweep : "(none)"); }

typedef struct {
    const char *name;     /* long flag without dashes */
    const char *value;    /* placeholder, NULL for a switch */
    const char *help;
    int (*set)(qb_options *, const char *, const char *);
    void (*fmt_default)(const qb_options *, char *, size_t); /* NULL: no default shown */
} qb_flag;

static const qb_flag FLAGS[] = {
    {"model", "LIST", "comma-separated presets (qwen2.5-0.5b ... qwen2.5-72b, qwen2.5-tiny) or local Hugging Face "
     "checkpoint directories (a path holding a comma: use a sweep file, docs/SWEEPS.md); presets get random weights "
     "of the exact shapes", set_model, fmt_model},
    {"quant", "LIST", "comma-separated formats: bf16 | gptq-int8 | gptq-int4 | awq (presets get random weights in that "
     "format; a checkpoint runs in its own format when --quant is not given, and a --quant that contradicts it is "
     "refused); the cells are models x formats x engine options x input lengths", set_quant, fmt_quant},
    {"context-lengths", "LIST", "comma-separated input lengths in tokens, each in [1, "
     QB_LIMIT_STR(QB_LIMIT_CONTEXT_LEN) "], at most " QB_LIMIT_STR(QB_MAX_CONTEXTS), set_context_lengths, fmt_lengths},
    {"generate-length", "N", "tokens generated per run, exactly (end-of-sequence never stops a run), in [1, "
     QB_LIMIT_STR(QB_LIMIT_GENERATE_LEN) "]",
     set_generate_length, fmt_gen},
    {"repetitions", "N", "timed runs per cell (every one is kept), in [1, " QB_LIMIT_STR(QB_LIMIT_REPETITIONS) "]",
     set_repetitions, fmt_reps},
    {"warmup", "N", "untimed runs before the timed ones, in [0, " QB_LIMIT_STR(QB_LIMIT_WARMUP) "]", set_warmup,
     fmt_warmup},
    {"backend", "auto|cpu|cuda", "engine; auto = cuda when a GPU is usable, else the CPU reference (it says which)",
     set_backend, fmt_backend},
    {"prompt", "random|repeat:ID", "random token ids in [0, 151643) from --seed, or one id repeated", set_prompt,
     fmt_prompt},
    {"out", "PATH", "HDF5 results file (.h5 or .hdf5), rewritten atomically after every cell; without it nothing is "
     "saved", set_out, fmt_out},
    {"output-format", "md|csv|json|jsonl", "the cells on stdout: md the table; csv, json, jsonl the fields "
     "of the results file's /cells, one row/object per cell, and nothing else on stdout (notes go to stderr; "
     "docs/RESULTS.md)", set_output_format, fmt_output_format},
    {"seed", "N", "seed of the random prompt and the random weights, in [0, 2^64 - 1]", set_seed, fmt_seed},
    {"tp", "N", "tensor-parallel size for every cell (but those of a sweep entry with its own \"tp\"), in [1, " QB_LIMIT_STR(QB_LIMIT_TP) "] (it must divide the "
     "number of ranks; serial: the others wait, packed: groups of N run cells side by side); "
     "without it the CPU engine uses every rank (serial) or one per cell (packed), and the CUDA engine the fewest "
     "GPUs that hold each cell",
     set_tp, fmt_tp},
    {"schedule", "serial|packed", "serial: one cell at a time, on the first --tp ranks (the others wait); packed: "
     "cells side by side on disjoint groups of ranks, each group on one host (a group spans hosts only when a cell "
     "needs more ranks than a host has), dealt largest first, rank 0 writing every finished cell; without --tp the "
     "CPU engine then gives each cell one rank (docs/SCHEDULING.md)", set_schedule, fmt_schedule},
    {"interference", "MODEL:FORMAT:INPUT[:TP]", "with --schedule packed: time this one cell of the sweep first alone "
     "(the other groups wait), then again beside the other groups (given sweep cells, or unrecorded repeats when "
     "they run out); its record is the beside one, with alone_speed_mean, alone_speed_std and interference_ratio "
     "(NaN when a beside run overlapped no cell of another group) and a line in checks; a slow-down beyond "
     "max(2 standard errors, 1 %) marks every cell of the results file NOISY (docs/SCHEDULING.md)",
     set_interference, NULL},
    {"sweep", "FILE", "sweep config (configs/sweeps/*.json; a regular file of at most "
     QB_LIMIT_STR(QB_LIMIT_SWEEP_FILE_BYTES) " bytes, at most " QB_LIMIT_STR(QB_LIMIT_SWEEP_CELLS) " cells, settings "
     "within the flags' ranges); flags given on the command line override it, except an entry's own \"tp\", "
     "which wins over --tp for that entry's cells (docs/SWEEPS.md)",
     set_sweep, fmt_sweep},
    {"resume", NULL, "complete the results file: run only its missing cells (same settings required); a file "
     "that does not exist yet is started",
     set_resume, NULL},
    {"overwrite", NULL, "replace an existing results file", set_overwrite, NULL},
    {"deadline", "SECONDS", "longest wait in one collective before the job is aborted (dead or hung rank), in ["
     QB_LIMIT_STR(QB_LIMIT_DEADLINE_MIN_S) ", " QB_LIMIT_STR(QB_LIMIT_DEADLINE_MAX_S) "]; packed, a group that "
     "finishes no cell within SECONDS x (warm-up + repetitions + 3) is taken for hung too",
     set_deadline, fmt_deadline},
    {"check", "none|reference[:N]", "after the timed runs, compare the first N (16) generated tokens with the CPU "
     "reference engine on the same weights (equal, or each in the other's top 5 at the first difference)",
     set_check, fmt_check},
    {"expect-tokens", "FILE", "compare the generated tokens with another engine's (JSON, see docs/RESULTS.md; a "
     "regular file of at most " QB_LIMIT_STR(QB_LIMIT_EXPECT_TOKENS_FILE_BYTES) " bytes, read and checked before the first cell)",
     set_expect, NULL},
    {"rope-scaling", "auto|none|yarn:F", "auto: YaRN factor 4 (original 32768) for a 7B-72B cell whose input + "
     "generated tokens exceed max_position_embeddings, refused for 0.5B-3B; none: never; yarn:F: always",
     set_rope_scaling, fmt_rope},
    {"noisy-threshold", "CV", "flag a cell NOISY when stddev/mean of its speed exceeds this", set_noisy, fmt_noisy},
    {"threads", "N", "CPU backend worker threads per rank", set_threads, fmt_threads},
    {"explain", NULL, "create each cell's engine, print its plan (which kernel runs each linear, what is fused "
     "into it, where the tensor-parallel reduction goes, the head) and exit without timing or writing results",
     set_explain, NULL},
    {"help", NULL, "print this help and exit", set_help, NULL},
    {"version", NULL, "print version and build commit and exit", set_version, NULL},
};
#define N_FLAGS ((int)(sizeof FLAGS / sizeof FLAGS[0]))

/* Short forms, as llama-bench users type them: "-m NAME" is "--model NAME". */
static const struct {
    char letter;
    const char *name; /* long name in FLAGS */
} SHORT_FLAGS[] = {
    {'m', "model"},
    {'p', "context-lengths"},
    {'n', "generate-length"},
    {'r', "repetitions"},
    {'h', "help"},
    {'o', "output-format"},
};
#define N_SHORT_FLAGS ((int)(sizeof SHORT_FLAGS / sizeof SHORT_FLAGS[0]))

static char short_form_of(const char *name) {
    for (int i = 0; i < N_SHORT_FLAGS; i++)
        if (!strcmp(SHORT_FLAGS[i].name, name)) return SHORT_FLAGS[i].letter;
    return 0;
}

/* "unknown flag '--modle' (did you mean --model?)": the closest of the flags and the engine options. */
static int unknown_flag(const char *name, size_t len) {
    const char *names[N_FLAGS + QB_EOPT_COUNT];
    int n = 0;
    for (int i = 0; i < N_FLAGS; i++) names[n++] = FLAGS[i].name;
    for (int i = 0; i < QB_EOPT_COUNT; i++) names[n++] = qb_engine_option_table[i].flag;
    const char *near = qb_flag_suggest(name, len, names, n);
    char shown[256];
    char typed[128];
    snprintf(typed, sizeof typed, "%.*s", (int)(len < sizeof typed ? len : sizeof typed - 1), name);
    qb_printable(typed, shown, sizeof shown);
    if (near) return qb_errorf("unknown flag '--%s' (did you mean --%s?)", shown, near);
    return qb_errorf("unknown flag '--%s' (see --help)", shown);
}

bool qb_options_given(const qb_options *o, const char *long_name) {
    for (int i = 0; i < N_FLAGS; i++)
        if (!strcmp(FLAGS[i].name, long_name)) return (o->given >> i) & 1ull;
    return false;
}

int qb_options_parse(int argc, char **argv, qb_options *o) {
    qb_options_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name = arg + 2;
        const char *eq = NULL;
        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0') { /* a short form: -m NAME */
            name = NULL;
            for (int k = 0; k < N_SHORT_FLAGS && arg[2] == '\0'; k++)
                if (SHORT_FLAGS[k].letter == arg[1]) name = SHORT_FLAGS[k].name;
            if (!name) {
                char shown[64];
                char forms[4 * N_SHORT_FLAGS + 1] = "";
                for (int k = 0; k < N_SHORT_FLAGS; k++)
                    snprintf(forms + strlen(forms), sizeof forms - strlen(forms), "%s-%c", k ? " " : "",
                             SHORT_FLAGS[k].letter);
                return qb_errorf("unknown flag '%s' (short forms: %s; see --help)", qb_printable(arg, shown, sizeof shown),
                                 forms);
            }
        } else if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            return qb_errorf("unexpected argument '%s' (flags are --name VALUE or --name=VALUE; see --help)", arg);
        } else {
            eq = strchr(name, '=');
        }
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const qb_flag *flag = NULL;
        int index = -1;
        for (int k = 0; k < N_FLAGS; k++)
            if (strlen(FLAGS[k].name) == name_len && !strncmp(FLAGS[k].name, name, name_len)) {
                flag = &FLAGS[k];
                index = k;
            }
        if (!flag) {
            char fname[64];
            snprintf(fname, sizeof fname, "%.*s", (int)(name_len < sizeof fname ? name_len : sizeof fname - 1), name);
            int eopt = name_len < sizeof fname ? qb_engine_option_by_flag(fname) : -1;
            if (eopt < 0) return unknown_flag(name, name_len);
            const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            char where[80];
            snprintf(where, sizeof where, "--%s", fname);
            if (!value) return qb_errorf("%s: missing value (a comma-separated list)", where);
            QB_TRY(qb_engine_option_parse_list(eopt, value, where, &o->engine));
            o->engine_given |= 1u << eopt;
            continue;
        }
        const char *value = NULL;
        if (flag->value) {
            if (eq) value = eq + 1;
            else if (i + 1 < argc) value = argv[++i];
            else return qb_errorf("--%s: missing value (%s)", flag->name, flag->value);
        } else if (eq) {
            return qb_errorf("--%s takes no value", flag->name);
        }
        if (flag->set(o, flag->name, value ? value : "") != 0) return -1;
        o->given |= 1ull << index;
    }
    if (o->resume && o->overwrite) return qb_errorf("--resume and --overwrite exclude each other");
    if ((o->resume || o->overwrite) && !o->out[0]) return qb_errorf("--%s needs --out", o->resume ? "resume" : "overwrite");
    if (o->interference[0] && o->schedule != QB_SCHEDULE_PACKED)
        return qb_errorf("--interference needs --schedule packed (it times a cell alone and beside the other groups)");
    if (o->interference[0] && o->explain) return qb_errorf("--interference and --explain exclude each other");
    return 0;
}

void qb_options_print_help(FILE *f) {
    qb_options d;
    qb_options_defaults(&d);
    fprintf(f,
            "qwenbench %s - batch-1 speed benchmark for Qwen2.5 (tokens/s, time to first token, memory)\n\n"
            "usage: [mpirun -np N] qwenbench [flags]\n"
            "       qwenbench tokens FILE.h5 [--cell N]   print prompt rule and generated tokens of a results file\n"
            "       qwenbench export FILE.h5 [--format csv|json|jsonl|md] [--out PATH] [--overwrite]\n"
            "                                    a results file's cells as -o prints them (default csv)\n"
            "       qwenbench export-weights --model PRESET --out DIR [--seed N] [--shards N]\n"
            "                                    write a preset's random weights as a Hugging Face checkpoint\n"
            "       qwenbench formats --json         the weight formats (bits, group, packing, names, kernels) as JSON\n\n"
            "One MPI rank per GPU; ranks split the model tensor-parallel. Each cell (model, format, input length)\n"
            "runs --warmup untimed and --repetitions timed generations of exactly --generate-length tokens;\n"
            "speed = generated tokens / wall time of the whole generation (prefill included).\n\nflags:\n",
            QB_VERSION);
    for (int i = 0; i < N_FLAGS; i++) {
        char lhs[64], def[256], short_form[8] = "";
        if (short_form_of(FLAGS[i].name)) snprintf(short_form, sizeof short_form, "-%c, ", short_form_of(FLAGS[i].name));
        snprintf(lhs, sizeof lhs, "%s--%s%s%s", short_form, FLAGS[i].name, FLAGS[i].value ? " " : "",
                 FLAGS[i].value ? FLAGS[i].value : "");
        fprintf(f, "  %-28s %s", lhs, FLAGS[i].help);
        if (FLAGS[i].fmt_default) {
            FLAGS[i].fmt_default(&d, def, sizeof def);
            fprintf(f, " [default: %s]", def);
        }
        fputc('\n', f);
    }
    fprintf(f, "\nengine options (each takes a comma-separated list; every combination of the lists runs as its own\n"
               "cells; a sweep file takes them as keys with a string or a list; the choices made are recorded per cell):\n");
    for (int i = 0; i < QB_EOPT_COUNT; i++) {
        const qb_engine_option_desc *e = &qb_engine_option_table[i];
        char lhs[160], allowed[128];
        qb_engine_option_allowed(i, "|", allowed, sizeof allowed);
        snprintf(lhs, sizeof lhs, "--%s %s", e->flag, allowed);
        fprintf(f, "  %-28s %s [default: auto]\n", lhs, e->help);
    }
    fprintf(f, "\nWith --backend auto and no usable GPU, or --backend cpu without --model, the CPU reference engine runs\n"
               "a short job instead of the GPU grid: those of --model, --context-lengths, --generate-length and\n"
               "--repetitions not given (and no --sweep) take qwen2.5-0.5b shapes, inputs 1,32, 16 tokens and 2\n"
               "repetitions (it says so). A CPU run estimated to take more than 3 minutes says so before it starts.\n"
               "Short forms: -m --model, -p --context-lengths, -n --generate-length, -r --repetitions, -o\n"
               "--output-format, -h --help.\n"
               "Exit status: 0 all cells ran; 1 a cell failed or was invalid, or a fatal error; 2 bad command line;\n"
               "3 stopped early by a signal (complete it with --resume).\n");
}
