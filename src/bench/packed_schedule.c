/* packed_schedule.c - phases, groups, rank 0's dealer thread and the groups' cell loop (see packed_schedule.h).
 *
 * Messages on a communicator of their own (a dup of the world, so they never meet a collective):
 *   leader -> rank 0  REQUEST  int32 group           "this group is free"
 *   rank 0 -> leader  ASSIGN   int32 cell, -1 or -2  "run this cell" / "none left" / "wait, ask again after a nap"
 *   leader -> rank 0  RESULT   a cell image          (bench/cell_transfer.h), always before the next REQUEST
 * Rank 0's own group talks to its own dealer thread the same way (MPI_THREAD_MULTIPLE). The dealer and the
 * ranks waiting for a phase's end poll (MPI_Iprobe / MPI_Test and a short sleep) instead of blocking in MPI:
 * a blocking wait would spin a core, and a phase may last as long as its longest unit.
 */
#include "bench/packed_schedule.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/interference.h"
#include "bench/rank_groups.h"
#include "bench/roofline.h"
#include "bench/run_meta.h"
#include "bench/stop_signals.h"
#include "bench/token_checks.h"
#include "engine/shard_plan.h"
#include "util/error.h"

enum { TAG_REQUEST = 101, TAG_ASSIGN = 102, TAG_RESULT = 103 };
#define POLL_NS 2000000L /* 2 ms between polls */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap_for(long ns) {
    struct timespec ts = {0, ns};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void nap(void) { nap_for(POLL_NS); }

double qb_packed_cell_cost(const qb_model_config *cfg, int tp, int context_len, int generate_length, int runs) {
    qb_shard_plan plan;
    double bytes = qb_shard_plan_make(cfg, tp > 0 ? tp : 1, 0, &plan) == 0 ? qb_decode_weight_bytes(cfg, &plan) : 1.0;
    /* a prompt token costs far less than a generated one (one weight read per prompt, not per token) */
    return bytes * ((double)generate_length + (double)context_len / 32.0 + 1.0) * (double)(runs > 0 ? runs : 1);
}

/* Cells i and j load the same weights the same way (the serial schedule's group key). */
static int same_unit(const qb_packed_job *job, int i, int j) {
    const qb_cell_spec *a = &job->cells[i], *b = &job->cells[j];
    return !strcmp(a->model, b->model) && a->quant == b->quant && job->cfgs[i].rope_type == job->cfgs[j].rope_type &&
           job->cfgs[i].rope_factor == job->cfgs[j].rope_factor && job->tps[i] == job->tps[j] &&
           qb_engine_options_equal(&a->engine, &b->engine);
}

typedef struct {
    const qb_packed_job *job;
    qb_dist *world;
    MPI_Comm sched;
    int phase_tp;
    const int *unit_of;      /* [n_cells] the unit's first cell */
    int *units;              /* this phase's units (first cells), costliest first */
    int n_units;
    char *started;           /* [n_cells] by unit: dealt to a group */
    char *dealt;             /* [n_cells] */
    int n_groups;
    int *leader;             /* [n_groups] world rank */
    int *group_unit;         /* [n_groups] loaded unit or -1 */
    int *group_cell;         /* [n_groups] cell in flight or -1 */
    double *group_since;     /* [n_groups] when it was dealt */
    char *group_done;        /* [n_groups] told "none left" */
    char *group_background;  /* [n_groups] its cell in flight is a background repeat (--interference), not recorded */
    qb_interference itf;     /* --interference: the chosen cell's steps, when it runs in this phase */
    int in_flight, stopped;
    double hung_after_s;     /* no result for a dealt cell within this: the group is hung */
} dealer;

static int in_phase(const dealer *dl, int k) {
    return !dl->job->done[k] && dl->job->tps[k] == dl->phase_tp;
}

static int next_cell(dealer *dl, int g) {
    if (qb_stop_requested()) {
        dl->stopped = 1;
        return -1;
    }
    const qb_packed_job *job = dl->job;
    int u = dl->group_unit[g];
    for (int k = 0; u >= 0 && k < job->n_cells; k++)
        if (dl->unit_of[k] == u && in_phase(dl, k) && !dl->dealt[k]) return k;
    for (int i = 0; i < dl->n_units; i++) {
        u = dl->units[i];
        if (dl->started[u]) continue;
        dl->started[u] = 1;
        dl->group_unit[g] = u;
        for (int k = 0; k < job->n_cells; k++)
            if (dl->unit_of[k] == u && in_phase(dl, k) && !dl->dealt[k]) return k;
    }
    /* Nothing unstarted: help the unit with the most cells left (two or more, so its own group still has one),
     * at the cost of loading its weights once more; its last cell (the sweep lists inputs shortest first). */
    int best = -1, best_left = 1, last = -1;
    for (int i = 0; i < dl->n_units; i++) {
        int left = 0, last_here = -1;
        for (int k = 0; k < job->n_cells; k++)
            if (dl->unit_of[k] == dl->units[i] && in_phase(dl, k) && !dl->dealt[k]) { left++; last_here = k; }
        if (left > best_left) { best = dl->units[i]; best_left = left; last = last_here; }
    }
    dl->group_unit[g] = best;
    return best >= 0 ? last : -1;
}

/* --interference (bench/interference.h) decides first; else the sweep's next cell, or a background repeat while
 * the chosen cell needs company: a cell of the unit the group has loaded, else the phase's first. */
static int32_t deal(dealer *dl, int g, int *background) {
    *background = 0;
    qb_itf_answer a = qb_interference_answer(&dl->itf, g, dl->group_done, qb_stop_requested());
    if (a == QB_ITF_WAIT) return QB_INTERFERENCE_WAIT;
    if (a == QB_ITF_CHOSEN) {
        dl->started[dl->unit_of[dl->itf.cell]] = 1;
        dl->group_unit[g] = dl->unit_of[dl->itf.cell];
        return dl->itf.cell;
    }
    int loaded = dl->group_unit[g];
    int k = next_cell(dl, g);
    if (k >= 0 || dl->stopped || !qb_interference_wants_company(&dl->itf)) return k;
    for (int i = 0; i < dl->job->n_cells; i++)
        if (in_phase(dl, i) && (k < 0 || (dl->unit_of[i] == loaded && dl->unit_of[k] != loaded))) k = i;
    if (k >= 0) {
        *background = 1;
        dl->group_unit[g] = dl->unit_of[k];
    }
    return k;
}

static _Noreturn void dealer_fatal(dealer *dl, const char *what) {
    char msg[1024];
    snprintf(msg, sizeof msg, "packed schedule, rank 0's dealer: %s", what);
    QB_FATAL(dl->world, msg);
}

static void check_hung(dealer *dl) {
    double t = now_s();
    for (int g = 0; g < dl->n_groups; g++) {
        int k = dl->group_cell[g];
        if (k < 0 || t - dl->group_since[g] <= dl->hung_after_s) continue;
        char why[768];
        snprintf(why, sizeof why,
                 "group %d (leader rank %d) has run cell %d (%.200s input %d) for %.0f s without a result, past "
                 "--deadline x (warm-up + repetitions + 3) = %.0f s: taken for hung; aborting (the cells received "
                 "so far are in the file; --resume runs the rest)",
                 g, dl->leader[g], k, dl->job->cfgs[k].name, dl->job->cells[k].context_len, t - dl->group_since[g],
                 dl->hung_after_s);
        dealer_fatal(dl, why);
    }
}

/* The --interference cell's beside record, once the groups that ran beside it have reported. */
static void record_held(dealer *dl) {
    qb_cell_record cell;
    qb_cell_origin from;
    qb_rank_summary *ranks = NULL;
    if (!qb_interference_release(&dl->itf, &cell, &from, &ranks)) return;
    int ok = dl->job->record(dl->job->ctx, &cell, &from, ranks) == 0;
    qb_cell_free(&cell);
    free(ranks);
    if (!ok) dealer_fatal(dl, qb_last_error());
}

static void receive_result(dealer *dl, MPI_Status *st) {
    int bytes = 0;
    MPI_Get_count(st, MPI_BYTE, &bytes);
    char *image = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (!image) dealer_fatal(dl, "out of memory receiving a cell");
    int rc = MPI_Recv(image, bytes, MPI_BYTE, st->MPI_SOURCE, TAG_RESULT, dl->sched, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) dealer_fatal(dl, (qb_rank_mpi_error("MPI_Recv (a finished cell)", rc), qb_last_error()));
    qb_cell_origin from;
    qb_rank_summary *ranks = NULL;
    qb_cell_record cell;
    if (qb_cell_unpack(image, (size_t)bytes, &from, &ranks, &cell) != 0) dealer_fatal(dl, qb_last_error());
    free(image);
    if (from.group < 0 || from.group >= dl->n_groups || dl->group_cell[from.group] != from.cell)
        dealer_fatal(dl, "a group sent a cell it was not dealt");
    dl->group_cell[from.group] = -1;
    dl->in_flight--;
    int background = dl->group_background[from.group], ok = 1;
    dl->group_background[from.group] = 0;
    if (!qb_interference_receive(&dl->itf, from.group, from.cell, &cell, &from, &ranks, dl->group_cell) && !background)
        ok = dl->job->record(dl->job->ctx, &cell, &from, ranks) == 0;
    qb_cell_free(&cell);
    free(ranks);
    if (!ok) dealer_fatal(dl, qb_last_error());
    record_held(dl);
}

static void answer_request(dealer *dl, MPI_Status *st) {
    int32_t g = -1;
    int rc = MPI_Recv(&g, 1, MPI_INT32_T, st->MPI_SOURCE, TAG_REQUEST, dl->sched, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) dealer_fatal(dl, (qb_rank_mpi_error("MPI_Recv (a group's request)", rc), qb_last_error()));
    if (g < 0 || g >= dl->n_groups || dl->leader[g] != st->MPI_SOURCE || dl->group_cell[g] >= 0 || dl->group_done[g])
        dealer_fatal(dl, "a request from a rank that leads no free group");
    int background = 0;
    int32_t k = deal(dl, g, &background);
    if (k >= 0) {
        dl->dealt[k] = 1;
        dl->group_cell[g] = k;
        dl->group_background[g] = (char)background;
        dl->group_since[g] = now_s();
        dl->in_flight++;
    } else if (k != QB_INTERFERENCE_WAIT) {
        dl->group_done[g] = 1;
    }
    rc = MPI_Send(&k, 1, MPI_INT32_T, st->MPI_SOURCE, TAG_ASSIGN, dl->sched);
    if (rc != MPI_SUCCESS) dealer_fatal(dl, (qb_rank_mpi_error("MPI_Send (a cell to a group)", rc), qb_last_error()));
}

static int all_groups_done(const dealer *dl) {
    for (int g = 0; g < dl->n_groups; g++)
        if (!dl->group_done[g]) return 0;
    return dl->in_flight == 0;
}

static void *dealer_main(void *arg) {
    dealer *dl = arg;
    while (!all_groups_done(dl)) {
        int flag = 0;
        MPI_Status st;
        int rc = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, dl->sched, &flag, &st);
        if (rc != MPI_SUCCESS) dealer_fatal(dl, (qb_rank_mpi_error("MPI_Iprobe", rc), qb_last_error()));
        if (!flag) {
            check_hung(dl);
            nap();
            continue;
        }
        if (st.MPI_TAG == TAG_RESULT) receive_result(dl, &st);
        else if (st.MPI_TAG == TAG_REQUEST) answer_request(dl, &st);
        else dealer_fatal(dl, "a message with an unknown tag");
    }
    record_held(dl);
    return NULL;
}

/* Every rank of the world has reached this point, waited for without a deadline (a phase lasts as long as its
 * longest unit; hung groups are the dealer's to find) and without spinning. */
static int wait_for_everyone(qb_dist *d) {
    MPI_Request req;
    int rc = MPI_Ibarrier(d->world, &req);
    if (rc != MPI_SUCCESS) return qb_rank_mpi_error("MPI_Ibarrier (end of a packed phase)", rc);
    for (;;) {
        int flag = 0;
        rc = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return qb_rank_mpi_error("MPI_Test (end of a packed phase)", rc);
        if (flag) return 0;
        nap();
    }
}

/* A group's own view of MPI: its communicator stands for the world, and the whole group is one TP group. */
static int group_dist(const qb_dist *world, MPI_Comm comm, qb_dist *gd) {
    *gd = *world;
    gd->world = comm;
    gd->tp_comm = MPI_COMM_NULL;
    int rc = MPI_Comm_rank(comm, &gd->world_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &gd->world_size);
    if (rc != MPI_SUCCESS) return qb_rank_mpi_error("MPI_Comm_rank/size (a packed group)", rc);
    return qb_dist_set_tp(gd, gd->world_size);
}

typedef struct {
    const qb_packed_job *job;
    const int *unit_of;
    int phase_tp, group, leader;
    const int *world_ranks;  /* [group size] */
    MPI_Comm sched;
    qb_results_meta device;  /* leader: its device's copy bandwidth and versions (bench/run_meta.h) */
    int *executed;           /* cells started by this process (test hooks count them) */
} worker;

static int ask_for_cell(worker *w, qb_dist *gd, int32_t *cell) {
    *cell = -1;
    if (gd->world_rank == 0) {
        int32_t g = w->group;
        qb_watchdog_arm(w->job->r->dist, "MPI_Send/MPI_Recv (asking rank 0 for the next cell)");
        int rc = MPI_Send(&g, 1, MPI_INT32_T, 0, TAG_REQUEST, w->sched);
        if (rc == MPI_SUCCESS) rc = MPI_Recv(cell, 1, MPI_INT32_T, 0, TAG_ASSIGN, w->sched, MPI_STATUS_IGNORE);
        qb_watchdog_disarm(w->job->r->dist);
        if (rc != MPI_SUCCESS) return qb_rank_mpi_error("asking rank 0 for the next cell", rc);
    }
    return qb_dist_bcast(gd, cell, sizeof *cell, 0);
}

static int send_result(worker *w, const qb_cell_group *grp, int cell_index, qb_cell_record *c) {
    qb_cell_origin from;
    memset(&from, 0, sizeof from);
    from.cell = cell_index;
    from.group = w->group;
    from.n_ranks = grp->ranks ? grp->n_ranks : 0;
    from.copy_bandwidth_gbps = w->device.copy_bandwidth_gbps;
    snprintf(from.driver_version, sizeof from.driver_version, "%s", w->device.driver_version);
    snprintf(from.runtime_version, sizeof from.runtime_version, "%s", w->device.cuda_version);
    snprintf(from.nccl_version, sizeof from.nccl_version, "%s", w->device.nccl_version);
    void *image = NULL;
    size_t bytes = 0;
    QB_TRY(qb_cell_pack(&from, grp->ranks, c, &image, &bytes));
    if (bytes > (size_t)0x7fffffff) {
        free(image);
        return qb_errorf("a finished cell of %zu bytes is above MPI's message limit", bytes);
    }
    int rc = MPI_Send(image, (int)bytes, MPI_BYTE, 0, TAG_RESULT, w->sched);
    free(image);
    return rc == MPI_SUCCESS ? 0 : qb_rank_mpi_error("MPI_Send (a finished cell to rank 0)", rc);
}

/* The note that says where a cell ran: "packed: group 1 of size 2, ranks 2,3 (hosts a,a)". */
static void note_where(const worker *w, const qb_cell_group *grp, int size, qb_cell_record *c) {
    char note[256];
    size_t k = (size_t)snprintf(note, sizeof note, "packed: group %d, ranks", w->group);
    for (int i = 0; i < size && k < sizeof note; i++)
        k += (size_t)snprintf(note + k, sizeof note - k, "%s%d", i ? "," : " ", w->world_ranks[i]);
    if (grp->ranks && k < sizeof note)
        snprintf(note + k, sizeof note - k, " on %.60s%s", grp->ranks[0].host, size > 1 ? " ..." : "");
    qb_cell_note(c, note);
}

/* Every rank of one group: ask, run, send, until none is left. */
static int run_group(worker *w, qb_dist *gd) {
    const qb_packed_job *job = w->job;
    qb_runner gr = *job->r;
    gr.dist = gd;
    gr.world_ranks = w->world_ranks;
    qb_cell_group grp;
    memset(&grp, 0, sizeof grp);
    int loaded = -1, created = -1, rc = -1;
    for (;;) {
        int32_t k;
        if (ask_for_cell(w, gd, &k) != 0) goto out;
        if (k == QB_INTERFERENCE_WAIT) { /* --interference: another group's cell runs alone */
            nap_for(QB_INTERFERENCE_NAP_NS);
            continue;
        }
        if (k < 0) break;
        if (k >= job->n_cells) { qb_errorf("rank 0 dealt cell %d of %d", (int)k, job->n_cells); goto out; }
        if (w->unit_of[k] != loaded) {
            if (created >= 0) qb_cell_group_close(&grp);
            int max_ctx = 0;
            for (int i = 0; i < job->n_cells; i++)
                if (w->unit_of[i] == w->unit_of[k] && !job->done[i] && job->cells[i].context_len > max_ctx)
                    max_ctx = job->cells[i].context_len;
            created = qb_cell_group_open(&gr, job->cells[k].model, &job->cfgs[k], &job->cells[k].engine, max_ctx, &grp);
            if (created < 0) goto out;
            loaded = w->unit_of[k];
        }
        qb_runner_inject_fault(job->r, (*w->executed)++);
        qb_cell_record cell;
        qb_cell_init(&gr, &job->cfgs[k], &job->cells[k], &cell);
        cell.tp_size = cell.n_ranks = job->tps[k];
        snprintf(cell.rope_scaling, sizeof cell.rope_scaling, "%s", job->rope_labels[k]);
        if (created == 0) {
            if (qb_cell_execute(&gr, &grp, &job->cells[k], &cell) != 0) { qb_cell_free(&cell); goto out; }
        } else {
            qb_cell_set_failure(&cell, grp.failure_status, grp.failure);
        }
        int sent = 0;
        if (gd->world_rank == 0) {
            qb_run_meta_add_devices(&w->device, &grp); /* copy bandwidth measured once, on this leader's device */
            qb_cell_check_speed(&gr, &job->cfgs[k], &w->device, &cell);
            note_where(w, &grp, gd->world_size, &cell);
            sent = send_result(w, &grp, k, &cell);
        }
        qb_cell_free(&cell);
        if (sent != 0) goto out;
    }
    rc = 0;
out:
    if (created >= 0) qb_cell_group_close(&grp);
    return rc;
}

/* One phase: the cells of one TP size. */
static int run_phase(const qb_packed_job *job, MPI_Comm sched, const int *host_of, const int *unit_of, int tp,
                     int *executed, int *stopped, char *layout, size_t layout_cap) {
    qb_dist *d = job->r->dist;
    const qb_options *o = job->r->opt;
    qb_rank_groups groups;
    QB_TRY(qb_rank_groups_make(host_of, d->world_size, tp, &groups));
    int rc = -1;
    dealer dl;
    memset(&dl, 0, sizeof dl);
    pthread_t thread;
    int thread_started = 0;
    MPI_Comm comm = MPI_COMM_NULL;
    qb_dist gd;
    int have_gd = 0;
    int *members = NULL;
    if (groups.n_groups == 0) {
        qb_errorf("--schedule packed: no %d ranks to run cells of TP size %d", tp, tp);
        goto out;
    }
    if (d->world_rank == 0 && layout) {
        size_t k = strlen(layout);
        char line[1024];
        qb_rank_groups_describe(&groups, line, sizeof line);
        if (k < layout_cap) snprintf(layout + k, layout_cap - k, "%s%s", k ? " | " : "", line);
    }

    /* rank 0's dealer, before anyone can ask */
    if (d->world_rank == 0) {
        dl.job = job;
        dl.world = d;
        dl.sched = sched;
        dl.phase_tp = tp;
        dl.unit_of = unit_of;
        dl.n_groups = groups.n_groups;
        dl.leader = groups.leader;
        dl.hung_after_s = o->deadline_s * (o->warmup + o->repetitions + 3);
        dl.units = malloc(sizeof *dl.units * (size_t)job->n_cells);
        dl.started = calloc((size_t)job->n_cells, 1);
        dl.dealt = calloc((size_t)job->n_cells, 1);
        double *unit_cost = calloc((size_t)job->n_cells, sizeof *unit_cost);
        dl.group_unit = malloc(sizeof *dl.group_unit * (size_t)groups.n_groups);
        dl.group_cell = malloc(sizeof *dl.group_cell * (size_t)groups.n_groups);
        dl.group_since = calloc((size_t)groups.n_groups, sizeof *dl.group_since);
        dl.group_done = calloc((size_t)groups.n_groups, 1);
        dl.group_background = calloc((size_t)groups.n_groups, 1);
        if (!dl.units || !dl.started || !dl.dealt || !unit_cost || !dl.group_unit || !dl.group_cell ||
            !dl.group_since || !dl.group_done || !dl.group_background) {
            free(unit_cost);
            qb_errorf("out of memory dealing %d cells", job->n_cells);
            goto out;
        }
        for (int g = 0; g < groups.n_groups; g++) dl.group_unit[g] = dl.group_cell[g] = -1;
        for (int k = 0; k < job->n_cells; k++) {
            if (!in_phase(&dl, k)) continue;
            if (unit_cost[unit_of[k]] == 0) dl.units[dl.n_units++] = unit_of[k];
            unit_cost[unit_of[k]] += qb_packed_cell_cost(&job->cfgs[k], tp, job->cells[k].context_len,
                                                         o->generate_length, o->warmup + o->repetitions);
        }
        for (int i = 1; i < dl.n_units; i++) /* costliest first; equal costs keep the sweep's order */
            for (int j = i; j > 0 && unit_cost[dl.units[j]] > unit_cost[dl.units[j - 1]]; j--) {
                int t = dl.units[j];
                dl.units[j] = dl.units[j - 1];
                dl.units[j - 1] = t;
            }
        free(unit_cost);
        int chosen = job->interference_cell >= 0 && in_phase(&dl, job->interference_cell) ? job->interference_cell : -1;
        if (qb_interference_start(&dl.itf, chosen, groups.n_groups) != 0) goto out;
        if (pthread_create(&thread, NULL, dealer_main, &dl) != 0) {
            qb_errorf("cannot start the dealer thread");
            goto out;
        }
        thread_started = 1;
    }

    int g = groups.group_of[d->world_rank];
    qb_watchdog_arm(d, "MPI_Comm_split (packed groups)");
    int mrc = MPI_Comm_split(d->world, g >= 0 ? g : MPI_UNDEFINED, d->world_rank, &comm);
    qb_watchdog_disarm(d);
    if (mrc != MPI_SUCCESS) { qb_rank_mpi_error("MPI_Comm_split (packed groups)", mrc); goto out; }
    if (g >= 0) {
        MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
        members = malloc(sizeof *members * (size_t)tp);
        if (!members) { qb_errorf("out of memory"); goto out; }
        for (int r = 0, n = 0; r < d->world_size; r++)
            if (groups.group_of[r] == g) members[n++] = r;
        if (group_dist(d, comm, &gd) != 0) goto out;
        have_gd = 1;
        worker w;
        memset(&w, 0, sizeof w);
        w.job = job;
        w.unit_of = unit_of;
        w.phase_tp = tp;
        w.group = g;
        w.leader = groups.leader[g];
        w.world_ranks = members;
        w.sched = sched;
        w.executed = executed;
        snprintf(w.device.devices_json, sizeof w.device.devices_json, "[]");
        if (run_group(&w, &gd) != 0) goto out;
    }
    if (wait_for_everyone(d) != 0) goto out;
    if (thread_started) {
        pthread_join(thread, NULL);
        thread_started = 0;
        if (dl.stopped) *stopped = 1;
    }
    if (qb_dist_bcast(d, stopped, sizeof *stopped, 0) != 0) goto out; /* every rank leaves the phases together */
    rc = 0;
out:
    /* a failure here ends the job (main aborts it); the dealer thread is left to that abort */
    if (have_gd && gd.tp_comm != MPI_COMM_NULL) MPI_Comm_free(&gd.tp_comm);
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    free(members);
    if (!thread_started) {
        free(dl.units);
        free(dl.started);
        free(dl.dealt);
        free(dl.group_unit);
        free(dl.group_cell);
        free(dl.group_since);
        free(dl.group_done);
        free(dl.group_background);
        qb_interference_end(&dl.itf);
        qb_rank_groups_free(&groups);
    }
    return rc;
}

int qb_run_packed(const qb_packed_job *job, int *stopped, char *layout, size_t layout_cap) {
    qb_dist *d = job->r->dist;
    *stopped = 0;
    if (layout && layout_cap) layout[0] = '\0';
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE)
        return qb_errorf("--schedule packed: the MPI library granted thread level %d, and rank 0's dealer thread "
                         "needs MPI_THREAD_MULTIPLE (use --schedule serial)", level);
    int rc = -1, executed = 0;
    MPI_Comm sched = MPI_COMM_NULL;
    int *host_of = malloc(sizeof *host_of * (size_t)d->world_size);
    int *unit_of = malloc(sizeof *unit_of * (size_t)(job->n_cells > 0 ? job->n_cells : 1));
    int *sizes = malloc(sizeof *sizes * (size_t)(job->n_cells > 0 ? job->n_cells : 1));
    if (!host_of || !unit_of || !sizes) { qb_errorf("out of memory planning the packed schedule"); goto out; }
    if (qb_rank_hosts(d, host_of) != 0) goto out;
    qb_watchdog_arm(d, "MPI_Comm_dup (the packed schedule's messages)");
    int mrc = MPI_Comm_dup(d->world, &sched);
    qb_watchdog_disarm(d);
    if (mrc != MPI_SUCCESS) { qb_rank_mpi_error("MPI_Comm_dup (the packed schedule's messages)", mrc); goto out; }
    MPI_Comm_set_errhandler(sched, MPI_ERRORS_RETURN);

    /* units (the same on every rank) and the TP sizes to run, largest first */
    int n_sizes = 0;
    for (int k = 0; k < job->n_cells; k++) {
        unit_of[k] = k;
        for (int i = 0; i < k; i++)
            if (unit_of[i] == i && same_unit(job, i, k)) { unit_of[k] = i; break; }
        if (job->done[k] || job->tps[k] <= 0) continue;
        int seen = 0;
        for (int s = 0; s < n_sizes; s++) seen |= sizes[s] == job->tps[k];
        if (!seen) sizes[n_sizes++] = job->tps[k];
    }
    for (int i = 1; i < n_sizes; i++)
        for (int j = i; j > 0 && sizes[j] > sizes[j - 1]; j--) {
            int t = sizes[j];
            sizes[j] = sizes[j - 1];
            sizes[j - 1] = t;
        }
    for (int s = 0; s < n_sizes && !*stopped; s++)
        if (run_phase(job, sched, host_of, unit_of, sizes[s], &executed, stopped, layout, layout_cap) != 0) goto out;
    rc = 0;
out:
    if (sched != MPI_COMM_NULL) MPI_Comm_free(&sched);
    free(host_of);
    free(unit_of);
    free(sizes);
    return rc;
}
