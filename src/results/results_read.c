/* results_read.c - reads a results file back into records (for --resume, `qwenbench tokens` and the tests;
 * see results_file.h). A results file may be damaged (a flipped bit, a truncated copy) or not be one at all,
 * and reading it must never crash, hang or read out of bounds:
 *   - the file is opened by us (a FIFO, a device or a directory is refused instead of blocking), must be
 *     a regular file of at most QB_RESULTS_MAX_BYTES, and is read whole into memory; HDF5 then opens that
 *     image (core driver), so nothing can change under the reader and there is no SIGBUS;
 *   - the image is parsed first in a forked child (read_guarded): libhdf5 1.10 itself can crash or loop on
 *     damaged metadata of older-format files, so a child killed by a signal or still busy after
 *     QB_READ_TIMEOUT_S becomes one line "FILE: damaged or not a results file (...)"; only an image the child
 *     parsed and validated completely is parsed again, in process, into the records (same bytes, same code);
 *   - every dataset must exist, be 1-D, hold at most QB_RESULTS_MAX_ROW_BYTES of rows, have its data stored
 *     in the file, and (compound ones) hold every field of results_schema.h with a plain type of the right
 *     class (integers of 1-8 bytes, IEEE floats, fixed-length strings); root attributes must be single
 *     values of the right class; every offset and count must stay inside its dataset (checked arithmetic);
 *   - files written by this qwenbench carry content_crc64 (results_checksum.c) over every value, checked
 *     before any record is made; HDF5's newest format checksums the metadata itself.
 * Anything else is "FILE: dataset /runs missing or malformed (why)" and the like, never a partly filled record.
 */
#include "results/results_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/printable.h"
#include "results/results_schema.h"
#include "util/error.h"

static int malformed(const char *path, const char *dataset, const char *why) {
    return qb_errorf("%s: dataset %s missing or malformed (%s)", path, dataset, why);
}

/* A plain type of the kind a field needs: integers of 1, 2, 4 or 8 bytes, IEEE floats of 4 or 8 bytes,
 * fixed-length strings. Anything else (variable-length strings, odd float formats, nested types) is refused
 * before HDF5 is asked to convert it. */
static int type_fits(hid_t type, qb_field_kind kind) {
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    switch (kind) {
    case QB_FIELD_STRING: return cls == H5T_STRING && H5Tis_variable_str(type) == 0 && size >= 1 && size <= 65536;
    case QB_FIELD_F64:
        return cls == H5T_FLOAT && (H5Tequal(type, H5T_IEEE_F64LE) > 0 || H5Tequal(type, H5T_IEEE_F64BE) > 0 ||
                                    H5Tequal(type, H5T_IEEE_F32LE) > 0 || H5Tequal(type, H5T_IEEE_F32BE) > 0);
    default: return cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8);
    }
}

/* Open a 1-D dataset of at most max_rows rows whose data is in the file; *n its length. Returns the dataset
 * id or H5I_INVALID_HID with the message recorded. */
static hid_t open_1d(hid_t file, const char *path, const char *name, hsize_t max_rows, hsize_t *n) {
    hid_t dset = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        malformed(path, name, "not in the file");
        return H5I_INVALID_HID;
    }
    const char *why = "cannot open it";
    H5O_info_t info;
    if (H5Oget_info_by_name(file, name, &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET) goto fail;
    if ((dset = H5Dopen2(file, name, H5P_DEFAULT)) < 0) goto fail;
    why = "not one-dimensional";
    if ((space = H5Dget_space(dset)) < 0 || H5Sget_simple_extent_type(space) != H5S_SIMPLE ||
        H5Sget_simple_extent_ndims(space) != 1 || H5Sget_simple_extent_dims(space, n, NULL) != 1)
        goto fail;
    why = "too many rows";
    if (*n > max_rows) goto fail;
    why = "its type cannot be read";
    if ((type = H5Dget_type(dset)) < 0) goto fail;
    size_t element = H5Tget_size(type);
    why = "fewer bytes stored than its rows need";
    if (element == 0 || (*n > 0 && H5Dget_storage_size(dset) / element < *n)) goto fail;
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

/* Rows of a table or elements of an array allowed in memory. */
#define QB_RESULTS_MAX_ROW_BYTES ((hsize_t)1 << 30)

/* Read a whole compound table into *rows (calloc'ed, at least one row so it is never NULL); present[k] (unless
 * NULL): whether the file has field k (an optional one may be missing). */
static int read_table(hid_t file, const char *path, const qb_table_schema *t, void **rows, int64_t *n_out,
                      unsigned char *present) {
    hid_t dset = H5I_INVALID_HID, file_type = H5I_INVALID_HID, memory = H5I_INVALID_HID;
    int status = -1;
    hsize_t n = 0;
    *rows = NULL;
    if ((dset = open_1d(file, path, t->name, QB_RESULTS_MAX_ROW_BYTES / t->row_size, &n)) < 0) return -1;
    if ((file_type = H5Dget_type(dset)) < 0 || H5Tget_class(file_type) != H5T_COMPOUND) {
        malformed(path, t->name, "not a compound table");
        goto done;
    }
    for (int i = 0; i < t->n_fields; i++) {
        int index = H5Tget_member_index(file_type, t->fields[i].name);
        if (present) present[i] = index >= 0;
        if (index < 0 && t->fields[i].optional) continue; /* stays 0 / "" */
        hid_t member = index < 0 ? H5I_INVALID_HID : H5Tget_member_type(file_type, (unsigned)index);
        int fits = member >= 0 && type_fits(member, t->fields[i].kind);
        if (member >= 0) H5Tclose(member);
        if (!fits) {
            char why[160];
            snprintf(why, sizeof why, "field '%s' %s", t->fields[i].name, index < 0 ? "missing" : "of the wrong type");
            malformed(path, t->name, why);
            goto done;
        }
    }
    *rows = calloc((size_t)n + 1, t->row_size);
    if (!*rows) {
        qb_errorf("%s: out of memory reading %llu rows of %s", path, (unsigned long long)n, t->name);
        goto done;
    }
    if ((memory = qb_schema_memory_type_for(t, file_type)) < 0 ||
        (n > 0 && H5Dread(dset, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0)) {
        malformed(path, t->name, "reading it failed");
        goto done;
    }
    *n_out = (int64_t)n;
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

static int read_array(hid_t file, const char *path, const char *name, qb_field_kind kind, hid_t memory_type,
                      size_t element, void **data, int64_t *n_out) {
    hsize_t n = 0;
    *data = NULL;
    hid_t dset = open_1d(file, path, name, QB_RESULTS_MAX_ROW_BYTES / element, &n);
    if (dset < 0) return -1;
    int status = -1;
    hid_t type = H5Dget_type(dset);
    if (type < 0 || !type_fits(type, kind))
        malformed(path, name, kind == QB_FIELD_F64 ? "not floating point" : "not integers");
    else if (!(*data = calloc((size_t)n + 1, element))) qb_errorf("%s: out of memory reading %s", path, name);
    else if (n > 0 && H5Dread(dset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0)
        malformed(path, name, "reading it failed");
    else status = 0;
    if (type >= 0) H5Tclose(type);
    H5Dclose(dset);
    if (status != 0) {
        free(*data);
        *data = NULL;
    } else {
        *n_out = (int64_t)n;
    }
    return status;
}

/* Open a root attribute holding one value of a type of class cls. */
static hid_t open_attribute(hid_t file, const char *path, const char *name, H5T_class_t cls, const char *what) {
    hid_t attr = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    htri_t exists = H5Aexists(file, name);
    if (exists == 0) {
        qb_errorf("%s: root attribute '%s' missing", path, name);
        return H5I_INVALID_HID;
    }
    int ok = exists > 0 && (attr = H5Aopen(file, name, H5P_DEFAULT)) >= 0 && (space = H5Aget_space(attr)) >= 0 &&
             H5Sget_simple_extent_npoints(space) == 1 && (type = H5Aget_type(attr)) >= 0 && H5Tget_class(type) == cls;
    if (ok && cls == H5T_STRING) ok = H5Tis_variable_str(type) > 0;
    if (ok && cls != H5T_STRING) ok = type_fits(type, cls == H5T_FLOAT ? QB_FIELD_F64 : QB_FIELD_I64);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (!ok) {
        if (attr >= 0) H5Aclose(attr);
        qb_errorf("%s: root attribute '%s' is not %s", path, name, what);
        return H5I_INVALID_HID;
    }
    return attr;
}

/* *value: the whole string (malloc'ed), also copied into out (size bytes) for the record. */
static int read_string_attribute(hid_t file, const char *path, const char *name, char *out, size_t size,
                                 char **value_out) {
    hid_t attr = open_attribute(file, path, name, H5T_STRING, "a variable-length string");
    if (attr < 0) return -1;
    hid_t memory = H5I_INVALID_HID;
    char *value = NULL;
    int status = -1;
    if ((memory = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(memory, H5T_VARIABLE) < 0 ||
        H5Tset_cset(memory, H5T_CSET_UTF8) < 0 || H5Aread(attr, memory, &value) < 0)
        goto done;
    snprintf(out, size, "%s", value ? value : "");
    if (!(*value_out = strdup(value ? value : ""))) goto done;
    status = 0;
done:
    if (value) H5free_memory(value);
    if (memory >= 0) H5Tclose(memory);
    H5Aclose(attr);
    if (status != 0) qb_errorf("%s: root attribute '%s' cannot be read", path, name);
    return status;
}

static int read_number_attribute(hid_t file, const char *path, const char *name, H5T_class_t cls,
                                 hid_t memory_type, void *out) {
    hid_t attr = open_attribute(file, path, name, cls, cls == H5T_FLOAT ? "a number" : "an integer");
    if (attr < 0) return -1;
    int status = 0;
    if (H5Aread(attr, memory_type, out) < 0) status = qb_errorf("%s: root attribute '%s' cannot be read", path, name);
    H5Aclose(attr);
    return status;
}

typedef struct {
    char *values[QB_META_STRINGS_MAX]; /* the meta strings as stored (for the checksum) */
    int has_checksum;
    uint64_t checksum;
} stored_meta;

static void stored_meta_free(stored_meta *s) {
    for (int i = 0; i < QB_META_STRINGS_MAX; i++) free(s->values[i]);
}

static int read_meta(hid_t file, const char *path, qb_results_meta *meta, stored_meta *stored) {
    memset(meta, 0, sizeof *meta);
    int schema = 0;
    QB_TRY(read_number_attribute(file, path, "schema_version", H5T_INTEGER, H5T_NATIVE_INT, &schema));
    if (schema != QB_RESULTS_SCHEMA_VERSION)
        return qb_errorf("%s: schema version %d, this qwenbench reads version %d", path, schema,
                         QB_RESULTS_SCHEMA_VERSION);
    QB_TRY(read_number_attribute(file, path, "copy_bandwidth_gbps", H5T_FLOAT, H5T_NATIVE_DOUBLE,
                                 &meta->copy_bandwidth_gbps));
    for (int i = 0; i < qb_n_meta_strings; i++)
        QB_TRY(read_string_attribute(file, path, qb_meta_strings[i].name, (char *)meta + qb_meta_strings[i].offset,
                                     qb_meta_strings[i].size, &stored->values[i]));
    htri_t has = H5Aexists(file, QB_CHECKSUM_ATTRIBUTE);
    if (has < 0) return qb_errorf("%s: root attribute '%s' cannot be read", path, QB_CHECKSUM_ATTRIBUTE);
    if (has > 0) {
        QB_TRY(read_number_attribute(file, path, QB_CHECKSUM_ATTRIBUTE, H5T_INTEGER, H5T_NATIVE_UINT64,
                                     &stored->checksum));
        stored->has_checksum = 1;
    }
    return 0;
}

/* [offset, offset + count) inside [0, size), without overflow (all three may come from the file). */
static int inside(int64_t offset, int64_t count, int64_t size) {
    return offset >= 0 && count >= 0 && offset <= size && count <= size - offset;
}

/* Turn the rows into records, checking every cross-reference. */
static int to_records(const char *path, const qb_results_tables *t, qb_cell_record *cells) {
    for (int64_t i = 0; i < t->n_cells; i++) {
        const qb_cell_row *row = &t->cells[i];
        qb_cell_record *c = &cells[i];
        int known_status = qb_cell_from_row(row, t->cell_fields_present, c);
        c->n_runs = 0; /* counts the runs attached below (qb_cell_free walks them) */
        if (known_status != 0)
            return malformed(path, "/cells", "a status is not VALID, INVALID, DOES_NOT_FIT or FAILED");
        if (row->n_ranks < 0 || row->n_ranks > QB_MAX_RANKS) return malformed(path, "/cells", "n_ranks out of range");
        if (!inside(row->first_run, row->n_runs, t->n_runs))
            return malformed(path, "/cells", "first_run/n_runs outside /runs");
        if (row->n_ranks > 0 && !(c->peak_mem_rank = calloc((size_t)row->n_ranks, sizeof(double))))
            return qb_errorf("%s: out of memory", path);
        c->runs = calloc((size_t)row->n_runs + 1, sizeof *c->runs);
        if (!c->runs) return qb_errorf("%s: out of memory", path);
        for (int j = 0; j < row->n_runs; j++) {
            const qb_run_row *rr = &t->runs[row->first_run + j];
            if (rr->cell != i || rr->n_gen < 0) return malformed(path, "/runs", "a row belongs to another cell");
            int64_t steps = qb_run_steps(rr->n_gen);
            if (!inside(rr->step_offset, steps, t->n_steps))
                return malformed(path, "/runs", "step_offset outside /step_latency_s");
            if (!inside(rr->token_offset, rr->n_gen, t->n_tokens))
                return malformed(path, "/runs", "token_offset outside /generated_tokens");
            qb_run_record *run = &c->runs[c->n_runs++];
            *run = (qb_run_record){rr->repetition, rr->n_prompt, rr->n_gen, rr->total_s, rr->prefill_s, rr->decode_s,
                                   rr->tok_per_s, rr->decode_tok_per_s, rr->tpot_s, NULL, NULL,
                                   t->run_fields_present[QB_RUN_FIELD_START] ? rr->start_unix_s : NAN,
                                   t->run_fields_present[QB_RUN_FIELD_END] ? rr->end_unix_s : NAN};
            run->step_s = malloc(sizeof(double) * (size_t)(steps + 1));
            run->tokens = malloc(sizeof(int32_t) * ((size_t)rr->n_gen + 1));
            if (!run->step_s || !run->tokens) return qb_errorf("%s: out of memory", path);
            if (steps) memcpy(run->step_s, t->steps + rr->step_offset, sizeof(double) * (size_t)steps);
            if (rr->n_gen) memcpy(run->tokens, t->tokens + rr->token_offset, sizeof(int32_t) * (size_t)rr->n_gen);
        }
    }
    for (int64_t k = 0; k < t->n_memory; k++) {
        const qb_rank_memory_row *m = &t->memory[k];
        if (m->cell < 0 || m->cell >= t->n_cells || m->rank < 0 || m->rank >= cells[m->cell].n_ranks ||
            !cells[m->cell].peak_mem_rank)
            return malformed(path, "/rank_memory", "a row names a cell or rank that does not exist");
        cells[m->cell].peak_mem_rank[m->rank] = m->peak_bytes;
    }
    return 0;
}

/* Open an in-memory file image read-only. The core driver refuses to open an image whose name exists as
 * a file, so the name is one that cannot exist: /dev/null is not a directory. */
static hid_t open_image(const void *image, size_t size) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = H5I_INVALID_HID;
    if (fapl < 0) return H5I_INVALID_HID;
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 &&
        H5Pset_file_image(fapl, (void *)image, size) >= 0)
        file = H5Fopen("/dev/null/qwenbench-results-image", H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return file;
}

/* Parse an image into records, in this process: only for an image the guarded child has parsed. */
static int parse_image(const void *image, size_t size, const char *path, qb_results_meta *meta,
                       qb_cell_record **cells_out, int *n_cells_out) {
    *cells_out = NULL;
    *n_cells_out = 0;
    qb_hdf5_quiet quiet;
    qb_hdf5_quiet_begin(&quiet);
    qb_results_tables t;
    memset(&t, 0, sizeof t);
    stored_meta stored;
    memset(&stored, 0, sizeof stored);
    qb_cell_record *cells = NULL;
    int status = -1;
    hid_t file = size >= 8 ? open_image(image, size) : H5I_INVALID_HID;
    if (file < 0) {
        char detail[512];
        qb_hdf5_error_detail(detail, sizeof detail);
        qb_errorf("%s: cannot open as an HDF5 file%s%s", path, detail[0] ? ": " : "", detail);
        goto done;
    }
    uint64_t recorded_end;
    if (qb_hdf5_superblock_end(image, size, &recorded_end) && recorded_end > size) {
        qb_errorf("%s: damaged: truncated (%zu bytes, its superblock says %llu)", path, size,
                  (unsigned long long)recorded_end);
        goto done;
    }
    void *p;
    if (read_meta(file, path, meta, &stored) != 0) goto done;
    if (read_table(file, path, &qb_cells_schema, &p, &t.n_cells, t.cell_fields_present) != 0) goto done;
    t.cells = p;
    if (read_table(file, path, &qb_runs_schema, &p, &t.n_runs, t.run_fields_present) != 0) goto done;
    t.fields_known = 1; /* both tables' fields known: the checksum skips those a file lacks */
    t.runs = p;
    if (read_table(file, path, &qb_rank_memory_schema, &p, &t.n_memory, NULL) != 0) goto done;
    t.memory = p;
    if (read_array(file, path, "/step_latency_s", QB_FIELD_F64, H5T_NATIVE_DOUBLE, sizeof(double), &p, &t.n_steps) != 0)
        goto done;
    t.steps = p;
    if (read_array(file, path, "/generated_tokens", QB_FIELD_I32, H5T_NATIVE_INT32, sizeof(int32_t), &p,
                   &t.n_tokens) != 0)
        goto done;
    t.tokens = p;
    if (stored.has_checksum &&
        qb_results_checksum(QB_RESULTS_SCHEMA_VERSION, meta->copy_bandwidth_gbps, (const char *const *)stored.values,
                            &t) != stored.checksum) {
        qb_errorf("%s: damaged: its content does not match its checksum (%s)", path, QB_CHECKSUM_ATTRIBUTE);
        goto done;
    }
    if (t.n_cells > (1 << 30)) {
        malformed(path, "/cells", "too many rows");
        goto done;
    }
    cells = calloc((size_t)t.n_cells + 1, sizeof *cells);
    if (!cells) {
        qb_errorf("%s: out of memory for %lld cells", path, (long long)t.n_cells);
        goto done;
    }
    if (to_records(path, &t, cells) != 0) goto done;
    *cells_out = cells;
    *n_cells_out = (int)t.n_cells;
    cells = NULL;
    status = 0;
done:
    if (cells) {
        for (int64_t i = 0; i < t.n_cells; i++) qb_cell_free(&cells[i]);
        free(cells);
    }
    free(t.cells);
    free(t.runs);
    free(t.memory);
    free(t.steps);
    free(t.tokens);
    stored_meta_free(&stored);
    if (file >= 0) H5Fclose(file);
    qb_hdf5_quiet_end(&quiet);
    if (status != 0) qb_error_make_printable();
    return status;
}

/* ---- the file, read whole, and the guarded first parse ---- */

/* Read a regular file of at most QB_RESULTS_MAX_BYTES into *image (malloc'ed). */
static int load_file(const char *path, void **image, size_t *size) {
    *image = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* O_NONBLOCK: a FIFO must not block the open */
    if (fd < 0) return qb_errorf("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return qb_errorf("%s: %s", path, strerror(saved));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qb_errorf("%s is %s, not a results file", path,
                         S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                         : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file");
    }
    if (st.st_size > QB_RESULTS_MAX_BYTES) {
        close(fd);
        return qb_errorf("%s: %lld bytes, more than a results file may have (%lld)", path, (long long)st.st_size,
                         (long long)QB_RESULTS_MAX_BYTES);
    }
    size_t want = (size_t)st.st_size, got = 0;
    char *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return qb_errorf("%s: out of memory for %zu bytes", path, want);
    }
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int saved = errno;
            free(buf);
            close(fd);
            return qb_errorf("%s: %s", path, strerror(saved));
        }
        if (n == 0) break; /* shrank meanwhile: parse what is there */
        got += (size_t)n;
    }
    close(fd);
    *image = buf;
    *size = got;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Parse and validate the image in a child process; 0 when it succeeded. A child that fails passes its
 * one-line message back through a pipe; one that dies or overruns the time limit is the file's fault. */
static int read_guarded(const void *image, size_t size, const char *path, int timeout_s) {
    int fds[2];
    if (pipe(fds) != 0) return qb_errorf("%s: cannot start the reader: pipe: %s", path, strerror(errno));
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        close(fds[0]);
        close(fds[1]);
        return qb_errorf("%s: cannot start the reader: fork: %s", path, strerror(errno));
    }
    if (child == 0) {
        close(fds[0]);
        /* A crash here is the file's fault and is reported by the parent in one line: die quietly, without
         * the reports of MPI's or the sanitizers' signal handlers or glibc's heap checks ("free(): invalid
         * pointer" from libhdf5 on a damaged heap). Memory errors of our own code show in the parent's
         * parse of every file the child accepts (under the sanitizers: the ASan tests, the fuzzer). */
        const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) dup2(devnull, STDERR_FILENO);
        static qb_results_meta meta;
        qb_cell_record *cells = NULL;
        int n = 0;
        if (parse_image(image, size, path, &meta, &cells, &n) == 0) _exit(0);
        const char *msg = qb_last_error();
        ssize_t ignored = write(fds[1], msg, strlen(msg));
        (void)ignored;
        _exit(1);
    }
    close(fds[1]);
    char msg[QB_ERROR_MAX];
    size_t len = 0;
    double deadline = now_s() + timeout_s;
    int timed_out = 0;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue; /* timeout: the loop's check ends it */
        ssize_t n = read(fds[0], msg + len, sizeof msg - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the child closed its end: exited or died */
        len += (size_t)n;
        if (len == sizeof msg - 1) break;
    }
    msg[len] = '\0';
    close(fds[0]);
    if (timed_out) kill(child, SIGKILL);
    int wstatus = 0;
    while (waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        return qb_errorf("%s: damaged or not a results file (reading it did not finish within %d s)", path, timeout_s);
    if (WIFSIGNALED(wstatus))
        return qb_errorf("%s: damaged or not a results file (the HDF5 library crashed reading it: signal %d)", path,
                         WTERMSIG(wstatus));
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return 0;
    if (len == 0) return qb_errorf("%s: damaged or not a results file (the reader exited with status %d)", path,
                                   WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    return qb_errorf("%s", msg);
}

int qb_results_read_image(const void *image, size_t size, const char *path, int timeout_s, qb_results_meta *meta,
                          qb_cell_record **cells_out, int *n_cells_out) {
    *cells_out = NULL;
    *n_cells_out = 0;
    int rc = read_guarded(image, size, path, timeout_s);
    if (rc == 0) rc = parse_image(image, size, path, meta, cells_out, n_cells_out);
    if (rc != 0) qb_error_make_printable();
    return rc;
}

int qb_results_read(const char *path, qb_results_meta *meta, qb_cell_record **cells_out, int *n_cells_out) {
    *cells_out = NULL;
    *n_cells_out = 0;
    void *image = NULL;
    size_t size = 0;
    int rc = load_file(path, &image, &size);
    if (rc == 0) rc = qb_results_read_image(image, size, path, QB_READ_TIMEOUT_S, meta, cells_out, n_cells_out);
    free(image);
    if (rc != 0) qb_error_make_printable();
    return rc;
}
