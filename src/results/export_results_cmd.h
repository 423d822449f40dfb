/* export_results_cmd.h - `qwenbench export FILE.h5 [--format csv|json|jsonl|md] [--out PATH] [--overwrite]`:
 * an existing results file's cells in the formats of -o (results/cell_writers.h), on stdout or into PATH.
 * PATH is written whole or not at all (temporary file renamed over it); an existing PATH is kept unless
 * --overwrite, and the results file itself is never a target. Exit 0; 2 bad command line or unreadable
 * results file; 1 a write failed.
 */
#ifndef QB_RESULTS_EXPORT_RESULTS_CMD_H
#define QB_RESULTS_EXPORT_RESULTS_CMD_H

/* argv[0] is "export". */
int qb_export_results_command(int argc, char **argv);

#endif
