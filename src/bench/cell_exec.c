/* cell_exec.c - backend lifetime per group, and the timed runs of one cell (see cell_exec.h). */
#include "bench/cell_exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/clock_sync.h"
#include "bench/progress.h"
#include "bench/prompt.h"
#include "bench/rank_agreement.h"
#include "bench/roofline.h"
#include "bench/token_checks.h"
#include "util/error.h"
#include "util/str.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define copy_str qb_copy_str

/* Gather every rank's summary to rank 0 and agree on success. */
static int gather_summaries(const qb_runner *r, qb_cell_group *g, const qb_rank_summary *mine, int *all_ok) {
    qb_dist *d = r->dist;
    if (d->world_rank == 0 && !g->ranks) {
        g->ranks = calloc((size_t)d->world_size, sizeof *g->ranks);
        if (!g->ranks) return qb_errorf("out of memory gathering rank summaries");
        g->n_ranks = d->world_size;
    }
    QB_TRY(qb_dist_gather(d, mine, sizeof *mine, g->ranks));
    return qb_dist_all_ok(d, mine->ok, all_ok);
}

static void summary_base(const qb_runner *r, const qb_backend *b, qb_rank_summary *s) {
    memset(s, 0, sizeof *s);
    s->ok = 1;
    s->rank = r->world_ranks ? r->world_ranks[r->dist->world_rank] : r->dist->world_rank; /* packed: world rank */
    copy_str(s->host, sizeof s->host, r->dist->hostname);
    if (b) {
        copy_str(s->device, sizeof s->device, b->device_name);
        copy_str(s->uuid, sizeof s->uuid, b->device_uuid);
    }
}

/* Rank 0: every failing rank's message with its rank and host ("; "-joined, dist.h's format). */
static void first_failure(const qb_runner *r, const qb_cell_group *g, char *out, size_t cap) {
    copy_str(out, cap, "a rank failed");
    if (r->dist->world_rank != 0) return;
    qb_rank_error *errors = calloc((size_t)g->n_ranks, sizeof *errors);
    if (!errors) return;
    for (int i = 0; i < g->n_ranks; i++) {
        const qb_rank_summary *s = &g->ranks[i];
        char host[sizeof s->host + 1], error[sizeof s->error + 1];
        copy_str(host, sizeof host, s->host);
        copy_str(error, sizeof error, s->error);
        qb_rank_error_set(&errors[i], r->dist, s->ok, error);
        errors[i].rank = s->rank;
        copy_str(errors[i].host, sizeof errors[i].host, host);
    }
    if (qb_rank_errors_format(errors, g->n_ranks, "; ", out, cap) == 0) copy_str(out, cap, "a rank failed");
    free(errors);
}

int qb_cell_group_open(const qb_runner *r, const char *model, const qb_model_config *cfg,
                       const qb_engine_options *engine, int max_ctx, qb_cell_group *g) {
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    qb_rank_summary mine;
    summary_base(r, NULL, &mine);

    bool is_ckpt = false;
    char dir[QB_PATH_MAX] = "";
    qb_model_config resolved;
    /* Ranks beyond the first TP group wait: the cell runs on the fewest GPUs (--tp or the planner). */
    g->idle = r->dist->tp_group != 0;
    int all_ok;
    int ok = g->idle || (qb_model_config_resolve(model, &resolved, &is_ckpt, dir, sizeof dir) == 0 &&
                         qb_shard_plan_make(cfg, r->dist->tp_size, r->dist->tp_rank, &g->plan) == 0);
    /* Before anything is loaded or exchanged: the ranks compare what they are about to run, and every rank's
     * error so far is gathered, so ranks that disagree get a FAILED cell naming the difference, not a hang. */
    QB_TRY(qb_ranks_agree_on_group(r, model, &g->cfg, is_ckpt ? dir : NULL, !g->idle, ok, &all_ok, g->failure,
                                   sizeof g->failure));
    if (!all_ok) {
        g->failure_status = strstr(g->failure, "does not fit") ? QB_CELL_DOES_NOT_FIT : QB_CELL_FAILED;
        return 1;
    }
    if (g->idle) {
        QB_TRY(gather_summaries(r, g, &mine, &all_ok));
        if (all_ok) return 0;
        QB_TRY(qb_dist_bcast(r->dist, g->failure, sizeof g->failure, 0));
        g->failure_status = strstr(g->failure, "does not fit") ? QB_CELL_DOES_NOT_FIT : QB_CELL_FAILED;
        return 1;
    }
    if (ok) {
        qb_backend_params p;
        memset(&p, 0, sizeof p);
        p.cfg = &g->cfg;
        p.plan = &g->plan;
        p.dist = r->dist;
        p.checkpoint_dir = is_ckpt ? dir : NULL;
        p.weight_seed = r->opt->seed;
        p.max_seq_len = max_ctx + r->opt->generate_length;
        /* the token checks prefill prompt + generated prefix to read the logits at a step */
        p.max_prompt_len = (r->opt->check_steps || r->opt->expect_tokens[0]) ? p.max_seq_len : max_ctx;
        p.threads = r->opt->threads;
        p.engine = *engine;
        p.test_corrupt_argmax = r->hooks && r->hooks->corrupt_argmax;
        qb_copy_str(g->checkpoint_dir, sizeof g->checkpoint_dir, is_ckpt ? dir : "");
        g->params = p;
        g->params.checkpoint_dir = NULL; /* points into g->checkpoint_dir when used */
        qb_progress_loading(qb_decode_weight_bytes(&g->cfg, &g->plan));
        ok = r->create(&p, &g->backend) == 0;
        qb_progress_phase_set(QB_PROGRESS_IDLE);
    }
    if (!ok) {
        mine.ok = 0;
        copy_str(mine.error, sizeof mine.error, qb_last_error());
        g->backend = NULL;
    }
    QB_TRY(gather_summaries(r, g, &mine, &all_ok));
    if (all_ok) return 0;

    first_failure(r, g, g->failure, sizeof g->failure);
    QB_TRY(qb_dist_bcast(r->dist, g->failure, sizeof g->failure, 0));
    g->failure_status = strstr(g->failure, "does not fit") ? QB_CELL_DOES_NOT_FIT : QB_CELL_FAILED;
    if (g->backend) g->backend->destroy(g->backend);
    g->backend = NULL;
    return 1;
}

void qb_cell_group_close(qb_cell_group *g) {
    qb_energy_meter_close(g->energy);
    if (g->backend) g->backend->destroy(g->backend);
    free(g->ranks);
    memset(g, 0, sizeof *g);
}

/* The cell's energy fields (NaN / -1 and "unavailable: why" when not measured) and, when measured, a note. */
static void record_energy(qb_cell_record *c, const qb_energy_cell *e) {
    copy_str(c->energy_source, sizeof c->energy_source,
             !e->available ? e->why : e->from_counter ? "nvml energy counter" : "nvml power samples");
    c->energy_j = e->energy_j;
    c->joules_per_token = e->joules_per_token;
    c->power_mean_w = e->power_mean_w;
    c->power_peak_w = e->power_peak_w;
    c->sm_clock_mhz = e->sm_clock_mhz;
    c->mem_clock_mhz = e->mem_clock_mhz;
    c->temperature_max_c = e->temperature_max_c;
    c->throttled = e->throttled;
    c->throttle_reasons = e->available ? (int64_t)e->reasons_seen : -1;
    if (!e->available) return;
    char reasons[96], note[256];
    qb_throttle_reasons_text(e->reasons_seen, reasons, sizeof reasons);
    snprintf(note, sizeof note, "energy %.3f J/token, %.0f W mean, SM %.0f MHz%s%s%s", e->joules_per_token,
             e->power_mean_w, e->sm_clock_mhz, e->throttled ? " THROTTLED (" : "", reasons, e->throttled ? ")" : "");
    qb_cell_note(c, note);
}

/* Rank 0: the cell's energy from the active ranks' totals. */
static void combine_energy(const qb_cell_group *g, int active, qb_cell_record *c) {
    const qb_energy_totals **gpus = calloc((size_t)(active > 0 ? active : 1), sizeof *gpus);
    qb_energy_cell e;
    for (int i = 0; gpus && i < active; i++) gpus[i] = &g->ranks[i].energy;
    qb_energy_cell_combine(gpus, gpus ? active : 0, c->n_runs, c->n_runs > 0 ? c->runs[0].n_gen : 0, &e);
    free(gpus);
    record_energy(c, &e);
}

void qb_cell_init(const qb_runner *r, const qb_model_config *cfg, const qb_cell_spec *spec, qb_cell_record *c) {
    const qb_options *o = r->opt;
    memset(c, 0, sizeof *c);
    copy_str(c->model, sizeof c->model, cfg->name);
    copy_str(c->quant, sizeof c->quant, qb_quant_name(spec->quant));
    copy_str(c->backend, sizeof c->backend, r->backend_name);
    c->context_len = spec->context_len;
    c->gen_len = o->generate_length;
    c->tp_size = r->dist->tp_size;
    c->n_ranks = r->dist->tp_size;
    c->repetitions = o->repetitions;
    c->warmup = o->warmup;
    c->seed = o->seed;
    if (o->prompt_mode == QB_PROMPT_REPEAT) snprintf(c->prompt_rule, sizeof c->prompt_rule, "repeat:%d", (int)o->prompt_repeat_id);
    else copy_str(c->prompt_rule, sizeof c->prompt_rule, "random");
    qb_engine_options_format(&spec->engine, c->engine_options, sizeof c->engine_options);
    c->status = QB_CELL_VALID;
    c->alone_speed_mean = c->alone_speed_std = c->interference_ratio = NAN; /* measured by --interference only */
    qb_energy_cell none;
    qb_energy_cell_combine(NULL, 0, 0, 0, &none);
    copy_str(none.why, sizeof none.why, "unavailable: not measured"); /* until the runs say otherwise */
    record_energy(c, &none);
}

void qb_cell_set_failure(qb_cell_record *c, qb_cell_status s, const char *reason) {
    c->status = s;
    copy_str(c->reason, sizeof c->reason, reason);
}

static uint64_t digest_tokens(uint64_t h, const int32_t *t, int n) {
    for (int i = 0; i < n; i++) h = qb_splitmix64(h ^ (uint64_t)(uint32_t)t[i]);
    return h;
}

/* Checks outside the timed region: ids in range, identical to the reference run. Sets status/reason. */
static void check_run(qb_cell_record *c, const qb_run_record *run, const int32_t *reference, int vocab) {
    if (c->status != QB_CELL_VALID) return;
    for (int s = 0; s < run->n_gen; s++)
        if (run->tokens[s] < 0 || run->tokens[s] >= vocab) {
            snprintf(c->reason, sizeof c->reason, "repetition %d: step %d produced token id %d outside [0, %d)",
                     run->repetition, s, (int)run->tokens[s], vocab);
            c->status = QB_CELL_INVALID;
            return;
        }
    if (!reference) return;
    for (int s = 0; s < run->n_gen; s++)
        if (run->tokens[s] != reference[s]) {
            snprintf(c->reason, sizeof c->reason,
                     "repetition %d generated other tokens than the check run from step %d (%d vs %d): greedy "
                     "decoding must be deterministic", run->repetition, s, (int)run->tokens[s], (int)reference[s]);
            c->status = QB_CELL_INVALID;
            return;
        }
}

/* Rank 0: where the cell ran, one entry per active rank (ranks 0 .. active-1 of the group's summaries): world
 * rank, host, device (GPU UUID; "cpu" on the CPU engine, whose devices have none). Entries that do not fit are cut. */
static void record_placement(const qb_cell_group *g, int active, qb_cell_record *c) {
    size_t kr = 0, kh = 0, kd = 0;
    c->ranks[0] = c->hosts[0] = c->devices[0] = '\0';
    for (int i = 0; i < active && i < g->n_ranks; i++) {
        const qb_rank_summary *s = &g->ranks[i];
        char host[sizeof s->host + 1], uuid[sizeof s->uuid + 1];
        copy_str(host, sizeof host, s->host);
        copy_str(uuid, sizeof uuid, s->uuid);
        const char *device = uuid[0] ? uuid : !strncmp(s->device, "cpu", 3) ? "cpu" : "?";
        const char *comma = i ? "," : "";
        if (kr < sizeof c->ranks) kr += (size_t)snprintf(c->ranks + kr, sizeof c->ranks - kr, "%s%d", comma, (int)s->rank);
        if (kh < sizeof c->hosts) kh += (size_t)snprintf(c->hosts + kh, sizeof c->hosts - kh, "%s%s", comma, host);
        if (kd < sizeof c->devices)
            kd += (size_t)snprintf(c->devices + kd, sizeof c->devices - kd, "%s%s", comma, device);
    }
}

/* A rank outside the running TP group: keeps step with the world's collectives, reports nothing. */
static int execute_idle(const qb_runner *r, qb_cell_group *g) {
    qb_rank_summary mine;
    summary_base(r, NULL, &mine);
    for (int rep = 0; rep < r->opt->repetitions; rep++) QB_TRY(qb_dist_barrier(r->dist));
    int all_ok;
    return gather_summaries(r, g, &mine, &all_ok);
}

int qb_cell_execute(const qb_runner *r, qb_cell_group *g, const qb_cell_spec *spec, qb_cell_record *c) {
    if (g->idle) return execute_idle(r, g);
    const qb_options *o = r->opt;
    qb_backend *b = g->backend;
    const int n_prompt = spec->context_len, n_gen = o->generate_length;
    qb_rank_summary mine;
    summary_base(r, b, &mine);
    qb_energy_totals_init(&mine.energy);
    if (!g->energy) g->energy = qb_energy_meter_open(NULL, b->device_uuid, QB_ENERGY_INTERVAL_MS);

    int32_t *prompt = malloc(sizeof *prompt * (size_t)n_prompt);
    int32_t *reference = malloc(sizeof *reference * (size_t)n_gen);
    double *scratch_steps = malloc(sizeof(double) * (size_t)(n_gen > 1 ? n_gen - 1 : 1));
    c->runs = calloc((size_t)o->repetitions, sizeof *c->runs);
    int ok = prompt && reference && scratch_steps && c->runs;
    if (!ok) qb_errorf("out of memory for a cell of %d + %d tokens", n_prompt, n_gen);
    if (ok && o->prompt_mode == QB_PROMPT_REPEAT && o->prompt_repeat_id >= g->cfg.vocab_size) {
        qb_errorf("--prompt repeat:%d: token id not below the vocabulary size %d", (int)o->prompt_repeat_id, g->cfg.vocab_size);
        ok = 0;
    }
    if (ok && b->choices) b->choices(b, n_prompt, c->engine_choices, sizeof c->engine_choices);
    if (ok) qb_prompt_fill(prompt, n_prompt, o->prompt_mode == QB_PROMPT_REPEAT, o->prompt_repeat_id, o->seed, g->cfg.vocab_size);

    /* Warm-up: untimed; the first one's time is kept apart, and its tokens are the check run's. */
    int have_reference = 0;
    for (int w = 0; ok && w < o->warmup; w++) {
        qb_gen_timing t = {0, scratch_steps, qb_progress_step_counter()};
        qb_progress_run(QB_PROGRESS_WARMUP, w + 1, o->warmup, n_gen);
        double t0 = now_s();
        ok = b->generate(b, prompt, n_prompt, n_gen, reference, &t) == 0;
        if (w == 0) c->warmup_total_s = now_s() - t0;
        have_reference = ok;
    }
    /* Timed repetitions: wall time around the whole generation, nothing else inside. */
    for (int rep = 0; ok && rep < o->repetitions; rep++) {
        qb_run_record *run = &c->runs[rep];
        run->repetition = rep;
        run->n_prompt = n_prompt;
        run->n_gen = n_gen;
        run->step_s = calloc((size_t)(n_gen > 1 ? n_gen - 1 : 1), sizeof *run->step_s);
        run->tokens = calloc((size_t)n_gen, sizeof *run->tokens);
        c->n_runs = rep + 1;
        if (!run->step_s || !run->tokens) { ok = 0; qb_errorf("out of memory for run records"); break; }
        qb_progress_run(QB_PROGRESS_TIMED, rep + 1, o->repetitions, n_gen);
        if (qb_dist_barrier(r->dist) != 0) return -1;
        qb_gen_timing t = {0, run->step_s, qb_progress_step_counter()};
        qb_energy_window energy = {0};
        if (g->energy && qb_energy_meter_start(g->energy) != 0) qb_error_clear();
        double wall0 = qb_wall_now() + r->clock_offset_s, t0 = now_s();
        ok = b->generate(b, prompt, n_prompt, n_gen, run->tokens, &t) == 0;
        double t1 = now_s();
        run->start_unix_s = wall0; /* on rank 0's clock; the duration from the monotonic clock */
        run->end_unix_s = wall0 + (t1 - t0);
        if (g->energy) qb_energy_meter_stop(g->energy, &energy);
        qb_energy_totals_add(&mine.energy, &energy,
                             g->energy ? qb_energy_meter_unavailable(g->energy) : "unavailable: out of memory");
        run->total_s = t1 - t0;
        run->prefill_s = t.prefill_s;
        qb_run_finish(run);
        if (!ok) break;
        check_run(c, run, have_reference ? reference : (rep > 0 ? c->runs[0].tokens : NULL), g->cfg.vocab_size);
        mine.token_digest = digest_tokens(mine.token_digest, run->tokens, n_gen);
    }
    if (ok && c->n_runs > 0) {
        if (c->status == QB_CELL_VALID) qb_cell_note(c, "same tokens in every run and the check run");
        const int32_t *check_run = have_reference ? reference : c->runs[0].tokens;
        qb_progress_phase_set(QB_PROGRESS_CHECKS);
        ok = qb_token_checks(r, g, prompt, n_prompt, check_run, n_gen, c) == 0;
    }
    if (ok) {
        qb_memory_stats m;
        memset(&m, 0, sizeof m);
        b->memory(b, &m);
        mine.peak_bytes = (double)m.peak_allocated_bytes;
        mine.weights_bytes = (double)m.weights_bytes;
        mine.kv_bytes = (double)m.kv_cache_bytes;
    } else {
        mine.ok = 0;
        copy_str(mine.error, sizeof mine.error, qb_last_error());
    }
    free(prompt);
    free(reference);
    free(scratch_steps);

    int all_ok;
    QB_TRY(gather_summaries(r, g, &mine, &all_ok));
    if (r->dist->world_rank != 0) return 0;
    record_placement(g, r->dist->tp_size, c);
    if (!all_ok) {
        char why[512];
        first_failure(r, g, why, sizeof why);
        qb_cell_set_failure(c, QB_CELL_FAILED, why);
        return 0;
    }
    const int active = r->dist->tp_size; /* ranks 0 .. tp-1 ran the cell */
    c->peak_mem_rank = calloc((size_t)active, sizeof *c->peak_mem_rank);
    for (int i = 0; i < active; i++) {
        if (c->peak_mem_rank) c->peak_mem_rank[i] = g->ranks[i].peak_bytes;
        c->peak_mem_total += g->ranks[i].peak_bytes;
        if (c->status == QB_CELL_VALID && g->ranks[i].token_digest != g->ranks[0].token_digest) {
            snprintf(c->reason, sizeof c->reason, "rank %d generated other tokens than rank 0", g->ranks[i].rank);
            c->status = QB_CELL_INVALID;
        }
    }
    c->n_ranks = active;
    c->weights_bytes_rank0 = g->ranks[0].weights_bytes;
    c->kv_bytes_rank0 = g->ranks[0].kv_bytes;
    qb_cell_summarize(c);
    combine_energy(g, active, c);
    return 0;
}


void qb_cell_check_speed(const qb_runner *r, const qb_model_config *cfg, const qb_results_meta *meta,
                         qb_cell_record *c) {
    if (c->n_runs == 0 || c->status == QB_CELL_FAILED || c->status == QB_CELL_DOES_NOT_FIT) return;
    char text[256];
    /* Test build only (bench/test_hooks.h): pretend every run was F times faster (to show the check works). */
    if (r->hooks && r->hooks->speedup > 0) {
        double f = r->hooks->speedup;
        for (int i = 0; i < c->n_runs; i++) {
            c->runs[i].total_s /= f;
            c->runs[i].prefill_s /= f;
            for (int s = 0; s + 1 < c->runs[i].n_gen; s++) c->runs[i].step_s[s] /= f;
            qb_run_finish(&c->runs[i]);
        }
        qb_cell_summarize(c);
    }
    c->speed_cv = c->speed.mean > 0 ? c->speed.stddev / c->speed.mean : 0.0;
    c->noisy = c->n_runs > 1 && c->speed_cv > r->opt->noisy_threshold;
    snprintf(text, sizeof text, "spread cv %.4f%s", c->speed_cv, c->noisy ? " NOISY" : "");
    qb_cell_note(c, text);

    qb_shard_plan plan;
    if (qb_shard_plan_make(cfg, c->tp_size, 0, &plan) != 0) return;
    double positions = c->context_len + 0.5 * c->gen_len;
    double bytes = qb_decode_weight_bytes(cfg, &plan) + qb_decode_kv_bytes(cfg, &plan, positions);
    c->implied_bandwidth_gbps = bytes * c->decode_tok_per_s.mean / 1e9;
    c->copy_bandwidth_gbps = meta->copy_bandwidth_gbps;
    if (meta->copy_bandwidth_gbps <= 0) return;
    /* A working set that caches can hold (the tiny test models) is not bound by memory bandwidth: no verdict. */
    if (bytes < QB_ROOFLINE_MIN_BYTES) {
        snprintf(text, sizeof text, "bandwidth not judged: %.1f MiB per token fits in caches", bytes / 1048576.0);
        qb_cell_note(c, text);
        return;
    }
    snprintf(text, sizeof text, "implied bandwidth %.1f GB/s = %.1f%% of measured %.1f GB/s",
             c->implied_bandwidth_gbps, 100.0 * c->implied_bandwidth_gbps / meta->copy_bandwidth_gbps,
             meta->copy_bandwidth_gbps);
    qb_cell_note(c, text);
    if (c->implied_bandwidth_gbps > meta->copy_bandwidth_gbps && c->status == QB_CELL_VALID) {
        c->status = QB_CELL_INVALID;
        snprintf(c->reason, sizeof c->reason,
                 "faster than the hardware allows: decode at %.1f tok/s reads %.1f GB/s, above the measured copy "
                 "bandwidth %.1f GB/s", c->decode_tok_per_s.mean, c->implied_bandwidth_gbps, meta->copy_bandwidth_gbps);
    }
}
