/* results_file.c - the atomic writer of the HDF5 results file and the check of its target (see results_file.h).
 *
 * A write builds the whole file from the records in memory (HDF5 core driver), writes that image to
 * "<path>.tmp.<pid>" (same directory, so the rename is atomic), fsyncs it, renames it over <path> and fsyncs the directory. On any failure before the rename
 * (disk full, quota, a vanished directory) the temporary file is removed and <path> is untouched. A writer
 * killed mid-write leaves its temporary file behind and <path> complete (the previous version).
 * Layout: results_schema.h and docs/RESULTS.md. The reader is results_read.c.
 */
#include "results/results_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results/results_schema.h"
#include "util/error.h"

/* Directory part of path ("." when it has none). */
static void directory_of(const char *path, char *out, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, size, ".");
    else if (slash == path) snprintf(out, size, "/");
    else snprintf(out, size, "%.*s", (int)(slash - path), path);
}

static int temp_path_of(const char *path, char *out, size_t size) {
    int n = snprintf(out, size, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= size) return qb_errorf("%s: path too long for its temporary file", path);
    return 0;
}

int qb_results_check_target(const char *path, bool overwrite, bool resume) {
    if (!path || !path[0]) return qb_errorf("results file: empty path");
    char dir[PATH_MAX], probe[PATH_MAX];
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return qb_errorf("%s is a directory, not a results file", path);
        if (!overwrite && !resume)
            return qb_errorf("%s exists: use --overwrite to replace it or --resume to complete it", path);
    } else if (errno != ENOENT && errno != ENOTDIR) { /* those two: the directory check below says it better */
        return qb_errorf("%s: %s", path, strerror(errno));
    }
    directory_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0)
        return qb_errorf("%s: directory %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return qb_errorf("%s: %s is not a directory", path, dir);
    /* The only reliable test of writability (root ignores modes, read-only mounts do not): try it. */
    QB_TRY(temp_path_of(path, probe, sizeof probe));
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return qb_errorf("%s: cannot create files in directory %s: %s", path, dir, strerror(errno));
    close(fd);
    if (unlink(probe) != 0) return qb_errorf("%s: cannot remove the probe file %s: %s", path, probe, strerror(errno));
    return 0;
}

/* ---- building the rows ---- */

/* Reads at most size - 1 bytes of src: record fields are the same size as row fields and may lack a NUL. */
static void copy_string(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%.*s", (int)(size - 1), src ? src : "");
}

#define FILL_STATS(row, p, s) \
    (row)->p##_mean = (s).mean, (row)->p##_std = (s).stddev, (row)->p##_min = (s).min, (row)->p##_max = (s).max

typedef struct {
    qb_cell_row *cells;
    qb_run_row *runs;
    qb_rank_memory_row *memory;
    double *steps;
    int32_t *tokens;
    int64_t n_runs, n_memory, n_steps, n_tokens;
} rows;

static void free_rows(rows *r) {
    free(r->cells);
    free(r->runs);
    free(r->memory);
    free(r->steps);
    free(r->tokens);
}

static int build_rows(const char *path, const qb_cell_record *cells, int n_cells, rows *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n_cells; i++) {
        const qb_cell_record *c = &cells[i];
        if (c->n_runs < 0 || (c->n_runs > 0 && !c->runs))
            return qb_errorf("%s: cell %d (%s): %d runs without run records", path, i, c->model, c->n_runs);
        r->n_runs += c->n_runs;
        if (c->peak_mem_rank) r->n_memory += c->n_ranks > 0 ? c->n_ranks : 0;
        for (int j = 0; j < c->n_runs; j++) {
            const qb_run_record *run = &c->runs[j];
            if (run->n_gen < 0 || (run->n_gen > 0 && !run->tokens) || (qb_run_steps(run->n_gen) > 0 && !run->step_s))
                return qb_errorf("%s: cell %d (%s) run %d: %d generated tokens but no token or step arrays", path,
                                 i, c->model, j, run->n_gen);
            r->n_steps += qb_run_steps(run->n_gen);
            r->n_tokens += run->n_gen;
        }
    }
    r->cells = calloc((size_t)n_cells + 1, sizeof *r->cells);
    r->runs = calloc((size_t)r->n_runs + 1, sizeof *r->runs);
    r->memory = calloc((size_t)r->n_memory + 1, sizeof *r->memory);
    r->steps = calloc((size_t)r->n_steps + 1, sizeof *r->steps);
    r->tokens = calloc((size_t)r->n_tokens + 1, sizeof *r->tokens);
    if (!r->cells || !r->runs || !r->memory || !r->steps || !r->tokens) {
        free_rows(r);
        return qb_errorf("%s: out of memory building %d cells, %lld runs", path, n_cells, (long long)r->n_runs);
    }
    int64_t run_at = 0, memory_at = 0, step_at = 0, token_at = 0;
    for (int i = 0; i < n_cells; i++) {
        const qb_cell_record *c = &cells[i];
        qb_cell_row *row = &r->cells[i];
        copy_string(row->model, sizeof row->model, c->model);
        copy_string(row->quant, sizeof row->quant, c->quant);
        copy_string(row->backend, sizeof row->backend, c->backend);
        row->context_len = c->context_len;
        row->gen_len = c->gen_len;
        row->tp_size = c->tp_size;
        row->n_ranks = c->n_ranks;
        row->repetitions = c->repetitions;
        row->warmup = c->warmup;
        row->seed = c->seed;
        copy_string(row->prompt_rule, sizeof row->prompt_rule, c->prompt_rule);
        copy_string(row->rope_scaling, sizeof row->rope_scaling, c->rope_scaling);
        copy_string(row->engine_options, sizeof row->engine_options, c->engine_options);
        copy_string(row->engine_choices, sizeof row->engine_choices, c->engine_choices);
        copy_string(row->status, sizeof row->status, qb_cell_status_name(c->status));
        copy_string(row->reason, sizeof row->reason, c->reason);
        FILL_STATS(row, speed, c->speed);
        FILL_STATS(row, ttft_s, c->ttft_s);
        FILL_STATS(row, tpot_s, c->tpot_s);
        FILL_STATS(row, decode_tok_per_s, c->decode_tok_per_s);
        row->warmup_total_s = c->warmup_total_s;
        row->speed_cv = c->speed_cv;
        row->noisy = c->noisy;
        row->implied_bandwidth_gbps = c->implied_bandwidth_gbps;
        row->copy_bandwidth_gbps = c->copy_bandwidth_gbps;
        copy_string(row->checks, sizeof row->checks, c->checks);
        row->peak_mem_total_bytes = c->peak_mem_total;
        row->peak_mem_total_gib = c->peak_mem_total / (1024.0 * 1024.0 * 1024.0);
        row->weights_bytes_rank0 = c->weights_bytes_rank0;
        row->kv_bytes_rank0 = c->kv_bytes_rank0;
        row->n_runs = c->n_runs;
        row->first_run = run_at;
        for (int k = 0; c->peak_mem_rank && k < c->n_ranks; k++)
            r->memory[memory_at++] = (qb_rank_memory_row){i, k, c->peak_mem_rank[k]};
        for (int j = 0; j < c->n_runs; j++) {
            const qb_run_record *run = &c->runs[j];
            int64_t steps = qb_run_steps(run->n_gen);
            r->runs[run_at++] = (qb_run_row){i, run->repetition, run->n_prompt, run->n_gen, run->total_s,
                                             run->prefill_s, run->decode_s, run->tok_per_s, run->decode_tok_per_s,
                                             run->tpot_s, step_at, token_at};
            if (steps) memcpy(r->steps + step_at, run->step_s, sizeof(double) * (size_t)steps);
            if (run->n_gen) memcpy(r->tokens + token_at, run->tokens, sizeof(int32_t) * (size_t)run->n_gen);
            step_at += steps;
            token_at += run->n_gen;
        }
    }
    return 0;
}

/* ---- HDF5 ---- */

static int write_string_attribute(hid_t file, const char *name, const char *value) {
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    int status = -1;
    if ((type = H5Tcopy(H5T_C_S1)) < 0) goto done;
    if (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0) goto done;
    if ((space = H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(attr, type, &value) < 0) goto done;
    status = 0;
done:
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return status;
}

static int write_number_attribute(hid_t file, const char *name, hid_t file_type, hid_t memory_type, const void *v) {
    hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
    int status = -1;
    if ((space = H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((attr = H5Acreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(attr, memory_type, v) < 0) goto done;
    status = 0;
done:
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    return status;
}

/* One 1-D dataset of n elements (n may be 0: a valid empty dataset). */
static int write_dataset(hid_t file, const char *name, hid_t file_type, hid_t memory_type, int64_t n,
                         const void *data) {
    hid_t space = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int status = -1;
    hsize_t dims[1] = {(hsize_t)n};
    if ((space = H5Screate_simple(1, dims, NULL)) < 0) goto done;
    if ((dset = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (n > 0 && H5Dwrite(dset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto done;
    status = 0;
done:
    if (dset >= 0) H5Dclose(dset);
    if (space >= 0) H5Sclose(space);
    return status;
}

static int write_table(hid_t file, const qb_table_schema *t, int64_t n, const void *data) {
    hid_t memory = qb_schema_memory_type(t), packed = H5I_INVALID_HID;
    int status = -1;
    if (memory < 0) goto done;
    if ((packed = H5Tcopy(memory)) < 0 || H5Tpack(packed) < 0) goto done;
    status = write_dataset(file, t->name, packed, memory, n, data);
done:
    if (packed >= 0) H5Tclose(packed);
    if (memory >= 0) H5Tclose(memory);
    return status;
}

/* Build the whole file in memory (HDF5 core driver, no backing store) and hand back its image. Keeping
 * HDF5 away from the disk means an I/O failure (disk full) happens in our own write(), with its errno,
 * and never leaves the library holding a half-closed file. Returns 0, or -1 with *step naming what failed. */
static int build_image(const qb_results_meta *meta, const rows *r, int n_cells, void **image, size_t *size,
                       const char **step) {
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    int status = -1;
    *image = NULL;
    *step = "H5Pset_fapl_core";
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0) goto done;
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto done;
    *step = "H5Fcreate (in memory)";
    if ((file = H5Fcreate("qwenbench-results-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) goto done;
    *step = "writing the root attributes";
    int schema = QB_RESULTS_SCHEMA_VERSION;
    if (write_number_attribute(file, "schema_version", H5T_STD_I32LE, H5T_NATIVE_INT, &schema) < 0) goto done;
    if (write_number_attribute(file, "copy_bandwidth_gbps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                               &meta->copy_bandwidth_gbps) < 0)
        goto done;
    for (int i = 0; i < qb_n_meta_strings; i++) {
        char value[8192]; /* the largest meta field; %.*s: a field filled to the brim has no NUL */
        snprintf(value, sizeof value, "%.*s", (int)qb_meta_strings[i].size,
                 (const char *)meta + qb_meta_strings[i].offset);
        if (write_string_attribute(file, qb_meta_strings[i].name, value) < 0) goto done;
    }
    *step = "writing /cells";
    if (write_table(file, &qb_cells_schema, n_cells, r->cells) < 0) goto done;
    *step = "writing /runs";
    if (write_table(file, &qb_runs_schema, r->n_runs, r->runs) < 0) goto done;
    *step = "writing /rank_memory";
    if (write_table(file, &qb_rank_memory_schema, r->n_memory, r->memory) < 0) goto done;
    *step = "writing /step_latency_s";
    if (write_dataset(file, "/step_latency_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->n_steps, r->steps) < 0)
        goto done;
    *step = "writing /generated_tokens";
    if (write_dataset(file, "/generated_tokens", H5T_STD_I32LE, H5T_NATIVE_INT32, r->n_tokens, r->tokens) < 0)
        goto done;
    *step = "H5Fget_file_image";
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) goto done;
    ssize_t length = H5Fget_file_image(file, NULL, 0);
    if (length <= 0 || !(*image = malloc((size_t)length))) goto done;
    if (H5Fget_file_image(file, *image, (size_t)length) != length) goto done;
    *size = (size_t)length;
    status = 0;
done:
    if (file >= 0 && H5Fclose(file) < 0) status = -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (status != 0) {
        free(*image);
        *image = NULL;
    }
    return status;
}

/* Write the image to a new file and fsync it; on failure the file is removed. */
static int write_temp_file(const char *path, const char *temp, const void *image, size_t size) {
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return qb_errorf("%s: cannot create the temporary file %s: %s", path, temp, strerror(errno));
    const char *p = image;
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, p + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(temp);
            return qb_errorf("%s: writing the temporary file %s failed after %zu of %zu bytes: %s", path, temp, done,
                             size, strerror(saved));
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(temp);
        return qb_errorf("%s: fsync of the temporary file %s failed: %s", path, temp, strerror(saved));
    }
    if (close(fd) != 0) {
        int saved = errno;
        unlink(temp);
        return qb_errorf("%s: closing the temporary file %s failed: %s", path, temp, strerror(saved));
    }
    return 0;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int qb_results_write(const char *path, const qb_results_meta *meta, const qb_cell_record *cells, int n_cells) {
    char temp[PATH_MAX], dir[PATH_MAX];
    if (!meta) return qb_errorf("%s: no run metadata to write", path);
    if (n_cells < 0 || (n_cells > 0 && !cells)) return qb_errorf("%s: %d cells to write", path, n_cells);
    QB_TRY(temp_path_of(path, temp, sizeof temp));
    directory_of(path, dir, sizeof dir);
    rows r;
    QB_TRY(build_rows(path, cells, n_cells, &r));

    qb_hdf5_quiet quiet;
    qb_hdf5_quiet_begin(&quiet);
    const char *step = "";
    void *image = NULL;
    size_t size = 0;
    int rc = build_image(meta, &r, n_cells, &image, &size, &step);
    if (rc != 0) {
        char detail[512];
        qb_hdf5_error_detail(detail, sizeof detail);
        qb_errorf("%s: building the results failed (%s): %s", path, step, detail[0] ? detail : "HDF5 error");
    }
    qb_hdf5_quiet_end(&quiet);
    free_rows(&r);
    if (rc == 0) rc = write_temp_file(path, temp, image, size);
    free(image);
    if (rc != 0) return -1;
    if (rename(temp, path) != 0) {
        qb_errorf("%s: renaming %s over it failed: %s", path, temp, strerror(errno));
        unlink(temp);
        return -1;
    }
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0)
        return qb_errorf("%s: written, but fsync of its directory %s failed (the rename may not survive a power "
                         "loss): %s", path, dir, strerror(errno));
    return 0;
}
