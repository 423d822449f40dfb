/* packed_schedule.c - phases, groups, rank 0's dealer thread and the groups' cell loop (see packed_schedule.h).
 *
 * Messages on a communicator of their own (a dup of the world, so they never meet a collective):
 *   leader -> rank 0  REQUEST  int32 group           "this group is free" (groups numbered over all phases)
 *   rank 0 -> leader  ASSIGN   int32 cell, -1 or -2  "run this cell" / "none left" / "wait, ask again after a nap"
 *   leader -> rank 0  RESULT   a cell image          (bench/cell_transfer.h), always before the next REQUEST
 * Rank 0's own group talks to its own dealer thread the same way (MPI_THREAD_MULTIPLE). The dealer and the
 * ranks waiting for their group to form poll (MPI_Iprobe / MPI_Test and a short sleep) instead of blocking in
 * MPI: a blocking wait would spin a core, and a phase may last as long as its longest unit.
 *
 * The phases without a barrier between them:
 *   1. Every rank, together (nobody is busy yet): the hosts, every phase's groups (a pure function of the hosts:
 *      every rank carves the same) and one MPI_Comm_split per phase, so every group has its communicator. Rank 0
 *      starts the dealer thread over all phases' groups.
 *   2. Each rank, for each phase in order (largest TP first) in which it has a group: an MPI_Ibarrier over that
 *      group's communicator only, polled (the group's other ranks may still run cells of earlier phases), then the
 *      group's loop: ask, run, send, until "none left"; then the communicator is freed and the rank goes on.
 *      A rank that sits a phase out (no whole group for it there) goes straight on.
 *   3. Every rank: a polled MPI_Ibarrier over the world (everything has ended), rank 0 joins its dealer, and the
 *      stop flag is broadcast. --interference adds the same world barrier before and after its cell's phase.
 * No deadlock: all ranks make the same calls on the world (steps 1 and 3, the --interference barriers) in the
 * same order; the other waits are (a) a group's leader on the dealer thread, which never blocks on a group and
 * answers at once ("none left" depends only on the phase's cells not yet dealt; "wait" only under --interference,
 * until the chosen cell of the same phase, which is running, comes back), (b) the ranks of one group on each other
 * inside a cell (the watchdog's business, as in the serial schedule), and (c) step 2's barrier, where a rank waits
 * only for the ranks of its group to finish earlier phases. By induction over the phases: every group of the
 * first phase starts at once and ends (finitely many cells); if every group of phases < p ends, every rank
 * reaches its group of phase p, which therefore starts and ends.
 */
#include "bench/packed_schedule.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/interference.h"
#include "bench/packed_dealer.h"
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
    qb_dealing dealing;      /* the cells dealt and in flight, every phase's groups (bench/packed_dealer.h) */
    int *leader;             /* [dealing.n_groups] world rank */
    double *group_since;     /* [dealing.n_groups] when its cell in flight was dealt */
    double hung_after_s;     /* no result for a dealt cell within this: the group is hung */
} dealer;

static _Noreturn void dealer_fatal(dealer *dl, const char *what) {
    char msg[1024];
    snprintf(msg, sizeof msg, "packed schedule, rank 0's dealer: %s", what);
    QB_FATAL(dl->world, msg);
}

static void check_hung(dealer *dl) {
    double t = now_s();
    for (int g = 0; g < dl->dealing.n_groups; g++) {
        int k = dl->dealing.group_cell[g];
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
    for (int p = 0; p < dl->dealing.n_phases; p++) {
        qb_cell_record cell;
        qb_cell_origin from;
        qb_rank_summary *ranks = NULL;
        if (!qb_interference_release(&dl->dealing.phases[p].itf, &cell, &from, &ranks)) continue;
        int ok = dl->job->record(dl->job->ctx, &cell, &from, ranks) == 0;
        qb_cell_free(&cell);
        free(ranks);
        if (!ok) dealer_fatal(dl, qb_last_error());
    }
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
    qb_dealing *dg = &dl->dealing;
    int g = from.group;
    if (g < 0 || g >= dg->n_groups || dl->leader[g] != st->MPI_SOURCE || dg->group_cell[g] != from.cell)
        dealer_fatal(dl, "a group sent a cell it was not dealt");
    int background = dg->group_background[g], ok = 1;
    qb_dealing_finished(dg, g);
    qb_deal_phase *ph = &dg->phases[dg->group_phase[g]];
    if (!qb_interference_receive(&ph->itf, g - ph->first_group, from.cell, &cell, &from, &ranks,
                                 dg->group_cell + ph->first_group) && !background)
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
    qb_dealing *dg = &dl->dealing;
    if (g < 0 || g >= dg->n_groups || dl->leader[g] != st->MPI_SOURCE || dg->group_cell[g] >= 0 || dg->group_done[g])
        dealer_fatal(dl, "a request from a rank that leads no free group");
    int background = 0;
    int32_t k = qb_dealing_answer(dg, g, qb_stop_requested(), &background);
    if (k >= 0) dl->group_since[g] = now_s();
    rc = MPI_Send(&k, 1, MPI_INT32_T, st->MPI_SOURCE, TAG_ASSIGN, dl->sched);
    if (rc != MPI_SUCCESS) dealer_fatal(dl, (qb_rank_mpi_error("MPI_Send (a cell to a group)", rc), qb_last_error()));
}

static void *dealer_main(void *arg) {
    dealer *dl = arg;
    while (!qb_dealing_over(&dl->dealing)) {
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

/* Every rank of comm has reached this point, waited for without a deadline (the ranks may still be running
 * cells of an earlier phase, as long as its longest unit; hung groups are the dealer's to find) and without
 * spinning. what: the point, for the error message. */
static int wait_for_all_of(MPI_Comm comm, const char *what) {
    MPI_Request req;
    int rc = MPI_Ibarrier(comm, &req);
    char where[160];
    snprintf(where, sizeof where, "MPI_Ibarrier (%s)", what);
    if (rc != MPI_SUCCESS) return qb_rank_mpi_error(where, rc);
    for (;;) {
        int flag = 0;
        rc = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return qb_rank_mpi_error(where, rc);
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
    int group;               /* numbered over all phases (bench/packed_dealer.h), for rank 0's dealer */
    int group_in_phase;      /* numbered within its phase, for the notes */
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
    size_t k = (size_t)snprintf(note, sizeof note, "packed: group %d, ranks", w->group_in_phase);
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


/* This rank's group of one phase, once every member is free of the earlier phases: run it until "none left". */
static int run_phase_group(const qb_packed_job *job, MPI_Comm sched, const int *unit_of, const qb_rank_groups *groups,
                           int first_group, MPI_Comm *comm, int *executed) {
    qb_dist *d = job->r->dist;
    int g = groups->group_of[d->world_rank];
    if (g < 0) return 0; /* sits this phase out */
    QB_TRY(wait_for_all_of(*comm, "the ranks of a packed group, free of the earlier phases"));
    int *members = malloc(sizeof *members * (size_t)groups->size);
    if (!members) return qb_errorf("out of memory");
    for (int r = 0, n = 0; r < d->world_size; r++)
        if (groups->group_of[r] == g) members[n++] = r;
    qb_dist gd;
    int rc = group_dist(d, *comm, &gd);
    if (rc == 0) {
        worker w;
        memset(&w, 0, sizeof w);
        w.job = job;
        w.unit_of = unit_of;
        w.group = first_group + g;
        w.group_in_phase = g;
        w.world_ranks = members;
        w.sched = sched;
        w.executed = executed;
        snprintf(w.device.devices_json, sizeof w.device.devices_json, "[]");
        rc = run_group(&w, &gd);
        if (gd.tp_comm != MPI_COMM_NULL) MPI_Comm_free(&gd.tp_comm);
    }
    free(members);
    if (rc == 0) MPI_Comm_free(comm); /* the group is done: none of its members uses it again */
    return rc;
}

/* Rank 0: the dealing over every phase, and its thread. */
static int start_dealer(const qb_packed_job *job, MPI_Comm sched, const int *unit_of, const int *sizes, int n_sizes,
                        const qb_rank_groups *groups, dealer *dl, pthread_t *thread) {
    const qb_options *o = job->r->opt;
    int n_cells = job->n_cells, total = 0;
    for (int p = 0; p < n_sizes; p++) total += groups[p].n_groups;
    double *cost = malloc(sizeof *cost * (size_t)(n_cells > 0 ? n_cells : 1));
    int *phase_groups = malloc(sizeof *phase_groups * (size_t)(n_sizes > 0 ? n_sizes : 1));
    int *leader = malloc(sizeof *leader * (size_t)(total > 0 ? total : 1));
    dl->group_since = calloc((size_t)(total > 0 ? total : 1), sizeof *dl->group_since);
    dl->leader = leader;
    if (!cost || !phase_groups || !leader || !dl->group_since) {
        free(cost);
        free(phase_groups);
        return qb_errorf("out of memory dealing %d cells", n_cells);
    }
    for (int k = 0; k < n_cells; k++)
        cost[k] = qb_packed_cell_cost(&job->cfgs[k], job->tps[k], job->cells[k].context_len, o->generate_length,
                                      o->warmup + o->repetitions);
    for (int p = 0, n = 0; p < n_sizes; p++) {
        phase_groups[p] = groups[p].n_groups;
        for (int g = 0; g < groups[p].n_groups; g++) leader[n++] = groups[p].leader[g];
    }
    dl->job = job;
    dl->world = job->r->dist;
    dl->sched = sched;
    dl->hung_after_s = o->deadline_s * (o->warmup + o->repetitions + 3);
    int rc = qb_dealing_init(&dl->dealing, n_cells, job->tps, job->done, unit_of, cost, n_sizes, sizes, phase_groups,
                             job->interference_cell);
    free(cost);
    free(phase_groups);
    if (rc != 0) return -1;
    if (pthread_create(thread, NULL, dealer_main, dl) != 0) return qb_errorf("cannot start the dealer thread");
    return 0;
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
    int rc = -1, executed = 0, n_sizes = 0, thread_started = 0, itf_phase = -1;
    MPI_Comm sched = MPI_COMM_NULL;
    dealer dl;
    memset(&dl, 0, sizeof dl);
    pthread_t thread;
    size_t n = (size_t)(job->n_cells > 0 ? job->n_cells : 1);
    int *host_of = malloc(sizeof *host_of * (size_t)d->world_size);
    int *unit_of = malloc(sizeof *unit_of * n), *sizes = malloc(sizeof *sizes * n);
    qb_rank_groups *groups = calloc(n, sizeof *groups);
    MPI_Comm *comms = malloc(sizeof *comms * n);
    if (!host_of || !unit_of || !sizes || !groups || !comms) { qb_errorf("out of memory planning the packed schedule"); goto out; }
    for (size_t i = 0; i < n; i++) comms[i] = MPI_COMM_NULL;
    if (qb_rank_hosts(d, host_of) != 0) goto out;
    qb_watchdog_arm(d, "MPI_Comm_dup (the packed schedule's messages)");
    int mrc = MPI_Comm_dup(d->world, &sched);
    qb_watchdog_disarm(d);
    if (mrc != MPI_SUCCESS) { qb_rank_mpi_error("MPI_Comm_dup (the packed schedule's messages)", mrc); goto out; }
    MPI_Comm_set_errhandler(sched, MPI_ERRORS_RETURN);

    /* units (the same on every rank) and the TP sizes to run, largest first */
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

    /* Every phase's groups and their communicators, made now, while every rank is here (a pure function of the
     * hosts: every rank carves the same groups and fails alike). */
    for (int p = 0; p < n_sizes; p++) {
        if (qb_rank_groups_make(host_of, d->world_size, sizes[p], &groups[p]) != 0) goto out;
        if (groups[p].n_groups == 0) {
            qb_errorf("--schedule packed: no %d ranks to run cells of TP size %d", sizes[p], sizes[p]);
            goto out;
        }
        if (job->interference_cell >= 0 && !job->done[job->interference_cell] &&
            job->tps[job->interference_cell] == sizes[p])
            itf_phase = p;
        if (d->world_rank == 0 && layout) {
            size_t k = strlen(layout);
            char line[1024];
            qb_rank_groups_describe(&groups[p], line, sizeof line);
            if (k < layout_cap) snprintf(layout + k, layout_cap - k, "%s%s", k ? " | " : "", line);
        }
        int g = groups[p].group_of[d->world_rank];
        qb_watchdog_arm(d, "MPI_Comm_split (packed groups)");
        mrc = MPI_Comm_split(d->world, g >= 0 ? g : MPI_UNDEFINED, d->world_rank, &comms[p]);
        qb_watchdog_disarm(d);
        if (mrc != MPI_SUCCESS) { qb_rank_mpi_error("MPI_Comm_split (packed groups)", mrc); goto out; }
        if (comms[p] != MPI_COMM_NULL) MPI_Comm_set_errhandler(comms[p], MPI_ERRORS_RETURN);
    }
    if (d->world_rank == 0) { /* rank 0's dealer, before anyone can ask */
        if (start_dealer(job, sched, unit_of, sizes, n_sizes, groups, &dl, &thread) != 0) goto out;
        thread_started = 1;
    }

    /* Each rank's phases in order; no barrier between them but the ones around --interference's phase. */
    for (int p = 0, first_group = 0; p < n_sizes; first_group += groups[p].n_groups, p++) {
        if ((p == itf_phase || p == itf_phase + 1) && itf_phase >= 0 &&
            wait_for_all_of(d->world, "the phase of --interference runs alone") != 0)
            goto out;
        if (run_phase_group(job, sched, unit_of, &groups[p], first_group, &comms[p], &executed) != 0) goto out;
    }
    if (wait_for_all_of(d->world, "the end of the packed schedule") != 0) goto out;
    if (thread_started) {
        pthread_join(thread, NULL);
        thread_started = 0;
        if (dl.dealing.stopped) *stopped = 1;
    }
    if (qb_dist_bcast(d, stopped, sizeof *stopped, 0) != 0) goto out; /* every rank learns of a stop */
    rc = 0;
out:
    /* a failure here ends the job (main aborts it); the dealer thread and its state are left to that abort */
    if (!thread_started) {
        qb_dealing_free(&dl.dealing);
        free(dl.leader);
        free(dl.group_since);
    }
    for (int p = 0; comms && p < n_sizes; p++)
        if (comms[p] != MPI_COMM_NULL) MPI_Comm_free(&comms[p]);
    for (int p = 0; groups && p < n_sizes; p++) qb_rank_groups_free(&groups[p]);
    if (sched != MPI_COMM_NULL && !thread_started) MPI_Comm_free(&sched);
    free(host_of);
    free(unit_of);
    free(sizes);
    free(groups);
    free(comms);
    return rc;
}
