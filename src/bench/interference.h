/* interference.h - --interference MODEL:FORMAT:INPUT[:TP]: one cell of a packed sweep timed alone, then beside the
 * other groups, in one job (docs/SCHEDULING.md, "The interference mode").
 *
 * The dealer of the chosen cell's phase (bench/packed_schedule.c) asks this module what to answer a free group:
 *   step 1, alone:  the first group to ask gets the chosen cell; every other group is told to wait (the leader asks
 *                   again after a nap) until its record comes back. That record is kept here, not written.
 *   step 2, beside: every other group gets cells of the sweep (a group that has none left gets a background cell:
 *                   a repeat of a sweep cell, run and dropped, never recorded); once each has finished the cell it
 *                   loaded its weights for and begun its next one (so that they run, not load, beside it), the
 *                   chosen group gets the same cell again (its weights are still loaded). When that record comes back the
 *                   background ends, and the record is held until every group that was running beside it has
 *                   reported (their runs may overlap its last ones); then it goes to the results file.
 * The recorded cell is the beside one, with alone_speed_mean, alone_speed_std and interference_ratio (beside mean
 * / alone mean) and a line in checks, "interference: beside N groups: R of alone (alone A ± S tok/s)". Each beside
 * run must overlap another group's cell in progress (from its first timed run's start to its last one's end, by
 * start_unix_s / end_unix_s on rank 0's clock; the cells rank 0 received, background ones included); else the
 * ratio is NaN and checks says "no overlap".
 *
 * The NOISY rule it decides (qb_interference_slowed): with se = sqrt(se_alone^2 + se_beside^2), se = std /
 * sqrt(runs), a slow-down larger than max(2 se / alone mean, 1 %) means the packed numbers are not publishable on
 * this machine: every packed cell of the job gets noisy = 1 (bench/runner.c).
 */
#ifndef QB_BENCH_INTERFERENCE_H
#define QB_BENCH_INTERFERENCE_H

#include "bench/cell_transfer.h"
#include "bench/runner.h"

#define QB_INTERFERENCE_WAIT (-2)      /* the dealer's answer "nothing yet: ask again after a nap" */
#define QB_INTERFERENCE_NAP_NS 5000000L /* 5 ms */
#define QB_INTERFERENCE_MIN_SLOWDOWN 0.01

/* The spec of --interference, parsed: the model as given, its format, input length and TP size (0: any). */
typedef struct {
    char model[QB_PATH_MAX];
    qb_quant quant;
    int context_len;
    int tp;
} qb_interference_spec;

/* Syntax only: MODEL:FORMAT:INPUT[:TP] (the model may hold colons; the fields after it may not). -1 with one line. */
int qb_interference_parse(const char *text, qb_interference_spec *out);

/* The cell the spec names among n cells (names: each cell's resolved model name; tps: each cell's TP size). 0 and
 * *index; -1 with one line when it names no cell or several. */
int qb_interference_find(const char *text, const qb_cell_spec *cells, const char *const *names, const int *tps, int n,
                         int *index);

/* Before anything runs (every rank): does --interference name exactly one cell of the sweep, with the model names
 * and TP sizes the runner will use? 0 when it does or is not given; -1 with one line. */
int qb_interference_check(const qb_runner *r, const qb_cell_spec *cells, int n);

/* Rank 0's dealer state for one phase. */
typedef enum {
    QB_ITF_OFF = 0,    /* no chosen cell in this phase (or it is done) */
    QB_ITF_READY,      /* nothing dealt yet */
    QB_ITF_ALONE,      /* the chosen cell runs alone */
    QB_ITF_ALONE_DONE, /* its alone record is in: the others get work, then it runs again */
    QB_ITF_BESIDE,     /* it runs beside the others */
    QB_ITF_HELD,       /* its beside record waits for the groups that ran beside it */
} qb_itf_state;

typedef enum { QB_ITF_SWEEP, QB_ITF_CHOSEN, QB_ITF_WAIT } qb_itf_answer;

typedef struct {
    qb_itf_state state;
    int cell, group, n_groups;
    char *company;           /* [n_groups] cells dealt since the alone record came in (counted to 2) */
    char *pending;           /* [n_groups] in flight when the beside record came in */
    qb_stats alone;          /* speed of the alone runs */
    int alone_runs;
    qb_cell_status alone_status;
    char alone_reason[160];
    qb_cell_record beside;   /* held */
    qb_cell_origin beside_from;
    qb_rank_summary *beside_ranks;
    double *windows;         /* [2 x n_windows] start, end of every run of another group received since step 2 */
    int *window_group;
    int n_windows, cap_windows;
} qb_interference;

/* Rank 0, one phase: cell is the chosen cell when it runs in this phase, else -1 (the module stays off). */
int qb_interference_start(qb_interference *it, int cell, int n_groups);
void qb_interference_end(qb_interference *it);

/* Group g is free. group_done: [n_groups] groups told "none left". stopping: a stop signal ended the dealing. */
qb_itf_answer qb_interference_answer(qb_interference *it, int g, const char *group_done, int stopping);
/* A group with no sweep cell left gets a background cell (steps 1-2 are under way and need company). */
int qb_interference_wants_company(const qb_interference *it);

/* Every finished cell of the phase (group g, cell index k), before the dealer records or drops it. group_cell:
 * [n_groups] what each group has in flight now (g's already cleared). 1: the module kept the record (*ranks
 * too, set to NULL); 0: the dealer goes on with it as usual. */
int qb_interference_receive(qb_interference *it, int g, int k, qb_cell_record *c, const qb_cell_origin *from,
                            qb_rank_summary **ranks, const int *group_cell);
/* 1 when the held beside record is complete: moved into *c, *from, *ranks (the caller records it); else 0. */
int qb_interference_release(qb_interference *it, qb_cell_record *c, qb_cell_origin *from, qb_rank_summary **ranks);

/* The NOISY rule on a recorded cell: 1 when its measured slow-down beside others is larger than
 * max(2 se / alone mean, 1 %) (*limit: that bound, a fraction); 0 when within it or not measured. */
int qb_interference_slowed(const qb_cell_record *c, double *limit);

#endif
