/* packed_dealer.c - rank 0's dealing for --schedule packed, without MPI (see packed_dealer.h). */
#include "bench/packed_dealer.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int in_phase(const qb_dealing *dl, const qb_deal_phase *ph, int k) {
    return !dl->done[k] && dl->tps[k] == ph->tp;
}

int qb_dealing_init(qb_dealing *dl, int n_cells, const int *tps, const int *done, const int *unit_of,
                    const double *cost, int n_phases, const int *phase_tp, const int *phase_groups,
                    int interference_cell) {
    memset(dl, 0, sizeof *dl);
    dl->n_cells = n_cells;
    dl->tps = tps;
    dl->done = done;
    dl->unit_of = unit_of;
    for (int p = 0; p < n_phases; p++) dl->n_groups += phase_groups[p];
    size_t nc = (size_t)(n_cells > 0 ? n_cells : 1), ng = (size_t)(dl->n_groups > 0 ? dl->n_groups : 1);
    dl->phases = calloc((size_t)(n_phases > 0 ? n_phases : 1), sizeof *dl->phases);
    dl->group_phase = malloc(sizeof *dl->group_phase * ng);
    dl->group_unit = malloc(sizeof *dl->group_unit * ng);
    dl->group_cell = malloc(sizeof *dl->group_cell * ng);
    dl->group_done = calloc(ng, 1);
    dl->group_background = calloc(ng, 1);
    dl->started = calloc(nc, 1);
    dl->dealt = calloc(nc, 1);
    double *unit_cost = calloc(nc, sizeof *unit_cost);
    if (!dl->phases || !dl->group_phase || !dl->group_unit || !dl->group_cell || !dl->group_done ||
        !dl->group_background || !dl->started || !dl->dealt || !unit_cost) {
        free(unit_cost);
        qb_dealing_free(dl);
        return qb_errorf("out of memory dealing %d cells", n_cells);
    }
    for (int g = 0; g < dl->n_groups; g++) dl->group_unit[g] = dl->group_cell[g] = -1;
    for (int p = 0, first = 0; p < n_phases; p++) {
        qb_deal_phase *ph = &dl->phases[p];
        dl->n_phases = p + 1;
        ph->tp = phase_tp[p];
        ph->first_group = first;
        ph->n_groups = phase_groups[p];
        for (int g = first; g < first + ph->n_groups; g++) dl->group_phase[g] = p;
        first += ph->n_groups;
        int chosen = interference_cell >= 0 && in_phase(dl, ph, interference_cell) ? interference_cell : -1;
        ph->units = malloc(sizeof *ph->units * nc);
        if (!ph->units || qb_interference_start(&ph->itf, chosen, ph->n_groups) != 0) {
            free(unit_cost);
            qb_dealing_free(dl);
            return qb_errorf("out of memory dealing %d cells", n_cells);
        }
        for (int k = 0; k < n_cells; k++) {
            if (!in_phase(dl, ph, k)) continue;
            if (unit_cost[unit_of[k]] == 0) ph->units[ph->n_units++] = unit_of[k];
            unit_cost[unit_of[k]] += cost[k] > 0 ? cost[k] : 1e-300;
        }
        for (int i = 1; i < ph->n_units; i++) /* costliest first; equal costs keep the sweep's order */
            for (int j = i; j > 0 && unit_cost[ph->units[j]] > unit_cost[ph->units[j - 1]]; j--) {
                int t = ph->units[j];
                ph->units[j] = ph->units[j - 1];
                ph->units[j - 1] = t;
            }
    }
    free(unit_cost);
    return 0;
}

void qb_dealing_free(qb_dealing *dl) {
    for (int p = 0; dl->phases && p < dl->n_phases; p++) {
        free(dl->phases[p].units);
        qb_interference_end(&dl->phases[p].itf);
    }
    free(dl->phases);
    free(dl->group_phase);
    free(dl->group_unit);
    free(dl->group_cell);
    free(dl->group_done);
    free(dl->group_background);
    free(dl->started);
    free(dl->dealt);
    memset(dl, 0, sizeof *dl);
}

static int next_cell(qb_dealing *dl, const qb_deal_phase *ph, int g) {
    int u = dl->group_unit[g];
    for (int k = 0; u >= 0 && k < dl->n_cells; k++)
        if (dl->unit_of[k] == u && in_phase(dl, ph, k) && !dl->dealt[k]) return k;
    for (int i = 0; i < ph->n_units; i++) {
        u = ph->units[i];
        if (dl->started[u]) continue;
        dl->started[u] = 1;
        dl->group_unit[g] = u;
        for (int k = 0; k < dl->n_cells; k++)
            if (dl->unit_of[k] == u && in_phase(dl, ph, k) && !dl->dealt[k]) return k;
    }
    /* Nothing unstarted: help the unit with the most cells left (two or more, so its own group still has one),
     * at the cost of loading its weights once more; its last cell (the sweep lists inputs shortest first). */
    int best = -1, best_left = 1, last = -1;
    for (int i = 0; i < ph->n_units; i++) {
        int left = 0, last_here = -1;
        for (int k = 0; k < dl->n_cells; k++)
            if (dl->unit_of[k] == ph->units[i] && in_phase(dl, ph, k) && !dl->dealt[k]) { left++; last_here = k; }
        if (left > best_left) { best = ph->units[i]; best_left = left; last = last_here; }
    }
    dl->group_unit[g] = best;
    return best >= 0 ? last : -1;
}

/* --interference decides first; else the sweep's next cell, or a background repeat while the chosen cell needs
 * company: a cell of the unit the group has loaded, else the phase's first. */
static int32_t deal(qb_dealing *dl, qb_deal_phase *ph, int g, int stopping, int *background) {
    *background = 0;
    qb_interference *itf = &ph->itf;
    qb_itf_answer a = qb_interference_answer(itf, g - ph->first_group, dl->group_done + ph->first_group, stopping);
    if (a == QB_ITF_WAIT) return QB_INTERFERENCE_WAIT;
    if (a == QB_ITF_CHOSEN) {
        dl->started[dl->unit_of[itf->cell]] = 1;
        dl->group_unit[g] = dl->unit_of[itf->cell];
        return itf->cell;
    }
    if (stopping) return -1;
    int loaded = dl->group_unit[g];
    int k = next_cell(dl, ph, g);
    if (k >= 0 || !qb_interference_wants_company(itf)) return k;
    for (int i = 0; i < dl->n_cells; i++)
        if (in_phase(dl, ph, i) && (k < 0 || (dl->unit_of[i] == loaded && dl->unit_of[k] != loaded))) k = i;
    if (k >= 0) {
        *background = 1;
        dl->group_unit[g] = dl->unit_of[k];
    }
    return k;
}

int32_t qb_dealing_answer(qb_dealing *dl, int g, int stopping, int *background) {
    *background = 0;
    if (stopping) dl->stopped = 1;
    if (g < 0 || g >= dl->n_groups || dl->group_cell[g] >= 0 || dl->group_done[g]) return -1;
    int32_t k = deal(dl, &dl->phases[dl->group_phase[g]], g, dl->stopped, background);
    if (k >= 0) {
        dl->dealt[k] = 1;
        dl->group_cell[g] = k;
        dl->group_background[g] = (char)*background;
        dl->in_flight++;
    } else if (k != QB_INTERFERENCE_WAIT) {
        dl->group_done[g] = 1;
    }
    return k;
}

int qb_dealing_finished(qb_dealing *dl, int g) {
    if (g < 0 || g >= dl->n_groups || dl->group_cell[g] < 0) return -1;
    dl->group_cell[g] = -1;
    dl->group_background[g] = 0;
    dl->in_flight--;
    return 0;
}

int qb_dealing_over(const qb_dealing *dl) {
    for (int g = 0; g < dl->n_groups; g++)
        if (!dl->group_done[g]) return 0;
    return dl->in_flight == 0;
}
