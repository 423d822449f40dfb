/* engine_options.h - the engine's choices as options: one table of every option (its flag, sweep key, values and
 * help), the per-cell value set, and the lists a sweep crosses.
 *
 * Every option's first value is "auto": the engine decides per cell by the named rules of its choice functions
 * (src/cuda/cuda_choices.c for the CUDA engine; the CPU reference has one kernel per operation and ignores them).
 * The command line takes each option as a flag with a comma-separated list (--allreduce auto,nccl); a sweep file
 * as a top-level key with a string or a list of strings ("allreduce": ["auto", "nccl"]). Each combination of the
 * lists becomes its own cells. What a cell asked for is recorded in /cells as engine_options, what the engine
 * resolved as engine_choices (docs/RESULTS.md).
 */
#ifndef QB_ENGINE_ENGINE_OPTIONS_H
#define QB_ENGINE_ENGINE_OPTIONS_H

#include <stddef.h>

typedef enum {
    QB_EOPT_ALLREDUCE = 0,   /* tensor-parallel all-reduce: auto | nccl | ipc-oneshot */
    QB_EOPT_TP_EXCHANGE,     /* residual exchange in TP decode: auto | on | off */
    QB_EOPT_ALLREDUCE_NORM,  /* all-reduce + add + RMSNorm form where the exchange is off: auto | fused | two-step */
    QB_EOPT_DECODE_FUSION,   /* auto | epilogues | none */
    QB_EOPT_QUANT_LAYOUT,    /* packed linears: auto | rows | tiled */
    QB_EOPT_ATTN_PREFILL,    /* prefill attention kernel: auto | fa2 | wg | wgp */
    QB_EOPT_PDL,             /* programmatic dependent launch: auto | on | off */
    QB_EOPT_COUNT
} qb_engine_option_id;

#define QB_EOPT_AUTO 0        /* index of "auto" in every option's values */
#define QB_EOPT_MAX_VALUES 8  /* values of one option, "auto" included */

/* Value indices of the options that are not "auto" (each option has its own enum order, see the table). */
enum { QB_ALLREDUCE_OPT_NCCL = 1, QB_ALLREDUCE_OPT_IPC_ONESHOT = 2 };
enum { QB_ONOFF_ON = 1, QB_ONOFF_OFF = 2 };
enum { QB_AR_NORM_OPT_FUSED = 1, QB_AR_NORM_OPT_TWO_STEP = 2 };
enum { QB_FUSION_OPT_EPILOGUES = 1, QB_FUSION_OPT_NONE = 2 };
enum { QB_LAYOUT_OPT_ROWS = 1, QB_LAYOUT_OPT_TILED = 2 };
enum { QB_ATTN_PREFILL_OPT_FA2 = 1, QB_ATTN_PREFILL_OPT_WG = 2, QB_ATTN_PREFILL_OPT_WGP = 3 };

typedef struct {
    const char *flag;       /* command-line flag without dashes, e.g. "allreduce" */
    const char *sweep_key;  /* key in a sweep file and in the recorded engine_options, e.g. "tp_exchange" */
    const char *values[QB_EOPT_MAX_VALUES]; /* NULL-terminated; values[0] is "auto" */
    const char *help;
} qb_engine_option_desc;

extern const qb_engine_option_desc qb_engine_option_table[QB_EOPT_COUNT];

/* One cell's options: a value index per option (QB_EOPT_AUTO by default, i.e. all zero). */
typedef struct {
    int v[QB_EOPT_COUNT];
} qb_engine_options;

/* The values a run crosses, per option (n[id] >= 1; the default is the one value "auto"). */
typedef struct {
    int n[QB_EOPT_COUNT];
    int v[QB_EOPT_COUNT][QB_EOPT_MAX_VALUES];
} qb_engine_option_lists;

void qb_engine_option_lists_default(qb_engine_option_lists *l);
/* The option whose flag is `flag` (no dashes), or -1. */
int qb_engine_option_by_flag(const char *flag);
/* The option whose sweep key is `key`, or -1. */
int qb_engine_option_by_sweep_key(const char *key);
/* Parse one value of option id; on error a one-line message "<where>: unknown value 'x' (auto, nccl, ...)". */
int qb_engine_option_parse_value(int id, const char *value, const char *where, int *out);
/* Parse a comma-separated list into lists->n[id] / v[id] (no empty items, no duplicates). */
int qb_engine_option_parse_list(int id, const char *list, const char *where, qb_engine_option_lists *lists);
const char *qb_engine_option_value_name(int id, int value);
/* The allowed values of option id joined by sep ("auto, nccl, ipc-oneshot" with sep ", "). */
void qb_engine_option_allowed(int id, const char *sep, char *out, size_t cap);

/* Combinations of the lists (the product of n[]); combination i in a fixed order (the first option varies
 * slowest). */
int qb_engine_option_combinations(const qb_engine_option_lists *l);
void qb_engine_option_combination(const qb_engine_option_lists *l, int i, qb_engine_options *out);

/* "allreduce=auto;tp_exchange=on;..." (every option, table order). */
void qb_engine_options_format(const qb_engine_options *o, char *out, size_t cap);
int qb_engine_options_equal(const qb_engine_options *a, const qb_engine_options *b);

#endif
