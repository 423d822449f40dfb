/* results_read.c - reads a results file back into records (for --resume and the tests; see results_file.h).
 *
 * Every dataset must exist, be 1-D, and (for the compound ones) hold every field of results_schema.h with
 * the right class; every offset and count must stay inside its dataset. Anything else is
 * "FILE: dataset /runs missing or malformed (why)", never a partly filled record.
 */
#include "results/results_file.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_schema.h"
#include "util/error.h"

static int malformed(const char *path, const char *dataset, const char *why) {
    return qb_errorf("%s: dataset %s missing or malformed (%s)", path, dataset, why);
}

static H5T_class_t class_of(qb_field_kind kind) {
    switch (kind) {
    case QB_FIELD_STRING: return H5T_STRING;
    case QB_FIELD_F64: return H5T_FLOAT;
    default: return H5T_INTEGER;
    }
}

/* Open a 1-D dataset; *n its length. Returns the dataset id or H5I_INVALID_HID with the message recorded. */
static hid_t open_1d(hid_t file, const char *path, const char *name, H5T_class_t want, hsize_t *n) {
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        malformed(path, name, "not in the file");
        return H5I_INVALID_HID;
    }
    const char *why = "cannot open it";
    if ((dset = H5Dopen2(file, name, H5P_DEFAULT)) < 0) goto fail;
    why = "not one-dimensional";
    if ((space = H5Dget_space(dset)) < 0 || H5Sget_simple_extent_ndims(space) != 1) goto fail;
    if (H5Sget_simple_extent_dims(space, n, NULL) < 0) goto fail;
    why = want == H5T_COMPOUND ? "not a compound table" : want == H5T_FLOAT ? "not floating point" : "not integers";
    if ((type = H5Dget_type(dset)) < 0 || H5Tget_class(type) != want) goto fail;
    H5Tclose(type);
    H5Sclose(space);
    return dset;
fail:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (dset >= 0) H5Dclose(dset);
    malformed(path, name, why);
    return H5I_INVALID_HID;
}

/* Read a whole compound table into *rows (calloc'ed, at least one row so it is never NULL). */
static int read_table(hid_t file, const char *path, const qb_table_schema *t, void **rows, hsize_t *n) {
    hid_t dset = H5I_INVALID_HID, file_type = H5I_INVALID_HID, memory = H5I_INVALID_HID;
    int status = -1;
    *rows = NULL;
    if ((dset = open_1d(file, path, t->name, H5T_COMPOUND, n)) < 0) return -1;
    if ((file_type = H5Dget_type(dset)) < 0) {
        malformed(path, t->name, "cannot read its type");
        goto done;
    }
    for (int i = 0; i < t->n_fields; i++) {
        int index = H5Tget_member_index(file_type, t->fields[i].name);
        if (index < 0 || H5Tget_member_class(file_type, (unsigned)index) != class_of(t->fields[i].kind)) {
            char why[160];
            snprintf(why, sizeof why, "field '%s' %s", t->fields[i].name, index < 0 ? "missing" : "of the wrong type");
            malformed(path, t->name, why);
            goto done;
        }
    }
    *rows = calloc((size_t)*n + 1, t->row_size);
    if (!*rows) {
        qb_errorf("%s: out of memory reading %llu rows of %s", path, (unsigned long long)*n, t->name);
        goto done;
    }
    if ((memory = qb_schema_memory_type(t)) < 0 ||
        (*n > 0 && H5Dread(dset, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0)) {
        malformed(path, t->name, "reading it failed");
        goto done;
    }
    status = 0;
done:
    if (memory >= 0) H5Tclose(memory);
    if (file_type >= 0) H5Tclose(file_type);
    H5Dclose(dset);
    if (status != 0) {
        free(*rows);
        *rows = NULL;
    }
    return status;
}

static int read_array(hid_t file, const char *path, const char *name, H5T_class_t cls, hid_t memory_type,
                      size_t element, void **data, hsize_t *n) {
    *data = NULL;
    hid_t dset = open_1d(file, path, name, cls, n);
    if (dset < 0) return -1;
    int status = -1;
    *data = calloc((size_t)*n + 1, element);
    if (!*data) qb_errorf("%s: out of memory reading %s", path, name);
    else if (*n > 0 && H5Dread(dset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0)
        malformed(path, name, "reading it failed");
    else status = 0;
    H5Dclose(dset);
    if (status != 0) {
        free(*data);
        *data = NULL;
    }
    return status;
}

static int read_string_attribute(hid_t file, const char *path, const char *name, char *out, size_t size) {
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, memory = H5I_INVALID_HID;
    char *value = NULL;
    int status = -1;
    if (H5Aexists(file, name) <= 0) return qb_errorf("%s: root attribute '%s' missing", path, name);
    if ((attr = H5Aopen(file, name, H5P_DEFAULT)) < 0 || (type = H5Aget_type(attr)) < 0) goto done;
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) <= 0) goto done;
    if ((memory = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(memory, H5T_VARIABLE) < 0 ||
        H5Tset_cset(memory, H5T_CSET_UTF8) < 0)
        goto done;
    if (H5Aread(attr, memory, &value) < 0) goto done;
    snprintf(out, size, "%s", value ? value : "");
    status = 0;
done:
    if (value) H5free_memory(value);
    if (memory >= 0) H5Tclose(memory);
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    if (status != 0) qb_errorf("%s: root attribute '%s' is not a variable-length string", path, name);
    return status;
}

static int read_number_attribute(hid_t file, const char *path, const char *name, hid_t memory_type, void *out) {
    hid_t attr = H5I_INVALID_HID;
    int status = -1;
    if (H5Aexists(file, name) <= 0) return qb_errorf("%s: root attribute '%s' missing", path, name);
    if ((attr = H5Aopen(file, name, H5P_DEFAULT)) >= 0 && H5Aread(attr, memory_type, out) >= 0) status = 0;
    if (attr >= 0) H5Aclose(attr);
    if (status != 0) qb_errorf("%s: root attribute '%s' is not a number", path, name);
    return status;
}

static int read_meta(hid_t file, const char *path, qb_results_meta *meta) {
    memset(meta, 0, sizeof *meta);
    int schema = 0;
    QB_TRY(read_number_attribute(file, path, "schema_version", H5T_NATIVE_INT, &schema));
    if (schema != QB_RESULTS_SCHEMA_VERSION)
        return qb_errorf("%s: schema version %d, this qwenbench reads version %d", path, schema,
                         QB_RESULTS_SCHEMA_VERSION);
    QB_TRY(read_number_attribute(file, path, "copy_bandwidth_gbps", H5T_NATIVE_DOUBLE, &meta->copy_bandwidth_gbps));
    for (int i = 0; i < qb_n_meta_strings; i++)
        QB_TRY(read_string_attribute(file, path, qb_meta_strings[i].name, (char *)meta + qb_meta_strings[i].offset,
                                     qb_meta_strings[i].size));
    return 0;
}

static int status_from_name(const char *name, qb_cell_status *out) {
    for (int s = QB_CELL_VALID; s <= QB_CELL_FAILED; s++)
        if (strcmp(name, qb_cell_status_name((qb_cell_status)s)) == 0) {
            *out = (qb_cell_status)s;
            return 0;
        }
    return -1;
}

#define TAKE_STATS(c, p, row) \
    (c)->p = (qb_stats){(row)->p##_mean, (row)->p##_std, (row)->p##_min, (row)->p##_max}

typedef struct {
    qb_cell_row *cells;
    qb_run_row *runs;
    qb_rank_memory_row *memory;
    double *steps;
    int32_t *tokens;
    hsize_t n_cells, n_runs, n_memory, n_steps, n_tokens;
} tables;

/* Turn the rows into records, checking every cross-reference. */
static int to_records(const char *path, const tables *t, qb_cell_record *cells) {
    for (hsize_t i = 0; i < t->n_cells; i++) {
        const qb_cell_row *row = &t->cells[i];
        qb_cell_record *c = &cells[i];
        snprintf(c->model, sizeof c->model, "%.*s", (int)sizeof row->model - 1, row->model);
        snprintf(c->quant, sizeof c->quant, "%.*s", (int)sizeof row->quant - 1, row->quant);
        snprintf(c->backend, sizeof c->backend, "%.*s", (int)sizeof row->backend - 1, row->backend);
        c->context_len = row->context_len;
        c->gen_len = row->gen_len;
        c->tp_size = row->tp_size;
        c->n_ranks = row->n_ranks;
        c->repetitions = row->repetitions;
        c->warmup = row->warmup;
        c->seed = row->seed;
        snprintf(c->prompt_rule, sizeof c->prompt_rule, "%.*s", (int)sizeof row->prompt_rule - 1, row->prompt_rule);
        snprintf(c->rope_scaling, sizeof c->rope_scaling, "%.*s", (int)sizeof row->rope_scaling - 1, row->rope_scaling);
        snprintf(c->engine_options, sizeof c->engine_options, "%.*s", (int)sizeof row->engine_options - 1,
                 row->engine_options);
        snprintf(c->engine_choices, sizeof c->engine_choices, "%.*s", (int)sizeof row->engine_choices - 1,
                 row->engine_choices);
        snprintf(c->reason, sizeof c->reason, "%.*s", (int)sizeof row->reason - 1, row->reason);
        if (status_from_name(row->status, &c->status) != 0)
            return malformed(path, "/cells", "a status is not VALID, INVALID, DOES_NOT_FIT or FAILED");
        TAKE_STATS(c, speed, row);
        TAKE_STATS(c, ttft_s, row);
        TAKE_STATS(c, tpot_s, row);
        TAKE_STATS(c, decode_tok_per_s, row);
        c->warmup_total_s = row->warmup_total_s;
        c->speed_cv = row->speed_cv;
        c->noisy = row->noisy;
        c->implied_bandwidth_gbps = row->implied_bandwidth_gbps;
        c->copy_bandwidth_gbps = row->copy_bandwidth_gbps;
        snprintf(c->checks, sizeof c->checks, "%.*s", (int)sizeof row->checks - 1, row->checks);
        c->peak_mem_total = row->peak_mem_total_bytes;
        c->weights_bytes_rank0 = row->weights_bytes_rank0;
        c->kv_bytes_rank0 = row->kv_bytes_rank0;
        if (row->n_ranks < 0 || row->n_ranks > QB_MAX_RANKS) return malformed(path, "/cells", "n_ranks out of range");
        if (row->n_runs < 0 || row->first_run < 0 || (hsize_t)row->first_run + (hsize_t)row->n_runs > t->n_runs)
            return malformed(path, "/cells", "first_run/n_runs outside /runs");
        if (row->n_ranks > 0 && !(c->peak_mem_rank = calloc((size_t)row->n_ranks, sizeof(double))))
            return qb_errorf("%s: out of memory", path);
        c->runs = calloc((size_t)row->n_runs + 1, sizeof *c->runs);
        if (!c->runs) return qb_errorf("%s: out of memory", path);
        for (int j = 0; j < row->n_runs; j++) {
            const qb_run_row *rr = &t->runs[row->first_run + j];
            int64_t steps = qb_run_steps(rr->n_gen);
            if (rr->cell != (int32_t)i || rr->n_gen < 0) return malformed(path, "/runs", "a row belongs to another cell");
            if (rr->step_offset < 0 || (hsize_t)(rr->step_offset + steps) > t->n_steps)
                return malformed(path, "/runs", "step_offset outside /step_latency_s");
            if (rr->token_offset < 0 || (hsize_t)(rr->token_offset + rr->n_gen) > t->n_tokens)
                return malformed(path, "/runs", "token_offset outside /generated_tokens");
            qb_run_record *run = &c->runs[c->n_runs++];
            *run = (qb_run_record){rr->repetition, rr->n_prompt, rr->n_gen, rr->total_s, rr->prefill_s, rr->decode_s,
                                   rr->tok_per_s, rr->decode_tok_per_s, rr->tpot_s, NULL, NULL};
            run->step_s = malloc(sizeof(double) * (size_t)(steps + 1));
            run->tokens = malloc(sizeof(int32_t) * (size_t)(rr->n_gen + 1));
            if (!run->step_s || !run->tokens) return qb_errorf("%s: out of memory", path);
            memcpy(run->step_s, t->steps + rr->step_offset, sizeof(double) * (size_t)steps);
            memcpy(run->tokens, t->tokens + rr->token_offset, sizeof(int32_t) * (size_t)rr->n_gen);
        }
    }
    for (hsize_t k = 0; k < t->n_memory; k++) {
        const qb_rank_memory_row *m = &t->memory[k];
        if (m->cell < 0 || (hsize_t)m->cell >= t->n_cells || m->rank < 0 || m->rank >= cells[m->cell].n_ranks ||
            !cells[m->cell].peak_mem_rank)
            return malformed(path, "/rank_memory", "a row names a cell or rank that does not exist");
        cells[m->cell].peak_mem_rank[m->rank] = m->peak_bytes;
    }
    return 0;
}

int qb_results_read(const char *path, qb_results_meta *meta, qb_cell_record **cells_out, int *n_cells_out) {
    *cells_out = NULL;
    *n_cells_out = 0;
    qb_hdf5_quiet quiet;
    qb_hdf5_quiet_begin(&quiet);
    tables t = {0};
    qb_cell_record *cells = NULL;
    int status = -1;
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        char detail[512];
        qb_hdf5_error_detail(detail, sizeof detail);
        qb_errorf("%s: cannot open as an HDF5 file%s%s", path, detail[0] ? ": " : "", detail);
        goto done;
    }
    void *p;
    if (read_meta(file, path, meta) != 0) goto done;
    if (read_table(file, path, &qb_cells_schema, &p, &t.n_cells) != 0) goto done;
    t.cells = p;
    if (read_table(file, path, &qb_runs_schema, &p, &t.n_runs) != 0) goto done;
    t.runs = p;
    if (read_table(file, path, &qb_rank_memory_schema, &p, &t.n_memory) != 0) goto done;
    t.memory = p;
    if (read_array(file, path, "/step_latency_s", H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof(double), &p, &t.n_steps) != 0)
        goto done;
    t.steps = p;
    if (read_array(file, path, "/generated_tokens", H5T_INTEGER, H5T_NATIVE_INT32, sizeof(int32_t), &p,
                   &t.n_tokens) != 0)
        goto done;
    t.tokens = p;
    if (t.n_cells > (hsize_t)1 << 30) {
        malformed(path, "/cells", "too many rows");
        goto done;
    }
    cells = calloc((size_t)t.n_cells + 1, sizeof *cells);
    if (!cells) {
        qb_errorf("%s: out of memory for %llu cells", path, (unsigned long long)t.n_cells);
        goto done;
    }
    if (to_records(path, &t, cells) != 0) goto done;
    *cells_out = cells;
    *n_cells_out = (int)t.n_cells;
    cells = NULL;
    status = 0;
done:
    if (cells) {
        for (hsize_t i = 0; i < t.n_cells; i++) qb_cell_free(&cells[i]);
        free(cells);
    }
    free(t.cells);
    free(t.runs);
    free(t.memory);
    free(t.steps);
    free(t.tokens);
    if (file >= 0) H5Fclose(file);
    qb_hdf5_quiet_end(&quiet);
    return status;
}
