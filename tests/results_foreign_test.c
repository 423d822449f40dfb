/* results_foreign_test.c - a results file written by another program (h5py) reads back, and survives a rewrite.
 *
 * Usage: results_foreign_test FILE.h5 N_CELLS DIR
 * FILE.h5 is written by tests/test_analysis_synth.py with h5py straight from docs/RESULTS.md, independently
 * of the C writer (h5py pads strings with NULs, the C writer terminates them; both must read). The test reads
 * it, wants N_CELLS cells, writes the records to DIR/rewritten.h5 with qb_results_write, reads that back and
 * wants exactly the same records (tolerance 0: the same doubles are stored).
 */
#include <stdio.h>
#include <stdlib.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILE.h5 N_CELLS DIR\n", argv[0]);
        return 2;
    }
    qb_results_meta meta, again_meta;
    qb_cell_record *cells = NULL, *again = NULL;
    int n = 0, n_again = 0, want = atoi(argv[2]);
    if (qb_results_read(argv[1], &meta, &cells, &n) != 0) {
        fprintf(stderr, "FAIL: reading the h5py-written file: %s\n", qb_last_error());
        return 1;
    }
    int failures = 0;
    if (n != want) {
        fprintf(stderr, "FAIL: %d cells read, want %d\n", n, want);
        failures++;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/rewritten.h5", argv[3]);
    if (qb_results_write(path, &meta, cells, n) != 0 || qb_results_read(path, &again_meta, &again, &n_again) != 0) {
        fprintf(stderr, "FAIL: rewrite: %s\n", qb_last_error());
        failures++;
    } else if (qb_sample_compare_meta(&meta, &again_meta) || qb_sample_compare_cells(cells, n, again, n_again)) {
        fprintf(stderr, "FAIL: the rewritten file differs from the h5py-written one (above)\n");
        failures++;
    }
    printf("results_foreign_test: %d cells from h5py: %s\n", n, failures ? "FAILED" : "read and rewritten exactly");
    qb_sample_free(cells, n);
    qb_sample_free(again, n_again);
    return failures ? 1 : 0;
}
