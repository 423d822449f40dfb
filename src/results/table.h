/* table.h - the llama-bench-style markdown table of result cells on stdout (or any FILE*).
 *
 * | model | quant | backend | tp | context | gen | speed tok/s | ttft s | tpot ms | decode tok/s | mem GiB | status |
 * Numbers are "mean ± stddev" over the timed repetitions; a cell whose status is not VALID shows "-" in
 * every measured column and "STATUS: reason" in the status column, never a number. Every line that is not
 * part of the table begins with '#', so the output pastes into markdown and greps cleanly.
 * The table is printed from the same records the HDF5 file is written from (record.h). Its columns are one
 * list in table.c: a column of its own here is one entry there.
 */
#ifndef QB_RESULTS_TABLE_H
#define QB_RESULTS_TABLE_H

#include <stdio.h>

#include "results/record.h"

/* Legend lines ('#') then the header and separator rows. */
void qb_table_print_header(FILE *f);
/* One row; call as each cell finishes so a long sweep shows progress. */
void qb_table_print_row(FILE *f, const qb_cell_record *cell);
/* Header and every row. */
void qb_table_print(FILE *f, const qb_cell_record *cells, int n_cells);

#endif
