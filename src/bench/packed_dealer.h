/* packed_dealer.h - rank 0's dealing for --schedule packed, without MPI: which cell a free group gets.
 *
 * The job's cells run in phases, one per tensor-parallel size, largest first; each phase has its groups of ranks
 * (bench/rank_groups.h). Groups are numbered across the job: phase 0's first, then phase 1's, and so on. A group
 * of a phase only ever gets that phase's cells. A free group gets the next cell of the unit (same model, format,
 * position scaling, TP size and engine options: one weight load) it has loaded, else the first cell of the phase's
 * costliest unit nobody has started, else the last cell of the phase's unit with the most cells left (two or more:
 * this group then loads its weights too), else "none left" (-1): the group is done, and its ranks go on to their
 * groups of the next phase while the phase's other groups still run (bench/packed_schedule.c). The dealer never
 * waits for a phase to end: "none left" depends only on the phase's cells not yet dealt.
 *
 * --interference (bench/interference.h) steers the dealing of its cell's phase, whose groups are numbered from 0
 * for that module; packed_schedule.c runs that phase alone (barriers before and after it).
 */
#ifndef QB_BENCH_PACKED_DEALER_H
#define QB_BENCH_PACKED_DEALER_H

#include <stdint.h>

#include "bench/interference.h"

typedef struct {
    int tp;
    int first_group, n_groups;  /* the phase's groups: [first_group, first_group + n_groups) */
    int *units;                 /* the phase's units (their first cells), costliest first */
    int n_units;
    qb_interference itf;        /* --interference: on when the chosen cell is of this phase */
} qb_deal_phase;

typedef struct {
    int n_cells;
    const int *tps;             /* [n_cells] the cell's TP size (its phase) */
    const int *done;            /* [n_cells] 1: already in the file (--resume): never dealt */
    const int *unit_of;         /* [n_cells] the first cell of its unit */
    int n_phases;
    qb_deal_phase *phases;
    int n_groups;               /* over all phases */
    int *group_phase;           /* [n_groups] */
    int *group_unit;            /* [n_groups] loaded unit or -1 */
    int *group_cell;            /* [n_groups] cell in flight or -1 */
    char *group_done;           /* [n_groups] told "none left" */
    char *group_background;     /* [n_groups] its cell in flight is a background repeat (--interference) */
    char *started;              /* [n_cells] by unit: dealt to a group */
    char *dealt;                /* [n_cells] */
    int in_flight, stopped;
} qb_dealing;

/* phase_tp[p], phase_groups[p]: the phases' TP sizes (largest first) and group counts. cost: [n_cells] a cell's
 * planned cost (bench/packed_schedule.h), summed per unit for the order. interference_cell: -1 or the chosen
 * cell. The arrays tps, done, unit_of must outlive the dealing. -1 when out of memory (message recorded). */
int qb_dealing_init(qb_dealing *dl, int n_cells, const int *tps, const int *done, const int *unit_of,
                    const double *cost, int n_phases, const int *phase_tp, const int *phase_groups,
                    int interference_cell);
void qb_dealing_free(qb_dealing *dl);

/* Free group g asks: a cell index (now in flight on g; *background: a --interference repeat, not recorded), -1
 * "none left" (g is done; with stopping set, every later answer is -1 too) or QB_INTERFERENCE_WAIT. */
int32_t qb_dealing_answer(qb_dealing *dl, int g, int stopping, int *background);
/* Group g's result for its cell in flight came in: it is free again. 0, or -1 when g has no cell in flight. */
int qb_dealing_finished(qb_dealing *dl, int g);
/* Every group has been told "none left" and no cell is in flight. */
int qb_dealing_over(const qb_dealing *dl);

#endif
