/* resume_check.h - before the first cell: may --resume complete this results file?
 *
 * A file that does not exist yet is fine (a fresh start). Otherwise it must be a qwenbench results file made with
 * the very settings of this run (the settings JSON that bench/run_meta.c records); a difference is refused with
 * the first differing setting and both values in one line, e.g.
 *   "--resume: r.h5 was made with other settings: generate_length 16 there, 8 now".
 * Rank 0 only (it reads the file); main.c shares the verdict so that every rank exits 2.
 */
#ifndef QB_BENCH_RESUME_CHECK_H
#define QB_BENCH_RESUME_CHECK_H

#include <stddef.h>

#include "bench/runner.h"

/* 0: resumable (or absent); -1 with the one-line message. */
int qb_resume_check(const qb_runner *r, const qb_cell_spec *cells, int n_cells);

/* The first difference between two settings JSON texts as "KEY.PATH A there, B now" into out (empty when equal;
 * either text not JSON: says which). Objects are compared key by key in sorted order, single values before lists
 * and objects, arrays item by item. */
void qb_settings_first_difference(const char *there, const char *now, char *out, size_t cap);

#endif
