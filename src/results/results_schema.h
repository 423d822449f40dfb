/* results_schema.h - internal to src/results: the on-disk layout of the results file, in one place.
 *
 * Each flat compound dataset (/cells, /runs, /rank_memory) is described by a row struct and a table of its
 * fields (name, offset, kind). The writer builds its HDF5 types from the table, the reader checks a file's
 * types against it and converts by field name. /cells, its row and its table come from the column list
 * (cell_columns.h, cell_columns.c). docs/RESULTS.md documents the same layout for readers.
 */
#ifndef QB_RESULTS_RESULTS_SCHEMA_H
#define QB_RESULTS_RESULTS_SCHEMA_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "results/results_file.h"

typedef enum { QB_FIELD_STRING, QB_FIELD_I32, QB_FIELD_I64, QB_FIELD_U64, QB_FIELD_F64 } qb_field_kind;

/* Where a /cells field's value comes from in the record (cell_columns.h); the other tables' fields: NONE. */
typedef enum {
    QB_SOURCE_NONE = 0,    /* not in the record (/runs, /rank_memory; first_run: the writer counts it) */
    QB_SOURCE_MEMBER,      /* the record member at record_offset, same kind and size */
    QB_SOURCE_STATUS_NAME, /* the qb_cell_status at record_offset, stored as its name */
    QB_SOURCE_GIB,         /* the double (bytes) at record_offset, in GiB; not read back */
} qb_field_source;

typedef struct {
    const char *name;
    size_t offset;         /* in the row */
    qb_field_kind kind;
    size_t size;           /* bytes of a fixed-length string (NUL included); unused for numbers */
    int optional;          /* added after schema version 1 first shipped: a file without it reads as 0 / "" */
    int not_measured;      /* OPT_NA (cell_columns.h): "not measured" reads as NaN / -1 / "unavailable: ..." */
    qb_field_source source;
    size_t record_offset;  /* in qb_cell_record (source MEMBER, STATUS_NAME, GIB) */
} qb_field;

#define QB_TABLE_FIELDS_MAX 128 /* at least the fields of any table */

typedef struct {
    const char *name; /* "/cells" */
    const qb_field *fields;
    int n_fields;
    size_t row_size;
} qb_table_schema;

/* A /cells row: the fields of cell_columns.h in their file order. */
#define QB_ROW_MEMBER_STR(name, arg) char name[arg];
#define QB_ROW_MEMBER_I32(name, arg) int32_t name;
#define QB_ROW_MEMBER_I64(name, arg) int64_t name;
#define QB_ROW_MEMBER_U64(name, arg) uint64_t name;
#define QB_ROW_MEMBER_F64(name, arg) double name;
#define QB_ROW_MEMBER_STATS(name, arg) double name##_mean, name##_std, name##_min, name##_max;
#define QB_ROW_MEMBER_STATUS(name, arg) char name[arg];
#define QB_ROW_MEMBER_F64_OF(name, arg) double name;
#define QB_ROW_MEMBER_GIB_OF(name, arg) double name;
#define QB_ROW_MEMBER_RUN_ROW(name, arg) int64_t name;
#define QB_ROW_MEMBER(kind, name, arg, flags) QB_ROW_MEMBER_##kind(name, arg)

typedef struct {
    QB_CELL_COLUMNS(QB_ROW_MEMBER)
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
    double start_unix_s, end_unix_s; /* optional (files before them: NaN); last, as added */
} qb_run_row;

extern const qb_table_schema qb_cells_schema, qb_runs_schema, qb_rank_memory_schema;
/* The optional /runs fields' indices in qb_runs_schema (the reader asks whether a file has them). */
#define QB_RUN_FIELD_START 12
#define QB_RUN_FIELD_END 13

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
    unsigned char cell_fields_present[QB_TABLE_FIELDS_MAX]; /* reader: the file has field k of qb_cells_schema */
    unsigned char run_fields_present[QB_TABLE_FIELDS_MAX];  /* reader: the file has field k of qb_runs_schema */
    int fields_known;      /* reader: the two arrays above are filled (the checksum skips fields a file lacks) */
} qb_results_tables;

/* Root attribute holding the content checksum (results_checksum.c); files without it (written by other
 * tools or by qwenbench before it existed) are read with the structural checks only. */
#define QB_CHECKSUM_ATTRIBUTE "content_crc64"

/* CRC-64/XZ of the file's content in a fixed byte order, independent of the HDF5 layout: the schema
 * version, copy_bandwidth_gbps, each meta string as stored (meta_values[i] for qb_meta_strings[i]), then
 * every table row field by field and the two arrays. Writer and reader compute it from their rows. */
uint64_t qb_results_checksum(int schema_version, double copy_bandwidth_gbps, const char *const *meta_values,
                             const qb_results_tables *t);

/* The /cells row of one record, for the cell whose first run is row first_run of /runs (cell_columns.c).
 * A string is cut to its field's size - 1 bytes. */
void qb_cell_to_row(const qb_cell_record *c, int64_t first_run, qb_cell_row *row);
/* The record's columns from a row read from a file; present[k]: whether the file has field k of qb_cells_schema
 * (NULL: all of them). n_runs is the row's count. The record's runs and peak_mem_rank are not touched.
 * -1 when the status is not the name of one (VALID, INVALID, DOES_NOT_FIT, FAILED). */
int qb_cell_from_row(const qb_cell_row *row, const unsigned char *present, qb_cell_record *c);

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
