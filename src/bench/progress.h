/* progress.h - rank 0's live line on a terminal: which cell, and loading / warm-up / repetition k of n with the
 * decode step and the running tok/s, or the checks.
 *
 * A thread draws the line a few times a second ("\r", the text, clear to end of line), only when started with
 * enabled (rank 0 and stderr a terminal); otherwise every call here does nothing and the output stays as
 * before (one '# cell ...' line per finished cell). The thread reads one atomic int that the engine stores after each
 * generated token (qb_gen_timing.progress_step, engine/backend.h): the only work inside the timed region. The
 * rest of the state is set by the cell executor between runs, under a mutex the thread shares.
 */
#ifndef QB_BENCH_PROGRESS_H
#define QB_BENCH_PROGRESS_H

#include <stdatomic.h>

typedef enum {
    QB_PROGRESS_IDLE,
    QB_PROGRESS_LOADING,  /* creating the backend: weights loaded or generated */
    QB_PROGRESS_WARMUP,   /* untimed run k of n */
    QB_PROGRESS_TIMED,    /* repetition k of n */
    QB_PROGRESS_CHECKS,   /* token checks after the runs */
    QB_PROGRESS_RECORDING /* after a cell: its record, the results file, the first cell's bandwidth measure */
} qb_progress_phase;

/* Start the drawing thread when enabled; 0 on success (a thread that cannot start only loses the line). */
void qb_progress_start(int enabled);
/* Stop and join the thread and clear the line; safe to call more than once or when never started. */
void qb_progress_stop(void);
/* The cell now running: its number among those to run, and a printable label (model, format, input). */
void qb_progress_cell(int number, int total, const char *label);
/* Creating the backend; weights_bytes > 0 is shown (this rank's share). */
void qb_progress_loading(double weights_bytes);
/* A run begins: phase WARMUP or TIMED, run k (1-based) of n, n_gen tokens. Resets the step counter. */
void qb_progress_run(qb_progress_phase phase, int k, int n, int n_gen);
/* Any other phase (CHECKS, IDLE). */
void qb_progress_phase_set(qb_progress_phase phase);
/* The counter the engine stores into during a run (qb_gen_timing.progress_step); NULL when not drawing. */
atomic_int *qb_progress_step_counter(void);
/* Around other output to stderr: hold clears the live line and keeps the thread from drawing until release. */
void qb_progress_hold(void);
void qb_progress_release(void);

#endif
