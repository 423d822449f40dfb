/* sweep_cells.h - the list of cells a run measures: from the flags (one model and format, each
 * --context-lengths entry), or from a sweep file (--sweep) whose settings the flags given override. */
#ifndef QB_BENCH_SWEEP_CELLS_H
#define QB_BENCH_SWEEP_CELLS_H

#include "bench/runner.h"

/* May update o (sweep-level settings the command line did not give). *cells is malloc'ed. */
int qb_sweep_cells(qb_options *o, qb_cell_spec **cells, int *n_cells);

#endif
