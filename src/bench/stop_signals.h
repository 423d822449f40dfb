/* stop_signals.h - what SIGINT, SIGTERM and SIGUSR1 do to a run.
 *
 * The first of them asks the run to stop after the current cell: rank 0 says so at once on stderr (write(2) in
 * the handler), the runner stops at its next check between cells (the same on every rank: qb_dist_all_ok),
 * prints the table so far and the command that completes the file (qb_stop_print_resume), exit 3. A second
 * SIGINT or SIGTERM ends the process at once: exit 130 (SIGINT) or 143 (SIGTERM); during a write of the results
 * file (qb_stop_signals_writing) only once that write is done, so that no temporary file is left behind (the
 * results file itself is only ever replaced by a rename of a complete file, so it stays intact). SIGUSR1
 * (Slurm's warning before the time limit) only ever asks for the stop after the current cell.
 */
#ifndef QB_BENCH_STOP_SIGNALS_H
#define QB_BENCH_STOP_SIGNALS_H

#include <stdio.h>

/* Install the handlers (early: a forwarded SIGUSR1 must never kill a rank). */
void qb_stop_signals_install(void);
/* Before the cells run: whether this rank writes the messages (rank 0); notes whether stderr is a terminal. */
void qb_stop_signals_arm(int writes_messages);
/* Around each write of the results file: 1 before, 0 after (a second signal that came meanwhile exits then). */
void qb_stop_signals_writing(int writing);
/* Nonzero once a stop was asked for. */
int qb_stop_requested(void);
/* The command that completes `results_path`: this process's own command line (/proc/self/cmdline, shell-quoted;
 * fallback: `command_line`) with --overwrite removed and --resume added, on one "# ..." line. */
void qb_stop_print_resume(FILE *f, const char *command_line, const char *results_path, int world_size);

#endif
