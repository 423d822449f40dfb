/* results_refusal_test.c - the results file refuses clearly and never loses the old file.
 *
 * Usage: results_refusal_test DIR refusals    existing file, missing directory, a file where the directory
 *                                              should be, a directory as the file, /proc (not writable even
 *                                              for root), a name too long; a write failing half-way (file
 *                                              size limit, RLIMIT_FSIZE, in a child) leaves the old file
 *                                              exactly as it was and no temporary file
 *        results_refusal_test DIR disk-full    DIR is a tiny tmpfs (results_disk_full.sh mounts it): a write
 *                                              that does not fit fails with the path and "No space left",
 *                                              the old file survives, the space of the temporary is freed
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

static int g_failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        g_failures++;
        fprintf(stderr, "FAIL: %s\n  last error: %s\n", what, qb_last_error());
    }
}

static void expect_refusal(int rc, const char *needle, const char *what) {
    expect(rc == -1, what);
    if (rc == -1 && !strstr(qb_last_error(), needle)) {
        g_failures++;
        fprintf(stderr, "FAIL: %s: message lacks '%s'\n  message: %s\n", what, needle, qb_last_error());
    }
    if (rc == -1) printf("  refused as expected: %s\n", qb_last_error());
}

static int temp_files_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

/* The file at path must still be the sample of n cells, variant. */
static void expect_intact(const char *path, int n, int variant, const char *after) {
    qb_results_meta want_meta, got_meta;
    qb_sample_meta(&want_meta, variant);
    qb_cell_record *want = qb_sample_cells(n, variant), *got = NULL;
    int n_got = 0;
    char what[512];
    snprintf(what, sizeof what, "old file readable after %s", after);
    int rc = qb_results_read(path, &got_meta, &got, &n_got);
    expect(rc == 0, what);
    if (rc == 0) {
        snprintf(what, sizeof what, "old file unchanged after %s", after);
        expect(qb_sample_compare_meta(&want_meta, &got_meta) == 0 && qb_sample_compare_cells(want, n, got, n_got) == 0,
               what);
    }
    qb_sample_free(want, n);
    qb_sample_free(got, n_got);
}

static int write_sample(const char *path, int n, int variant) {
    qb_results_meta meta;
    qb_sample_meta(&meta, variant);
    qb_cell_record *cells = qb_sample_cells(n, variant);
    int rc = qb_results_write(path, &meta, cells, n);
    qb_sample_free(cells, n);
    return rc;
}

static void refusals(const char *dir) {
    char path[4096], other[4200], afile[4096];
    qb_results_meta empty_meta;
    memset(&empty_meta, 0, sizeof empty_meta);
    snprintf(path, sizeof path, "%s/old.h5", dir);
    remove(path);
    expect(qb_results_check_target(path, false, false) == 0, "a new file in a writable directory is accepted");
    expect(write_sample(path, 3, 1) == 0, "writing the old file");

    expect_refusal(qb_results_check_target(path, false, false),
                   "exists: use --overwrite to replace it or --resume to complete it", "existing file without flags");
    expect(qb_results_check_target(path, true, false) == 0, "existing file with --overwrite is accepted");
    expect(qb_results_check_target(path, false, true) == 0, "existing file with --resume is accepted");
    expect(temp_files_in(dir) == 0, "the writability probe leaves no file behind");

    snprintf(other, sizeof other, "%s/no_such_dir/r.h5", dir);
    expect_refusal(qb_results_check_target(other, false, false), "no_such_dir", "directory missing (check)");
    expect_refusal(qb_results_write(other, &empty_meta, NULL, 0), "no_such_dir", "directory missing (write)");

    snprintf(afile, sizeof afile, "%s/plain_file", dir);
    FILE *f = fopen(afile, "w");
    if (f) fclose(f);
    snprintf(other, sizeof other, "%s/r.h5", afile);
    expect_refusal(qb_results_check_target(other, false, false), "is not a directory", "directory is a file");
    expect_refusal(qb_results_write(other, &empty_meta, NULL, 0), "plain_file", "directory is a file (write)");
    expect_refusal(qb_results_check_target(dir, true, false), "is a directory", "the results path is a directory");
    expect_refusal(qb_results_check_target("/proc/qwenbench_results.h5", false, false), "cannot create files",
                   "a directory nobody can write (/proc)");

    char longname[600];
    memset(longname, 'x', 300);
    longname[300] = '\0';
    snprintf(other, sizeof other, "%s/%s.h5", dir, longname);
    expect_refusal(qb_results_check_target(other, false, false), "File name too long", "a file name too long (check)");
    expect_refusal(qb_results_write(other, &empty_meta, NULL, 0), "File name too long", "a file name too long (write)");

    /* A write that fails half-way: a 16 KiB file size limit, so the data of 40 cells cannot be written. */
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        struct rlimit limit = {16384, 16384};
        signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of death */
        if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);
        int rc = write_sample(path, 40, 2);
        printf("  child write under a 16 KiB file size limit: rc %d, message: %s\n", rc, qb_last_error());
        fflush(stdout);
        _exit(rc == -1 && strstr(qb_last_error(), path) && strstr(qb_last_error(), "File too large") ? 0 : 4);
    }
    int status = 0;
    waitpid(child, &status, 0);
    expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "a write failing with EFBIG returns -1 naming the path and 'File too large' (child exit status)");
    expect(temp_files_in(dir) == 0, "the failed write removed its temporary file");
    expect_intact(path, 3, 1, "a failed write");
    expect_intact(path, 3, 1, "all the refusals");
}

static void disk_full(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/old.h5", dir);
    expect(write_sample(path, 1, 1) == 0, "writing a small old file on the tiny file system");
    expect_refusal(write_sample(path, 200, 2), "No space left", "a write that does not fit");
    int rc = -1;
    if (strstr(qb_last_error(), path)) rc = 0;
    expect(rc == 0, "the disk-full message names the path");
    expect(temp_files_in(dir) == 0, "the failed write removed its temporary file");
    expect_intact(path, 1, 1, "disk full");
    expect(write_sample(path, 2, 3) == 0, "a write that fits succeeds again (the temporary's space was freed)");
    expect_intact(path, 2, 3, "the next write");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR refusals|disk-full\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    if (strcmp(argv[2], "disk-full") == 0) disk_full(argv[1]);
    else refusals(argv[1]);
    printf("%s %s: %s\n", argv[0], argv[2], g_failures ? "FAILED" : "all checks passed");
    return g_failures ? 1 : 0;
}
