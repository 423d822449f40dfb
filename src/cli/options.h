/* options.h - the run configuration: every default in one struct, parsed from argv, help printed from it.
 *
 * The table of flags in options.c is the single source of both the parser and --help, so they cannot drift.
 * Unknown flags, bad values and impossible combinations give one line naming the flag (exit status 2).
 */
#ifndef QB_CLI_OPTIONS_H
#define QB_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "config/model_config.h"
#include "engine/engine_options.h"
#include "results/cell_writers.h"

#define QB_MAX_CONTEXTS 32
#define QB_PATH_MAX 4096
#define QB_MAX_TP 1024

typedef enum { QB_BACKEND_AUTO = 0, QB_BACKEND_CPU, QB_BACKEND_CUDA } qb_backend_choice;
typedef enum { QB_PROMPT_RANDOM = 0, QB_PROMPT_REPEAT } qb_prompt_mode;
typedef enum { QB_SCHEDULE_SERIAL = 0, QB_SCHEDULE_PACKED } qb_schedule; /* bench/packed_schedule.h */

typedef struct {
    char model[QB_PATH_MAX];            /* preset name or checkpoint directory, or a comma-separated list of them
                                           (split by qb_options_model_item; a path holding a comma needs a sweep file) */
    qb_quant quant;                     /* the first of quants */
    qb_quant quants[QB_QUANT_COUNT];    /* --quant as a list (each format once); n_quants >= 1 */
    int n_quants;
    int context_lengths[QB_MAX_CONTEXTS];
    int n_context_lengths;
    int generate_length;
    int repetitions;
    int warmup;
    qb_backend_choice backend;
    qb_prompt_mode prompt_mode;
    int32_t prompt_repeat_id;
    char out[QB_PATH_MAX];              /* results file ("" = none) */
    qb_output_format output_format;     /* -o: the cells on stdout as md (table), csv, json or jsonl */
    uint64_t seed;                      /* prompt and random-weight seed */
    int tp;                             /* 0 = all ranks */
    qb_schedule schedule;               /* serial: one cell at a time on the first TP group; packed: cells side by
                                           side on disjoint groups of ranks */
    char interference[QB_PATH_MAX + 64]; /* --interference MODEL:FORMAT:INPUT[:TP] ("" = off; bench/interference.h) */
    bool resume, overwrite;
    double deadline_s;                  /* watchdog: longest wait in one collective */
    int threads;                        /* CPU backend threads, 0 = all cores */
    int check_steps;                    /* --check reference[:N]: N steps against the CPU reference (0 = off) */
    char expect_tokens[QB_PATH_MAX];    /* --expect-tokens FILE ("" = off) */
    char rope_scaling[32];              /* auto | none | yarn:F (see bench/rope_policy.h) */
    double noisy_threshold;             /* coefficient of variation above which a cell is flagged NOISY */
    char sweep[QB_PATH_MAX];            /* sweep config file ("" = one model from the flags) */
    qb_engine_option_lists engine;      /* engine options: the values each one crosses (engine/engine_options.h) */
    unsigned engine_given;              /* bit id set: engine option id was given on the command line */
    bool show_help, show_version;
    bool explain;                       /* --explain: print each cell's engine plan, run nothing */
    unsigned long long given;           /* bit i set: flag i of the table was given on the command line */
} qb_options;

/* Was the flag named long_name (without dashes, e.g. "model") given on the command line? */
bool qb_options_given(const qb_options *o, const char *long_name);

/* The models of --model, a comma-separated list: item i (0-based) copied into out. Returns the number of items;
 * -1 when out is too small. qb_options_parse has already refused empty items and repeats. */
int qb_options_model_item(const qb_options *o, int i, char *out, size_t cap);

/* Defaults (the struct --help prints from). */
void qb_options_defaults(qb_options *o);
/* Parse argv into o (starting from defaults). 0 ok; -1 with a one-line message naming the flag. */
int qb_options_parse(int argc, char **argv, qb_options *o);
void qb_options_print_help(FILE *f);

#endif
