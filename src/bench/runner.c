/* runner.c - runs a list of cells on every rank; rank 0 records and writes (see runner.h). */
#include "bench/runner.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/cell_exec.h"
#include "bench/clock_sync.h"
#include "bench/interference.h"
#include "bench/packed_schedule.h"
#include "bench/planner.h"
#include "bench/progress.h"
#include "bench/rope_policy.h"
#include "bench/run_meta.h"
#include "bench/stop_signals.h"
#include "bench/token_checks.h"
#include "engine/shard_plan.h"
#include "results/cell_writers.h"
#include "results/table.h"
#include "io/printable.h"
#include "util/error.h"

void qb_runner_install_signal_handlers(void) { qb_stop_signals_install(); }

/* Test build only (bench/test_hooks.h): a delay before each cell, and a rank that dies (SIGKILL) or hangs when it
 * reaches its fault_cell-th cell (0-based, counted in this process), so the tests can show that a dead or hung
 * rank ends the job with the results so far intact. */
void qb_runner_inject_fault(const qb_runner *r, int cell_number) {
    const qb_test_hooks *h = r->hooks;
    if (!h) return;
    if (h->cell_delay_s > 0) {
        double s = h->cell_delay_s;
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {} /* a stop signal does not cut the cell short */
    }
    if (!h->fault_kind[0] || h->fault_rank != r->dist->world_rank || h->fault_cell != cell_number) return;
    fprintf(stderr, "# test fault: rank %d %s at cell %d\n", h->fault_rank, h->fault_kind, h->fault_cell);
    fflush(stderr);
    if (!strcmp(h->fault_kind, "kill")) raise(SIGKILL);
    if (!strcmp(h->fault_kind, "hang"))
        for (;;) pause();
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rank 0's state: every cell record so far (resumed ones first) and the file metadata. */
typedef struct {
    qb_cell_record *cells;
    int n, cap;
    qb_results_meta meta;
} recorder;

static int recorder_append(recorder *rec, qb_cell_record *c) {
    if (rec->n == rec->cap) {
        int cap = rec->cap ? 2 * rec->cap : 16;
        qb_cell_record *p = realloc(rec->cells, sizeof *p * (size_t)cap);
        if (!p) return qb_errorf("out of memory recording cell results");
        rec->cells = p;
        rec->cap = cap;
    }
    rec->cells[rec->n++] = *c;
    memset(c, 0, sizeof *c);
    return 0;
}

static int recorder_flush(const qb_runner *r, recorder *rec) {
    if (!r->opt->out[0]) return 0;
    qb_run_meta_stamp_end(&rec->meta);
    qb_stop_signals_writing(1); /* a second stop signal now exits once the write is done: no temporary file left */
    int rc = qb_results_write(r->opt->out, &rec->meta, rec->cells, rec->n);
    qb_stop_signals_writing(0);
    return rc;
}

static bool same_cell(const qb_cell_record *c, const char *model, const qb_cell_spec *spec, int tp) {
    char options[sizeof c->engine_options];
    qb_engine_options_format(&spec->engine, options, sizeof options);
    return !strcmp(c->model, model) && !strcmp(c->quant, qb_quant_name(spec->quant)) &&
           c->context_len == spec->context_len && c->tp_size == tp && !strcmp(c->engine_options, options);
}

/* Rank 0: load the file to complete; mark which specs are already there. Returns -1 on refusal. */
static int load_resume(const qb_runner *r, recorder *rec, const qb_cell_spec *cells, const char **names,
                       const int *tps, int n_cells, int *done) {
    qb_results_meta old;
    qb_cell_record *old_cells = NULL;
    int n_old = 0;
    if (access(r->opt->out, F_OK) != 0) { /* nothing to complete yet: a fresh start (first job of a chain) */
        fprintf(stderr, "# resume: %s does not exist yet; starting a new file\n", r->opt->out);
        return 0;
    }
    QB_TRY(qb_results_read(r->opt->out, &old, &old_cells, &n_old));
    if (strcmp(old.settings_json, rec->meta.settings_json) != 0) {
        for (int i = 0; i < n_old; i++) qb_cell_free(&old_cells[i]);
        free(old_cells);
        return qb_errorf("--resume: %s was made with other settings; refusing to mix results "
                         "(file: %.300s; now: %.300s)", r->opt->out, old.settings_json, rec->meta.settings_json);
    }
    snprintf(rec->meta.start_time, sizeof rec->meta.start_time, "%s", old.start_time);
    for (int i = 0; i < n_old; i++) {
        for (int k = 0; k < n_cells; k++)
            if (same_cell(&old_cells[i], names[k], &cells[k], tps[k])) done[k] = 1;
        if (recorder_append(rec, &old_cells[i]) != 0) { /* the appended cells are the recorder's now */
            for (int k = i; k < n_old; k++) qb_cell_free(&old_cells[k]);
            free(old_cells);
            return -1;
        }
    }
    free(old_cells);
    return 0;
}

static void progress_line(const qb_runner *r, int done_now, int total, double t_start, const qb_cell_record *c) {
    if (r->dist->world_rank != 0) return;
    double el = now_s() - t_start;
    double eta = done_now > 0 ? el / done_now * (total - done_now) : 0.0;
    char model[sizeof c->model * 4], quant[sizeof c->quant * 4], reason[sizeof c->reason * 2];
    qb_printable(c->model, model, sizeof model); /* names from paths and files: escaped (io/printable.h) */
    qb_printable(c->quant, quant, sizeof quant);
    qb_printable(c->reason, reason, sizeof reason);
    qb_progress_hold(); /* the live line (bench/progress.h) makes way */
    if (c->status == QB_CELL_VALID)
        fprintf(stderr, "# cell %d/%d %s %s input %d: %.2f tok/s (elapsed %.0f s, about %.0f s left)\n", done_now,
                total, model, quant, c->context_len, c->speed.mean, el, eta);
    else
        fprintf(stderr, "# cell %d/%d %s %s input %d: %s: %s (elapsed %.0f s)\n", done_now, total, model,
                quant, c->context_len, qb_cell_status_name(c->status), reason, el);
    fflush(stderr);
    qb_progress_release();
    qb_progress_phase_set(QB_PROGRESS_RECORDING);
}

/* Rank 0's live line: which cell runs now (k of the cells to run). */
static void progress_cell(const qb_runner *r, int number, int total, const char *model, const qb_cell_spec *spec) {
    if (r->dist->world_rank != 0) return;
    char shown[512], label[640];
    qb_printable(model, shown, sizeof shown);
    snprintf(label, sizeof label, "%s %s input %d", shown, qb_quant_name(spec->quant), spec->context_len);
    qb_progress_cell(number, total, label);
}

/* Rank 0's side of the packed schedule (bench/packed_schedule.h): every finished cell, on the dealer thread. */
typedef struct {
    const qb_runner *r;
    recorder *rec;
    int finished, todo, any_bad;
    double t_start;
    char slowed[256];        /* --interference measured a slow-down beyond noise: every packed cell is NOISY */
} packed_sink;

/* The NOISY rule of --interference (bench/interference.h): c says packing slows it down beyond noise? Then
 * s->slowed says so (1); 0 when it does not or s->slowed is set already. */
static int find_slowed(packed_sink *s, const qb_cell_record *c) {
    double limit = 0.0;
    if (s->slowed[0] || !qb_interference_slowed(c, &limit)) return 0;
    char model[sizeof c->model * 4];
    qb_printable(c->model, model, sizeof model);
    snprintf(s->slowed, sizeof s->slowed, "NOISY: packed, and --interference measured %.120s input %d at %.4f of "
             "its speed alone (limit %.1f%%)", model, c->context_len, c->interference_ratio, 100.0 * limit);
    return 1;
}

/* Once a cell says so, every cell of the file that ran (all packed with the same settings: --resume compares
 * them) is marked noisy, before and after it, and says why; the cell that measured it says so in its own line. */
static void mark_slowed(packed_sink *s, qb_cell_record *c) {
    if (find_slowed(s, c)) {
        c->noisy = 1;
        for (int i = 0; i < s->rec->n; i++)
            if (s->rec->cells[i].n_runs > 0) {
                s->rec->cells[i].noisy = 1;
                qb_cell_note(&s->rec->cells[i], s->slowed);
            }
    } else if (s->slowed[0] && c->n_runs > 0) {
        c->noisy = 1;
        qb_cell_note(c, s->slowed);
    }
}

static int record_packed(void *ctx, qb_cell_record *c, const qb_cell_origin *from, const qb_rank_summary *ranks) {
    packed_sink *s = ctx;
    mark_slowed(s, c);
    s->finished++;
    progress_line(s->r, s->finished, s->todo, s->t_start, c);
    if (c->status != QB_CELL_VALID) s->any_bad = 1;
    qb_run_meta_merge_devices(&s->rec->meta, ranks, from->n_ranks);
    if (s->rec->meta.copy_bandwidth_gbps <= 0 && from->copy_bandwidth_gbps > 0) {
        qb_results_meta *m = &s->rec->meta;
        m->copy_bandwidth_gbps = from->copy_bandwidth_gbps;
        snprintf(m->driver_version, sizeof m->driver_version, "%s", from->driver_version);
        snprintf(m->cuda_version, sizeof m->cuda_version, "%s", from->runtime_version);
        snprintf(m->nccl_version, sizeof m->nccl_version, "%s", from->nccl_version);
    }
    QB_TRY(recorder_append(s->rec, c));
    if (recorder_flush(s->r, s->rec) != 0) return qb_error_prefix("writing results");
    return 0;
}

/* Rank 0, packed: the cells no TP size fits are recorded at once (nothing to deal). */
static int record_unplanned(const qb_runner *r, packed_sink *sink, const qb_model_config *cfgs,
                            const qb_cell_spec *cells, const int *tps, const int *done, char (*no_fit)[512],
                            char (*rope_labels)[64], int n_cells) {
    for (int k = 0; k < n_cells; k++) {
        if (done[k] || tps[k] != 0) continue;
        qb_cell_record cell;
        qb_cell_init(r, &cfgs[k], &cells[k], &cell);
        cell.tp_size = cell.n_ranks = 0;
        snprintf(cell.rope_scaling, sizeof cell.rope_scaling, "%s", rope_labels[k]);
        qb_cell_set_failure(&cell, QB_CELL_DOES_NOT_FIT, no_fit[k]);
        qb_cell_origin none;
        memset(&none, 0, sizeof none);
        if (record_packed(sink, &cell, &none, NULL) != 0) return -1;
    }
    return 0;
}

int qb_cell_requested_tp(const qb_options *o, const qb_cell_spec *cell) { return cell->own_tp ? cell->tp : o->tp; }

/* The tensor-parallel size of every cell, the same on every rank: the cell's own TP or --tp N as given; else, on
 * CUDA, the fewest GPUs whose memory holds the cell (bench/planner.h; none: the cell is DOES_NOT_FIT with the
 * numbers); on the CPU, every rank (serial) or one (packed: as many cells side by side as there are ranks). */
int qb_runner_plan_tp(const qb_runner *r, const qb_model_config *cfg, const qb_cell_spec *cell, int *tp, char *why,
                      size_t cap) {
    const int want = qb_cell_requested_tp(r->opt, cell), ctx = cell->context_len;
    why[0] = '\0';
    if (want > 0 || r->gpu_bytes == 0) {
        *tp = want > 0 ? want : r->opt->schedule == QB_SCHEDULE_PACKED ? 1 : r->dist->world_size;
        return 0;
    }
    qb_plan_request req = {ctx, r->opt->generate_length, r->gpu_bytes, r->dist->world_size, 0};
    qb_plan_result res;
    if (qb_plan_choose_tp(cfg, &req, &res) == 0) {
        *tp = res.tp;
        return 0;
    }
    if (strncmp(qb_last_error(), "does not fit", 12) != 0) return -1;
    *tp = 0;
    snprintf(why, cap, "%s", qb_last_error());
    return 0;
}

/* --explain, rank 0: each cell of the group [i, j) with its engine's plan (or why there is no engine). Returns
 * 1 when the group has no engine. */
static int explain_group(const qb_runner *r, const qb_cell_group *g, int created, const qb_cell_spec *cells, int i,
                         int j, const char **names, const int *tps, char (*no_fit)[512]) {
    static char plan[8192];
    for (int k = i; k < j; k++) {
        char engine[512];
        qb_engine_options_format(&cells[k].engine, engine, sizeof engine);
        printf("## %s %s input %d tp %d (%s)\n", names[k], qb_quant_name(cells[k].quant), cells[k].context_len,
               tps[k], engine);
        if (created != 0 || !g->backend) {
            printf("no engine: %s\n\n", tps[k] == 0 ? no_fit[k] : g->failure);
            continue;
        }
        plan[0] = '\0';
        if (g->backend->explain) g->backend->explain(g->backend, cells[k].context_len, plan, sizeof plan);
        else if (g->backend->choices) g->backend->choices(g->backend, cells[k].context_len, plan, sizeof plan);
        printf("engine %s: %s\n\n", r->backend_name, plan);
    }
    fflush(stdout);
    return created != 0 || !g->backend;
}

int qb_run_cells(const qb_runner *world_runner, const qb_cell_spec *cells, int n_cells, int *exit_status) {
    qb_runner timed = *world_runner; /* with this rank's clock offset, measured first */
    const qb_runner *r = &timed;
    qb_dist *d = r->dist;
    double clock_rtt_s = 0.0;
    if (qb_clock_sync(d, &timed.clock_offset_s, &clock_rtt_s) != 0) return -1;
    double clock_mine[2] = {timed.clock_offset_s, clock_rtt_s}, *clock_all = NULL;
    if (d->world_rank == 0 && !(clock_all = calloc(2 * (size_t)d->world_size, sizeof *clock_all)))
        return qb_errorf("out of memory gathering clock offsets");
    if (qb_dist_gather(d, clock_mine, sizeof clock_mine, clock_all) != 0) { free(clock_all); return -1; }
    if (clock_all && d->world_size > 1) { /* one line: how far the ranks' clocks are apart, and how well known */
        double far = 0.0, rtt = 0.0;
        for (int i = 0; i < d->world_size; i++) {
            if (fabs(clock_all[2 * i]) > far) far = fabs(clock_all[2 * i]);
            if (clock_all[2 * i + 1] > rtt) rtt = clock_all[2 * i + 1];
        }
        fprintf(stderr, "# clocks: every rank within %.3f ms of rank 0's, known to %.0f us (run times are on rank 0's "
                        "clock)\n", far * 1e3, rtt * 0.5e6);
    }
    free(clock_all);
    const qb_options *o = r->opt;
    const bool root = d->world_rank == 0;
    FILE *notes = o->output_format == QB_OUTPUT_MD ? stdout : stderr; /* csv/json/jsonl: only data on stdout */
    int rc = -1;
    recorder rec;
    memset(&rec, 0, sizeof rec);
    int *done = calloc((size_t)n_cells, sizeof *done);
    qb_model_config *cfgs = calloc((size_t)n_cells, sizeof *cfgs);
    const char **names = calloc((size_t)n_cells, sizeof *names);
    char (*rope_labels)[64] = NULL;
    char (*no_fit)[512] = calloc((size_t)n_cells, sizeof *no_fit);
    int *tps = calloc((size_t)n_cells, sizeof *tps);
    if (!done || !cfgs || !names || !no_fit || !tps) { qb_errorf("out of memory planning %d cells", n_cells); goto out; }

    /* Every cell's config, resolved once with its position scaling; the CLI already validated them. */
    rope_labels = calloc((size_t)n_cells, sizeof *rope_labels);
    qb_rope_policy rope;
    if (!rope_labels) { qb_errorf("out of memory planning %d cells", n_cells); goto out; }
    if (qb_rope_policy_parse(o->rope_scaling, &rope) != 0) goto out;
    for (int i = 0; i < n_cells; i++) {
        bool ckpt;
        char dir[QB_PATH_MAX];
        if (qb_model_config_resolve(cells[i].model, &cfgs[i], &ckpt, dir, sizeof dir) != 0 ||
            qb_model_config_apply_quant(&cfgs[i], cells[i].quant, ckpt) != 0 ||
            qb_rope_policy_apply(&rope, &cfgs[i], cells[i].context_len, o->generate_length, rope_labels[i],
                                 sizeof rope_labels[i]) != 0)
            goto out;
        names[i] = cfgs[i].name;
        if (qb_runner_plan_tp(r, &cfgs[i], &cells[i], &tps[i], no_fit[i], sizeof no_fit[i]) != 0) goto out;
        if (root && strstr(rope_labels[i], "auto"))
            fprintf(notes, "# %s input %d: input + %d generated tokens exceed %d positions: YaRN factor %g applied\n",
                   cfgs[i].name, cells[i].context_len, o->generate_length, cfgs[i].rope_original_max_pos,
                   cfgs[i].rope_factor);
    }
    if (qb_run_meta_init(r, cells, names, n_cells, &rec.meta) != 0) goto out;

    /* Rank 0 decides what is already done (--resume) and tells everyone. */
    int resume_ok = 1;
    if (root && o->resume && load_resume(r, &rec, cells, names, tps, n_cells, done) != 0) resume_ok = 0;
    int all_ok;
    if (qb_dist_all_ok(d, resume_ok, &all_ok) != 0) goto out;
    if (!all_ok) {
        if (!root) qb_errorf("rank 0 refused to resume (see its message)");
        goto out;
    }
    if (qb_dist_bcast(d, done, sizeof *done * (size_t)n_cells, 0) != 0) goto out;

    int todo = 0;
    for (int i = 0; i < n_cells; i++) todo += !done[i];
    if (root && o->resume) fprintf(stderr, "# resume: %d of %d cells already in %s, %d to run\n", n_cells - todo, n_cells, o->out, todo);

    int any_bad = 0, finished = 0, stopped = 0, executed = 0;
    const bool packed = o->schedule == QB_SCHEDULE_PACKED && !o->explain; /* --explain: the plans, one by one */
    double t_start = now_s();
    qb_stop_signals_arm(root);
    qb_progress_start(root && isatty(STDERR_FILENO) && !packed); /* one live line says nothing of cells side by side */
    char layout[2048] = "";
    if (packed) {
        packed_sink sink = {r, &rec, 0, todo, 0, t_start, ""};
        for (int i = 0; i < rec.n; i++) find_slowed(&sink, &rec.cells[i]); /* --resume: measured in a job before */
        if (root && record_unplanned(r, &sink, cfgs, cells, tps, done, no_fit, rope_labels, n_cells) != 0) goto out;
        int chosen = -1; /* --interference: main checked that it names one cell */
        if (o->interference[0] && qb_interference_find(o->interference, cells, names, tps, n_cells, &chosen) != 0)
            goto out;
        qb_packed_job job = {r,      cells,         cfgs, tps, done, (const char (*)[64])rope_labels, n_cells,
                             chosen, record_packed, &sink};
        if (qb_run_packed(&job, &stopped, layout, sizeof layout) != 0) goto out;
        any_bad = sink.any_bad;
    }
    for (int i = 0; i < n_cells && !stopped && !packed;) {
        int j = i + 1; /* group: same model, format, position scaling and TP size */
        while (j < n_cells && !strcmp(cells[j].model, cells[i].model) && cells[j].quant == cells[i].quant &&
               cfgs[j].rope_type == cfgs[i].rope_type && cfgs[j].rope_factor == cfgs[i].rope_factor &&
               tps[j] == tps[i] && qb_engine_options_equal(&cells[j].engine, &cells[i].engine))
            j++;
        int max_ctx = 0;
        for (int k = i; k < j; k++)
            if (!done[k] && cells[k].context_len > max_ctx) max_ctx = cells[k].context_len;
        if (max_ctx == 0) { i = j; continue; }
        int go_on; /* a stop asked for after the last cell: before loading the next group's weights */
        if (qb_dist_all_ok(d, !qb_stop_requested(), &go_on) != 0) goto out;
        if (!go_on) { stopped = 1; break; }
        for (int k = i; k < j; k++)
            if (!done[k]) { progress_cell(r, finished + 1, todo, names[k], &cells[k]); break; }

        qb_cell_group group;
        int created;
        if (tps[i] == 0) { /* the planner found no TP size that fits: every cell of the group says so */
            memset(&group, 0, sizeof group);
            group.failure_status = QB_CELL_DOES_NOT_FIT;
            created = 1;
        } else {
            if (tps[i] != d->tp_size && qb_dist_set_tp(d, tps[i]) != 0) goto out;
            created = qb_cell_group_open(r, cells[i].model, &cfgs[i], &cells[i].engine, max_ctx, &group);
            if (created < 0) goto out;
        }
        if (o->explain) { /* the plan of each cell's engine, no run */
            if (root && explain_group(r, &group, created, cells, i, j, names, tps, no_fit)) any_bad = 1;
            qb_cell_group_close(&group);
            i = j;
            continue;
        }
        for (int k = i; k < j && !stopped; k++) {
            if (done[k]) continue;
            int go;
            if (qb_dist_all_ok(d, !qb_stop_requested(), &go) != 0) goto out;
            if (!go) { stopped = 1; break; }
            progress_cell(r, finished + 1, todo, names[k], &cells[k]);
            qb_runner_inject_fault(r, executed++);
            qb_cell_record cell;
            qb_cell_init(r, &cfgs[k], &cells[k], &cell);
            cell.tp_size = cell.n_ranks = tps[k];
            snprintf(cell.rope_scaling, sizeof cell.rope_scaling, "%s", rope_labels[k]);
            if (created == 0) {
                if (qb_cell_execute(r, &group, &cells[k], &cell) != 0) {
                    qb_cell_free(&cell);
                    goto out;
                }
            } else {
                qb_cell_set_failure(&cell, group.failure_status, tps[k] == 0 ? no_fit[k] : group.failure);
            }
            if (root) {
                finished++;
                progress_line(r, finished, todo, t_start, &cell);
                if (cell.status != QB_CELL_VALID) any_bad = 1;
                qb_run_meta_add_devices(&rec.meta, &group);
                qb_cell_check_speed(r, &cfgs[k], &rec.meta, &cell);
                if (recorder_append(&rec, &cell) != 0) {
                    qb_cell_free(&cell);
                    goto out;
                }
                if (recorder_flush(r, &rec) != 0) {
                    qb_error_prefix("writing results");
                    goto out;
                }
            } else {
                qb_cell_free(&cell);
            }
        }
        qb_cell_group_close(&group);
        i = j;
    }
    qb_progress_stop();
    if (root && !o->explain) {
        fprintf(notes, "# qwenbench %s (%s), backend %s, %d rank(s), tp %s, schedule %s\n", QB_VERSION, QB_GIT_COMMIT,
                r->backend_name, d->world_size,
                o->tp > 0 ? "as given" : r->gpu_bytes ? "planned per cell (fewest GPUs that fit)"
                : packed ? "1 rank per cell" : "all ranks",
                packed ? "packed" : "serial");
        if (packed) fprintf(notes, "# packed groups: %s\n", layout);
        fflush(notes);
        if (qb_cells_write(stdout, o->output_format, rec.cells, rec.n) != 0) { /* the file is complete: say, exit 1 */
            fprintf(stderr, "qwenbench: error: %s\n", qb_last_error());
            any_bad = 1;
        }
        if (o->out[0]) fprintf(notes, "# results: %s\n", o->out);
        if (stopped) qb_stop_print_resume(notes, r->command_line, o->out, d->world_size);
        fflush(notes);
        fflush(stdout);
    }
    int bad_anywhere = any_bad;
    if (qb_dist_bcast(d, &bad_anywhere, sizeof bad_anywhere, 0) != 0) goto out;
    *exit_status = stopped ? 3 : bad_anywhere ? 1 : 0;
    rc = 0;
out: /* an open group's backend is left to the exit: destroying it could wait on a rank that failed */
    qb_progress_stop();
    free(rope_labels);
    free(no_fit);
    free(tps);
    for (int i = 0; i < rec.n; i++) qb_cell_free(&rec.cells[i]);
    free(rec.cells);
    free(done);
    free(cfgs);
    free(names);
    return rc;
}
