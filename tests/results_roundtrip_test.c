/* results_roundtrip_test.c - what qb_results_write puts in the file, qb_results_read gives back, exactly.
 *
 * Usage: results_roundtrip_test DIR [SAMPLE.h5 EXPECTED.txt]
 * In DIR: a file of 6 sample cells (every status, a run with no decode steps, strings filled to their last
 * byte, UTF-8 in an attribute), then 0 cells (empty datasets must be valid), then a rewrite over an existing
 * file; each is read back and compared exactly; no temporary file may be left behind. A file with a
 * dataset missing must be refused naming it. With SAMPLE.h5 and EXPECTED.txt it also leaves the 6-cell file
 * and the expected values for results_pandas_check.py.
 */
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

static int g_failures;

static void fail(const char *what) {
    g_failures++;
    fprintf(stderr, "FAIL: %s\n", what);
}

static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void round_trip(const char *path, int n_cells, int variant) {
    qb_results_meta meta, got_meta;
    qb_sample_meta(&meta, variant);
    qb_cell_record *cells = qb_sample_cells(n_cells, variant), *got = NULL;
    int n_got = -1;
    char what[256];
    if (qb_results_write(path, &meta, cells, n_cells) != 0) {
        snprintf(what, sizeof what, "write %d cells: %s", n_cells, qb_last_error());
        fail(what);
    } else if (qb_results_read(path, &got_meta, &got, &n_got) != 0) {
        snprintf(what, sizeof what, "read %d cells: %s", n_cells, qb_last_error());
        fail(what);
    } else {
        if (qb_sample_compare_meta(&meta, &got_meta)) {
            snprintf(what, sizeof what, "attributes of %d cells variant %d differ (above)", n_cells, variant);
            fail(what);
        }
        if (qb_sample_compare_cells(cells, n_cells, got, n_got)) {
            snprintf(what, sizeof what, "records of %d cells variant %d differ (above)", n_cells, variant);
            fail(what);
        }
    }
    qb_sample_free(cells, n_cells);
    qb_sample_free(got, n_got);
}

/* A copy of a good file without /runs must be refused, naming the dataset. */
static void check_malformed(const char *dir, const char *good) {
    char path[4096];
    snprintf(path, sizeof path, "%s/no_runs.h5", dir);
    qb_results_meta meta;
    qb_sample_meta(&meta, 0);
    qb_cell_record *cells = qb_sample_cells(3, 0), *got = NULL;
    int n = 0;
    (void)good;
    if (qb_results_write(path, &meta, cells, 3) != 0) {
        fail(qb_last_error());
    } else {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        if (f < 0 || H5Ldelete(f, "/runs", H5P_DEFAULT) < 0) fail("cannot delete /runs from the test copy");
        if (f >= 0) H5Fclose(f);
        if (qb_results_read(path, &meta, &got, &n) == 0) fail("a file without /runs was read");
        else if (!strstr(qb_last_error(), "dataset /runs missing or malformed")) {
            fprintf(stderr, "  message: %s\n", qb_last_error());
            fail("message for a missing /runs does not say 'dataset /runs missing or malformed'");
        }
    }
    qb_sample_free(cells, 3);
    char not_h5[4096];
    snprintf(not_h5, sizeof not_h5, "%s/not_hdf5.h5", dir);
    FILE *t = fopen(not_h5, "w");
    if (t) {
        fputs("not an HDF5 file\n", t);
        fclose(t);
    }
    if (qb_results_read(not_h5, &meta, &got, &n) == 0) fail("a text file was read as results");
    else if (!strstr(qb_last_error(), not_h5)) fail("message for a text file does not name it");
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: %s DIR [SAMPLE.h5 EXPECTED.txt]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char path[4096];
    snprintf(path, sizeof path, "%s/roundtrip.h5", dir);
    remove(path);
    round_trip(path, 6, 1);
    round_trip(path, 0, 2); /* over the existing file: empty datasets */
    round_trip(path, 1, 3);
    round_trip(path, 6, 4);
    if (count_temp_files(dir)) fail("a temporary file was left in the directory");
    check_malformed(dir, path);

    if (argc == 4) {
        qb_results_meta meta;
        qb_sample_meta(&meta, 5);
        qb_cell_record *cells = qb_sample_cells(6, 5);
        FILE *f = fopen(argv[3], "w");
        if (qb_results_write(argv[2], &meta, cells, 6) != 0) fail(qb_last_error());
        if (!f) fail("cannot write the expected-values file");
        else {
            qb_sample_dump(f, &meta, cells, 6);
            fclose(f);
        }
        qb_sample_free(cells, 6);
    }
    printf("%s: %s\n", argv[0], g_failures ? "FAILED" : "all checks passed");
    return g_failures ? 1 : 0;
}
