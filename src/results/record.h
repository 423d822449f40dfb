/* record.h - the result record: the one thing every writer (stdout table, HDF5 file) reads.
 *
 * A cell is one (model, quant, context length, TP size) of a sweep; it holds every timed repetition (run),
 * each with its per-step decode latencies and generated tokens. Statistics are computed two-pass in double.
 * A cell that did not produce valid numbers carries a status and a reason instead, never a made-up number.
 */
#ifndef QB_RESULTS_RECORD_H
#define QB_RESULTS_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QB_CELL_VALID = 0,
    QB_CELL_INVALID,       /* ran, but a check failed (reason says which) */
    QB_CELL_DOES_NOT_FIT,  /* memory plan exceeds the devices (reason has the numbers) */
    QB_CELL_FAILED,        /* an error stopped it (reason has the message) */
} qb_cell_status;

const char *qb_cell_status_name(qb_cell_status s); /* "VALID", ... */

typedef struct {
    double mean, stddev, min, max; /* stddev: sample (n-1); 0 for one sample */
} qb_stats;

void qb_stats_compute(const double *x, int n, qb_stats *out);

typedef struct {
    int repetition;           /* 0-based */
    int n_prompt, n_gen;
    double total_s;           /* wall time of the whole generation (prefill included) */
    double prefill_s;         /* time to first token */
    double decode_s;          /* total_s - prefill_s */
    double tok_per_s;         /* n_gen / total_s: the published metric */
    double decode_tok_per_s;  /* (n_gen - 1) / decode_s */
    double tpot_s;            /* time per output token after the first: decode_s / (n_gen - 1) */
    double *step_s;           /* [n_gen - 1] every decode step (owned) */
    int32_t *tokens;          /* [n_gen] generated ids (owned) */
} qb_run_record;

#define QB_MAX_RANKS 1024

typedef struct {
    /* identity */
    char model[128];
    char quant[16];
    char backend[16];
    int context_len;          /* requested input length (prompt tokens) */
    int gen_len;              /* requested generated tokens */
    int tp_size;
    int n_ranks;              /* ranks in the TP group that ran it */
    /* settings */
    int repetitions, warmup;
    uint64_t seed;
    char prompt_rule[64];     /* "random" or "repeat:ID" */
    char rope_scaling[32];    /* "none", "yarn:4 (auto)", ... (bench/rope_policy.h) */
    char engine_options[256]; /* the engine options the cell asked for, "allreduce=auto;..." (engine_options.h) */
    char engine_choices[512]; /* what the engine resolved them to, "key=value;..." (docs/RESULTS.md) */
    /* outcome */
    qb_cell_status status;
    char reason[512];
    qb_stats speed;           /* tok/s, published metric */
    qb_stats ttft_s;
    qb_stats tpot_s;
    qb_stats decode_tok_per_s;
    double warmup_total_s;    /* the excluded warm-up run's time (first warm-up), shown apart */
    double speed_cv;          /* coefficient of variation of speed over the repetitions */
    int32_t noisy;            /* 1 when speed_cv is above --noisy-threshold (still a number, but marked) */
    double implied_bandwidth_gbps; /* bytes read per decode token (rank 0) x mean decode tok/s */
    double copy_bandwidth_gbps;    /* the card's measured copy bandwidth it is compared with */
    char checks[512];         /* the checks made and their outcome, "; "-separated */
    /* memory, bytes */
    double peak_mem_total;    /* sum over ranks of peak allocated */
    double *peak_mem_rank;    /* [n_ranks] (owned) */
    double weights_bytes_rank0, kv_bytes_rank0;
    /* energy and clocks of the timed runs, from NVML (bench/energy.h). Not measured (no NVML, no GPU, a failed
     * cell): energy_source says "unavailable: why", the numbers are NaN, throttled and throttle_reasons -1. */
    char energy_source[96];   /* "nvml energy counter", "nvml power samples" or "unavailable: ..." */
    double energy_j;          /* per run: sum over the cell's GPUs, mean over the repetitions */
    double joules_per_token;  /* energy_j / generated tokens */
    double power_mean_w;      /* sum over the GPUs of each one's mean draw during the runs */
    double power_peak_w;      /* sum over the GPUs of each one's highest sample */
    double sm_clock_mhz, mem_clock_mhz; /* mean over the samples of every GPU */
    double temperature_max_c; /* highest GPU temperature sampled */
    int32_t throttled;        /* 1: a throttling reason was seen (SW power cap, HW slowdown, thermal); 0 none */
    int64_t throttle_reasons; /* NVML clocks-event reason bits seen on any GPU (OR) */
    /* runs */
    qb_run_record *runs;      /* [n_runs] (owned) */
    int n_runs;
} qb_cell_record;

/* Fill the per-run derived fields (decode_s, tok_per_s, ...) from total_s, prefill_s, n_gen. */
void qb_run_finish(qb_run_record *r);
/* Fill the cell's stats from its runs. */
void qb_cell_summarize(qb_cell_record *c);
void qb_cell_free(qb_cell_record *c);

#endif
