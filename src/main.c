/* main.c - qwenbench entry point: command line -> MPI bring-up -> engine choice -> cells -> results.
 *
 *   mpirun -np 2 qwenbench --model qwen2.5-7b --context-lengths 1,6144 --out results.h5
 *   qwenbench --help
 *
 * Errors before any work (bad flags, configs, illegal TP size, an existing results file) are checked on every
 * rank; rank 0 prints every failing rank's line ("rank R (host H): message"; the message alone in a world of
 * one) and every rank exits 2. Before the run, the ranks compare what they will run (options, and each cell's
 * resolved config: bench/rank_agreement.h) and refuse a difference the same way. Errors during the run go
 * through qb_dist_fatal (rank, host, file:line, MPI_Abort).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cpu_estimate.h"
#include "bench/expected_tokens.h"
#include "bench/interference.h"
#include "bench/export_cmd.h"
#include "bench/rank_agreement.h"
#include "bench/resume_check.h"
#include "bench/rope_policy.h"
#include "bench/runner.h"
#include "bench/sweep_cells.h"
#include "bench/test_hooks.h"
#include "cli/options.h"
#include "comm/dist.h"
#include "engine/backend.h"
#include "engine/shard_plan.h"
#include "io/printable.h"
#include "model/formats_cmd.h"
#include "results/export_results_cmd.h"
#include "results/results_file.h"
#include "results/tokens_cmd.h"
#include "util/error.h"

/* The CPU fallback's short job, used when no GPU is usable and the user left these flags unset (and by
 * --backend cpu without --model). */
static void apply_cpu_defaults(qb_options *o, int verbose) {
    char said[256] = "";
    if (!qb_options_given(o, "model") && !o->sweep[0]) {
        snprintf(o->model, sizeof o->model, "qwen2.5-0.5b");
        strcat(said, " model qwen2.5-0.5b (random weights);");
    }
    if (!qb_options_given(o, "context-lengths") && !o->sweep[0]) {
        o->context_lengths[0] = 1;
        o->context_lengths[1] = 32;
        o->n_context_lengths = 2;
        strcat(said, " inputs 1,32;");
    }
    if (!qb_options_given(o, "generate-length") && !o->sweep[0]) {
        o->generate_length = 16;
        strcat(said, " 16 generated tokens;");
    }
    if (!qb_options_given(o, "repetitions") && !o->sweep[0]) {
        o->repetitions = 2;
        strcat(said, " 2 repetitions;");
    }
    if (verbose && said[0])
        fprintf(stderr, "# %s: the CPU reference engine runs a short job instead of the default:%s "
                        "give the flags to choose otherwise\n",
                o->backend == QB_BACKEND_CPU ? "--backend cpu without --model" : "no GPU", said);
}

/* Rank 0, just before the first cell: what a CPU run will cost when that is minutes (bench/cpu_estimate.h), and
 * that nothing is saved without --out. */
static void say_before_running(const qb_options *o, const char *backend_name, const qb_cell_spec *cells, int n) {
    double weight_bytes = 0.0;
    double s = !strcmp(backend_name, "cpu") ? qb_cpu_estimate_s(o, cells, n, &weight_bytes) : -1.0;
    if (s > QB_CPU_WARN_S)
        fprintf(stderr, "# estimated %.0f minutes on the CPU: %d cell(s) x %d runs x %d generated tokens, each token "
                        "reading up to %.1f GB of weights (rough bound at %.0f GB/s and %.0f GFLOP/s); fewer models, "
                        "lengths, tokens or repetitions shorten it\n", s / 60.0, n, o->warmup + o->repetitions,
                o->generate_length, weight_bytes / 1e9, QB_CPU_BYTES_PER_S / 1e9, QB_CPU_FLOPS / 1e9);
    if (!o->out[0]) fprintf(stderr, "# no --out: the results are printed only, nothing is saved\n");
    fflush(stderr);
}

/* Pick the engine. All ranks must agree; returns -1 with a message if the requested one is unusable. */
static int choose_backend(const qb_options *o, qb_dist *d, qb_backend_create_fn *create, const char **name) {
    char why[256] = "this build has no CUDA engine (configured without nvcc/NCCL)";
    int gpu = 0;
#ifdef QB_HAVE_CUDA
    gpu = qb_cuda_available(why, sizeof why);
#endif
    int all_gpu;
    QB_TRY(qb_dist_all_ok(d, gpu, &all_gpu));
    if (o->backend == QB_BACKEND_CUDA && !all_gpu) return qb_errorf("--backend cuda: no usable GPU on every rank: %s", why);
    if (o->backend != QB_BACKEND_CPU && all_gpu) {
#ifdef QB_HAVE_CUDA
        *create = qb_cuda_backend_create;
        *name = "cuda";
        return 0;
#endif
    }
    if (o->backend == QB_BACKEND_AUTO && d->world_rank == 0)
        fprintf(stderr, "# --backend auto: no usable GPU (%s); using the CPU reference engine\n", why);
    *create = qb_cpu_backend_create;
    *name = "cpu";
    return 0;
}

/* A requested TP size (0: auto) that the job's ranks cannot give; what names where it came from. */
static int check_tp_fits(int tp, const qb_dist *d, const char *what) {
    if (tp > d->world_size) return qb_errorf("%s %d: larger than the %d rank(s) of this job", what, tp, d->world_size);
    if (tp > 0 && d->world_size % tp != 0)
        return qb_errorf("%s %d: the %d ranks of this job do not split into groups of %d", what, tp, d->world_size, tp);
    return 0;
}

/* Checks that need no work: formats, configs, TP legality, position scaling. One line, exit 2. With --tp N
 * every cell runs on N ranks (a sweep entry's own "tp" wins for its cells); without it, the CPU engine uses every
 * rank and the CUDA engine the fewest GPUs that hold each cell (bench/planner.h). */
static int validate_plan(const qb_options *o, const qb_dist *d, const qb_cell_spec *cells, int n, bool planned) {
    bool run_tp_used = false; /* --tp (or the file's top-level "tp") is checked when a cell runs on it */
    for (int i = 0; i < n; i++) run_tp_used |= !cells[i].own_tp;
    if (run_tp_used) QB_TRY(check_tp_fits(o->tp, d, "--tp"));
    qb_rope_policy rope;
    QB_TRY(qb_rope_policy_parse(o->rope_scaling, &rope));
    for (int i = 0; i < n; i++) {
        qb_model_config cfg;
        bool ckpt;
        char dir[QB_PATH_MAX], label[64];
        if (qb_model_config_resolve(cells[i].model, &cfg, &ckpt, dir, sizeof dir) != 0)
            return qb_error_prefix("--model %s", cells[i].model), qb_error_make_printable(); /* a path: escaped */
        if (qb_model_config_apply_quant(&cfg, cells[i].quant, ckpt) != 0) return -1; /* names --quant itself */
        char what[QB_PATH_MAX + 64] = "--tp";
        if (cells[i].own_tp) {
            char file[QB_PATH_MAX];
            snprintf(what, sizeof what, "%s: entries[%d].tp", qb_printable(o->sweep, file, sizeof file),
                     cells[i].sweep_entry);
            QB_TRY(check_tp_fits(cells[i].tp, d, what));
        }
        const int want = qb_cell_requested_tp(o, &cells[i]); /* the runner's default when 0 (bench/runner.c) */
        const int tp = want > 0 ? want : o->schedule == QB_SCHEDULE_PACKED ? 1 : d->world_size;
        if ((want > 0 || !planned) && qb_shard_plan_check(&cfg, tp) != 0)
            return qb_error_prefix("%s %d with %s", what, tp, cfg.name);
        if (qb_rope_policy_apply(&rope, &cfg, cells[i].context_len, o->generate_length, label, sizeof label) != 0)
            return qb_error_prefix("--rope-scaling %s", o->rope_scaling);
        if (o->prompt_mode == QB_PROMPT_REPEAT && o->prompt_repeat_id >= cfg.vocab_size)
            return qb_errorf("--prompt repeat:%d: token id outside the vocabulary of %s (ids 0 to %d)",
                             (int)o->prompt_repeat_id, cfg.name, cfg.vocab_size - 1);
    }
    return 0;
}

/* One startup step's verdict from every rank: 1 when every rank passed; else 0, after rank 0 printed each
 * failing rank's message (rank and host with more than one rank), and every rank takes the exit-2 path. */
static int every_rank_passed(qb_dist *d, int ok) {
    static char report[16384];
    int all_ok = 0;
    if (qb_dist_gather_errors(d, ok, ok ? "" : qb_last_error(), "\n", &all_ok, report, sizeof report) != 0)
        QB_FATAL(d, qb_last_error());
    if (all_ok) return 1;
    for (char *line = report; d->world_rank == 0 && *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        fprintf(stderr, "qwenbench: error: %s\n", line);
        if (!end) break;
        line = end + 1;
    }
    fflush(stderr);
    return 0;
}

/* The options every rank must share, then each cell (format, input length, resolved config), against rank 0's. */
static int ranks_agree(const qb_options *o, qb_dist *d, const char *backend_name, const qb_cell_spec *cells, int n) {
    qb_fingerprint mine;
    int differs = 0, same = 1;
    char why[512];
    qb_fingerprint_init(&mine);
    qb_fingerprint_add_options(&mine, o, backend_name, n);
    if (qb_ranks_compare(d, &mine, 1, &differs, why, sizeof why) != 0) QB_FATAL(d, qb_last_error());
    if (differs) qb_errorf("ranks disagree: %s", why);
    if (!every_rank_passed(d, !differs)) return 0;
    if (qb_ranks_compare_cells(d, cells, n, &same, why, sizeof why) != 0) QB_FATAL(d, qb_last_error());
    if (!same) qb_errorf("ranks disagree: %s", why);
    return every_rank_passed(d, same);
}

/* The command line as stored in the results file, each argument escaped (paths may hold control or bidi
 * characters: io/printable.h). */
static void join_argv(int argc, char **argv, char *out, size_t cap) {
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < argc && k + 1 < cap; i++) {
        char arg[1024];
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", qb_printable(argv[i], arg, sizeof arg));
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "tokens")) return qb_tokens_command(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "export")) return qb_export_results_command(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "export-weights")) return qb_export_weights_command(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "formats")) return qb_formats_command(argc - 1, argv + 1);

    static char command_line[4096];
    join_argv(argc, argv, command_line, sizeof command_line);
    qb_dist d;
    if (qb_dist_init(&argc, &argv, 600.0, &d) != 0) {
        fprintf(stderr, "qwenbench: error: %s\n", qb_last_error());
        return 1;
    }
    qb_runner_install_signal_handlers(); /* early: a forwarded SIGUSR1 must never kill a rank */
    const int root = d.world_rank == 0;
    int status = 2;
    static qb_options o;
    qb_cell_spec *cells = NULL;
    int n_cells = 0;
    static qb_expected_tokens expected;

    /* Every check below runs on every rank; a rank that fails alone is named by rank 0 and all exit 2. */
    if (!every_rank_passed(&d, qb_options_parse(argc, argv, &o) == 0)) goto refused;
    d.deadline_s = o.deadline_s;
    int all_run = 1; /* --help or --version on any rank: no rank runs */
    if (qb_dist_all_ok(&d, !(o.show_help || o.show_version), &all_run) != 0) QB_FATAL(&d, qb_last_error());
    if (!all_run) {
        if (root && o.show_help) qb_options_print_help(stdout);
        else if (root) printf("qwenbench %s (commit %s, %s build)\n", QB_VERSION, QB_GIT_COMMIT, QB_BUILD_TYPE);
        status = 0;
        goto done;
    }
    qb_backend_create_fn create = qb_cpu_backend_create;
    const char *backend_name = "cpu";
    if (!every_rank_passed(&d, choose_backend(&o, &d, &create, &backend_name) == 0)) goto refused;
    if (!strcmp(backend_name, "cpu") &&
        (o.backend == QB_BACKEND_AUTO || (o.backend == QB_BACKEND_CPU && !qb_options_given(&o, "model"))))
        apply_cpu_defaults(&o, root);
    if (strstr(QB_BUILD_TYPE, "Debug") && root) fprintf(stderr, "# warning: debug build: numbers are not representative\n");

    size_t gpu_bytes = 0;
    int planned_ok = qb_sweep_cells(&o, &cells, &n_cells) == 0;
    /* Every rank reads the --expect-tokens file now, so that a missing, blocking or malformed one costs no cell. */
    if (planned_ok && o.expect_tokens[0]) planned_ok = qb_expected_tokens_load(o.expect_tokens, &expected) == 0;
#ifdef QB_HAVE_CUDA
    if (planned_ok && !strcmp(backend_name, "cuda") && qb_cuda_device_memory(d.local_rank, &gpu_bytes) != 0)
        planned_ok = 0;
#endif
    /* The planner must choose the same TP size on every rank: it plans for the smallest GPU of the job. */
    if (qb_dist_min_size(&d, &gpu_bytes) != 0) QB_FATAL(&d, qb_last_error());
    if (planned_ok) planned_ok = validate_plan(&o, &d, cells, n_cells, gpu_bytes > 0) == 0;
    if (!every_rank_passed(&d, planned_ok)) goto refused;
    if (!ranks_agree(&o, &d, backend_name, cells, n_cells)) goto refused;
    if (!every_rank_passed(&d, !root || !o.out[0] || qb_results_check_target(o.out, o.overwrite, o.resume) == 0))
        goto refused;
    qb_runner runner = {&o, &d, create, backend_name, command_line, gpu_bytes, qb_test_hooks_get(),
                        o.expect_tokens[0] ? &expected : NULL, NULL, 0.0};
    /* --interference names exactly one cell of the sweep (bench/interference.h) */
    if (!every_rank_passed(&d, qb_interference_check(&runner, cells, n_cells) == 0)) goto refused;
    /* rank 0 reads the file to complete; a foreign one or other settings: one line, exit 2, before any cell */
    if (!every_rank_passed(&d, !root || !o.resume || qb_resume_check(&runner, cells, n_cells) == 0)) goto refused;
    if (root && !o.explain) say_before_running(&o, backend_name, cells, n_cells);
    if (qb_run_cells(&runner, cells, n_cells, &status) != 0 && qb_error_make_printable())
        QB_FATAL(&d, qb_last_error());
    goto done;

refused: /* every rank's message is printed by rank 0 already */
    status = 2;
done:
    free(cells);
    qb_expected_tokens_free(&expected);
    qb_dist_finalize(&d);
    return status;
}
