/* results_schema.h - internal to src/results: the on-disk layout of the results file, in one place.
 *
 * Each flat compound dataset (/cells, /runs, /rank_memory) is described by a row struct and a table of its
 * fields (name, offset, kind). The writer builds its HDF5 types from the table, the reader checks a file's
 * types against it and converts by field name. docs/RESULTS.md documents the same layout for readers.
 */
#ifndef QB_RESULTS_RESULTS_SCHEMA_H
#define QB_RESULTS_RESULTS_SCHEMA_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "results/results_file.h"

typedef enum { QB_FIELD_STRING, QB_FIELD_I32, QB_FIELD_I64, QB_FIELD_U64, QB_FIELD_F64 } qb_field_kind;

typedef struct {
    const char *name;
    size_t offset;
    qb_field_kind kind;
    size_t size;  /* bytes of a fixed-length string (NUL included); unused for numbers */
    int optional; /* added after schema version 1 first shipped: a file without it reads as 0 / "" */
} qb_field;

typedef struct {
    const char *name; /* "/cells" */
    const qb_field *fields;
    int n_fields;
    size_t row_size;
} qb_table_schema;

#define QB_STATS_FIELDS(prefix) double prefix##_mean, prefix##_std, prefix##_min, prefix##_max

typedef struct {
    char model[128];
    char quant[16];
    char backend[16];
    int32_t context_len, gen_len, tp_size, n_ranks, repetitions, warmup;
    uint64_t seed;
    char prompt_rule[64];
    char rope_scaling[32];
    char engine_options[256];
    char engine_choices[512];
    char status[16];
    char reason[512];
    QB_STATS_FIELDS(speed);
    QB_STATS_FIELDS(ttft_s);
    QB_STATS_FIELDS(tpot_s);
    QB_STATS_FIELDS(decode_tok_per_s);
    double warmup_total_s;
    double speed_cv;
    int32_t noisy;
    double implied_bandwidth_gbps, copy_bandwidth_gbps;
    char checks[512];
    double peak_mem_total_bytes, peak_mem_total_gib;
    double weights_bytes_rank0, kv_bytes_rank0;
    char energy_source[96];
    double energy_j, joules_per_token, power_mean_w, power_peak_w, sm_clock_mhz, mem_clock_mhz, temperature_max_c;
    int32_t throttled;
    int64_t throttle_reasons;
    int32_t n_runs;
    int64_t first_run; /* row of /runs holding this cell's first run */
} qb_cell_row;

typedef struct {
    int32_t cell, rank;
    double peak_bytes;
} qb_rank_memory_row;

typedef struct {
    int32_t cell, repetition, n_prompt, n_gen;
    double total_s, prefill_s, decode_s, tok_per_s, decode_tok_per_s, tpot_s;
    int64_t step_offset;  /* into /step_latency_s: n_gen - 1 values (none when n_gen < 2) */
    int64_t token_offset; /* into /generated_tokens: n_gen values */
} qb_run_row;

extern const qb_table_schema qb_cells_schema, qb_runs_schema, qb_rank_memory_schema;

/* Names of the root attributes holding the string fields of qb_results_meta, with their offsets. */
typedef struct {
    const char *name;
    size_t offset, size;
} qb_meta_string;
#define QB_META_STRINGS_MAX 16 /* at least qb_n_meta_strings */
extern const qb_meta_string qb_meta_strings[];
extern const int qb_n_meta_strings;

/* Every table of a file, as rows in memory (the writer builds it, the reader fills it). */
typedef struct {
    qb_cell_row *cells;
    qb_run_row *runs;
    qb_rank_memory_row *memory;
    double *steps;
    int32_t *tokens;
    int64_t n_cells, n_runs, n_memory, n_steps, n_tokens;
} qb_results_tables;

/* Root attribute holding the content checksum (results_checksum.c); files without it (written by other
 * tools or by qwenbench before it existed) are read with the structural checks only. */
#define QB_CHECKSUM_ATTRIBUTE "content_crc64"

/* CRC-64/XZ of the file's content in a fixed byte order, independent of the HDF5 layout: the schema
 * version, copy_bandwidth_gbps, each meta string as stored (meta_values[i] for qb_meta_strings[i]), then
 * every table row field by field and the two arrays. Writer and reader compute it from their rows. */
uint64_t qb_results_checksum(int schema_version, double copy_bandwidth_gbps, const char *const *meta_values,
                             const qb_results_tables *t);

/* The /cells rows of records exactly as qb_results_write stores them (first_run counted over these cells).
 * *rows is calloc'ed (free it); -1 with a message naming what (e.g. "stdout") on failure. */
int qb_results_cell_rows(const char *what, const qb_cell_record *cells, int n_cells, qb_cell_row **rows);

/* Decode steps stored for a run of n_gen tokens. */
static inline int64_t qb_run_steps(int n_gen) { return n_gen > 1 ? n_gen - 1 : 0; }

/* Build the in-memory compound type of a table (close with H5Tclose); H5I_INVALID_HID on failure.
 * With a file type (not H5I_INVALID_HID), only the fields that type has (the reader's subset). */
hid_t qb_schema_memory_type(const qb_table_schema *t);
hid_t qb_schema_memory_type_for(const qb_table_schema *t, hid_t file_type);

/* The end of the file (base + end-of-file address) recorded in the version 2 or 3 superblock at the start
 * of an image with 8-byte addresses (what the writer makes); 0 when there is no such superblock. The
 * writer writes exactly that many bytes; the reader refuses a shorter image (HDF5 1.10 does not notice a
 * file cut short inside unused space at its end). */
int qb_hdf5_superblock_end(const void *image, size_t size, uint64_t *end);

/* The innermost message of the current HDF5 error stack (where the failure was detected), or "". */
void qb_hdf5_error_detail(char *out, size_t size);

/* Silence HDF5's own error printing for the duration of a call (errors come back as our messages). */
typedef struct {
    H5E_auto2_t func;
    void *data;
} qb_hdf5_quiet;
void qb_hdf5_quiet_begin(qb_hdf5_quiet *saved);
void qb_hdf5_quiet_end(const qb_hdf5_quiet *saved);

#endif
