/* cell_columns.h - the columns of a result cell, in one list: a new output column is one line here (plus the code
 * that computes its value).
 *
 * QB_CELL_COLUMNS(X) expands X(KIND, name, ARG, FLAGS) once per column, in the order of the fields of /cells in
 * the results file (docs/RESULTS.md). From this list come the members of the record (qb_cell_record, record.h),
 * the /cells row and its HDF5 compound type, written and read (results_schema.h, cell_columns.c), the content
 * checksum (results_checksum.c) and the csv / json / jsonl writers (cell_writers.c), which show every column.
 * The stdout table (-o md, table.c) shows a chosen few: a column of its own there is one entry in table.c.
 *
 * KIND  record member                    /cells field(s)
 *   STR     char name[ARG]               fixed-length string of ARG bytes (NUL included)
 *   I32     int32_t name                 int32
 *   I64     int64_t name                 int64
 *   U64     uint64_t name                uint64
 *   F64     double name                  float64
 *   STATS   qb_stats name                float64 name_mean, name_std, name_min, name_max
 *   STATUS  qb_cell_status name          its name ("VALID", ...) as a string of ARG bytes
 *   F64_OF  double ARG                   float64 `name` (the record calls it ARG)
 *   GIB_OF  (none)                       float64: record member ARG (bytes) in GiB; written, not read back
 *   RUN_ROW (none)                       int64: the row of /runs holding the cell's first run (the writer's count)
 * ARG is unused (_) for the other kinds.
 * FLAGS
 *   REQ     every results file has it (schema version 1 as first shipped)
 *   OPT     added later: a file without it reads as 0 / "" (analysis/load.py: OPTIONAL_CELL_FIELDS)
 *   OPT_NA  added later, and "not measured" has a value of its own: NaN (float64), -1 (integers),
 *           "unavailable: not recorded" (strings). A file without the field, or without energy_source (from
 *           before the energy fields), reads as not measured. The code computing it stores the same when it
 *           could not measure.
 * Columns must only be added (optional: OPT or OPT_NA), never removed, renamed, retyped or reordered: readers of
 * older files and analysis/ rely on it (tests/results_columns_test.c checks the shipped ones).
 */
#ifndef QB_RESULTS_CELL_COLUMNS_H
#define QB_RESULTS_CELL_COLUMNS_H

#define QB_CELL_COLUMNS(X)                                                                                    \
    /* identity */                                                                                            \
    X(STR, model, 128, REQ)                                                                                   \
    X(STR, quant, 16, REQ)                                                                                    \
    X(STR, backend, 16, REQ)                                                                                  \
    X(I32, context_len, _, REQ)      /* requested input length (prompt tokens) */                            \
    X(I32, gen_len, _, REQ)          /* requested generated tokens */                                         \
    X(I32, tp_size, _, REQ)                                                                                   \
    X(I32, n_ranks, _, REQ)          /* ranks in the TP group that ran it */                                  \
    /* settings */                                                                                            \
    X(I32, repetitions, _, REQ)                                                                               \
    X(I32, warmup, _, REQ)                                                                                    \
    X(U64, seed, _, REQ)                                                                                      \
    X(STR, prompt_rule, 64, REQ)     /* "random" or "repeat:ID" */                                            \
    X(STR, rope_scaling, 32, OPT)    /* "none", "yarn:4 (auto)", ... (bench/rope_policy.h) */                 \
    X(STR, engine_options, 256, OPT) /* the engine options the cell asked for, "allreduce=auto;..." */        \
    X(STR, engine_choices, 512, OPT) /* what the engine resolved them to, "key=value;..." (docs/RESULTS.md) */ \
    /* outcome */                                                                                             \
    X(STATUS, status, 16, REQ)                                                                                \
    X(STR, reason, 512, REQ)         /* why a cell is not VALID */                                            \
    X(STATS, speed, _, REQ)          /* tok/s, the published metric */                                        \
    X(STATS, ttft_s, _, REQ)                                                                                  \
    X(STATS, tpot_s, _, REQ)                                                                                  \
    X(STATS, decode_tok_per_s, _, REQ)                                                                        \
    X(F64, warmup_total_s, _, REQ)   /* the excluded warm-up run's time (first warm-up), shown apart */       \
    X(F64, speed_cv, _, OPT)         /* coefficient of variation of speed over the repetitions */             \
    X(I32, noisy, _, OPT)            /* 1 when speed_cv is above --noisy-threshold (marked, still a number) */ \
    /* --interference (bench/interference.h): the cell's speed alone, and beside / alone; NaN when not measured */ \
    X(F64, alone_speed_mean, _, OPT_NA)                                                                       \
    X(F64, alone_speed_std, _, OPT_NA)                                                                        \
    X(F64, interference_ratio, _, OPT_NA) /* speed_mean (beside others) / alone_speed_mean */                 \
    X(F64, implied_bandwidth_gbps, _, OPT) /* bytes read per decode token (rank 0) x mean decode tok/s */     \
    X(F64, copy_bandwidth_gbps, _, OPT)    /* the card's measured copy bandwidth it is compared with */       \
    X(STR, checks, 512, OPT)         /* the checks made and their outcome, "; "-separated */                  \
    /* memory, bytes */                                                                                       \
    X(F64_OF, peak_mem_total_bytes, peak_mem_total, REQ) /* sum over ranks of peak allocated */               \
    X(GIB_OF, peak_mem_total_gib, peak_mem_total, REQ)                                                        \
    X(F64, weights_bytes_rank0, _, REQ)                                                                       \
    X(F64, kv_bytes_rank0, _, REQ)                                                                            \
    /* energy and clocks of the timed runs, from NVML (bench/energy.h) */                                     \
    X(STR, energy_source, 96, OPT_NA) /* "nvml energy counter", "nvml power samples", "unavailable: why" */   \
    X(F64, energy_j, _, OPT_NA)       /* per run: sum over the cell's GPUs, mean over the repetitions */      \
    X(F64, joules_per_token, _, OPT_NA) /* energy_j / generated tokens */                                      \
    X(F64, power_mean_w, _, OPT_NA)   /* sum over the GPUs of each one's mean draw during the runs */         \
    X(F64, power_peak_w, _, OPT_NA)   /* sum over the GPUs of each one's highest sample */                    \
    X(F64, sm_clock_mhz, _, OPT_NA)   /* mean over the samples of every GPU */                                \
    X(F64, mem_clock_mhz, _, OPT_NA)                                                                          \
    X(F64, temperature_max_c, _, OPT_NA) /* highest GPU temperature sampled */                                \
    X(I32, throttled, _, OPT_NA)      /* 1: a throttling reason was seen (power cap, HW slowdown, thermal) */ \
    X(I64, throttle_reasons, _, OPT_NA) /* NVML clocks-event reason bits seen on any GPU (OR) */              \
    /* runs */                                                                                                \
    X(I32, n_runs, _, REQ)            /* timed runs recorded (the record's runs[]) */                         \
    X(RUN_ROW, first_run, _, REQ)                                                                             \
    /* where it ran (packed cells run side by side: docs/SCHEDULING.md); one entry per rank of the cell */       \
    X(STR, ranks, 256, OPT)           /* world ranks, "2,3" */                                                 \
    X(STR, hosts, 512, OPT)           /* their hosts, "node-a,node-a" */                                        \
    X(STR, devices, 512, OPT)         /* their devices: GPU UUIDs, "cpu" on the CPU engine */

#endif
