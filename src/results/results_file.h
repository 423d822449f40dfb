/* results_file.h - the one HDF5 results file of a run: written by rank 0, always complete on disk.
 *
 * Every write rewrites the whole file from the in-memory records into a new "<path>.tmp.<random>" in the
 * same directory (created with O_EXCL | O_NOFOLLOW), fsyncs it, renames it over <path> and fsyncs the
 * directory, so a kill at any moment leaves the previous complete file. <path> must be nothing or a regular
 * file: a symbolic link, FIFO, device or socket there is refused, --overwrite or not.
 * The schema (flat 1-D compound datasets so that
 * pandas.DataFrame(h5py.File(p)["cells"][()]) works) is documented in docs/RESULTS.md.
 */
#ifndef QB_RESULTS_RESULTS_FILE_H
#define QB_RESULTS_RESULTS_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "results/record.h"

#define QB_RESULTS_SCHEMA_VERSION 1

typedef struct {
    char version[32];
    char build_commit[64];
    char build_type[32];
    char command_line[4096];
    char start_time[32];          /* ISO 8601 UTC */
    char end_time[32];
    char hosts[1024];             /* per rank, comma-separated */
    char devices_json[8192];      /* JSON list, one object per rank: {"rank":..,"host":..,"name":..,"uuid":..} */
    char driver_version[64];
    char cuda_version[64];
    char nccl_version[64];
    char mpi_version[256];
    char hdf5_version[64];
    char settings_json[8192];     /* effective settings; --resume refuses a file whose settings differ */
    double copy_bandwidth_gbps;   /* measured at startup on rank 0's device (bytes read + written / s) */
} qb_results_meta;

/* Before any work: refuse an existing file unless overwrite or resume, an unwritable directory, etc. */
int qb_results_check_target(const char *path, bool overwrite, bool resume);
/* Atomically (re)write the whole file. On failure the previous file is untouched. */
int qb_results_write(const char *path, const qb_results_meta *meta, const qb_cell_record *cells, int n_cells);
/* Read a file back (for --resume, `qwenbench tokens` and tests). *cells is malloc'ed; free each with
 * qb_cell_free, then free. A damaged or hostile file is a one-line error, never a crash or hang: the file
 * is read whole and first parsed in a child process (results_read.c). */
int qb_results_read(const char *path, qb_results_meta *meta, qb_cell_record **cells, int *n_cells);
/* The same on a file image in memory (path only names it in messages): parsed first in a child process
 * that may take at most timeout_s seconds, then, if the child accepted it, in this process. */
int qb_results_read_image(const void *image, size_t size, const char *path, int timeout_s, qb_results_meta *meta,
                          qb_cell_record **cells, int *n_cells);

#define QB_RESULTS_MAX_BYTES ((long long)1 << 30) /* a larger file is refused unread */
#define QB_READ_TIMEOUT_S 60                      /* the child parse of qb_results_read, at most */

#endif
