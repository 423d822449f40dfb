/* results_schema.c - the /runs and /rank_memory field tables, the root attributes and the HDF5 types of the
 * results file (see results_schema.h; /cells comes from the column list: cell_columns.c). */
#include "results/results_schema.h"

#include <stdio.h>
#include <string.h>

#define NUM(row, m, kind) {#m, offsetof(row, m), kind, 0, 0, 0, QB_SOURCE_NONE, 0}

static const qb_field run_fields[] = {
    NUM(qb_run_row, cell, QB_FIELD_I32),
    NUM(qb_run_row, repetition, QB_FIELD_I32),
    NUM(qb_run_row, n_prompt, QB_FIELD_I32),
    NUM(qb_run_row, n_gen, QB_FIELD_I32),
    NUM(qb_run_row, total_s, QB_FIELD_F64),
    NUM(qb_run_row, prefill_s, QB_FIELD_F64),
    NUM(qb_run_row, decode_s, QB_FIELD_F64),
    NUM(qb_run_row, tok_per_s, QB_FIELD_F64),
    NUM(qb_run_row, decode_tok_per_s, QB_FIELD_F64),
    NUM(qb_run_row, tpot_s, QB_FIELD_F64),
    NUM(qb_run_row, step_offset, QB_FIELD_I64),
    NUM(qb_run_row, token_offset, QB_FIELD_I64),
    {"start_unix_s", offsetof(qb_run_row, start_unix_s), QB_FIELD_F64, 0, 1, 1, QB_SOURCE_NONE, 0},
    {"end_unix_s", offsetof(qb_run_row, end_unix_s), QB_FIELD_F64, 0, 1, 1, QB_SOURCE_NONE, 0},
};

static const qb_field rank_memory_fields[] = {
    NUM(qb_rank_memory_row, cell, QB_FIELD_I32),
    NUM(qb_rank_memory_row, rank, QB_FIELD_I32),
    NUM(qb_rank_memory_row, peak_bytes, QB_FIELD_F64),
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
_Static_assert(COUNT(run_fields) == QB_RUN_FIELD_END + 1 && QB_RUN_FIELD_START + 1 == QB_RUN_FIELD_END,
               "QB_RUN_FIELD_START/END name the last two /runs fields");
const qb_table_schema qb_runs_schema = {"/runs", run_fields, COUNT(run_fields), sizeof(qb_run_row)};
const qb_table_schema qb_rank_memory_schema = {"/rank_memory", rank_memory_fields, COUNT(rank_memory_fields),
                                               sizeof(qb_rank_memory_row)};

#define META(m) {#m, offsetof(qb_results_meta, m), sizeof(((qb_results_meta *)0)->m)}
const qb_meta_string qb_meta_strings[] = {
    META(version),        META(build_commit),   META(build_type),   META(command_line), META(start_time),
    META(end_time),       META(hosts),          META(devices_json), META(driver_version), META(cuda_version),
    META(nccl_version),   META(mpi_version),    META(hdf5_version), META(settings_json),
};
const int qb_n_meta_strings = COUNT(qb_meta_strings);
_Static_assert(COUNT(qb_meta_strings) <= QB_META_STRINGS_MAX, "raise QB_META_STRINGS_MAX");

hid_t qb_schema_memory_type(const qb_table_schema *t) { return qb_schema_memory_type_for(t, H5I_INVALID_HID); }

hid_t qb_schema_memory_type_for(const qb_table_schema *t, hid_t file_type) {
    hid_t compound = H5Tcreate(H5T_COMPOUND, t->row_size);
    if (compound < 0) return H5I_INVALID_HID;
    for (int i = 0; i < t->n_fields; i++) {
        const qb_field *f = &t->fields[i];
        if (file_type >= 0 && H5Tget_member_index(file_type, f->name) < 0) continue;
        herr_t rc;
        if (f->kind == QB_FIELD_STRING) {
            hid_t s = H5Tcopy(H5T_C_S1);
            rc = s < 0 ? -1 : 0;
            if (rc == 0) rc = H5Tset_size(s, f->size);
            if (rc >= 0) rc = H5Tset_strpad(s, H5T_STR_NULLTERM);
            if (rc >= 0) rc = H5Tinsert(compound, f->name, f->offset, s);
            if (s >= 0) H5Tclose(s);
        } else {
            hid_t n = f->kind == QB_FIELD_I32   ? H5T_NATIVE_INT32
                      : f->kind == QB_FIELD_I64 ? H5T_NATIVE_INT64
                      : f->kind == QB_FIELD_U64 ? H5T_NATIVE_UINT64
                                                : H5T_NATIVE_DOUBLE;
            rc = H5Tinsert(compound, f->name, f->offset, n);
        }
        if (rc < 0) {
            H5Tclose(compound);
            return H5I_INVALID_HID;
        }
    }
    return compound;
}

/* The end of the file recorded in a version 2 or 3 superblock at offset 0 with 8-byte addresses (what the
 * writer makes; HDF5 verified that superblock's checksum when it opened the image): base address + end of
 * file address. Returns 0 for any other superblock. */
int qb_hdf5_superblock_end(const void *image, size_t size, uint64_t *end) {
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = image;
    if (size < 48 || memcmp(b, signature, 8) != 0 || (b[8] != 2 && b[8] != 3) || b[9] != 8) return 0;
    uint64_t base = 0, eof = 0;
    for (int i = 7; i >= 0; i--) {
        base = base << 8 | b[12 + i];
        eof = eof << 8 | b[28 + i];
    }
    *end = base > UINT64_MAX - eof ? UINT64_MAX : base + eof;
    return 1;
}

typedef struct {
    char *out;
    size_t size;
    int seen;
} detail_walk;

static herr_t take_innermost(unsigned n, const H5E_error2_t *err, void *data) {
    detail_walk *w = data;
    if (n == 0 && err->desc) {
        snprintf(w->out, w->size, "%s", err->desc);
        w->seen = 1;
    }
    return 0;
}

void qb_hdf5_error_detail(char *out, size_t size) {
    detail_walk w = {out, size, 0};
    out[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &w);
}

void qb_hdf5_quiet_begin(qb_hdf5_quiet *saved) {
    saved->func = NULL;
    saved->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &saved->func, &saved->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void qb_hdf5_quiet_end(const qb_hdf5_quiet *saved) { H5Eset_auto2(H5E_DEFAULT, saved->func, saved->data); }
