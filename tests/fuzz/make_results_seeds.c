/* make_results_seeds.c - the seed corpus of fuzz_results: results files of 0, 1, 3 and 6 sample cells
 * written by qb_results_write (the real writer, so the seeds carry the content checksum).
 * Usage: make_results_seeds DIR
 */
#include <stdio.h>

#include "results/results_file.h"
#include "results_sample.h"
#include "util/error.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const int sizes[] = {0, 1, 3, 6};
    for (int i = 0; i < 4; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/sample_%d.h5", argv[1], sizes[i]);
        qb_results_meta meta;
        qb_sample_meta(&meta, i);
        qb_cell_record *cells = qb_sample_cells(sizes[i], i);
        int rc = qb_results_write(path, &meta, cells, sizes[i]);
        qb_sample_free(cells, sizes[i]);
        if (rc != 0) {
            fprintf(stderr, "%s\n", qb_last_error());
            return 1;
        }
    }
    return 0;
}
