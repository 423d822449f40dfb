/* results_file.c - the atomic writer of the HDF5 results file and the check of its target (see results_file.h).
 *
 * A write builds the whole file from the records in memory (HDF5 core driver, newest file format so the
 * metadata is checksummed, plus the content checksum of results_checksum.c), then:
 *   1. opens the target's directory once (dirfd) and names everything relative to it, so a directory
 *      renamed meanwhile cannot redirect the write;
 *   2. creates "<name>.tmp.<16 random hex digits>" there with O_CREAT | O_EXCL | O_NOFOLLOW (create_temp):
 *      the name is not predictable (the old "<name>.tmp.<pid>" was: anyone who could write to the directory
 *      could plant a link there and have the results written into any file), and even a link planted under
 *      the drawn name only makes the open fail and another name be drawn. HDF5 never opens this file by
 *      name: we write the image through our own descriptor (so a disk-full failure is our write()'s errno,
 *      and the library never holds a half-closed file);
 *   3. fsyncs it, checks that the target is still nothing or a regular file and that the temporary name is
 *      still the file behind our descriptor (same st_dev/st_ino), renameat()s it over the target and fsyncs
 *      the directory.
 * On any failure before the rename (disk full, quota, a vanished directory) the temporary file is removed
 * and the target is untouched. A writer killed mid-write leaves its temporary file behind and the target
 * complete (the previous version). The target must be nothing or a regular file, never a symbolic link
 * (refused: give the real path), a FIFO, a device or a socket (refused even with --overwrite), checked
 * before anything runs (qb_results_check_target) and again at every rename.
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
#include <stdint.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results/results_schema.h"
#include "util/error.h"

/* Split path into its directory ("." when it has none) and its last component (*base points into path). */
static int split_path(const char *path, char *dir, size_t size, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!**base) return qb_errorf("%s: names a directory, not a results file", path);
    int n = !slash ? snprintf(dir, size, ".")
            : slash == path ? snprintf(dir, size, "/")
                            : snprintf(dir, size, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= size) return qb_errorf("%s: path too long", path);
    return 0;
}

static const char *kind_of(mode_t mode) {
    return S_ISDIR(mode)    ? "a directory"
           : S_ISLNK(mode)  ? "a symbolic link"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

/* What may stand at the results path: nothing, or a regular file. Never a symbolic link (it would be
 * replaced, not followed: give the real path), a device, a FIFO or a socket (--overwrite as root would
 * otherwise replace /dev/null). st: lstat of the path. */
static int refuse_unless_regular(const char *path, const struct stat *st) {
    if (S_ISREG(st->st_mode)) return 0;
    if (S_ISDIR(st->st_mode)) return qb_errorf("%s is a directory, not a results file", path);
    if (S_ISLNK(st->st_mode))
        return qb_errorf("%s is a symbolic link: give the real path of the results file (qwenbench neither writes "
                         "through nor replaces a link)", path);
    return qb_errorf("%s is %s, not a regular file: qwenbench only creates, replaces (--overwrite) or completes "
                     "(--resume) a regular results file", path, kind_of(st->st_mode));
}

/* Create a new, empty temporary file "<base>.tmp.<16 random hex digits>" in the directory dirfd with
 * O_CREAT | O_EXCL | O_NOFOLLOW: it is always a file this call made, never something planted under a
 * predictable name (a link planted under the chosen name makes the open fail with EEXIST, and another
 * random name is tried). Returns the descriptor (name receives the name), or -1 with errno set. */
static int create_temp(int dirfd, const char *base, char *name, size_t size) {
    for (int attempt = 0; attempt < 64; attempt++) {
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) return -1;
        int n = snprintf(name, size, "%s.tmp.%016llx", base, (unsigned long long)r);
        if (n < 0 || (size_t)n >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1; /* errno is EEXIST: 64 random names all taken */
}

int qb_results_check_target(const char *path, bool overwrite, bool resume) {
    if (!path || !path[0]) return qb_errorf("results file: empty path");
    char dir[PATH_MAX], probe[NAME_MAX + 1];
    const char *base;
    struct stat st;
    QB_TRY(split_path(path, dir, sizeof dir, &base));
    if (lstat(path, &st) == 0) {
        QB_TRY(refuse_unless_regular(path, &st));
        if (!overwrite && !resume)
            return qb_errorf("%s exists: use --overwrite to replace it or --resume to complete it", path);
    } else if (errno != ENOENT && errno != ENOTDIR) { /* those two: the directory check below says it better */
        return qb_errorf("%s: %s", path, strerror(errno));
    }
    if (stat(dir, &st) != 0)
        return qb_errorf("%s: directory %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return qb_errorf("%s: %s is not a directory", path, dir);
    /* The only reliable test of writability (root ignores modes, read-only mounts do not): try it. */
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return qb_errorf("%s: directory %s: %s", path, dir, strerror(errno));
    int fd = create_temp(dirfd, base, probe, sizeof probe);
    if (fd < 0) {
        int saved = errno;
        close(dirfd);
        return qb_errorf("%s: cannot create files in directory %s: %s", path, dir, strerror(saved));
    }
    close(fd);
    int rc = unlinkat(dirfd, probe, 0) == 0 ? 0 : qb_errorf("%s: cannot remove the probe file %s/%s: %s", path,
                                                            dir, probe, strerror(errno));
    close(dirfd);
    return rc;
}

/* ---- building the rows ---- */

typedef qb_results_tables rows;

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
    r->n_cells = n_cells;
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
        qb_cell_to_row(c, run_at, &r->cells[i]);
        for (int k = 0; c->peak_mem_rank && k < c->n_ranks; k++)
            r->memory[memory_at++] = (qb_rank_memory_row){i, k, c->peak_mem_rank[k]};
        for (int j = 0; j < c->n_runs; j++) {
            const qb_run_record *run = &c->runs[j];
            int64_t steps = qb_run_steps(run->n_gen);
            r->runs[run_at++] = (qb_run_row){i, run->repetition, run->n_prompt, run->n_gen, run->total_s,
                                             run->prefill_s, run->decode_s, run->tok_per_s, run->decode_tok_per_s,
                                             run->tpot_s, step_at, token_at, run->start_unix_s, run->end_unix_s};
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

/* The core driver's buffer, kept when the file closes. H5Fget_file_image would copy it while the file is
 * open, and HDF5 1.10 then leaves the superblock's checksum stale in the copy (superblock version 2 and
 * later: h5py refuses the file). At H5Fclose the superblock is final, so the buffer is taken then: the
 * driver allocates through these callbacks and "frees" it through image_free, which keeps it instead. */
typedef struct {
    void *kept;
    size_t size; /* of the last allocation */
} image_keeper;

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op;
    void *p = malloc(size ? size : 1);
    if (p) ((image_keeper *)udata)->size = size;
    return p;
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op;
    (void)udata;
    return memcpy(dest, src, size);
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op;
    void *p = realloc(ptr, size ? size : 1);
    if (p) ((image_keeper *)udata)->size = size;
    return p;
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    image_keeper *k = udata;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && !k->kept) k->kept = ptr;
    else free(ptr);
    return 0;
}

static void *udata_copy(void *udata) { return udata; } /* one keeper, shared by the property list's copies */
static herr_t udata_free(void *udata) {
    (void)udata;
    return 0;
}

/* Build the whole file in memory (HDF5 core driver, no backing store) and hand back its image. Keeping
 * HDF5 away from the disk means an I/O failure (disk full) happens in our own write(), with its errno,
 * and never leaves the library holding a half-closed file. Returns 0, or -1 with *step naming what failed. */
static int build_image(const qb_results_meta *meta, const rows *r, void **image, size_t *size,
                       const char **step) {
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    image_keeper keeper = {NULL, 0};
    int status = -1;
    *image = NULL;
    *step = "H5Pset_fapl_core";
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0) goto done;
    if (H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto done;
    H5FD_file_image_callbacks_t callbacks = {image_malloc, image_memcpy, image_realloc, image_free,
                                             udata_copy,   udata_free,   &keeper};
    if (H5Pset_file_image_callbacks(fapl, &callbacks) < 0) goto done;
    /* The newest format: superblock, object headers, B-trees and heaps carry checksums (h5py reads it). */
    *step = "H5Pset_libver_bounds";
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0) goto done;
    *step = "H5Fcreate (in memory)";
    if ((file = H5Fcreate("qwenbench-results-image", H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) goto done;
    *step = "writing the root attributes";
    int schema = QB_RESULTS_SCHEMA_VERSION;
    if (write_number_attribute(file, "schema_version", H5T_STD_I32LE, H5T_NATIVE_INT, &schema) < 0) goto done;
    if (write_number_attribute(file, "copy_bandwidth_gbps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                               &meta->copy_bandwidth_gbps) < 0)
        goto done;
    static char values[QB_META_STRINGS_MAX][8192 + 1]; /* the largest meta field, + NUL */
    const char *value_of[QB_META_STRINGS_MAX];
    for (int i = 0; i < qb_n_meta_strings; i++) {
        /* %.*s: a field filled to the brim has no NUL */
        snprintf(values[i], sizeof values[i], "%.*s", (int)qb_meta_strings[i].size,
                 (const char *)meta + qb_meta_strings[i].offset);
        value_of[i] = values[i];
        if (write_string_attribute(file, qb_meta_strings[i].name, values[i]) < 0) goto done;
    }
    uint64_t checksum = qb_results_checksum(schema, meta->copy_bandwidth_gbps, value_of, r);
    if (write_number_attribute(file, QB_CHECKSUM_ATTRIBUTE, H5T_STD_U64LE, H5T_NATIVE_UINT64, &checksum) < 0)
        goto done;
    *step = "writing /cells";
    if (write_table(file, &qb_cells_schema, r->n_cells, r->cells) < 0) goto done;
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
    *step = "closing the in-memory file";
    /* The file's length (its end of allocation; the driver's buffer grows in 1 MiB steps). */
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) goto done;
    ssize_t length = H5Fget_file_image(file, NULL, 0);
    herr_t closed = H5Fclose(file);
    file = H5I_INVALID_HID;
    if (closed < 0 || !keeper.kept || length <= 0 || (size_t)length > keeper.size) goto done;
    /* Closing may give back space at the end (the metadata aggregator's unused block): write up to the
     * end the final superblock records, so that a copy cut short is always noticed by the reader. */
    uint64_t end;
    if (qb_hdf5_superblock_end(keeper.kept, (size_t)length, &end) && end > 0 && end < (uint64_t)length)
        length = (ssize_t)end;
    *image = keeper.kept;
    keeper.kept = NULL;
    *size = (size_t)length;
    status = 0;
done:
    if (file >= 0) H5Fclose(file);
    if (fapl >= 0) H5Pclose(fapl);
    free(keeper.kept);
    return status;
}

/* Write the image to fd (the new temporary file dir/temp) and fsync it. */
static int write_image(const char *path, int fd, const char *dir, const char *temp, const void *image, size_t size) {
    const char *p = image;
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, p + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return qb_errorf("%s: writing the temporary file %s/%s failed after %zu of %zu bytes: %s", path, dir, temp,
                             done, size, strerror(n < 0 ? errno : ENOSPC));
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        return qb_errorf("%s: fsync of the temporary file %s/%s failed: %s", path, dir, temp, strerror(errno));
    return 0;
}

/* Just before the rename: the results path still holds nothing or a regular file (refuse_unless_regular),
 * and the name temp in dirfd is still the file behind fd (not replaced since it was created). */
static int check_before_rename(const char *path, int dirfd, const char *base, const char *temp, int fd,
                               int *not_ours) {
    struct stat st, ours, named;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) QB_TRY(refuse_unless_regular(path, &st));
    else if (errno != ENOENT) return qb_errorf("%s: %s", path, strerror(errno));
    if (fstat(fd, &ours) != 0 || fstatat(dirfd, temp, &named, AT_SYMLINK_NOFOLLOW) != 0 ||
        ours.st_dev != named.st_dev || ours.st_ino != named.st_ino) {
        *not_ours = 1;
        return qb_errorf("%s: its temporary file %s was replaced or removed by someone else; not renaming it", path,
                         temp);
    }
    return 0;
}

int qb_results_write(const char *path, const qb_results_meta *meta, const qb_cell_record *cells, int n_cells) {
    char dir[PATH_MAX], temp[NAME_MAX + 1];
    const char *base;
    if (!meta) return qb_errorf("%s: no run metadata to write", path);
    if (n_cells < 0 || (n_cells > 0 && !cells)) return qb_errorf("%s: %d cells to write", path, n_cells);
    QB_TRY(split_path(path, dir, sizeof dir, &base));
    rows r;
    QB_TRY(build_rows(path, cells, n_cells, &r));

    qb_hdf5_quiet quiet;
    qb_hdf5_quiet_begin(&quiet);
    const char *step = "";
    void *image = NULL;
    size_t size = 0;
    int rc = build_image(meta, &r, &image, &size, &step);
    if (rc != 0) {
        char detail[512];
        qb_hdf5_error_detail(detail, sizeof detail);
        qb_errorf("%s: building the results failed (%s): %s", path, step, detail[0] ? detail : "HDF5 error");
    }
    qb_hdf5_quiet_end(&quiet);
    free_rows(&r);
    if (rc != 0) return -1;

    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        free(image);
        return qb_errorf("%s: directory %s: %s", path, dir, strerror(errno));
    }
    int fd = create_temp(dirfd, base, temp, sizeof temp);
    if (fd < 0) {
        qb_errorf("%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        free(image);
        close(dirfd);
        return -1;
    }
    rc = write_image(path, fd, dir, temp, image, size);
    free(image);
    int not_ours = 0;
    if (rc == 0) rc = check_before_rename(path, dirfd, base, temp, fd, &not_ours);
    if (rc == 0 && renameat(dirfd, temp, dirfd, base) != 0)
        rc = qb_errorf("%s: renaming %s/%s over it failed: %s", path, dir, temp, strerror(errno));
    if (rc != 0 && !not_ours) unlinkat(dirfd, temp, 0);
    if (close(fd) != 0 && rc == 0) rc = qb_errorf("%s: closing it failed: %s", path, strerror(errno));
    if (rc == 0 && fsync(dirfd) != 0)
        rc = qb_errorf("%s: written, but fsync of its directory %s failed (the rename may not survive a power "
                       "loss): %s", path, dir, strerror(errno));
    close(dirfd);
    return rc;
}

int qb_results_cell_rows(const char *what, const qb_cell_record *cells, int n_cells, qb_cell_row **cell_rows) {
    rows r;
    *cell_rows = NULL;
    QB_TRY(build_rows(what, cells, n_cells, &r));
    *cell_rows = r.cells;
    r.cells = NULL;
    free_rows(&r);
    return 0;
}
