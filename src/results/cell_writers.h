/* cell_writers.h - the cells of a run or a results file on a stream: md (the table), csv, json or jsonl.
 *
 * csv, json and jsonl write one row / object per cell with the fields of /cells in the results file, in the
 * schema's order and under its names (the column list cell_columns.h: a new column is one line there).
 * Rows come from the same conversion the HDF5 writer uses, so a run's -o output and `qwenbench export` of its
 * file are byte for byte the same. Numbers are numbers (doubles in their shortest round-trip form, always
 * with a '.' or an exponent; json writes a non-finite double as null); strings are escaped for the format
 * (RFC 4180 quoting; JSON string escapes), after io/printable.h made control, invisible-format and invalid
 * UTF-8 characters visible. The layout is documented in docs/RESULTS.md ("Cells as CSV / JSON").
 */
#ifndef QB_RESULTS_CELL_WRITERS_H
#define QB_RESULTS_CELL_WRITERS_H

#include <stdio.h>

#include "results/record.h"

typedef enum { QB_OUTPUT_MD = 0, QB_OUTPUT_CSV, QB_OUTPUT_JSON, QB_OUTPUT_JSONL } qb_output_format;

#define QB_OUTPUT_FORMATS "md, csv, json, jsonl"

/* "md", "csv", "json", "jsonl" -> *out; -1 with "unknown output format 'X' (md, csv, json, jsonl)". */
int qb_output_format_parse(const char *name, qb_output_format *out);
const char *qb_output_format_name(qb_output_format format);

/* Write every cell in the format (md: qb_table_print). 0, or -1 with a message (out of memory, write error). */
int qb_cells_write(FILE *f, qb_output_format format, const qb_cell_record *cells, int n_cells);

#endif
