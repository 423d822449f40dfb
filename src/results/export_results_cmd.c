/* export_results_cmd.c - a results file's cells as csv, json, jsonl or md (see export_results_cmd.h). */
#include "results/export_results_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/printable.h"
#include "results/cell_writers.h"
#include "results/results_file.h"
#include "util/error.h"

#define EXPORT_USAGE "qwenbench export FILE.h5 [--format csv|json|jsonl|md] [--out PATH] [--overwrite]"

static int fail(int status) {
    qb_error_make_printable(); /* paths and file contents: escaped (io/printable.h) */
    fprintf(stderr, "qwenbench export: error: %s\n", qb_last_error());
    return status;
}

static int usage_error(const char *what, const char *arg) {
    char shown[512];
    qb_errorf("%s '%s' (usage: " EXPORT_USAGE ")", what, qb_printable(arg, shown, sizeof shown));
    return fail(2);
}

/* Refuse a target that is the results file itself, or an existing file without --overwrite. */
static int check_target(const char *results, const char *target, bool overwrite) {
    struct stat in, out;
    if (stat(target, &out) != 0) return 0;
    if (stat(results, &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
        return qb_errorf("--out %s: that is the results file being exported", target);
    if (!overwrite) return qb_errorf("--out %s: exists (give --overwrite to replace it)", target);
    if (!S_ISREG(out.st_mode)) return qb_errorf("--out %s: not a regular file", target);
    return 0;
}

/* Write the cells into target through "<target>.tmp.<pid>", renamed over it once complete. */
static int write_target(const char *target, qb_output_format format, const qb_cell_record *cells, int n) {
    char temp[4200];
    if (snprintf(temp, sizeof temp, "%s.tmp.%ld", target, (long)getpid()) >= (int)sizeof temp)
        return qb_errorf("--out: path too long");
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        return qb_errorf("--out %s: cannot create %s: %s", target, temp, strerror(e));
    }
    int rc = qb_cells_write(f, format, cells, n);
    if (fclose(f) != 0 && rc == 0) rc = qb_errorf("--out %s: writing failed: %s", target, strerror(errno));
    if (rc == 0 && rename(temp, target) != 0) rc = qb_errorf("--out %s: cannot rename %s over it: %s", target, temp,
                                                            strerror(errno));
    if (rc != 0) unlink(temp);
    return rc;
}

int qb_export_results_command(int argc, char **argv) {
    const char *path = NULL, *target = NULL;
    qb_output_format format = QB_OUTPUT_CSV;
    bool overwrite = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: " EXPORT_USAGE "\n"
                   "Prints (or writes into PATH) the cells of a results file as `qwenbench -o FORMAT` prints them\n"
                   "after a run: one row/object per cell with the fields of /cells (docs/RESULTS.md). Default: csv.\n");
            return 0;
        }
        if (!strcmp(a, "--format") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--out")) {
                if (!v[0]) return usage_error("empty value after", a);
                target = v;
            } else if (qb_output_format_parse(v, &format) != 0) {
                qb_error_prefix("--format");
                return fail(2);
            }
        } else if (!strcmp(a, "--overwrite")) {
            overwrite = true;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            return usage_error("unexpected argument", a);
        }
    }
    if (!path) {
        qb_errorf("no results file given (usage: " EXPORT_USAGE ")");
        return fail(2);
    }
    if (target && check_target(path, target, overwrite) != 0) return fail(2);
    static qb_results_meta meta;
    qb_cell_record *cells = NULL;
    int n = 0;
    if (qb_results_read(path, &meta, &cells, &n) != 0) return fail(2);
    int rc = target ? write_target(target, format, cells, n) : qb_cells_write(stdout, format, cells, n);
    for (int i = 0; i < n; i++) qb_cell_free(&cells[i]);
    free(cells);
    return rc == 0 ? 0 : fail(1);
}
