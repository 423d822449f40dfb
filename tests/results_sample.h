/* results_sample.h - deterministic sample records for the results-file tests, and an exact comparison.
 *
 * qb_sample_cells(n, variant) makes n cells that exercise every status, runs with and without decode
 * steps, strings filled to their last byte, and doubles that are not round in binary; variant changes every
 * number, so two writes are told apart by their content. Comparisons are exact (tolerance 0): the file
 * stores the same IEEE doubles, so any difference is a bug, not rounding.
 */
#ifndef QB_TESTS_RESULTS_SAMPLE_H
#define QB_TESTS_RESULTS_SAMPLE_H

#include <stdio.h>

#include "results/results_file.h"

void qb_sample_meta(qb_results_meta *meta, int variant);
/* calloc'ed array of n cells; free with qb_sample_free. */
qb_cell_record *qb_sample_cells(int n, int variant);
void qb_sample_free(qb_cell_record *cells, int n);
/* Number of differences; prints the first few with where they are. */
int qb_sample_compare_meta(const qb_results_meta *want, const qb_results_meta *got);
int qb_sample_compare_cells(const qb_cell_record *want, int n_want, const qb_cell_record *got, int n_got);
/* "name value" lines that results_pandas_check.py compares with what h5py and pandas read. */
void qb_sample_dump(FILE *f, const qb_results_meta *meta, const qb_cell_record *cells, int n);

#endif
