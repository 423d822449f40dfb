/* test_energy_old_file.c - a results file from before the energy fields reads with them "not recorded".
 *
 * Usage: test_energy_old_file FILE.h5 (written by tests/test_analysis_synth.py without energy fields)
 * Every cell: energy_source "unavailable: not recorded", NaN numbers, throttled and throttle_reasons -1 (not 0 J,
 * not "did not throttle").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_file.h"
#include "util/error.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.h5\n", argv[0]);
        return 2;
    }
    qb_results_meta meta;
    qb_cell_record *cells = NULL;
    int n = 0, failures = 0;
    if (qb_results_read(argv[1], &meta, &cells, &n) != 0) {
        fprintf(stderr, "FAIL: %s\n", qb_last_error());
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const qb_cell_record *c = &cells[i];
        if (strcmp(c->energy_source, "unavailable: not recorded") != 0 || !isnan(c->joules_per_token) ||
            !isnan(c->energy_j) || !isnan(c->power_mean_w) || !isnan(c->sm_clock_mhz) || c->throttled != -1 ||
            c->throttle_reasons != -1) {
            fprintf(stderr, "FAIL: cell %d: energy_source '%s', J/token %g, throttled %d, reasons %lld\n", i,
                    c->energy_source, c->joules_per_token, c->throttled, (long long)c->throttle_reasons);
            failures++;
        }
        qb_cell_free(&cells[i]);
    }
    free(cells);
    if (n == 0) {
        fprintf(stderr, "FAIL: no cells\n");
        failures++;
    }
    printf("energy fields of an older file: %s\n", failures ? "FAILED" : "not recorded, as they should be");
    return failures ? 1 : 0;
}
